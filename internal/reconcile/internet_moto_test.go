package reconcile_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/sgrules/sgrules/internal/reconcile"
)

// examplePolicyWorld is a policy world with examples/policy/sgrules.yaml
// in force.
func examplePolicyWorld(t *testing.T) *world {
	t.Helper()
	w := policyWorld(t)
	body, err := os.ReadFile("../../examples/policy/sgrules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	w.put(policyKey, body)
	return w
}

// prefixList creates a customer-managed prefix list with entries.
func (w *world) prefixList(name string, cidrs ...string) string {
	w.t.Helper()
	var entries []ec2types.AddPrefixListEntry
	for _, c := range cidrs {
		entries = append(entries, ec2types.AddPrefixListEntry{Cidr: aws.String(c)})
	}
	out, err := w.ec2.CreateManagedPrefixList(context.Background(), &ec2.CreateManagedPrefixListInput{
		PrefixListName: aws.String(name), AddressFamily: aws.String("IPv4"), MaxEntries: aws.Int32(10), Entries: entries})
	if err != nil {
		w.t.Fatal(err)
	}
	return aws.ToString(out.PrefixList.PrefixListId)
}

// World-open written differently (issue 20.4): with the example policy,
// SSH to the web group (exempt from no-broad-ranges) from two halves of
// IPv4, from 2000::/3, or from a prefix list whose only entry is 0.0.0.0/0
// is refused at the peer that opens it; a prefix list that cannot be read
// refuses the file (fail closed). Nothing of them reaches EC2; compliant
// spellings apply.
func TestPolicyWorldOpenSpellings(t *testing.T) {
	w := examplePolicyWorld(t)
	world := w.prefixList("everyone", "0.0.0.0/0")
	offices := w.prefixList("offices", "10.0.0.0/8", "192.168.0.0/16")
	ssh := func(peer string) []byte { return []byte(ruleFile("web", "ingress", "tcp", 22, 22, peer)) }
	tests := []struct {
		name string
		file []byte
		want string // "" = applied; else a diagnostic it must contain
	}{
		{"halves", ssh("cidrBlocks: [0.0.0.0/1, 128.0.0.0/1]"),
			"rules/halves.yaml:8:18: r: violates policy NO-WORLD-SSH: SSH must not be open to the internet; use the VPN range or SSM Session Manager (ingress tcp 22 from 0.0.0.0/1; with ingress tcp 22 from 128.0.0.0/1 it covers the internet (0.0.0.0/0))"},
		{"global unicast", ssh(`ipv6CidrBlocks: ["2000::/3"]`),
			"rules/global-unicast.yaml:8:22: r: violates policy NO-WORLD-SSH: SSH must not be open to the internet; use the VPN range or SSM Session Manager (ingress tcp 22 from 2000::/3, which covers the internet (::/0))"},
		{"prefix list of the world", ssh("prefixListIds: [" + world + "]"),
			"rules/prefix-list-of-the-world.yaml:8:21: r: violates policy NO-WORLD-SSH: SSH must not be open to the internet; use the VPN range or SSM Session Manager (ingress tcp 22 from " + world + ", which covers the internet (0.0.0.0/0))"},
		{"unknown prefix list", ssh("prefixListIds: [pl-0123456789abcdef0]"),
			"rules/unknown-prefix-list.yaml:8:21: r: cannot decide policy NO-WORLD-SSH: needs the entries of prefix list pl-0123456789abcdef0 (it does not exist); a check that cannot be decided refuses the file"},
		{"all routable but 10/8", ssh("cidrBlocks: [10.0.0.0/8, 0.0.0.0/5, 8.0.0.0/7, 11.0.0.0/8, 12.0.0.0/6, 16.0.0.0/4, 32.0.0.0/3, 64.0.0.0/2, 128.0.0.0/1]"),
			"violates policy NO-WORLD-SSH"},
		{"office prefix list", ssh("prefixListIds: [" + offices + "]"), ""},
		{"three quarters", ssh("cidrBlocks: [0.0.0.0/2, 64.0.0.0/2, 128.0.0.0/2]"), ""},
		{"https halves", []byte(ruleFile("web", "ingress", "tcp", 443, 443, "cidrBlocks: [0.0.0.0/1, 128.0.0.0/1]")), ""},
	}
	before := w.rules()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := "rules/" + strings.ReplaceAll(strings.ReplaceAll(tc.name, " ", "-"), "/", "-") + ".yaml"
			w.put(key, tc.file)
			for _, dry := range []bool{true, false} { // plan and apply
				res := w.reconcile(reconcile.Request{Keys: []string{key}, DryRun: dry})
				s := sourceOf(res, key)
				diags := strings.Join(s.Diagnostics.Strings(), "\n")
				switch {
				case tc.want == "" && s.Status != reconcile.StatusApplied:
					t.Fatalf("dry run %v: %s %s", dry, s.Status, diags)
				case tc.want != "" && (s.Status != reconcile.StatusInvalid || !strings.Contains(diags, tc.want)):
					t.Fatalf("dry run %v: %s\n%s\nwant %s", dry, s.Status, diags, tc.want)
				case tc.want != "" && !dry && !slicesContain(res.Policy.Rejected, key):
					t.Errorf("not listed as rejected by the policy: %+v", res.Policy)
				}
			}
			if tc.want != "" {
				if lost, added := without(before, w.rules()), without(w.rules(), before); len(lost)+len(added) > 0 {
					t.Fatalf("EC2 changed: added %q, lost %q", added, lost)
				}
			}
			w.remove(key)
			w.reconcile(reconcile.Request{Keys: []string{key}})
		})
	}
}

