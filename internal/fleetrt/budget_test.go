package fleetrt

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/sgrules/sgrules/internal/config"
	"github.com/sgrules/sgrules/internal/lambda/handler"
	"github.com/sgrules/sgrules/internal/lambda/trigger"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// MAX_REVOKE bounds a run, not each target: two targets each losing fewer
// permissions than the limit, but more together, revoke no more than the
// limit in one run; the target that comes second is held and says why.
// losing sets up the hub and account B, each with two applied files whose
// removal loses 2 permissions, and returns a fleet with MaxRevoke 3.
func losing(t *testing.T) (*world, *Fleet) {
	w := newWorld(t)
	ctx := context.Background()
	home, b := w.home, w.target(acctB, "")
	files := map[string]rules.Target{"rules/h1.yaml": home, "rules/h2.yaml": home, "rules/b1.yaml": b, "rules/b2.yaml": b}
	port := 8000
	for key, tg := range files {
		header := ""
		if tg == b {
			header = `account: "111122223333"` + "\n"
		}
		port++
		w.put(key, header, tg, port, "x")
	}
	fl, err := New(ctx, config.Config{Table: "ledger", Bucket: "rules", Prefix: "rules/", MaxRevoke: 3,
		TargetAccounts: []string{acctB}, TargetRole: config.DefaultTargetRole}, w.hub, EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := fl.Reconcile(ctx, reconcile.Request{All: true}, nil); err != nil || res.Err() != nil {
		t.Fatal(err, res.Err())
	}
	for key := range files {
		w.remove(key)
	}
	return w, fl
}

// checkOneHeld wants exactly one target's two files held (naming the two
// revocations of the other) and its two rules kept.
func checkOneHeld(t *testing.T, w *world, results []reconcile.TargetResult) {
	t.Helper()
	held := map[rules.Target]int{}
	for _, tr := range results {
		for _, s := range tr.Result.Sources {
			if s.Status == reconcile.StatusHeld {
				held[tr.Target]++
				if s.Guard == nil || s.Guard.Spent != 2 || !strings.Contains(s.Message, "besides the 2 the other targets of this run revoke") {
					t.Errorf("%s in %s held with %+v: %s", s.Key, tr.Target, s.Guard, s.Message)
				}
			}
		}
	}
	left := 0
	for _, tg := range []rules.Target{w.home, w.target(acctB, "")} {
		if got := w.ingress(tg); got != "" {
			left += strings.Count(got, ",") + 1
		}
	}
	if len(held) != 1 || left != 2 {
		t.Errorf("held %v, %d rules left; want one target's 2 files held and its 2 rules kept (4 losses over a run limit of 3)", held, left)
	}
}

// MAX_REVOKE bounds a run, not each target: two targets each losing fewer
// permissions than the limit, but more together, revoke no more than the
// limit in one run; the target that comes second is held and says why.
func TestMaxRevokeIsPerRunAcrossTargets(t *testing.T) {
	w, fl := losing(t)
	res, err := fl.Reconcile(context.Background(), reconcile.Request{All: true, Reason: "sweep"}, nil)
	if err != nil || res.Err() != nil {
		t.Fatal(err, res.Err())
	}
	checkOneHeld(t, w, res.Targets)
}

// The same across the sweep messages of one schedule (one per target, in
// invocations of their own): they share the schedule's budget in the
// ledger table.
func TestMaxRevokeIsPerScheduleAcrossSweepMessages(t *testing.T) {
	w, fl := losing(t)
	ctx := context.Background()
	q := &sentQueue{}
	h, err := handler.NewDrift(handler.Config{Fleet: fl, Metrics: &strings.Builder{},
		Queue: q, ShardGroups: fl.ShardGroups, Budget: fl.Budget})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Handle(ctx, json.RawMessage(`{"version":"0","id":"sched-1","detail-type":"Scheduled Event","source":"aws.events","account":"123456789012","region":"us-east-1","detail":{}}`)); err != nil {
		t.Fatal(err)
	}
	if len(q.bodies) != 2 {
		t.Fatalf("sweep messages %q, want 2", q.bodies)
	}
	var results []reconcile.TargetResult
	for i, body := range q.bodies {
		out, err := h.Handle(ctx, json.RawMessage(`{"Records":[{"messageId":"m`+strconv.Itoa(i)+`","eventSource":"aws:sqs","body":`+strconv.Quote(body)+`}]}`))
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := json.Marshal(out); strings.Contains(string(b), `"itemIdentifier"`) {
			t.Fatalf("sweep %s failed: %s", body, b)
		}
		// The message's outcome, read back from the ledger's view of the
		// run: a sweep of its target alone, planned only.
		var sw struct{ Sweep trigger.Sweep }
		if err := json.Unmarshal([]byte(body), &sw); err != nil {
			t.Fatal(err)
		}
		res, err := fl.Reconcile(ctx, reconcile.Request{All: true, DryRun: true, Budget: fl.Budget("sched-1")},
			[]rules.Target{{Account: sw.Sweep.Account, Region: sw.Sweep.Region}})
		if err != nil || res.Err() != nil {
			t.Fatal(err, res.Err())
		}
		results = append(results, res.Targets...)
	}
	checkOneHeld(t, w, results)
}
