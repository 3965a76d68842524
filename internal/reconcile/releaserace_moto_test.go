package reconcile_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/sgrules/sgrules/internal/adapters/dirsource"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/reconcile"
)

// releasingGroups runs before, once, just before the first UntagRules:
// another deployment's run between this run's read and its release.
type releasingGroups struct {
	*ec2sg.Client
	before func()
}

func (g *releasingGroups) UntagRules(ctx context.Context, groupID string, ruleIDs []string, tags map[string]string) error {
	if f := g.before; f != nil {
		g.before = nil
		f()
	}
	return g.Client.UntagRules(ctx, groupID, ruleIDs, tags)
}

// TestConcurrentReleasesLeaveNoRuleBehind (chaos seed 20262049): A
// created a permission B declares too (B claims it); both files are
// deleted, and both runs read the rule before either let it go. Each sees
// the other's tag and plans to release it: before, both dropped their
// records and tags, and the rule stayed open forever, declared by nobody
// and managed by neither. The run letting go last finds no other
// deployment's tag on it any more and revokes it (its ledger still holds
// it). Both orders: A's run, or B's, reaching its release last.
func TestConcurrentReleasesLeaveNoRuleBehind(t *testing.T) {
	for _, last := range []string{"a", "b"} {
		t.Run(last+" releases last", func(t *testing.T) {
			w := newTwoDeployments(t)
			w.a.put("a.yaml", tcpFile(w.g, 5432, "10.2.0.0/16"))
			w.a.sweep()
			w.b.put("b.yaml", tcpFile(w.g, 5432, "10.2.0.0/16"))
			w.b.sweep()
			r := w.ingress()[5432]
			if r.Tags[reconcile.TagLedger] != w.a.id() || r.Tags[reconcile.TagClaimPrefix+w.b.id()] != "true" {
				t.Fatalf("the shared rule's tags: %v", r.Tags)
			}
			w.a.remove("a.yaml")
			w.b.remove("b.yaml")
			slow, fast, table := w.a, w.b, "ledger-a"
			if last == "b" {
				slow, fast, table = w.b, w.a, "ledger-b"
			}
			groups := &releasingGroups{Client: ec2sg.New(ec2.NewFromConfig(w.cfg)), before: func() {
				res, err := fast.eng.Reconcile(context.Background(), reconcile.Request{All: true, Reason: "test"})
				if err != nil || res.Plan.Count(reconcile.ActRelease) != 1 {
					t.Errorf("the other's run meanwhile: %v %+v", err, res.Plan.Actions)
				}
			}}
			eng, err := reconcile.New(reconcile.Config{Source: dirsource.New(slow.dir), Groups: groups,
				Ledger: slow.led, LedgerID: table, MaxRevoke: -1})
			if err != nil {
				t.Fatal(err)
			}
			slow.eng = eng
			res := slow.sweep()
			if groups.before != nil {
				t.Fatalf("no release: %+v", res.Plan.Actions)
			}
			if got, ok := w.ingress()[5432]; ok {
				t.Fatalf("rule %s stays, declared by nobody, with tags %v; the last run's plan: %+v", got.RuleID, got.Tags, res.Plan.Actions)
			}
			if n := res.Plan.Count(reconcile.ActRevoke); n != 1 {
				t.Errorf("the last run reports %d revocations: %+v", n, res.Plan.Actions)
			}
			for _, d := range []*deployment{w.a, w.b} {
				owned, err := d.led.AllPermissions(context.Background())
				if err != nil || len(owned) != 0 {
					t.Errorf("a ledger still holds %+v (%v)", owned, err)
				}
				if res := d.sweep(); len(res.Plan.Actions) != 0 {
					t.Errorf("a sweep after both let go: %+v", res.Plan.Actions)
				}
			}
		})
	}
}
