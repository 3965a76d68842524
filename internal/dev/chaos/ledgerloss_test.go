package chaos_test

import (
	"context"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/testutil/faultproxy"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
	"github.com/sgrules/sgrules/pkg/rules"
)

// TestLedgerLoss: with every item of the ledger table deleted, the next
// sweep rebuilds ownership from the sources: declared rules are adopted
// with their rule ids (no duplicate, nothing declared revoked, no
// authorize), and rules added by hand stay. A rule sgrules created for a
// file deleted meanwhile stays too: its tag alone does not prove it ours
// (anyone may set it), so it is reported as unproven, not revoked.
func TestLedgerLoss(t *testing.T) {
	srv := motoserver.Shared(t)
	w := newWorld(t, srv, 3)
	p := faultproxy.Start(t, srv.URL, 1)
	var mu sync.Mutex
	var ec2Writes []string
	p.Before(func(c faultproxy.Call) {
		if c.Service == faultproxy.EC2 && c.Mutating {
			mu.Lock()
			ec2Writes = append(ec2Writes, c.Action)
			mu.Unlock()
		}
	})
	eng := w.engine(p, "ledger-loss", nil)
	sweep := func() reconcile.Result {
		t.Helper()
		res, err := eng.Reconcile(context.Background(), reconcile.Request{All: true, Reason: "test"})
		if err != nil {
			t.Fatalf("sweep: %v", err)
		}
		return res
	}
	writes := func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := ec2Writes
		ec2Writes = nil
		return out
	}

	files := map[string]string{
		"rules/a.yaml": "rules:\n" +
			"  ssh:\n    securityGroup: {tags: {Name: g0}}\n    type: ingress\n    protocol: tcp\n    fromPort: 22\n    toPort: 22\n    cidrBlocks: [10.0.0.0/8]\n    ipv6CidrBlocks: [\"2001:db8::/32\"]\n    description: ssh from a\n" +
			"  shared:\n    securityGroup: {tags: {Name: g1}}\n    type: ingress\n    protocol: tcp\n    fromPort: 443\n    toPort: 443\n    cidrBlocks: [172.16.0.0/12]\n    description: a says\n",
		"rules/b.yaml": "rules:\n" +
			"  shared:\n    securityGroup: {tags: {Name: g1}}\n    type: ingress\n    protocol: tcp\n    fromPort: 443\n    toPort: 443\n    cidrBlocks: [172.16.0.0/12]\n    description: b says\n" +
			"  from-g0:\n    securityGroup: {tags: {Name: g2}}\n    type: ingress\n    protocol: tcp\n    fromPort: 5432\n    toPort: 5432\n    sourceSecurityGroups: [{tags: {Name: g0}}]\n    description: db from g0\n" +
			"  dns-out:\n    securityGroup: {tags: {Name: g2}}\n    type: egress\n    protocol: udp\n    fromPort: 53\n    toPort: 53\n    cidrBlocks: [10.0.0.2/32]\n",
		"rules/c.yaml": "rules:\n" +
			"  ping:\n    securityGroup: {tags: {Name: g1}}\n    type: ingress\n    protocol: icmp\n    fromPort: 8\n    toPort: -1\n    cidrBlocks: [192.168.1.0/24]\n    description: ping from c\n",
	}
	for k, b := range files {
		w.put(k, b)
	}
	base := w.rules()
	hand := w.handRule(w.byName["g1"], 9000, "by hand", nil)
	sweep()
	applied := map[rules.Key]string{}
	for _, r := range w.rules() {
		applied[r.Key] = r.RuleID
	}
	writes()

	// c.yaml is deleted while the ledger is lost (no event); then the
	// table is emptied.
	gone := map[string]string{"rules/c.yaml": files["rules/c.yaml"]}
	w.remove("rules/c.yaml")
	delete(files, "rules/c.yaml")
	if n := w.wipeLedger(); n < 6 {
		t.Fatalf("wiped only %d ledger items", n)
	}

	res := sweep()
	for _, s := range res.Sources {
		if s.Status != reconcile.StatusApplied && s.Status != reconcile.StatusDeleted {
			t.Errorf("source %s: %s %v", s.Key, s.Status, s.Diagnostics.Strings())
		}
	}
	if got := writes(); len(got) != 0 {
		t.Errorf("EC2 writes of the rebuilding sweep: %v, want none", got)
	}
	var orphan []string
	for _, u := range res.Plan.Unproven {
		orphan = append(orphan, u.Key.String())
	}
	if len(orphan) != 1 || !strings.Contains(orphan[0], "|icmp|8|-1|cidr4:192.168.1.0/24") {
		t.Errorf("unproven rules after the loss: %v, want c.yaml's", orphan)
	}

	d := w.desire(files)
	var want []string
	for k := range d {
		want = append(want, k.String()+" "+d.description(k))
	}
	for _, b := range append(base, hand) {
		want = append(want, b.Key.String()+" "+b.Description)
	}
	dc := w.desire(gone)
	for k := range dc {
		want = append(want, k.String()+" "+dc.description(k))
	}
	sort.Strings(want)
	actual := w.rules()
	if got := lines(actual); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("after the rebuilding sweep (+ unexpected, - missing):\n%s", diffLines(got, want))
	}
	for _, r := range actual {
		if id, ok := applied[r.Key]; !ok || id != r.RuleID {
			t.Errorf("%s: rule %s, was %s before the loss (re-created?)", r.Key, r.RuleID, id)
		}
	}

	owned, err := w.ledger.AllPermissions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(owned) != len(d) {
		t.Errorf("ledger owns %d permissions, %d are declared", len(owned), len(d))
	}
	for _, o := range owned {
		if _, ok := d[o.Key]; !ok || o.RuleID != applied[o.Key] {
			t.Errorf("ledger: %s rule %s", o.Key, o.RuleID)
		}
		if o.Key.FromPort == 443 && len(o.Owners) != 2 {
			t.Errorf("shared permission owners after rebuild: %v", o.Owners)
		}
	}
	for _, key := range []string{"rules/a.yaml", "rules/b.yaml"} {
		rec, ok, err := w.ledger.GetSource(context.Background(), key)
		if err != nil || !ok || rec.Status != reconcile.StatusApplied {
			t.Errorf("source record %s: %+v %v %v", key, rec, ok, err)
		}
	}

	sweep()
	if got := writes(); len(got) != 0 {
		t.Errorf("a sweep after the rebuild wrote to EC2: %v", got)
	}
}
