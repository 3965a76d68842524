package ddbledger_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// cutAPI fails every TransactWriteItems after the first `after`, as a crash
// or a non-retryable error would cut a commit short.
type cutAPI struct {
	ddbledger.API
	after, calls int
}

var errCut = errors.New("cut")

func (c *cutAPI) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opt ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	c.calls++
	if c.calls > c.after {
		return nil, errCut
	}
	return c.API.TransactWriteItems(ctx, in, opt...)
}

// A commit cut at any chunk boundary leaves no permission naming an owner
// without a source record: the invariant that keeps ownership recoverable.
func TestCommitCutAtEveryChunkKeepsOwnersRecorded(t *testing.T) {
	ctx := context.Background()
	// A commit of 3 sources, 150 permission puts and 60 deletes: 3 chunks.
	// The deleted permissions belong to old.yaml, whose record goes too.
	var before reconcile.Commit
	before.Sources = append(before.Sources, reconcile.SourceRecord{Key: "old.yaml", Kind: reconcile.KindFile, Status: reconcile.StatusApplied})
	for i := range 60 {
		before.Put = append(before.Put, reconcile.OwnedPermission{Key: key("sg-old", int32(i+1), "10.0.0.0/8"), RuleID: fmt.Sprintf("sgr-o%d", i),
			Owners: map[rules.Owner]string{{Source: "old.yaml", Rule: "r"}: ""}})
	}
	for cut := 0; cut <= 3; cut++ {
		t.Run(fmt.Sprintf("after-chunk-%d", cut), func(t *testing.T) {
			l, _, client := setup(t)
			if err := l.Write(ctx, before); err != nil {
				t.Fatal(err)
			}
			var c reconcile.Commit
			for _, s := range []string{"a.yaml", "b.yaml", "c.yaml"} {
				c.Sources = append(c.Sources, reconcile.SourceRecord{Key: s, Kind: reconcile.KindFile, Status: reconcile.StatusApplied})
			}
			for i := range 150 {
				src := []string{"a.yaml", "b.yaml", "c.yaml"}[i%3]
				c.Put = append(c.Put, reconcile.OwnedPermission{Key: key("sg-new", int32(i+1), "10.0.0.0/8"), RuleID: fmt.Sprintf("sgr-n%d", i),
					Owners: map[rules.Owner]string{{Source: src, Rule: "r"}: ""}})
			}
			old, err := l.AllPermissions(ctx)
			if err != nil {
				t.Fatal(err)
			}
			c.Delete = old
			recs, _ := l.ListSources(ctx)
			c.DeleteSources = recs
			cutter := &cutAPI{API: client, after: cut}
			err = ddbledger.New(cutter, table).Write(ctx, c)
			if (cut < 3) != errors.Is(err, errCut) {
				t.Fatalf("write cut after %d chunks: %v", cut, err)
			}
			recs, err = l.ListSources(ctx)
			if err != nil {
				t.Fatal(err)
			}
			have := map[string]bool{}
			for _, r := range recs {
				have[r.Key] = true
			}
			perms, err := l.AllPermissions(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range perms {
				for o := range p.Owners {
					if !have[o.Source] {
						t.Fatalf("cut after %d chunks: %s names owner %s, which has no source record", cut, p.Key, o)
					}
				}
			}
		})
	}
}

func TestUndecodableItemsAreSkippedAndReported(t *testing.T) {
	ctx := context.Background()
	_, _, client := setup(t)
	var logs bytes.Buffer
	l := ddbledger.New(client, table, ddbledger.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	good := reconcile.OwnedPermission{Key: key("sg-a", 22, "10.0.0.0/8"), RuleID: "sgr-1", Owners: map[rules.Owner]string{{Source: "a.yaml", Rule: "r"}: ""}}
	if err := l.Write(ctx, reconcile.Commit{
		Sources: []reconcile.SourceRecord{{Key: "a.yaml", Kind: reconcile.KindFile, Status: reconcile.StatusApplied}},
		Put:     []reconcile.OwnedPermission{good}}); err != nil {
		t.Fatal(err)
	}
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	for _, item := range []map[string]types.AttributeValue{
		// A source whose perms are not gzip, and a permission whose key does not parse.
		{"pk": s("t#home"), "sk": s("source#broken.yaml"), "kind": s("file"), "status": s("applied"),
			"perms": &types.AttributeValueMemberB{Value: []byte("not gzip")}, "ver": &types.AttributeValueMemberN{Value: "3"}},
		{"pk": s("t#home"), "sk": s("perm#sg-a|garbage"), "ruleId": s("sgr-x")},
		// Sources written by hand: no ver at all, and a ver that is not a number.
		{"pk": s("t#home"), "sk": s("source#nover.yaml"), "kind": s("file"), "status": s("applied"),
			"perms": &types.AttributeValueMemberB{Value: []byte("not gzip")}},
		{"pk": s("t#home"), "sk": s("source#sver.yaml"), "kind": s("file"), "ver": s("2"),
			"perms": &types.AttributeValueMemberB{Value: []byte("not gzip")}},
	} {
		if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := l.ListSources(ctx)
	if err != nil {
		t.Fatalf("one bad source item stopped the listing: %v", err)
	}
	if len(recs) != 4 || recs[1].Key != "broken.yaml" || recs[1].Status != reconcile.StatusUnknown || recs[1].Version != 3 ||
		recs[2].Key != "nover.yaml" || recs[2].Status != reconcile.StatusUnknown || recs[2].Version != 0 ||
		recs[3].Key != "sver.yaml" || recs[3].Status != reconcile.StatusUnknown || recs[3].Version != 0 {
		t.Fatalf("sources = %+v, want a.yaml, broken.yaml (unknown, version 3), nover.yaml and sver.yaml (unknown, version 0)", recs)
	}
	for name, read := range map[string]func() ([]reconcile.OwnedPermission, error){
		"AllPermissions":   func() ([]reconcile.OwnedPermission, error) { return l.AllPermissions(ctx) },
		"GroupPermissions": func() ([]reconcile.OwnedPermission, error) { return l.GroupPermissions(ctx, []string{"sg-a"}) },
	} {
		perms, err := read()
		if err != nil || len(perms) != 1 || perms[0].Key != good.Key {
			t.Fatalf("%s = %+v, %v; want the one good permission", name, perms, err)
		}
	}
	if n := strings.Count(logs.String(), `"UndecodableItems":1`); n != 5 {
		t.Fatalf("want 5 reports with the metric, got %d:\n%s", n, logs.String())
	}
	// A salvaged record is replaced by the next write of the source, or
	// deleted, whether or not it had a version; a record written since
	// (version 1 now) is not overwritten by a writer that read it salvaged.
	recs[1].Status, recs[1].Message = reconcile.StatusApplied, ""
	recs[2].Status, recs[2].Message = reconcile.StatusApplied, ""
	if err := l.Write(ctx, reconcile.Commit{Sources: recs[1:3], DeleteSources: recs[3:]}); err != nil {
		t.Fatalf("replace the salvaged records: %v", err)
	}
	if err := l.Write(ctx, reconcile.Commit{Sources: recs[2:3]}); !errors.Is(err, reconcile.ErrConflict) {
		t.Fatalf("a stale writer replaced a record written since: %v", err)
	}
	if err := l.Write(ctx, reconcile.Commit{DeleteSources: recs[2:3]}); !errors.Is(err, reconcile.ErrConflict) {
		t.Fatalf("a stale writer deleted a record written since: %v", err)
	}
	if recs, err = l.ListSources(ctx); err != nil || len(recs) != 3 || recs[2].Key != "nover.yaml" || recs[2].Version != 1 {
		t.Fatalf("sources after the replacement = %+v, %v", recs, err)
	}
}

func TestLeaseFarInTheFutureIsTakenOverAndReported(t *testing.T) {
	ctx := context.Background()
	_, _, client := setup(t)
	var logs bytes.Buffer
	l := ddbledger.New(client, table, ddbledger.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	far := time.Now().Add(365 * 24 * time.Hour).UnixMilli()
	if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "t#home"}, "sk": &types.AttributeValueMemberS{Value: "lease#sg-a"},
		"holder": &types.AttributeValueMemberS{Value: "clock-ahead"}, "expiresAt": &types.AttributeValueMemberN{Value: strconv.FormatInt(far, 10)},
	}}); err != nil {
		t.Fatal(err)
	}
	unlock, err := l.Lock(ctx, []string{"sg-a", "sg-b"}, "me", time.Minute, 2*time.Second)
	if err != nil {
		t.Fatalf("a lease expiring in a year blocks its group: %v", err)
	}
	if err := unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "held past its TTL") || !strings.Contains(logs.String(), `"StaleLeases":1`) {
		t.Fatalf("take-over not reported:\n%s", logs.String())
	}
	// An honest lease is still respected.
	if _, err := l.Lock(ctx, []string{"sg-a"}, "other", time.Minute, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Lock(ctx, []string{"sg-a"}, "me", time.Minute, 300*time.Millisecond); !errors.Is(err, reconcile.ErrLeaseHeld) {
		t.Fatalf("an honest lease was taken over: %v", err)
	}
	if _, err := l.Lock(ctx, []string{"sg-a"}, "me", time.Hour, time.Second); err == nil {
		t.Fatal("a lease longer than MaxLeaseTTL was taken")
	}
}
