package reconcile_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/dirsource"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
)

// deployment is one sgrules deployment of the identity tests: its own
// directory of files, its ledger (a table in some region) and an engine
// reaching EC2 in some region.
type deployment struct {
	t   *testing.T
	dir string
	eng *reconcile.Engine
	led *ddbledger.Ledger
}

func newDeployment(t *testing.T, ledgerCfg, ec2Cfg aws.Config, table, proposed string) *deployment {
	t.Helper()
	d := &deployment{t: t, dir: t.TempDir(), led: ddbledger.New(dynamodb.NewFromConfig(ledgerCfg), table)}
	d.engine(ec2Cfg, table, proposed)
	return d
}

func (d *deployment) engine(ec2Cfg aws.Config, table, proposed string) {
	d.t.Helper()
	eng, err := reconcile.New(reconcile.Config{Source: dirsource.New(d.dir), Groups: ec2sg.New(ec2.NewFromConfig(ec2Cfg)),
		Ledger: d.led, LedgerID: table, DeploymentID: proposed, MaxRevoke: -1})
	if err != nil {
		d.t.Fatal(err)
	}
	d.eng = eng
}

func (d *deployment) put(name, body string) {
	d.t.Helper()
	if err := os.WriteFile(filepath.Join(d.dir, name), []byte(body), 0o644); err != nil {
		d.t.Fatal(err)
	}
}

func (d *deployment) sweep() reconcile.Result {
	d.t.Helper()
	res, err := d.eng.Reconcile(context.Background(), reconcile.Request{All: true, Reason: "test"})
	if err != nil {
		d.t.Fatalf("sweep: %v", err)
	}
	return res
}

func (d *deployment) id() string {
	d.t.Helper()
	id, err := d.led.DeploymentID(context.Background(), "")
	if err != nil {
		d.t.Fatal(err)
	}
	return id
}

func tcpFile(group string, port int, cidr string) string {
	return "rules:\n  r:\n    securityGroup: " + group + "\n    type: ingress\n    protocol: tcp\n    fromPort: " +
		strconv.Itoa(port) + "\n    toPort: " + strconv.Itoa(port) + "\n    cidrBlocks: [" + cidr + "]\n    description: port " + strconv.Itoa(port) + "\n"
}

// TestSameTableNameInTwoRegions: two deployments whose tables are both
// named c32-ledger, one in ap-northeast-1 and one in ca-west-1, manage
// one group in ca-west-1, each its own permission. Sweeps of both, again
// and again, change nothing after the first round: neither revokes the
// other's rule, and neither takes the other's rule for its own (their
// identities differ, so nothing of the other is even reported as
// carrying its tag).
func TestSameTableNameInTwoRegions(t *testing.T) {
	srv := motoserver.Shared(t)
	srv.Reset(t)
	tokyo, calgary := srv.Config(t), srv.Config(t)
	tokyo.Region, calgary.Region = "ap-northeast-1", "ca-west-1"
	const table = "c32-ledger"
	motoserver.CreateTable(t, tokyo, table)
	motoserver.CreateTable(t, calgary, table)
	g := motoserver.CreateGroup(t, calgary, motoserver.CreateVPC(t, calgary), "shared", nil)

	a := newDeployment(t, tokyo, calgary, table, "")
	b := newDeployment(t, calgary, calgary, table, "")
	a.put("a.yaml", tcpFile(g, 22, "10.0.0.0/8"))
	b.put("b.yaml", tcpFile(g, 443, "10.1.0.0/16"))
	a.sweep()
	b.sweep()
	if a.id() == b.id() || a.id() == "" {
		t.Fatalf("identities %q and %q", a.id(), b.id())
	}
	for round := range 3 {
		for name, d := range map[string]*deployment{"a": a, "b": b} {
			res := d.sweep()
			if n := len(res.Plan.Actions); n != 0 {
				t.Fatalf("round %d, %s: %d actions: %+v", round, name, n, res.Plan.Actions)
			}
			if len(res.Plan.Unproven) != 0 {
				t.Errorf("round %d, %s: the other's rule reported as carrying its tag: %+v", round, name, res.Plan.Unproven)
			}
		}
	}
	rules, err := ec2sg.New(ec2.NewFromConfig(calgary)).DescribeRules(context.Background(), []string{g})
	if err != nil {
		t.Fatal(err)
	}
	tags := map[int32]string{}
	for _, r := range rules {
		if r.Key.Direction == "ingress" {
			tags[r.Key.FromPort] = r.Tags[reconcile.TagLedger]
		}
	}
	if tags[22] != a.id() || tags[443] != b.id() {
		t.Fatalf("rule tags %v, want 22 → %s and 443 → %s", tags, a.id(), b.id())
	}
}

