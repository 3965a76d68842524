package ddbledger_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/dev/apicount"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
	"github.com/sgrules/sgrules/pkg/rules"
)

func TestMain(m *testing.M) { motoserver.Main(m) }

const table = "sgrules-ledger"

// setup returns a ledger whose calls are counted, the counter, and an
// uncounted client for fixtures.
func setup(t *testing.T, opts ...ddbledger.Option) (*ddbledger.Ledger, *apicount.Counter, *dynamodb.Client) {
	t.Helper()
	srv := motoserver.Shared(t)
	srv.Reset(t)
	cfg := srv.Config(t)
	motoserver.CreateTable(t, cfg, table)
	counted, calls := cfg, &apicount.Counter{}
	calls.Attach(&counted)
	return ddbledger.New(dynamodb.NewFromConfig(counted), table, opts...), calls, dynamodb.NewFromConfig(cfg)
}

func key(group string, port int32, cidr string) rules.Key {
	return rules.Key{GroupID: group, Direction: rules.Ingress, Protocol: rules.ProtoTCP, FromPort: port, ToPort: port,
		Peer: rules.Peer{Kind: rules.PeerCIDR4, Value: cidr}}
}

func TestCreateTableIdempotent(t *testing.T) {
	_, _, client := setup(t)
	ctx := context.Background()
	if err := ddbledger.CreateTable(ctx, client, table); err != nil {
		t.Fatalf("second CreateTable: %v", err)
	}
	out, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	if d := out.TimeToLiveDescription; d == nil || d.TimeToLiveStatus != types.TimeToLiveStatusEnabled || aws.ToString(d.AttributeName) != "ttl" {
		t.Fatalf("ttl = %+v, want enabled on ttl", out.TimeToLiveDescription)
	}
	td, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	if got := td.Table.BillingModeSummary; got == nil || got.BillingMode != types.BillingModePayPerRequest {
		t.Errorf("billing = %+v, want PAY_PER_REQUEST", got)
	}
	if got := td.Table.SSEDescription; got == nil || got.SSEType != types.SSETypeKms {
		t.Errorf("encryption = %+v, want KMS", got)
	}
	cb, err := client.DescribeContinuousBackups(ctx, &dynamodb.DescribeContinuousBackupsInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	if d := cb.ContinuousBackupsDescription; d == nil || d.PointInTimeRecoveryDescription == nil ||
		d.PointInTimeRecoveryDescription.PointInTimeRecoveryStatus != types.PointInTimeRecoveryStatusEnabled {
		t.Errorf("point-in-time recovery = %+v, want enabled", d)
	}
}

func TestSourceRoundTrip(t *testing.T) {
	l, _, _ := setup(t)
	ctx := context.Background()
	applied := time.Date(2025, 3, 4, 5, 6, 7, 890, time.UTC)
	src := reconcile.SourceRecord{
		Key:         "rules/web app.yaml",
		Kind:        reconcile.KindFile,
		ETag:        "abc123",
		VersionID:   "v1",
		Status:      reconcile.StatusApplied,
		Diagnostics: []string{"rules/web app.yaml:3:5: web: warning: x"},
		Message:     "ok",
		AppliedAt:   applied,
		Permissions: []rules.Permission{
			{Key: key("sg-1", 443, "10.0.0.0/8"), Description: "https", Owner: rules.Owner{Source: "rules/web app.yaml", Rule: "web"}},
			{Key: key("sg-1", 80, "0.0.0.0/0"), Owner: rules.Owner{Source: "other.yaml", Rule: "x"}},
			{Key: key("sg-1", 22, "198.51.100.7/32"), Owner: rules.Owner{Source: "rules/web app.yaml", Rule: "ssh"},
				ExpiresAt: time.Date(2026, 12, 7, 18, 0, 0, 500, time.UTC)},
		},
		Exclusive: []string{"sg-1", "sg-2"},
	}
	minimal := reconcile.SourceRecord{Key: "a.json", Kind: reconcile.KindCFN, Status: reconcile.StatusInvalid}
	perm := reconcile.OwnedPermission{Key: key("sg-1", 443, "10.0.0.0/8"), RuleID: "sgr-1", Owners: map[rules.Owner]string{{Source: "a", Rule: "b"}: "x"}}
	if err := l.Write(ctx, reconcile.Commit{Sources: []reconcile.SourceRecord{src, minimal}, Put: []reconcile.OwnedPermission{perm}}); err != nil {
		t.Fatal(err)
	}
	got, ok, err := l.GetSource(ctx, src.Key)
	if err != nil || !ok {
		t.Fatalf("GetSource = %v, %v", ok, err)
	}
	want := src
	want.Version = 1
	if !reflect.DeepEqual(got, want) {
		t.Errorf("GetSource:\n got %+v\nwant %+v", got, want)
	}
	if _, ok, err := l.GetSource(ctx, "missing.yaml"); ok || err != nil {
		t.Errorf("GetSource(missing) = %v, %v; want false, nil", ok, err)
	}
	list, err := l.ListSources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantMin := minimal
	wantMin.Version = 1
	if !reflect.DeepEqual(list, []reconcile.SourceRecord{wantMin, want}) {
		t.Errorf("ListSources:\n got %+v\nwant %+v", list, []reconcile.SourceRecord{wantMin, want})
	}
}

func TestLargeSource(t *testing.T) {
	l, _, _ := setup(t)
	ctx := context.Background()
	src := reconcile.SourceRecord{Key: "big.yaml", Kind: reconcile.KindFile, Status: reconcile.StatusApplied}
	for i := range 10000 {
		src.Permissions = append(src.Permissions, rules.Permission{
			Key:         key(fmt.Sprintf("sg-%08x", i%50), int32(i%65535), fmt.Sprintf("10.%d.%d.0/24", i/256%256, i%256)),
			Description: fmt.Sprintf("rule number %d of a large file", i),
			Owner:       rules.Owner{Source: "big.yaml", Rule: fmt.Sprintf("rule-%d", i%300)},
		})
	}
	if err := l.Write(ctx, reconcile.Commit{Sources: []reconcile.SourceRecord{src}}); err != nil {
		t.Fatal(err)
	}
	got, ok, err := l.GetSource(ctx, "big.yaml")
	if err != nil || !ok {
		t.Fatalf("GetSource = %v, %v", ok, err)
	}
	if !reflect.DeepEqual(got.Permissions, src.Permissions) {
		t.Errorf("permissions differ after round trip (%d vs %d)", len(got.Permissions), len(src.Permissions))
	}
}

func TestPermissions(t *testing.T) {
	l, api, _ := setup(t)
	ctx := context.Background()
	var puts []reconcile.OwnedPermission
	for i, g := range []string{"sg-a", "sg-b", "sg-c"} {
		for p := range 3 {
			puts = append(puts, reconcile.OwnedPermission{
				Key: key(g, int32(100+p), "10.0.0.0/8"), RuleID: fmt.Sprintf("sgr-%d-%d", i, p),
				Owners:      map[rules.Owner]string{{Source: "f.yaml", Rule: "r"}: "d", {Source: "g.yaml", Rule: "s"}: ""},
				Description: "d",
			})
		}
	}
	if err := l.Write(ctx, reconcile.Commit{Put: puts}); err != nil {
		t.Fatal(err)
	}
	api.Reset()
	got, err := l.GroupPermissions(ctx, []string{"sg-c", "sg-a", "sg-a", "sg-missing"})
	if err != nil {
		t.Fatal(err)
	}
	if n := int64(api.Sum("DynamoDB", func(op string) bool { return op == "Query" })); n != 3 {
		t.Errorf("GroupPermissions made %d queries, want 3 (one per distinct group)", n)
	}
	var want []reconcile.OwnedPermission
	for _, p := range puts {
		if p.Key.GroupID == "sg-a" || p.Key.GroupID == "sg-c" {
			p.Version = 1
			want = append(want, p)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("GroupPermissions:\n got %+v\nwant %+v", got, want)
	}
	all, err := l.AllPermissions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(puts) {
		t.Errorf("AllPermissions returned %d, want %d", len(all), len(puts))
	}
	for i := 1; i < len(all); i++ {
		if !all[i-1].Key.Less(all[i].Key) {
			t.Errorf("AllPermissions not sorted at %d", i)
		}
	}
}

func TestWriteVersions(t *testing.T) {
	l, _, _ := setup(t)
	ctx := context.Background()
	p := reconcile.OwnedPermission{Key: key("sg-a", 22, "10.0.0.0/8"), RuleID: "sgr-1", Owners: map[rules.Owner]string{{Source: "f", Rule: "r"}: ""}}
	if err := l.Write(ctx, reconcile.Commit{Put: []reconcile.OwnedPermission{p}}); err != nil {
		t.Fatal(err)
	}
	read := func() reconcile.OwnedPermission {
		t.Helper()
		ps, err := l.GroupPermissions(ctx, []string{"sg-a"})
		if err != nil || len(ps) != 1 {
			t.Fatalf("GroupPermissions = %v, %v", ps, err)
		}
		return ps[0]
	}
	if v := read().Version; v != 1 {
		t.Fatalf("version after create = %d, want 1", v)
	}
	// Creating again (Version 0) conflicts.
	err := l.Write(ctx, reconcile.Commit{Put: []reconcile.OwnedPermission{p}})
	if !errors.Is(err, reconcile.ErrConflict) {
		t.Fatalf("second create: err = %v, want ErrConflict", err)
	}
	// Update at the current version succeeds and bumps it.
	p1 := read()
	p1.Description = "new"
	if err := l.Write(ctx, reconcile.Commit{Put: []reconcile.OwnedPermission{p1}}); err != nil {
		t.Fatal(err)
	}
	if got := read(); got.Version != 2 || got.Description != "new" {
		t.Fatalf("after update: %+v, want version 2 description new", got)
	}
	// Stale put and stale delete conflict and change nothing.
	if err := l.Write(ctx, reconcile.Commit{Put: []reconcile.OwnedPermission{p1}}); !errors.Is(err, reconcile.ErrConflict) {
		t.Fatalf("stale put: err = %v, want ErrConflict", err)
	}
	if err := l.Write(ctx, reconcile.Commit{Delete: []reconcile.OwnedPermission{p1}}); !errors.Is(err, reconcile.ErrConflict) {
		t.Fatalf("stale delete: err = %v, want ErrConflict", err)
	}
	// A conflicting item cancels the whole transaction.
	other := reconcile.OwnedPermission{Key: key("sg-a", 23, "10.0.0.0/8"), RuleID: "sgr-2"}
	if err := l.Write(ctx, reconcile.Commit{Put: []reconcile.OwnedPermission{other, p1}}); !errors.Is(err, reconcile.ErrConflict) {
		t.Fatalf("mixed commit: err = %v, want ErrConflict", err)
	}
	if got := read(); got.Version != 2 {
		t.Fatalf("after failed commits: %+v", got)
	}
	// Delete at the current version.
	if err := l.Write(ctx, reconcile.Commit{Delete: []reconcile.OwnedPermission{read()}}); err != nil {
		t.Fatal(err)
	}
	if ps, err := l.GroupPermissions(ctx, []string{"sg-a"}); err != nil || len(ps) != 0 {
		t.Fatalf("after delete: %v, %v", ps, err)
	}
	// Sources follow the same rules.
	s := reconcile.SourceRecord{Key: "s.yaml", Status: reconcile.StatusApplied}
	if err := l.Write(ctx, reconcile.Commit{Sources: []reconcile.SourceRecord{s}}); err != nil {
		t.Fatal(err)
	}
	if err := l.Write(ctx, reconcile.Commit{Sources: []reconcile.SourceRecord{s}}); !errors.Is(err, reconcile.ErrConflict) {
		t.Fatalf("source recreate: err = %v, want ErrConflict", err)
	}
	s.Version = 1
	if err := l.Write(ctx, reconcile.Commit{DeleteSources: []reconcile.SourceRecord{s}}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := l.GetSource(ctx, "s.yaml"); ok || err != nil {
		t.Fatalf("source after delete: %v, %v", ok, err)
	}
	// The same item twice in one commit is refused before any call.
	if err := l.Write(ctx, reconcile.Commit{Put: []reconcile.OwnedPermission{other}, Delete: []reconcile.OwnedPermission{other}}); err == nil || errors.Is(err, reconcile.ErrConflict) {
		t.Fatalf("duplicate item: err = %v, want a non-conflict error", err)
	}
}

func TestWriteChunks(t *testing.T) {
	l, api, _ := setup(t)
	ctx := context.Background()
	var c reconcile.Commit
	for i := range 230 {
		c.Put = append(c.Put, reconcile.OwnedPermission{Key: key("sg-big", int32(i+1), "10.0.0.0/8"), RuleID: fmt.Sprintf("sgr-%d", i)})
	}
	c.Sources = []reconcile.SourceRecord{{Key: "big.yaml", Status: reconcile.StatusApplied}}
	if err := l.Write(ctx, c); err != nil {
		t.Fatal(err)
	}
	if n := int64(api.Sum("DynamoDB", func(op string) bool { return op == "TransactWriteItems" })); n != 3 {
		t.Errorf("231 items took %d transactions, want 3", n)
	}
	got, err := l.GroupPermissions(ctx, []string{"sg-big"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 230 {
		t.Fatalf("GroupPermissions returned %d, want 230", len(got))
	}
	// Delete them all in one commit.
	if err := l.Write(ctx, reconcile.Commit{Delete: got}); err != nil {
		t.Fatal(err)
	}
	all, err := l.AllPermissions(ctx)
	if err != nil || len(all) != 0 {
		t.Fatalf("AllPermissions after delete = %d, %v", len(all), err)
	}
}

func TestLock(t *testing.T) {
	l, _, _ := setup(t)
	ctx := context.Background()
	unlockA, err := l.Lock(ctx, []string{"sg-2", "sg-1", "sg-1"}, "A", time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Re-entrant for the same holder.
	if _, err := l.Lock(ctx, []string{"sg-1"}, "A", time.Minute, 0); err != nil {
		t.Fatalf("relock by holder: %v", err)
	}

	// B wants an overlapping set and waits until A unlocks.
	type result struct {
		unlock func(context.Context) error
		err    error
		at     time.Time
	}
	done := make(chan result, 1)
	go func() {
		u, err := l.Lock(ctx, []string{"sg-3", "sg-2"}, "B", time.Minute, 10*time.Second)
		done <- result{u, err, time.Now()}
	}()
	time.Sleep(400 * time.Millisecond)
	select {
	case r := <-done:
		t.Fatalf("B got the lock while A held it: %v", r.err)
	default:
	}
	unlocked := time.Now()
	if err := unlockA(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("B after unlock: %v", r.err)
	}
	if r.at.Before(unlocked) {
		t.Fatal("B returned before A unlocked")
	}

	// C times out on sg-2 and releases sg-1, which it had taken.
	_, err = l.Lock(ctx, []string{"sg-1", "sg-2"}, "C", time.Minute, 300*time.Millisecond)
	if !errors.Is(err, reconcile.ErrLeaseHeld) {
		t.Fatalf("C: err = %v, want ErrLeaseHeld", err)
	}
	if _, err := l.Lock(ctx, []string{"sg-1"}, "D", time.Minute, 0); err != nil {
		t.Fatalf("D on sg-1 released by C: %v", err)
	}
	if err := r.unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestLockExpiry(t *testing.T) {
	l, _, _ := setup(t)
	ctx := context.Background()
	// The leases' clock moves only when the test says: a slow machine
	// cannot expire A's lease before B's first try.
	now := time.Now()
	ddbledger.SetClock(l, func() time.Time { return now })
	// A "crashes" holding a short lease.
	if _, err := l.Lock(ctx, []string{"sg-x"}, "A", 300*time.Millisecond, 0); err != nil {
		t.Fatal(err)
	}
	now = now.Add(299 * time.Millisecond)
	if _, err := l.Lock(ctx, []string{"sg-x"}, "B", time.Minute, 0); !errors.Is(err, reconcile.ErrLeaseHeld) {
		t.Fatalf("B before expiry: err = %v, want ErrLeaseHeld", err)
	}
	now = now.Add(2 * time.Millisecond)
	unlockB, err := l.Lock(ctx, []string{"sg-x"}, "B", time.Minute, 0)
	if err != nil {
		t.Fatalf("B after expiry: %v", err)
	}
	// A's late unlock must not remove B's lease.
	if _, err := l.Lock(ctx, []string{"sg-x"}, "A", time.Minute, 0); !errors.Is(err, reconcile.ErrLeaseHeld) {
		t.Fatalf("A while B holds: err = %v, want ErrLeaseHeld", err)
	}
	if err := unlockB(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Lock(ctx, []string{"sg-x"}, "A", time.Minute, 0); err != nil {
		t.Fatalf("A after B unlock: %v", err)
	}
}

func TestLockContention(t *testing.T) {
	l, _, _ := setup(t)
	ctx := context.Background()
	// Many holders increment a counter under overlapping locks; the
	// critical sections must never overlap.
	var inside, maxInside atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids := []string{"sg-1", "sg-2"}
			if i%2 == 1 {
				ids = []string{"sg-2", "sg-1", "sg-3"}
			}
			unlock, err := l.Lock(ctx, ids, fmt.Sprintf("h%d", i), time.Minute, 20*time.Second)
			if err != nil {
				errs <- err
				return
			}
			n := inside.Add(1)
			// Raise the maximum atomically: a load then a store could
			// lose the 2 of a second holder.
			for m := maxInside.Load(); n > m; m = maxInside.Load() {
				if maxInside.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(50 * time.Millisecond)
			inside.Add(-1)
			errs <- unlock(ctx)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if m := maxInside.Load(); m != 1 {
		t.Errorf("max holders inside = %d, want 1", m)
	}
}

// CreateTable on an existing table with other keys fails, naming both key
// schemas; the table is left alone.
func TestCreateTableWrongKeys(t *testing.T) {
	_, _, client := setup(t)
	ctx := context.Background()
	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String("other"),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatal(err)
	}
	err = ddbledger.CreateTable(ctx, client, "other")
	want := "table other exists but is not a ledger table: its key is id (S, HASH); the ledger needs pk (S, HASH), sk (S, RANGE)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("CreateTable on a table with other keys: %v, want %q", err, want)
	}
}
