package reconcile_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/dirsource"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/adapters/policyload"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
)

// twoDeployments are deployments A and B (two tables) in one account and
// region, sharing the group g.
type twoDeployments struct {
	t      *testing.T
	cfg    aws.Config
	a, b   *deployment
	g      string
	groups *ec2sg.Client
}

func newTwoDeployments(t *testing.T) *twoDeployments {
	t.Helper()
	srv := motoserver.Shared(t)
	srv.Reset(t)
	cfg := srv.Config(t)
	motoserver.CreateTable(t, cfg, "ledger-a")
	motoserver.CreateTable(t, cfg, "ledger-b")
	w := &twoDeployments{t: t, cfg: cfg, groups: ec2sg.New(ec2.NewFromConfig(cfg))}
	w.g = motoserver.CreateGroup(t, cfg, motoserver.CreateVPC(t, cfg), "shared", nil)
	w.a = newDeployment(t, cfg, cfg, "ledger-a", "")
	w.b = newDeployment(t, cfg, cfg, "ledger-b", "")
	return w
}

// withPolicy gives d a guardrail policy (in a directory of its own).
func (w *twoDeployments) withPolicy(d *deployment, table, body string) {
	w.t.Helper()
	dir := w.t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sgrules.yaml"), []byte(body), 0o644); err != nil {
		w.t.Fatal(err)
	}
	eng, err := reconcile.New(reconcile.Config{Source: dirsource.New(d.dir), Groups: w.groups,
		Ledger: ddbledger.New(dynamodb.NewFromConfig(w.cfg), table), LedgerID: table, MaxRevoke: -1,
		Policy: policyload.New(dirsource.New(dir), "sgrules.yaml", "")})
	if err != nil {
		w.t.Fatal(err)
	}
	d.eng = eng
}

// ingress returns the ingress rules of g by port.
func (w *twoDeployments) ingress() map[int32]reconcile.ActualRule {
	w.t.Helper()
	rs, err := w.groups.DescribeRules(context.Background(), []string{w.g})
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[int32]reconcile.ActualRule{}
	for _, r := range rs {
		if r.Key.Direction == "ingress" {
			out[r.Key.FromPort] = r
		}
	}
	return out
}

func (d *deployment) remove(name string) {
	d.t.Helper()
	if err := os.Remove(filepath.Join(d.dir, name)); err != nil {
		d.t.Fatal(err)
	}
}

// TestPolicyRevokeLeavesAnotherDeploymentsRule: A's policy (enforce:
// revoke) denies SSH from the world; B manages exactly that rule in the
// shared group. A's sweeps report the violation naming B and never
// revoke it (before: A revoked it, B re-created it, forever).
func TestPolicyRevokeLeavesAnotherDeploymentsRule(t *testing.T) {
	w := newTwoDeployments(t)
	w.withPolicy(w.a, "ledger-a", "deny:\n  - id: no-world-ssh\n    type: ingress\n    protocol: tcp\n    ports: 22\n    cidrs: [0.0.0.0/0]\nenforce: revoke\n")
	w.a.put("a.yaml", tcpFile(w.g, 443, "10.0.0.0/8"))
	w.b.put("b.yaml", tcpFile(w.g, 22, "0.0.0.0/0"))
	for round := range 3 {
		rb, ra := w.b.sweep(), w.a.sweep()
		if round > 0 && (len(ra.Plan.Actions) != 0 || len(rb.Plan.Actions) != 0) {
			t.Fatalf("round %d: A %+v, B %+v", round, ra.Plan.Actions, rb.Plan.Actions)
		}
		vs := ra.Policy.Violations
		if len(vs) != 1 || vs[0].Revoke || !slices.Equal(vs[0].Others, []string{w.b.id()}) {
			t.Fatalf("round %d: A's violations %+v, want B's rule reported as B's (%s)", round, vs, w.b.id())
		}
	}
	if r, ok := w.ingress()[22]; !ok || r.Tags[reconcile.TagLedger] != w.b.id() {
		t.Fatalf("B's rule: %+v %v", r, ok)
	}
}

// TestExclusiveGroupLeavesAnotherDeploymentsRule: A manages the shared
// group exclusively; B's rule there is reported (Plan.Foreign, naming B),
// never revoked.
func TestExclusiveGroupLeavesAnotherDeploymentsRule(t *testing.T) {
	w := newTwoDeployments(t)
	w.a.put("a.yaml", tcpFile(w.g, 443, "10.0.0.0/8")+"exclusiveGroups: ["+w.g+"]\n")
	w.b.put("b.yaml", tcpFile(w.g, 5432, "10.1.0.0/16"))
	for round := range 3 {
		rb, ra := w.b.sweep(), w.a.sweep()
		if round > 0 && (len(ra.Plan.Actions) != 0 || len(rb.Plan.Actions) != 0) {
			t.Fatalf("round %d: A %+v, B %+v", round, ra.Plan.Actions, rb.Plan.Actions)
		}
		if round > 0 && (len(ra.Plan.Foreign) != 1 || ra.Plan.Foreign[0].Rule.Key.FromPort != 5432 ||
			!slices.Equal(ra.Plan.Foreign[0].Deployments, []string{w.b.id()})) {
			t.Fatalf("round %d: A's foreign rules %+v", round, ra.Plan.Foreign)
		}
	}
	if _, ok := w.ingress()[5432]; !ok {
		t.Fatal("B's rule was revoked")
	}
}

