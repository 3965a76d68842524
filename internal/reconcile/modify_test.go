package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

const pgFile = `rules:
  pg:
    securityGroup: sg-0000000c
    type: ingress
    protocol: tcp
    fromPort: 5432
    toPort: 5432
    cidrBlocks: [10.1.0.0/16, 10.2.0.0/16]
    description: postgres
`

func TestCIDRChangesAreInPlace(t *testing.T) {
	for _, tc := range []struct {
		name, cidrs string
		// ops is the EC2 calls of the change; rules the CIDRs after it.
		ops, rules string
	}{
		{"one CIDR changes", "[10.1.0.0/16, 10.3.0.0/16]", "update sg-0000000c 1", "10.1.0.0/16 10.3.0.0/16"},
		{"two CIDRs become one", "[10.3.0.0/16]", "update sg-0000000c 1;revoke sg-0000000c ingress 1", "10.3.0.0/16"},
		{"one CIDR becomes two", "[10.1.0.0/16, 10.3.0.0/16, 10.4.0.0/16]", "authorize sg-0000000c ingress 1;update sg-0000000c 1", "10.1.0.0/16 10.3.0.0/16 10.4.0.0/16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.src.put("rules/db.yaml", pgFile)
			h.apply("rules/db.yaml")
			ids := map[string]bool{}
			for _, r := range h.ec2.snapshot() {
				ids[r.RuleID] = true
			}
			h.ec2.ops = nil
			h.src.put("rules/db.yaml", strings.Replace(pgFile, "[10.1.0.0/16, 10.2.0.0/16]", tc.cidrs, 1))
			res := h.apply("rules/db.yaml")
			if got := strings.Join(h.ec2.ops, ";"); got != tc.ops {
				t.Fatalf("ops = %q, want %q (plan %+v)", got, tc.ops, res.Plan.Actions)
			}
			var cidrs []string
			kept := 0
			for k, r := range h.ec2.snapshot() {
				cidrs = append(cidrs, k.Peer.Value)
				if ids[r.RuleID] {
					kept++
				}
			}
			sortStrings(cidrs)
			if strings.Join(cidrs, " ") != tc.rules || kept == 0 {
				t.Fatalf("rules %v (%d kept their id), want %s", cidrs, kept, tc.rules)
			}
			// The ledger follows: a second run changes nothing.
			h.ec2.ops = nil
			h.reconcile(Request{All: true})
			if len(h.ec2.ops) != 0 {
				t.Fatalf("second run: %v", h.ec2.ops)
			}
		})
	}
}

// A run that dies after the modification, before the ledger records it,
// converges on the next run without another EC2 call: the rule carries
// the deployment's tag and is adopted under its new key.
func TestCrashAfterModifyConverges(t *testing.T) {
	h := newHarness(t)
	h.src.put("rules/db.yaml", pgFile)
	h.apply("rules/db.yaml")
	h.src.put("rules/db.yaml", strings.Replace(pgFile, "5432", "5433", 2))
	h.led.failNext = errInjected
	if _, err := h.eng.Reconcile(context.Background(), Request{Keys: []string{"rules/db.yaml"}}); !errors.Is(err, errInjected) {
		t.Fatalf("want the injected fault, got %v", err)
	}
	if !strings.Contains(h.state(), "|5433|5433|") || strings.Contains(h.state(), "|5432|5432|") {
		t.Fatalf("the crash did not come after the modification: %s", h.state())
	}
	h.ec2.ops = nil
	h.reconcile(Request{All: true})
	if len(h.ec2.ops) != 0 {
		t.Fatalf("convergence made EC2 calls: %v", h.ec2.ops)
	}
	owned := h.led.owned()
	if len(owned) != 2 {
		t.Fatalf("ledger owns %d, want 2", len(owned))
	}
	for k, o := range owned {
		if k.FromPort != 5433 || o.RuleID == "" {
			t.Fatalf("ledger: %s %+v", k, o)
		}
	}
}

func TestQuotaCountsAsEC2Does(t *testing.T) {
	h := newHarness(t)
	h.ec2.prefixLists = map[string]PrefixListInfo{
		"pl-00000001": {ID: "pl-00000001", MaxEntries: 20, AddressFamily: "IPv4"},
		"pl-00000002": {ID: "pl-00000002", AWSManaged: true},
		"pl-00000003": {ID: "pl-00000003", AWSManaged: true, MaxEntries: 2, AddressFamily: "IPv4"},
	}
	var b strings.Builder
	b.WriteString("rules:\n")
	for i := range 41 {
		fmt.Fprintf(&b, "  r%d:\n    securityGroup: sg-0000000c\n    type: ingress\n    protocol: tcp\n    fromPort: %d\n    toPort: %d\n    cidrBlocks: [10.1.0.0/16]\n", i, 1000+i, 1000+i)
	}
	h.src.put("rules/db.yaml", b.String())
	if res := h.apply("rules/db.yaml"); len(res.Quota) != 0 {
		t.Fatalf("41 IPv4 rules: %+v", res.Quota)
	}
	// 41 CIDRs + a customer-managed list of 20 entries + an AWS-managed
	// list of weight 2 = 63 IPv4 rules; the AWS-managed list of unknown
	// weight and the group reference add one of each family.
	b.WriteString("  pl:\n    securityGroup: sg-0000000c\n    type: ingress\n    protocol: tcp\n    fromPort: 443\n    toPort: 443\n    prefixListIds: [pl-00000001, pl-00000002, pl-00000003]\n")
	b.WriteString("  app:\n    securityGroup: sg-0000000c\n    type: ingress\n    protocol: tcp\n    fromPort: 443\n    toPort: 443\n    sourceSecurityGroups: [sg-0000000b]\n")
	h.src.put("rules/db.yaml", b.String())
	calls := h.ec2.calls["describe-prefix-lists"]
	res := h.reconcile(Request{All: true, DryRun: true})
	want := []QuotaWarning{{Group: "sg-0000000c", Direction: "ingress", Family: "IPv4", Rules: 65}}
	if fmt.Sprint(res.Quota) != fmt.Sprint(want) {
		t.Fatalf("quota = %+v, want %+v", res.Quota, want)
	}
	if n := h.ec2.calls["describe-prefix-lists"] - calls; n != 1 {
		t.Errorf("%d prefix-list reads, want 1", n)
	}
}
