package reconcile_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/adapters/s3source"
	"github.com/sgrules/sgrules/internal/reconcile"
)

// crashBeforeDeletes is the ledger of a run that dies after its EC2 calls
// and before a commit that deletes ledger items.
type crashBeforeDeletes struct{ reconcile.Ledger }

func (l crashBeforeDeletes) Write(ctx context.Context, c reconcile.Commit) error {
	if len(c.Delete) > 0 {
		return errors.New("simulated crash before the commit")
	}
	return l.Ledger.Write(ctx, c)
}

// crashRun runs req with w's engine over ledger, a wrapper of w's ledger
// that dies at its commit, at the clock now (nil: the wall clock); the run
// must fail.
func (w *world) crashRun(ledger func(reconcile.Ledger) reconcile.Ledger, now func() time.Time, req reconcile.Request) {
	w.t.Helper()
	crashing, err := reconcile.New(reconcile.Config{
		Source:   s3source.New(w.s3, w.bucket, "rules/"),
		Groups:   ec2sg.New(w.ec2),
		Ledger:   ledger(ddbledger.New(dynamodb.NewFromConfig(w.cfg), "ledger")),
		LedgerID: "ledger",
		Now:      now,
	})
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := crashing.Reconcile(context.Background(), req); err == nil {
		w.t.Fatal("the crashing run succeeded")
	}
}

func withCrashBeforeDeletes(l reconcile.Ledger) reconcile.Ledger { return crashBeforeDeletes{l} }
func withCrashOnCommit(l reconcile.Ledger) reconcile.Ledger      { return crashOnCommit{l} }

// A run revoking a deleted file's rules dies before its commit: the ledger
// still holds them, EC2 no longer does. An event run of another file of
// the same group does not read the deleted file: it must not write its
// rules back as drift (the owner's run or the next sweep settles them).
func TestEventRunDoesNotRestoreRulesOfAnotherFileACrashRevoked(t *testing.T) {
	w := newWorld(t)
	web := w.groups["web"]
	w.put("rules/gone.yaml", []byte(ruleFile("web", "ingress", "tcp", 7001, 7001, "cidrBlocks: [10.7.0.0/16]")))
	w.put("rules/other.yaml", []byte(ruleFile("web", "ingress", "tcp", 7002, 7002, "cidrBlocks: [10.7.0.0/16]")))
	w.reconcile(reconcile.Request{All: true})
	gone := web + "|ingress|tcp|7001|7001|cidr4:10.7.0.0/16"
	if got := strings.Join(w.rules(), "\n"); !strings.Contains(got, gone) {
		t.Fatalf("not applied:\n%s", got)
	}

	w.remove("rules/gone.yaml")
	w.crashRun(withCrashBeforeDeletes, nil, reconcile.Request{Keys: []string{"rules/gone.yaml"}})
	if got := strings.Join(w.rules(), "\n"); strings.Contains(got, gone) {
		t.Fatalf("the crashing run did not revoke:\n%s", got)
	}

	res := w.reconcile(reconcile.Request{Keys: []string{"rules/other.yaml"}})
	if got := strings.Join(w.rules(), "\n"); strings.Contains(got, gone) {
		t.Fatalf("the run of other.yaml wrote back the rule of the deleted gone.yaml (authorized %d):\n%s", res.Plan.Count(reconcile.ActAuthorize), got)
	}
	// The sweep settles the ledger: the rule stays gone, nothing is owned
	// for gone.yaml any more.
	w.reconcile(reconcile.Request{All: true})
	if got := strings.Join(w.rules(), "\n"); strings.Contains(got, gone) || !strings.Contains(got, web+"|ingress|tcp|7002|7002|") {
		t.Fatalf("after the sweep:\n%s", got)
	}
	res = w.reconcile(reconcile.Request{All: true})
	if n := len(res.Plan.Actions); n != 0 {
		t.Errorf("a second sweep plans %d actions: %v", n, res.Plan.Actions)
	}
}

