package reconcile_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/adapters/s3source"
	"github.com/sgrules/sgrules/internal/reconcile"
)

// Reads at the limit (issue 24): EC2 and S3 reads counted against moto.

func (w *world) count(op string) int { return w.calls.Snapshot()[op] }

// tagFile is a file of n ingress rules in the group named by tag.
func tagFile(group string, n, port int) []byte {
	b := []byte("rules:\n")
	for i := range n {
		b = fmt.Appendf(b, "  r%d:\n    securityGroup: {tags: {Name: %s}}\n    type: ingress\n    protocol: tcp\n    fromPort: %d\n    toPort: %d\n    cidrBlocks: [10.9.%d.0/24]\n",
			i, group, port+i, port+i, i)
	}
	return b
}

// A run that changes rules reads the rules of its groups once: after the
// leases, the ledger of the groups it writes shows no other run
// committed there since, so the first read stands.
func TestMutatingRunReadsRulesOnceWhenNothingChangedUnderIt(t *testing.T) {
	w := newWorld(t)
	w.put("rules/a.yaml", tagFile("app", 3, 7000))
	w.reconcile(reconcile.Request{Keys: []string{"rules/a.yaml"}})

	w.remove("rules/a.yaml")
	w.calls.Reset()
	res := w.reconcile(reconcile.Request{Keys: []string{"rules/a.yaml"}})
	if n := res.Plan.Count(reconcile.ActRevoke); n != 3 {
		t.Fatalf("revoked %d rules, want 3", n)
	}
	if n := w.count("EC2.DescribeSecurityGroupRules"); n != 1 {
		t.Errorf("%d DescribeSecurityGroupRules for a run revoking 3 rules of one group, want 1 (no read again under the lease): %s", n, w.calls)
	}
}

// racingLedger runs hook once, just before the first Lock: another run
// commits to the groups between this run's first read and its leases.
type racingLedger struct {
	reconcile.Ledger
	hook func()
}

func (l *racingLedger) Lock(ctx context.Context, groupIDs []string, holder string, ttl, wait time.Duration) (func(context.Context) error, error) {
	if h := l.hook; h != nil {
		l.hook = nil
		h()
	}
	return l.Ledger.Lock(ctx, groupIDs, holder, ttl, wait)
}

// The first read is stale when another run committed to the locked
// groups before the leases were taken: the groups are read again and the
// plan made again, so this run does not revoke what the other has just
// declared.
func TestMutatingRunReadsAgainWhenAnotherRunCommittedBeforeItsLeases(t *testing.T) {
	w := newWorld(t)
	w.put("rules/a.yaml", tagFile("app", 2, 7100))
	w.reconcile(reconcile.Request{Keys: []string{"rules/a.yaml"}})

	// a.yaml goes; b.yaml, declaring the same rules, is applied by
	// another run while this one is between its read and its leases.
	w.remove("rules/a.yaml")
	w.put("rules/b.yaml", tagFile("app", 2, 7100))
	led := &racingLedger{Ledger: ddbledger.New(dynamodb.NewFromConfig(w.cfg), "ledger")}
	led.hook = func() {
		w.reconcile(reconcile.Request{Keys: []string{"rules/b.yaml"}})
	}
	eng, err := reconcile.New(reconcile.Config{Source: s3source.New(w.s3, w.bucket, "rules/"), Groups: ec2sg.New(w.ec2), Ledger: led, LedgerID: "ledger"})
	if err != nil {
		t.Fatal(err)
	}
	w.calls.Reset()
	res, err := eng.Reconcile(context.Background(), reconcile.Request{Keys: []string{"rules/a.yaml"}})
	if err != nil {
		t.Fatal(err)
	}
	if n := res.Plan.Count(reconcile.ActRevoke); n != 0 {
		t.Fatalf("revoked %d rules b.yaml declares: %+v", n, res.Plan.Actions)
	}
	if n := w.count("EC2.RevokeSecurityGroupIngress"); n != 0 {
		t.Fatalf("%d revoke calls: the rules b.yaml declares were revoked on the way (%s)", n, w.calls)
	}
	got := w.rules()
	for _, want := range w.expected(map[string][]byte{"rules/b.yaml": tagFile("app", 2, 7100)}) {
		found := false
		for _, g := range got {
			found = found || g == want
		}
		if !found {
			t.Errorf("rule %s is gone", want)
		}
	}
}

// Authorize reports the rules it created (ids included): a run creating
// rules learns their ids from it, without describing the groups again.
func TestNewRulesAreNotReadBack(t *testing.T) {
	w := newWorld(t)
	w.put("rules/new.yaml", tagFile("web", 4, 7200))
	w.calls.Reset()
	res := w.reconcile(reconcile.Request{Keys: []string{"rules/new.yaml"}})
	if n := res.Plan.Count(reconcile.ActAuthorize); n != 4 {
		t.Fatalf("authorized %d rules, want 4", n)
	}
	if n := w.count("EC2.DescribeSecurityGroupRules"); n != 1 {
		t.Errorf("%d DescribeSecurityGroupRules for a run creating 4 rules in one group, want 1 (no read-back): %s", n, w.calls)
	}
	// The ledger holds the ids EC2 gave: the next run changes nothing.
	w.calls.Reset()
	res = w.reconcile(reconcile.Request{All: true})
	if len(res.Plan.Actions) != 0 || len(res.Drift.Drifted) != 0 {
		t.Errorf("the sweep after the apply plans %+v", res.Plan.Actions)
	}
}