func slicesContain(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// The halves in two files: the first applies, the second, which would
// open the group to the internet with it, is refused, also in one run.
// A hand-made pair of halves is reported by the sweep.
func TestPolicyWorldOpenAcrossFilesAndSweep(t *testing.T) {
	w := examplePolicyWorld(t)
	low := ruleFile("web", "ingress", "tcp", 22, 22, "cidrBlocks: [0.0.0.0/1]")
	high := ruleFile("web", "ingress", "tcp", 0, 1024, "cidrBlocks: [128.0.0.0/1]")
	w.put("rules/low.yaml", []byte(low))
	if s := sourceOf(w.reconcile(reconcile.Request{Keys: []string{"rules/low.yaml"}}), "rules/low.yaml"); s.Status != reconcile.StatusApplied {
		t.Fatalf("low: %s %q", s.Status, s.Diagnostics.Strings())
	}
	w.put("rules/high.yaml", []byte(high))
	s := sourceOf(w.reconcile(reconcile.Request{Keys: []string{"rules/high.yaml"}}), "rules/high.yaml")
	if want := "rules/high.yaml:8:18: r: violates policy NO-WORLD-SSH: SSH must not be open to the internet; use the VPN range or SSM Session Manager (ingress tcp 0-1024 from 128.0.0.0/1; with ingress tcp 22 from 0.0.0.0/1 it covers the internet (0.0.0.0/0))"; s.Status != reconcile.StatusInvalid || !strings.Contains(strings.Join(s.Diagnostics.Strings(), "\n"), want) {
		t.Fatalf("high: %s %q\nwant %s", s.Status, s.Diagnostics.Strings(), want)
	}
	if got := strings.Join(w.rules(), "\n"); strings.Contains(got, "128.0.0.0/1") {
		t.Fatalf("the second half reached EC2:\n%s", got)
	}

	// A sweep with both files new: neither applies. (A compliant file
	// keeps the web group in the sweep's scope.)
	w.put("rules/https.yaml", []byte(ruleFile("web", "ingress", "tcp", 443, 443, "cidrBlocks: [0.0.0.0/0]")))
	w.remove("rules/low.yaml")
	w.reconcile(reconcile.Request{All: true})
	w.put("rules/low.yaml", []byte(low))
	res := w.reconcile(reconcile.Request{All: true})
	// Judged in key order, each with what the others still declare:
	// high.yaml is refused for low.yaml's half, and low.yaml then opens
	// nothing.
	if h, l := sourceOf(res, "rules/high.yaml"), sourceOf(res, "rules/low.yaml"); h.Status != reconcile.StatusInvalid || l.Status != reconcile.StatusApplied {
		t.Errorf("in one run: high %s %q, low %s %q", h.Status, h.Diagnostics.Strings(), l.Status, l.Diagnostics.Strings())
	}
	if got := strings.Join(w.rules(), "\n"); strings.Contains(got, "128.0.0.0/1") {
		t.Fatalf("the second half reached EC2:\n%s", got)
	}
	w.remove("rules/low.yaml")
	w.remove("rules/high.yaml")
	w.reconcile(reconcile.Request{All: true})

	// By hand, the two halves: the sweep reports both rules.
	web := w.groups["web"]
	if _, err := w.ec2.AuthorizeSecurityGroupIngress(context.Background(), &ec2.AuthorizeSecurityGroupIngressInput{GroupId: &web,
		IpPermissions: []ec2types.IpPermission{
			{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/1")}}},
			{IpProtocol: aws.String("-1"), Ipv6Ranges: []ec2types.Ipv6Range{{CidrIpv6: aws.String("2000::/3")}}},
			{IpProtocol: aws.String("-1"), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("128.0.0.0/1")}}},
		}}); err != nil {
		t.Fatal(err)
	}
	res = w.reconcile(reconcile.Request{All: true})
	var got []string
	for _, v := range res.Policy.Violations {
		if v.Rule.Key.GroupID == web {
			got = append(got, v.Rule.Key.Peer.Value+" "+clauseIDs(v.Clauses))
		}
	}
	if want := "128.0.0.0/1 no-world-ssh,internet-web-ports-only,no-broad-all-traffic|2000::/3 no-world-ssh,no-world-rdp,internet-web-ports-only,no-broad-all-traffic|0.0.0.0/1 no-world-ssh,internet-web-ports-only"; strings.Join(got, "|") != want {
		t.Errorf("sweep violations:\n%s\nwant\n%s", strings.Join(got, "|"), want)
	}
}