// TestUpgradeFromTableNameTags: a ledger and rules written before
// deployments had an identity (rules tagged sgrules:ledger=<table>, no
// identity item) keep working after the upgrade: the first sweep stores a
// new identity and changes nothing (no revoke, no re-create, no adopt),
// a changed port still modifies the old rule in place, a deleted file
// still revokes its old rule, and new rules carry the new identity.
func TestUpgradeFromTableNameTags(t *testing.T) {
	srv := motoserver.Shared(t)
	srv.Reset(t)
	cfg := srv.Config(t)
	const table = "ledger"
	motoserver.CreateTable(t, cfg, table)
	vpc := motoserver.CreateVPC(t, cfg)
	g1, g2 := motoserver.CreateGroup(t, cfg, vpc, "one", nil), motoserver.CreateGroup(t, cfg, vpc, "two", nil)
	groups := ec2sg.New(ec2.NewFromConfig(cfg))
	ingress := func(g string) map[int32]reconcile.ActualRule {
		t.Helper()
		rs, err := groups.DescribeRules(context.Background(), []string{g})
		if err != nil {
			t.Fatal(err)
		}
		out := map[int32]reconcile.ActualRule{}
		for _, r := range rs {
			if r.Key.Direction == "ingress" {
				out[r.Key.FromPort] = r
			}
		}
		return out
	}

	// Before: the identity was the table's name, and no identity item.
	d := newDeployment(t, cfg, cfg, table, table)
	d.put("one.yaml", tcpFile(g1, 22, "10.0.0.0/8"))
	d.put("two.yaml", tcpFile(g2, 5432, "10.2.0.0/16"))
	d.sweep()
	if _, err := dynamodb.NewFromConfig(cfg).DeleteItem(context.Background(), &dynamodb.DeleteItemInput{TableName: aws.String(table),
		Key: map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: "meta#deployment"},
			"sk": &ddbtypes.AttributeValueMemberS{Value: "meta"}}}); err != nil {
		t.Fatal(err)
	}
	old1, old2 := ingress(g1)[22], ingress(g2)[5432]
	if old1.Tags[reconcile.TagLedger] != table || old2.Tags[reconcile.TagLedger] != table {
		t.Fatalf("rules of before: %+v %+v", old1, old2)
	}

	// After the upgrade.
	d.engine(cfg, table, "")
	if res := d.sweep(); len(res.Plan.Actions) != 0 || len(res.Plan.Unproven) != 0 {
		t.Fatalf("the first sweep after the upgrade: %+v, unproven %+v", res.Plan.Actions, res.Plan.Unproven)
	}
	id := d.id()
	if id == "" || id == table {
		t.Fatalf("identity after the upgrade: %q", id)
	}
	d.put("one.yaml", tcpFile(g1, 2222, "10.0.0.0/8"))
	d.put("two.yaml", "rules: {}\n")
	d.put("three.yaml", tcpFile(g2, 443, "10.3.0.0/16"))
	res := d.sweep()
	if res.Plan.Count(reconcile.ActModify) != 1 || res.Plan.Count(reconcile.ActRevoke) != 1 || res.Plan.Count(reconcile.ActAuthorize) != 1 {
		t.Fatalf("after the upgrade: %+v", res.Plan.Actions)
	}
	r1, r2 := ingress(g1), ingress(g2)
	if r1[2222].RuleID != old1.RuleID || len(r1) != 1 {
		t.Errorf("the old rule was not modified in place: %+v (was %s)", r1, old1.RuleID)
	}
	if _, ok := r2[5432]; ok || r2[443].Tags[reconcile.TagLedger] != id {
		t.Errorf("group two after the upgrade: %+v", r2)
	}
	if strings.Contains(r1[2222].Tags[reconcile.TagLedger], id) {
		t.Errorf("an old rule was retagged: %+v", r1[2222])
	}
}
