package reconcile_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/sgrules/sgrules/internal/adapters/dirsource"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/reconcile"
)

// TestClaimCutFromItsCommitLeavesNoRuleBehind (chaos seeds 20263226,
// 20263423): A created a rule; B declares the same permission and its
// sweep claims A's rule, then dies before its commit, so B's ledger never
// holds it. Both files then stop declaring it, in either order of the
// sweeps. The rule must go: B's write-ahead intent proves the claim B's
// own, so B's sweep lets it go (A still holds it) or revokes it (A let it
// go to B's claim). Before: nothing proved B's claim, B left the rule
// alone while A, honouring the claim, released it, and the rule stayed,
// declared by nobody and managed by neither.
func TestClaimCutFromItsCommitLeavesNoRuleBehind(t *testing.T) {
	for _, first := range []string{"a", "b"} {
		t.Run(first+" sweeps first", func(t *testing.T) {
			w := newTwoDeployments(t)
			w.a.put("a.yaml", tcpFile(w.g, 5432, "10.2.0.0/16"))
			w.a.sweep()
			w.b.put("b.yaml", tcpFile(w.g, 5432, "10.2.0.0/16"))
			crashing, err := reconcile.New(reconcile.Config{Source: dirsource.New(w.b.dir), Groups: ec2sg.New(ec2.NewFromConfig(w.cfg)),
				Ledger: crashOnCommit{w.b.led}, LedgerID: "ledger-b", MaxRevoke: -1})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := crashing.Reconcile(context.Background(), reconcile.Request{All: true, Reason: "test"}); err == nil {
				t.Fatal("the crashing sweep succeeded")
			}
			r := w.ingress()[5432]
			if r.Tags[reconcile.TagLedger] != w.a.id() || r.Tags[reconcile.TagClaimPrefix+w.b.id()] != "true" {
				t.Fatalf("B's crashing sweep did not claim A's rule: %v", r.Tags)
			}
			if owned, err := w.b.led.GroupPermissions(context.Background(), []string{w.g}); err != nil || len(owned) != 0 {
				t.Fatalf("B's ledger after the crash: %+v %v", owned, err)
			}

			w.a.remove("a.yaml")
			w.b.remove("b.yaml")
			order := []*deployment{w.a, w.b}
			if first == "b" {
				order = []*deployment{w.b, w.a}
			}
			for _, d := range order {
				d.sweep()
			}
			if r, ok := w.ingress()[5432]; ok {
				t.Fatalf("the rule both let go stays: %+v", r)
			}
			for _, d := range order {
				if res := d.sweep(); len(res.Plan.Actions) != 0 {
					t.Fatalf("an idle sweep: %+v", res.Plan.Actions)
				}
			}
			for _, d := range order {
				if its, err := d.led.Intents(context.Background(), []string{w.g}); err != nil || len(its) != 0 {
					t.Fatalf("intents left: %+v %v", its, err)
				}
			}
		})
	}
}