// A sweep revokes a rule whose deadline has passed and dies before its
// commit: the ledger still holds the rule, EC2 no longer does. An event
// run of another file of the group must not write it back: it would do
// so without a deadline (only the sources a run reads give one), past
// the one its file set (chaos expiry seed 20261101).
func TestEventRunDoesNotRestoreAnExpiredRuleASweepRevoked(t *testing.T) {
	w, c := expiryWorld(t, time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC))
	web := w.groups["web"]
	w.put("rules/tmp.yaml", []byte("rules:\n  debug:\n"+sshRule(web, "198.18.1.0/24", "2026-12-07T10:05:00Z")))
	w.put("rules/other.yaml", []byte(ruleFile("web", "ingress", "tcp", 7002, 7002, "cidrBlocks: [10.7.0.0/16]")))
	w.reconcile(reconcile.Request{All: true})
	expired := web + "|ingress|tcp|22|22|cidr4:198.18.1.0/24"
	if got := strings.Join(w.rules(), "\n"); !strings.Contains(got, expired) {
		t.Fatalf("not applied:\n%s", got)
	}

	c.Set(time.Date(2026, 12, 7, 10, 10, 0, 0, time.UTC))
	w.crashRun(withCrashBeforeDeletes, c.Now, reconcile.Request{All: true})
	if got := strings.Join(w.rules(), "\n"); strings.Contains(got, expired) {
		t.Fatalf("the crashing sweep did not revoke the expired rule:\n%s", got)
	}

	res := w.reconcile(reconcile.Request{Keys: []string{"rules/other.yaml"}})
	if got := strings.Join(w.rules(), "\n"); strings.Contains(got, expired) {
		t.Fatalf("the run of other.yaml wrote back the rule of tmp.yaml expired at 10:05 (authorized %d):\n%s", res.Plan.Count(reconcile.ActAuthorize), got)
	}
	w.reconcile(reconcile.Request{All: true})
	if got := strings.Join(w.rules(), "\n"); strings.Contains(got, expired) || !strings.Contains(got, web+"|ingress|tcp|7002|7002|") {
		t.Fatalf("after the sweep:\n%s", got)
	}
	res = w.reconcile(reconcile.Request{All: true})
	if n := len(res.Plan.Actions); n != 0 {
		t.Errorf("a second sweep plans %d actions: %v", n, res.Plan.Actions)
	}
}

// A run applying the deletion of a.yaml and the creation of b.yaml, which
// declares a.yaml's permission with another description, sets b's
// description and dies before its commit: the ledger still holds the rule
// for a.yaml with a's description. An event run of another file of the
// group does not read a.yaml or b.yaml: it must not write a's description
// back as drift (chaos seed 20266458: the run of an upload the policy
// refused did, changing EC2); b's run or the next sweep settles it.
func TestEventRunDoesNotRestoreADescriptionOfAnotherFileACrashChanged(t *testing.T) {
	w := newWorld(t)
	web := w.groups["web"]
	w.put("rules/a.yaml", []byte(ruleFile("web", "ingress", "tcp", 7001, 7001, "cidrBlocks: [10.7.0.0/16]\n    description: says a")))
	w.put("rules/other.yaml", []byte(ruleFile("web", "ingress", "tcp", 7002, 7002, "cidrBlocks: [10.7.0.0/16]")))
	w.reconcile(reconcile.Request{All: true})
	shared := web + "|ingress|tcp|7001|7001|cidr4:10.7.0.0/16"
	if got := strings.Join(w.rules(), "\n"); !strings.Contains(got, shared+" says a") {
		t.Fatalf("not applied:\n%s", got)
	}

	w.remove("rules/a.yaml")
	w.put("rules/b.yaml", []byte(ruleFile("web", "ingress", "tcp", 7001, 7001, "cidrBlocks: [10.7.0.0/16]\n    description: says b")))
	w.crashRun(withCrashOnCommit, nil, reconcile.Request{Keys: []string{"rules/a.yaml", "rules/b.yaml"}})
	if got := strings.Join(w.rules(), "\n"); !strings.Contains(got, shared+" says b") {
		t.Fatalf("the crashing run did not set b's description:\n%s", got)
	}

	res := w.reconcile(reconcile.Request{Keys: []string{"rules/other.yaml"}})
	if got := strings.Join(w.rules(), "\n"); !strings.Contains(got, shared+" says b") {
		t.Fatalf("the run of other.yaml wrote back the description of the deleted a.yaml (%v):\n%s", res.Plan.Actions, got)
	}
	w.reconcile(reconcile.Request{All: true})
	if got := strings.Join(w.rules(), "\n"); !strings.Contains(got, shared+" says b") {
		t.Fatalf("after the sweep:\n%s", got)
	}
	res = w.reconcile(reconcile.Request{All: true})
	if n := len(res.Plan.Actions); n != 0 {
		t.Errorf("a second sweep plans %d actions: %v", n, res.Plan.Actions)
	}
}