func clauseIDs(cs []reconcile.PolicyClause) string {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	return strings.Join(ids, ",")
}

// A peer group in another account whose tags a clause needs: the engine
// reads the groups of its own account only, so the check cannot be
// decided and the file is refused naming the group (fail closed).
func TestPolicyPeerInAnotherAccountRefused(t *testing.T) {
	w := examplePolicyWorld(t)
	// moto finds the group whatever account a reference names: a group of
	// the home account stands for the other account's.
	file := ruleFile("database", "ingress", "tcp", 5432, 5432, `sourceSecurityGroups: [{groupId: `+w.groups["app"]+`, account: "111122223333"}]`)
	w.put("rules/peer.yaml", []byte(file))
	before := w.rules()
	s := sourceOf(w.reconcile(reconcile.Request{Keys: []string{"rules/peer.yaml"}}), "rules/peer.yaml")
	want := "rules/peer.yaml:8:28: r: cannot decide policy NO-DEV-TO-DATABASES: needs the tags of group 111122223333/" + w.groups["app"] + "; a check that cannot be decided refuses the file"
	if s.Status != reconcile.StatusInvalid || strings.Join(s.Diagnostics.Strings(), "\n") != want {
		t.Fatalf("%s %q\nwant %s", s.Status, s.Diagnostics.Strings(), want)
	}
	if got := w.rules(); len(without(got, before))+len(without(before, got)) > 0 {
		t.Fatal("EC2 changed")
	}
}
