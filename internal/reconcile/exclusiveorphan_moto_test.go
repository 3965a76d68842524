package reconcile_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/sgrules/sgrules/internal/adapters/dirsource"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/reconcile"
)

// crashOnCommit is the ledger of a run that dies after its EC2 calls and
// before its commit (its write-ahead intents are written).
type crashOnCommit struct{ reconcile.Ledger }

func (crashOnCommit) Write(context.Context, reconcile.Commit) error {
	return errors.New("simulated crash before the commit")
}

// orphanInConflictGroup: A and B both declare the shared group exclusive
// (443 A's, 5432 B's); a sweep of A then authorizes tcp 8443 from
// 10.2.0.0/16 of a2.yaml there and dies before its commit, so only A's
// write-ahead intent proves that rule A's.
func orphanInConflictGroup(t *testing.T) *twoDeployments {
	t.Helper()
	w := newTwoDeployments(t)
	excl := "exclusiveGroups: [" + w.g + "]\n"
	w.a.put("a.yaml", tcpFile(w.g, 443, "10.0.0.0/8")+excl)
	w.b.put("b.yaml", tcpFile(w.g, 5432, "10.1.0.0/16")+excl)
	w.a.sweep()
	w.b.sweep()
	w.a.sweep()

	w.a.put("a2.yaml", tcpFile(w.g, 8443, "10.2.0.0/16"))
	crashing, err := reconcile.New(reconcile.Config{Source: dirsource.New(w.a.dir), Groups: ec2sg.New(ec2.NewFromConfig(w.cfg)),
		Ledger: crashOnCommit{w.a.led}, LedgerID: "ledger-a", MaxRevoke: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := crashing.Reconcile(context.Background(), reconcile.Request{All: true, Reason: "test"}); err == nil {
		t.Fatal("the crashing sweep succeeded")
	}
	return w
}

// TestExclusiveConflictRevokesOwnOrphan (chaos seed 20261114): A and B
// both declare the shared group exclusive. A run of A authorizes a rule
// there and dies before its commit: only A's write-ahead intent proves the
// rule A's. Its file then stops declaring it: A's sweep revokes it as an
// orphan, as in any other group; B's rule stays, and both still report the
// conflict (before: the conflict sent every undeclared rule of the group
// to Plan.Foreign, A's own orphan included, and nothing ever revoked it).
func TestExclusiveConflictRevokesOwnOrphan(t *testing.T) {
	w := orphanInConflictGroup(t)
	if r, ok := w.ingress()[8443]; !ok || r.Tags[reconcile.TagLedger] != w.a.id() {
		t.Fatalf("the crashing sweep did not authorize 8443 as A's: %+v %v", r, ok)
	}

	w.a.remove("a2.yaml")
	ra := w.a.sweep()
	if cs := ra.Plan.ExclusiveConflicts; len(cs) != 1 || cs[0].GroupID != w.g {
		t.Fatalf("A's exclusive conflicts %+v", cs)
	}
	rb := w.b.sweep()
	if n := rb.Plan.Count(reconcile.ActRevoke); n != 0 || len(rb.Plan.ExclusiveConflicts) != 1 {
		t.Fatalf("B: %+v %+v", rb.Plan.Actions, rb.Plan.ExclusiveConflicts)
	}
	rs := w.ingress()
	if _, ok := rs[8443]; ok {
		t.Fatalf("A's orphan survived A's sweep: A's plan %+v, foreign %+v", ra.Plan.Actions, ra.Plan.Foreign)
	}
	if _, ok := rs[5432]; !ok || len(rs) != 2 {
		t.Fatalf("rules after the sweeps: %+v", rs)
	}
}

// TestExclusiveConflictReleasesOwnOrphanAnotherClaims (chaos seed
// 20264053): A and B both declare the shared group exclusive. A run of A
// authorizes a rule there and dies before its commit; B declares the same
// permission, adopts A's rule and claims it, keeping A's description. A's
// file then stops declaring it: A's sweep lets its orphan go, as in any
// group (its tag off, its intent cleared in that same sweep), and B's next
// run sets B's description. Before: the conflict sent A's orphan to
// Plan.Foreign, so it kept A's tag for ever and B, a mere claimer, never
// set its own description; and a release kept the orphan's intent until a
// later, otherwise idle, sweep deleted it.
func TestExclusiveConflictReleasesOwnOrphanAnotherClaims(t *testing.T) {
	w := orphanInConflictGroup(t)
	w.b.put("b2.yaml", strings.Replace(tcpFile(w.g, 8443, "10.2.0.0/16"), "port 8443", "b 8443", 1))
	w.b.sweep()
	if r := w.ingress()[8443]; r.Tags[reconcile.TagLedger] != w.a.id() || r.Tags[reconcile.TagClaimPrefix+w.b.id()] == "" || r.Description != "port 8443" {
		t.Fatalf("B did not claim A's orphan keeping A's description: %+v", r)
	}

	w.a.remove("a2.yaml")
	ra := w.a.sweep()
	if n := ra.Plan.Count(reconcile.ActRelease); n != 1 {
		t.Fatalf("A's sweep released %d rules: plan %+v, foreign %+v", n, ra.Plan.Actions, ra.Plan.Foreign)
	}
	if r, ok := w.ingress()[8443]; !ok || r.Tags[reconcile.TagLedger] != "" {
		t.Fatalf("after A's release: %+v %v", r, ok)
	}
	if its, err := w.a.led.Intents(context.Background(), []string{w.g}); err != nil || len(its) != 0 {
		t.Fatalf("A's intents after its release: %+v %v", its, err)
	}
	w.b.sweep()
	if r := w.ingress()[8443]; r.Description != "b 8443" {
		t.Fatalf("B, the only one declaring it, did not set its description: %+v", r)
	}
	if rb := w.b.sweep(); len(rb.Plan.Actions) != 0 {
		t.Fatalf("B's idle sweep: %+v", rb.Plan.Actions)
	}
	if ra := w.a.sweep(); len(ra.Plan.Actions) != 0 || len(ra.Plan.ExclusiveConflicts) != 1 {
		t.Fatalf("A's idle sweep: %+v %+v", ra.Plan.Actions, ra.Plan.ExclusiveConflicts)
	}
}
