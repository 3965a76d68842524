package ddbledger_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

func kinds(evs []reconcile.HistoryEvent) string {
	var s []string
	for _, ev := range evs {
		s = append(s, fmt.Sprintf("%s:%d", ev.Kind, ev.Key.FromPort))
	}
	return strings.Join(s, " ")
}

// The history of a rule against moto: a run's events are written in one
// BatchWriteItem (after one Query of the group), read back newest first
// by group, by rule id (every event of the rule's key, whatever its id
// was) and by owner, with every field; a completed event replaces the
// stored one; the history of another target is its own.
func TestHistoryRoundTrip(t *testing.T) {
	led, calls, _ := setup(t)
	ctx := context.Background()
	t0 := time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC)
	ssh, web := key("sg-1", 22, "192.0.2.0/24"), key("sg-1", 443, "0.0.0.0/0")
	owner := rules.Owner{Source: "rules/ssh.yaml", Rule: "ssh"}
	alice := &reconcile.Caller{Principal: "assumed-role/Admin/alice", ARN: "arn:aws:sts::123456789012:assumed-role/Admin/alice",
		EventName: "RevokeSecurityGroupIngress", EventID: "e-1", EventTime: t0.Add(90 * time.Second), SourceIP: "203.0.113.9", UserAgent: "aws-cli/2.22.0"}
	calls.Reset()
	err := led.RecordHistory(ctx, []reconcile.HistoryEvent{
		{At: t0, Kind: reconcile.HistCreated, Key: ssh, RuleID: "sgr-1", Description: "SSH", Owners: []rules.Owner{owner},
			File: "rules/ssh.yaml", VersionID: "v1", Commit: "c0ffee", Reason: "s3:ObjectCreated:Put"},
		{At: t0, Kind: reconcile.HistCreated, Key: web, RuleID: "sgr-2", Owners: []rules.Owner{{Source: "rules/web.yaml", Rule: "https"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := calls.Snapshot(); got["DynamoDB.BatchWriteItem"] != 1 || got["DynamoDB.Query"] != 1 {
		t.Errorf("calls: %v", got)
	}
	if err := led.RecordHistory(ctx, []reconcile.HistoryEvent{
		{At: t0.Add(2 * time.Minute), Kind: reconcile.HistDrifted, Key: ssh, Change: "deleted", By: alice, Owners: []rules.Owner{owner}},
		{At: t0.Add(2 * time.Minute), Kind: reconcile.HistReverted, Key: ssh, RuleID: "sgr-3", Owners: []rules.Owner{owner}},
	}); err != nil {
		t.Fatal(err)
	}

	got, err := led.GroupHistory(ctx, "sg-1")
	if err != nil {
		t.Fatal(err)
	}
	if k := kinds(got); k != "reverted:22 drifted:22 created:443 created:22" && k != "reverted:22 drifted:22 created:22 created:443" {
		t.Fatalf("group history: %s", k)
	}
	d := got[1]
	if d.By == nil || fmt.Sprintf("%+v", *d.By) != fmt.Sprintf("%+v", *alice) || d.Change != "deleted" || !d.At.Equal(t0.Add(2*time.Minute)) || d.ID == "" {
		t.Errorf("drifted: %+v by %+v", d, d.By)
	}
	byID, err := led.RuleHistory(ctx, "sgr-3")
	if err != nil {
		t.Fatal(err)
	}
	if k := kinds(byID); k != "reverted:22 drifted:22 created:22" {
		t.Errorf("rule history of sgr-3: %s", k)
	}
	c := byID[2]
	if c.File != "rules/ssh.yaml" || c.VersionID != "v1" || c.Commit != "c0ffee" || c.Description != "SSH" || c.RuleID != "sgr-1" ||
		c.Reason != "s3:ObjectCreated:Put" || len(c.Owners) != 1 || c.Owners[0] != owner || !c.At.Equal(t0) {
		t.Errorf("created: %+v", c)
	}
	byOwner, err := led.OwnerHistory(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	if k := kinds(byOwner); k != "reverted:22 drifted:22 created:22" {
		t.Errorf("owner history: %s", k)
	}

	// Completing an event replaces it.
	d.By, d.LateBy = &reconcile.Caller{Principal: "user/bob", EventName: "RevokeSecurityGroupIngress", EventTime: t0}, true
	if err := led.RecordHistory(ctx, []reconcile.HistoryEvent{d}); err != nil {
		t.Fatal(err)
	}
	got, _ = led.GroupHistory(ctx, "sg-1")
	if len(got) != 4 || got[1].By == nil || got[1].By.Principal != "user/bob" || !got[1].LateBy {
		t.Errorf("after completing: %s %+v", kinds(got), got[1])
	}

	other := led.For(rules.Target{Account: "111122223333", Region: "eu-west-1"}).(reconcile.HistoryLog)
	if evs, err := other.GroupHistory(ctx, "sg-1"); err != nil || len(evs) != 0 {
		t.Errorf("another target's history: %v %v", evs, err)
	}
}

// The history keeps the last MaxHistoryPerRule events of each rule, and
// a refusal repeated by every sweep once.
func TestHistoryBounded(t *testing.T) {
	led, calls, _ := setup(t)
	ctx := context.Background()
	t0 := time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC)
	ssh, web := key("sg-1", 22, "192.0.2.0/24"), key("sg-1", 443, "0.0.0.0/0")
	if err := led.RecordHistory(ctx, []reconcile.HistoryEvent{{At: t0, Kind: reconcile.HistCreated, Key: web}}); err != nil {
		t.Fatal(err)
	}
	var evs []reconcile.HistoryEvent
	for i := range ddbledger.MaxHistoryPerRule + 10 {
		kind := reconcile.HistDrifted
		if i%2 == 1 {
			kind = reconcile.HistReverted
		}
		evs = append(evs, reconcile.HistoryEvent{At: t0.Add(time.Duration(i) * time.Second), Kind: kind, Key: ssh})
	}
	calls.Reset()
	if err := led.RecordHistory(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if n := calls.Snapshot()["DynamoDB.BatchWriteItem"]; n != 3 {
		t.Errorf("%d BatchWriteItem calls for 60 puts and 10 deletes, want 3", n)
	}
	got, _ := led.GroupHistory(ctx, "sg-1")
	if len(got) != ddbledger.MaxHistoryPerRule+1 || got[0].At != t0.Add(59*time.Second) || got[len(got)-2].At != t0.Add(10*time.Second) ||
		got[len(got)-1].Key != web {
		t.Fatalf("%d events, newest %v, oldest of ssh %v", len(got), got[0].At, got[len(got)-2].At)
	}

	refused := reconcile.HistoryEvent{Kind: reconcile.HistRefused, Key: web, Reason: "NO-WORLD-HTTPS: HTTPS goes through the load balancer"}
	for i := range 3 {
		refused.At = t0.Add(time.Hour + time.Duration(i)*time.Minute)
		if err := led.RecordHistory(ctx, []reconcile.HistoryEvent{refused}); err != nil {
			t.Fatal(err)
		}
	}
	got, _ = led.GroupHistory(ctx, "sg-1")
	if k := kinds(got[:2]); k != "refused:443 reverted:22" || len(got) != ddbledger.MaxHistoryPerRule+2 {
		t.Errorf("after refusing three times: %s (%d events)", k, len(got))
	}
}
