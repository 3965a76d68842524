package reconcile_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/sgrules/sgrules/internal/adapters/dirsource"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// racingGroups runs before, once, just before the first authorization:
// another deployment creating the rule between this run's read and its
// authorize. It records the rule ids ModifyRules names.
type racingGroups struct {
	*ec2sg.Client
	before   func()
	modified []string
}

func (g *racingGroups) race() {
	if g.before != nil {
		f := g.before
		g.before = nil
		f()
	}
}

func (g *racingGroups) Authorize(ctx context.Context, groupID string, dir rules.Direction, perms []rules.Permission, tags map[string]string) error {
	g.race()
	return g.Client.Authorize(ctx, groupID, dir, perms, tags)
}

func (g *racingGroups) AuthorizeRules(ctx context.Context, groupID string, dir rules.Direction, perms []rules.Permission, tags map[string]string) ([]reconcile.ActualRule, error) {
	g.race()
	return g.Client.AuthorizeRules(ctx, groupID, dir, perms, tags)
}

func (g *racingGroups) ModifyRules(ctx context.Context, groupID string, updates []reconcile.RuleUpdate) error {
	for _, u := range updates {
		g.modified = append(g.modified, u.RuleID)
	}
	return g.Client.ModifyRules(ctx, groupID, updates)
}

// raceWithA gives B an engine whose first authorization runs A's sweep
// first (A creates its rules between B's read and B's authorize), and
// returns its groups.
func raceWithA(t *testing.T, w *twoDeployments) *racingGroups {
	t.Helper()
	groups := &racingGroups{Client: ec2sg.New(ec2.NewFromConfig(w.cfg)), before: func() {
		if _, err := w.a.eng.Reconcile(context.Background(), reconcile.Request{All: true, Reason: "test"}); err != nil {
			t.Errorf("A's sweep: %v", err)
		}
	}}
	eng, err := reconcile.New(reconcile.Config{Source: dirsource.New(w.b.dir), Groups: groups,
		Ledger: w.b.led, LedgerID: "ledger-b", MaxRevoke: -1})
	if err != nil {
		t.Fatal(err)
	}
	w.b.eng = eng
	return groups
}

// TestRuleAnotherDeploymentCreatedMeanwhileKeepsItsDescription (chaos
// seed 20261110): B declares a permission A declares too, with another
// description; A creates the rule after B's read and before B's
// authorize. B's authorize finds it there (duplicate) and reads it back:
// B holds it from then on, but never changes the description of A's rule
// (before: B's read back "fixed" it with ModifySecurityGroupRules, naming
// A's rule).
func TestRuleAnotherDeploymentCreatedMeanwhileKeepsItsDescription(t *testing.T) {
	w := newTwoDeployments(t)
	w.a.put("a.yaml", tcpFile(w.g, 5432, "10.2.0.0/16"))
	bBody := "rules:\n  r:\n    securityGroup: " + w.g + "\n    type: ingress\n    protocol: tcp\n    fromPort: 5432\n    toPort: 5432\n    cidrBlocks: [10.2.0.0/16]\n    description: says B\n"
	w.b.put("b.yaml", bBody)
	groups := raceWithA(t, w)
	w.b.sweep()
	rule := w.ingress()[5432]
	if rule.Tags[reconcile.TagLedger] != w.a.id() {
		t.Fatalf("rule %s is not A's: %v", rule.RuleID, rule.Tags)
	}
	if rule.Description != "port 5432" {
		t.Errorf("description of A's rule %q, want A's", rule.Description)
	}
	for _, id := range groups.modified {
		if id == rule.RuleID {
			t.Errorf("B modified A's rule %s", id)
		}
	}
	for round := range 2 {
		if res := w.b.sweep(); res.Plan.Count(reconcile.ActUpdate) != 0 || res.Plan.Count(reconcile.ActModify) != 0 {
			t.Fatalf("round %d: B changes A's rule: %+v", round, res.Plan.Actions)
		}
		if res := w.a.sweep(); len(res.Plan.Actions) != 0 {
			t.Fatalf("round %d: A: %+v", round, res.Plan.Actions)
		}
	}
	if d := w.ingress()[5432].Description; d != "port 5432" {
		t.Fatalf("description %q, want A's", d)
	}
}

// TestRuleAnotherDeploymentCreatedMeanwhileIsClaimed (chaos seed
// 20262041): B declares a permission A declares too; A creates the rule
// after B's read and before B's authorize. B's authorize finds it there
// and holds it from then on, so it claims it in the same run: when A's
// file goes away, A lets the rule go to B instead of revoking it (before:
// B's claim came only with its next run, and A revoked the rule B still
// declared in between).
func TestRuleAnotherDeploymentCreatedMeanwhileIsClaimed(t *testing.T) {
	w := newTwoDeployments(t)
	w.a.put("a.yaml", tcpFile(w.g, 5432, "10.2.0.0/16"))
	w.b.put("b.yaml", tcpFile(w.g, 5432, "10.2.0.0/16"))
	raceWithA(t, w)
	w.b.sweep()
	rule := w.ingress()[5432]
	if rule.Tags[reconcile.TagLedger] != w.a.id() {
		t.Fatalf("rule %s is not A's: %v", rule.RuleID, rule.Tags)
	}
	if rule.Tags[reconcile.TagClaimPrefix+w.b.id()] == "" {
		t.Errorf("B holds A's rule %s without its claim: %v", rule.RuleID, rule.Tags)
	}
	w.a.remove("a.yaml")
	w.a.sweep()
	if got, ok := w.ingress()[5432]; !ok || got.RuleID != rule.RuleID {
		t.Fatalf("A's sweep dropped the rule B declares: %s -> %+v", rule.RuleID, got)
	}
	for round := range 2 {
		if res := w.b.sweep(); len(res.Plan.Actions) != 0 {
			t.Fatalf("round %d: B: %+v", round, res.Plan.Actions)
		}
		if res := w.a.sweep(); len(res.Plan.Actions) != 0 {
			t.Fatalf("round %d: A: %+v", round, res.Plan.Actions)
		}
	}
}