// TestSharedPermissionStaysWhileEitherDeclaresIt: A and B both declare
// one permission. A creates it, B adopts it and claims it. A's file is
// deleted: A lets it go (drops its record and its tags), the rule stays
// for B; then B's is deleted and B revokes it. And the other way round:
// B's file deleted first leaves it to A.
func TestSharedPermissionStaysWhileEitherDeclaresIt(t *testing.T) {
	for _, first := range []string{"a", "b"} {
		t.Run(first+" lets go first", func(t *testing.T) {
			w := newTwoDeployments(t)
			w.a.put("a.yaml", tcpFile(w.g, 5432, "10.2.0.0/16"))
			w.a.sweep()
			w.b.put("b.yaml", tcpFile(w.g, 5432, "10.2.0.0/16"))
			if res := w.b.sweep(); res.Plan.Count(reconcile.ActAdopt) != 1 {
				t.Fatalf("B: %+v", res.Plan.Actions)
			}
			r := w.ingress()[5432]
			if r.Tags[reconcile.TagLedger] != w.a.id() || r.Tags[reconcile.TagClaimPrefix+w.b.id()] != "true" {
				t.Fatalf("the shared rule's tags: %v", r.Tags)
			}
			gone, stays := w.a, w.b
			goneFile := "a.yaml"
			if first == "b" {
				gone, stays, goneFile = w.b, w.a, "b.yaml"
			}
			gone.remove(goneFile)
			res := gone.sweep()
			if res.Plan.Count(reconcile.ActRevoke) != 0 || res.Plan.Count(reconcile.ActRelease) != 1 {
				t.Fatalf("the deployment letting go: %+v", res.Plan.Actions)
			}
			if got, ok := w.ingress()[5432]; !ok || got.RuleID != r.RuleID {
				t.Fatalf("the shared rule after one let go: %+v %v", got, ok)
			}
			for range 2 {
				if res := stays.sweep(); len(res.Plan.Actions) != 0 {
					t.Fatalf("the deployment keeping it: %+v", res.Plan.Actions)
				}
				if res := gone.sweep(); len(res.Plan.Actions) != 0 {
					t.Fatalf("the deployment that let go: %+v", res.Plan.Actions)
				}
			}
			stays.remove(map[bool]string{true: "b.yaml", false: "a.yaml"}[first == "a"])
			if res := stays.sweep(); res.Plan.Count(reconcile.ActRevoke) != 1 {
				t.Fatalf("the last one letting go: %+v", res.Plan.Actions)
			}
			if _, ok := w.ingress()[5432]; ok {
				t.Fatal("the rule stays after both let go")
			}
		})
	}
}

// TestExclusiveGroupOfTwoDeployments: A and B both declare the shared
// group exclusive, each with a rule of its own there. Each marks the group
// (sgrules:exclusive:<identity>), so each sees the other: a rule made by
// hand in the group is revoked by neither, and both report the conflict
// naming the other (before: A, seeing no rule of B's claim, revoked the
// hand-made rule and reported nothing). When B stops declaring the group
// exclusive it removes its mark, and A, alone, cleans the group up.
func TestExclusiveGroupOfTwoDeployments(t *testing.T) {
	w := newTwoDeployments(t)
	excl := "exclusiveGroups: [" + w.g + "]\n"
	w.a.put("a.yaml", tcpFile(w.g, 443, "10.0.0.0/8")+excl)
	w.b.put("b.yaml", tcpFile(w.g, 5432, "10.1.0.0/16")+excl)
	w.a.sweep()
	w.b.sweep()
	w.a.sweep()
	if _, err := ec2.NewFromConfig(w.cfg).AuthorizeSecurityGroupIngress(context.Background(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: &w.g, IpProtocol: aws.String("tcp"), FromPort: aws.Int32(8080), ToPort: aws.Int32(8080), CidrIp: aws.String("10.9.0.0/16")}); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		ra, rb := w.a.sweep(), w.b.sweep()
		if n := ra.Plan.Count(reconcile.ActRevoke) + rb.Plan.Count(reconcile.ActRevoke); n != 0 {
			t.Fatalf("round %d: revoked: A %+v, B %+v", round, ra.Plan.Actions, rb.Plan.Actions)
		}
		for _, c := range []struct {
			name  string
			res   reconcile.Result
			other string
		}{{"A", ra, w.b.id()}, {"B", rb, w.a.id()}} {
			cs := c.res.Plan.ExclusiveConflicts
			if len(cs) != 1 || cs[0].GroupID != w.g || !slices.Equal(cs[0].Deployments, []string{c.other}) {
				t.Fatalf("round %d: %s's exclusive conflicts %+v, want %s naming %s", round, c.name, cs, w.g, c.other)
			}
		}
	}
	if rs := w.ingress(); len(rs) != 3 {
		t.Fatalf("rules after the sweeps: %+v", rs)
	}

	w.b.put("b.yaml", tcpFile(w.g, 5432, "10.1.0.0/16"))
	if rb := w.b.sweep(); len(rb.Plan.ExclusiveConflicts) != 0 || len(rb.Plan.Actions) != 0 {
		t.Fatalf("B no longer exclusive: %+v %+v", rb.Plan.ExclusiveConflicts, rb.Plan.Actions)
	}
	ra := w.a.sweep()
	if len(ra.Plan.ExclusiveConflicts) != 0 || ra.Plan.Count(reconcile.ActRevoke) != 1 {
		t.Fatalf("A alone: %+v %+v", ra.Plan.ExclusiveConflicts, ra.Plan.Actions)
	}
	rs := w.ingress()
	if _, ok := rs[8080]; ok || len(rs) != 2 {
		t.Fatalf("rules after A alone: %+v", rs)
	}
}