// Resolving the files' references reads the groups they name: what the
// plan needs to know of them (pause tags, exclusive marks, VPC) is taken
// from that read, not described again.
func TestResolvedGroupsAreNotDescribedAgain(t *testing.T) {
	w := newWorld(t)
	w.put("rules/facts.yaml", tagFile("cache", 2, 7300))
	w.calls.Reset()
	res := w.reconcile(reconcile.Request{Keys: []string{"rules/facts.yaml"}})
	if n := res.Plan.Count(reconcile.ActAuthorize); n != 2 {
		t.Fatalf("authorized %d rules, want 2", n)
	}
	if n := w.count("EC2.DescribeSecurityGroups"); n != 1 {
		t.Errorf("%d DescribeSecurityGroups for a file naming one group by tag, want 1 (the resolution): %s", n, w.calls)
	}
}

// A sweep reads each rule of its deployment once: by its tag, in every
// group at once. The other rules of its groups come with the groups'
// description; a group is described again only where one of them may
// need acting on (here: a rule made by hand that a file declares, to
// adopt).
func TestSweepReadsEachManagedRuleOnce(t *testing.T) {
	w := newWorld(t)
	w.put("rules/sweep.yaml", tagFile("database", 3, 7400))
	w.reconcile(reconcile.Request{Keys: []string{"rules/sweep.yaml"}})

	w.calls.Reset()
	res := w.reconcile(reconcile.Request{All: true})
	if len(res.Plan.Actions) != 0 {
		t.Fatalf("clean sweep plans %+v", res.Plan.Actions)
	}
	if n := w.count("EC2.DescribeSecurityGroupRules"); n != 1 {
		t.Errorf("clean sweep: %d DescribeSecurityGroupRules, want 1 (the rules tagged with the deployment): %s", n, w.calls)
	}
	if res.Drift.Unmanaged == 0 {
		t.Errorf("clean sweep reports no unmanaged rule (the groups' default egress rules, at least)")
	}

	// Drift: a rule deleted by hand is put back, still one read.
	var victim reconcile.ActualRule
	for _, r := range managedIn(t, w, w.groups["database"]) {
		victim = r
	}
	if victim.RuleID == "" {
		t.Fatal("no managed rule in database")
	}
	if err := ec2sg.New(ec2.NewFromConfig(w.cfg)).Revoke(context.Background(), victim.Key.GroupID, victim.Key.Direction, []string{victim.RuleID}); err != nil {
		t.Fatal(err)
	}
	w.calls.Reset()
	res = w.reconcile(reconcile.Request{All: true})
	if n := res.Plan.Count(reconcile.ActAuthorize); n != 1 {
		t.Fatalf("drift sweep authorized %d rules, want 1: %+v", n, res.Plan.Actions)
	}
	if n := w.count("EC2.DescribeSecurityGroupRules"); n != 1 {
		t.Errorf("drift sweep: %d DescribeSecurityGroupRules, want 1: %s", n, w.calls)
	}

	// A rule made by hand that a file declares: the group is described
	// again, and the rule adopted (not authorized a second time).
	hand := tagFile("database", 1, 7500)
	if _, err := w.ec2.AuthorizeSecurityGroupIngress(context.Background(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(w.groups["database"]),
		IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(7500), ToPort: aws.Int32(7500),
			IpRanges: []ec2types.IpRange{{CidrIp: aws.String("10.9.0.0/24")}}}},
	}); err != nil {
		t.Fatal(err)
	}
	w.put("rules/hand.yaml", hand)
	w.calls.Reset()
	res = w.reconcile(reconcile.Request{All: true})
	if n := res.Plan.Count(reconcile.ActAdopt); n != 1 || res.Plan.Count(reconcile.ActAuthorize) != 0 {
		t.Errorf("sweep with a declared hand-made rule: adopt %d, authorize %d, want 1 and 0: %+v", n, res.Plan.Count(reconcile.ActAuthorize), res.Plan.Actions)
	}
}

// managedIn are the rules of a group carrying sgrules:managed (uncounted).
func managedIn(t *testing.T, w *world, group string) []reconcile.ActualRule {
	t.Helper()
	cfg := w.cfg.Copy()
	cfg.APIOptions = nil
	all, err := ec2sg.New(ec2.NewFromConfig(cfg)).DescribeRules(context.Background(), []string{group})
	if err != nil {
		t.Fatal(err)
	}
	var out []reconcile.ActualRule
	for _, r := range all {
		if r.Tags[reconcile.TagManaged] == "true" {
			out = append(out, r)
		}
	}
	return out
}
