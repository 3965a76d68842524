package reconcile_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/adapters/policyload"
	"github.com/sgrules/sgrules/internal/adapters/s3source"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
)

const policyKey = "policy/sgrules.yaml"

// policyWorld is a world whose engine reads the policy at policyKey in the
// rules bucket, with groups tagged for the clauses.
func policyWorld(t *testing.T) *world {
	t.Helper()
	w := newWorld(t)
	vpc := motoserver.CreateVPC(t, w.cfg)
	for name, tags := range map[string]map[string]string{
		"team-a-web": {"Name": "team-a-web", "team": "a", "tier": "web"},
		"team-a-db":  {"Name": "team-a-db", "team": "a", "tier": "db"},
		"team-b-db":  {"Name": "team-b-db", "team": "b", "tier": "db"},
		"migrations": {"Name": "migrations", "team": "a", "tier": "web", "role": "migrations"},
	} {
		w.groups[name] = motoserver.CreateGroup(t, w.cfg, vpc, name+"-sg", tags)
	}
	eng, err := reconcile.New(reconcile.Config{
		Source:   s3source.New(w.s3, w.bucket, "rules/"),
		Groups:   ec2sg.New(w.ec2),
		Ledger:   ddbledger.New(dynamodb.NewFromConfig(w.cfg), "ledger"),
		LedgerID: "ledger",
		Policy:   policyload.New(s3source.New(w.s3, w.bucket, ""), policyKey, "rules/"),
	})
	if err != nil {
		t.Fatal(err)
	}
	w.eng = eng
	return w
}

func ruleFile(group, dir, proto string, from, to int, peer string) string {
	return fmt.Sprintf("rules:\n  r:\n    securityGroup: {tags: {Name: %s}}\n    type: %s\n    protocol: %s\n    fromPort: %d\n    toPort: %d\n    %s\n",
		group, dir, proto, from, to, peer)
}

func sourceOf(res reconcile.Result, key string) reconcile.SourceResult {
	for _, s := range res.Sources {
		if s.Key == key {
			return s
		}
	}
	return reconcile.SourceResult{}
}

// Every clause field reaches the engine with the groups' EC2 tags: each
// case is one clause, a file it refuses (at the rule's field) and one it
// lets through.
func TestPolicyClausesAtApplyTime(t *testing.T) {
	w := policyWorld(t)
	world := "cidrBlocks: [0.0.0.0/0]"
	tests := []struct {
		name, clause string
		bad, good    string
		at           string // FILE:LINE:COL of the violation
	}{
		{"type", "type: egress\n    cidrs: [0.0.0.0/0]",
			ruleFile("team-a-web", "egress", "tcp", 443, 443, world), ruleFile("team-a-web", "ingress", "tcp", 443, 443, world), "8:18"},
		{"protocol", "protocol: udp",
			ruleFile("team-a-web", "ingress", "udp", 53, 53, "cidrBlocks: [10.0.0.0/8]"), ruleFile("team-a-web", "ingress", "tcp", 53, 53, "cidrBlocks: [10.0.0.0/8]"), "8:18"},
		{"ports overlap", "ports: \"3300-3400\"",
			ruleFile("team-a-web", "ingress", "tcp", 3389, 3390, "cidrBlocks: [10.0.0.0/8]"), ruleFile("team-a-web", "ingress", "tcp", 3401, 3401, "cidrBlocks: [10.0.0.0/8]"), "8:18"},
		{"cidrs contain", "cidrs: [10.0.0.0/8]",
			ruleFile("team-a-web", "ingress", "tcp", 443, 443, world), ruleFile("team-a-web", "ingress", "tcp", 443, 443, "cidrBlocks: [10.1.0.0/16]"), "8:18"},
		{"broaderThan", "broaderThan: {ipv4: 16}",
			ruleFile("team-a-web", "ingress", "tcp", 443, 443, "cidrBlocks: [10.0.0.0/12]"), ruleFile("team-a-web", "ingress", "tcp", 443, 443, "cidrBlocks: [10.0.0.0/16]"), "8:18"},
		{"groups by EC2 tags", "groups: {tags: {tier: db}}\n    cidrs: [0.0.0.0/0]",
			ruleFile("team-a-db", "ingress", "tcp", 5432, 5432, world), ruleFile("team-a-web", "ingress", "tcp", 5432, 5432, world), "8:18"},
		{"peerGroups by EC2 tags", "groups: {tags: {tier: db}}\n    peerGroups: {tags: {tier: web}}",
			ruleFile("team-a-db", "ingress", "tcp", 5432, 5432, "sourceSecurityGroups: [{tags: {Name: team-a-web}}]"),
			ruleFile("team-a-db", "ingress", "tcp", 5432, 5432, "sourceSecurityGroups: [{tags: {Name: team-b-db}}]"), "8:28"},
		{"exempt", "peerGroups: {tags: {tier: web}}\n    exempt: [{tags: {role: migrations}}]",
			ruleFile("team-a-db", "ingress", "tcp", 5432, 5432, "sourceSecurityGroups: [{tags: {Name: team-a-web}}]"),
			ruleFile("migrations", "ingress", "tcp", 5432, 5432, "sourceSecurityGroups: [{tags: {Name: team-a-web}}]"), "8:28"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w.put(policyKey, []byte("deny:\n  - id: c\n    message: refused\n    "+tc.clause+"\n"))
			bad, good := fmt.Sprintf("rules/bad-%d.yaml", i), fmt.Sprintf("rules/good-%d.yaml", i)
			w.put(bad, []byte(tc.bad))
			w.put(good, []byte(tc.good))
			res := w.reconcile(reconcile.Request{Keys: []string{bad, good}})
			b := sourceOf(res, bad)
			if b.Status != reconcile.StatusInvalid || !strings.Contains(strings.Join(b.Diagnostics.Strings(), "\n"), bad+":"+tc.at+": r: violates policy C: refused") {
				t.Errorf("bad: %s %q", b.Status, b.Diagnostics.Strings())
			}
			if g := sourceOf(res, good); g.Status != reconcile.StatusApplied {
				t.Errorf("good: %s %q", g.Status, g.Diagnostics.Strings())
			}
			w.remove(bad)
			w.remove(good)
			w.reconcile(reconcile.Request{Keys: []string{bad, good}})
		})
	}
}

// A file under team-a/ naming a group tagged team: b is invalid at its
// securityGroup; a broken policy applies nothing; fixing it resumes; a
// policy change invalidates an applied file, which keeps its rules.
func TestPolicyTenantsBrokenPolicyAndChange(t *testing.T) {
	w := policyWorld(t)
	w.put(policyKey, []byte("tenants:\n  - prefix: team-a/\n    groups: {tags: {team: a}}\n"))
	w.put("rules/team-a/own.yaml", []byte(ruleFile("team-a-db", "ingress", "tcp", 5432, 5432, "sourceSecurityGroups: [{tags: {Name: team-b-db}}]")))
	w.put("rules/team-a/other.yaml", []byte(ruleFile("team-b-db", "ingress", "tcp", 5432, 5432, "cidrBlocks: [10.0.0.0/8]")))
	res := w.reconcile(reconcile.Request{All: true})
	if s := sourceOf(res, "rules/team-a/own.yaml"); s.Status != reconcile.StatusApplied {
		t.Fatalf("own: %s %q", s.Status, s.Diagnostics.Strings())
	}
	other := sourceOf(res, "rules/team-a/other.yaml")
	want := "rules/team-a/other.yaml:3:20: r: violates policy tenant team-a/: securityGroup {tags: {Name: team-b-db}} (" + w.groups["team-b-db"] + ") is not a group of the tenant ({tags: {team: a}})"
	if other.Status != reconcile.StatusInvalid || len(other.Diagnostics) != 1 || other.Diagnostics[0].String() != want {
		t.Fatalf("other: %s %q\nwant %s", other.Status, other.Diagnostics.Strings(), want)
	}
	if got := strings.Join(w.rules(), "\n"); strings.Contains(got, "cidr4:10.0.0.0/8") {
		t.Fatalf("the tenant's violation reached EC2:\n%s", got)
	}
	applied := w.rules()

	// A broken policy: nothing applied, every file keeps what it has.
	w.put(policyKey, []byte("tenants:\n  - prefix: team-a\n"))
	w.put("rules/team-a/new.yaml", []byte(ruleFile("team-a-web", "ingress", "tcp", 443, 443, "cidrBlocks: [10.0.0.0/8]")))
	w.remove("rules/team-a/own.yaml")
	res = w.reconcile(reconcile.Request{All: true})
	if res.Policy.Invalid == nil || !strings.Contains(res.Policy.Invalid.Error(), policyKey+":2:5") {
		t.Fatalf("policy: %+v", res.Policy)
	}
	for _, s := range res.Sources {
		if s.Status != reconcile.StatusHeld && s.Status != reconcile.StatusInvalid {
			t.Errorf("%s: %s with a broken policy", s.Key, s.Status)
		}
	}
	if got := w.rules(); strings.Join(got, "\n") != strings.Join(applied, "\n") {
		t.Fatalf("a broken policy changed EC2:\n%s", diffLines(got, applied))
	}

	// Fixed: the run resumes (new.yaml applied, own.yaml's rule revoked).
	w.put(policyKey, []byte("tenants:\n  - prefix: team-a/\n    groups: {tags: {team: a}}\n"))
	res = w.reconcile(reconcile.Request{All: true})
	if s := sourceOf(res, "rules/team-a/new.yaml"); s.Status != reconcile.StatusApplied {
		t.Fatalf("new: %s %q", s.Status, s.Diagnostics.Strings())
	}
	if got := strings.Join(w.rules(), "\n"); strings.Contains(got, "|5432|5432|sg:") || !strings.Contains(got, "|443|443|cidr4:10.0.0.0/8") {
		t.Fatalf("not resumed:\n%s", got)
	}

	// A policy change: new.yaml now violates; it keeps its rule, marked
	// invalid, and the rule is reported as a managed violation.
	before := w.rules()
	w.put(policyKey, []byte("deny:\n  - id: no-https\n    type: ingress\n    ports: 443\n"))
	res = w.reconcile(reconcile.Request{All: true})
	s := sourceOf(res, "rules/team-a/new.yaml")
	if s.Status != reconcile.StatusInvalid || !strings.Contains(strings.Join(s.Diagnostics.Strings(), ""), "rules/team-a/new.yaml:8:18: r: violates policy NO-HTTPS") {
		t.Fatalf("new after the change: %s %q", s.Status, s.Diagnostics.Strings())
	}
	// (other.yaml, no longer restricted by a tenant, is applied now.)
	if lost := without(before, w.rules()); len(lost) > 0 {
		t.Fatalf("the invalidated file lost its rules: %q", lost)
	}
	if v := res.Policy.Violations; len(v) != 1 || !v[0].Managed || v[0].Revoke {
		t.Fatalf("violations: %+v", v)
	}

	// No policy object: no policy.
	w.remove(policyKey)
	res = w.reconcile(reconcile.Request{All: true})
	if s := sourceOf(res, "rules/team-a/new.yaml"); s.Status != reconcile.StatusApplied || res.Policy.Name != "" {
		t.Fatalf("without a policy: %s %+v", s.Status, res.Policy)
	}
}

// The sweep revokes a world-open SSH rule added by hand (enforce: revoke)
// and keeps a compliant unmanaged rule.
func TestPolicyRevokesHandMadeWorldSSH(t *testing.T) {
	w := policyWorld(t)
	w.put(policyKey, []byte("deny:\n  - id: no-world-ssh\n    type: ingress\n    protocol: tcp\n    ports: 22\n    cidrs: [0.0.0.0/0, \"::/0\"]\nenforce: revoke\n"))
	w.put("rules/web.yaml", []byte(ruleFile("team-a-web", "ingress", "tcp", 443, 443, "cidrBlocks: [0.0.0.0/0]")))
	w.reconcile(reconcile.Request{All: true})
	web := w.groups["team-a-web"]
	if _, err := w.ec2.AuthorizeSecurityGroupIngress(context.Background(), &ec2.AuthorizeSecurityGroupIngressInput{GroupId: &web,
		IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22),
			IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}, {CidrIp: aws.String("192.0.2.0/24")}}}}}); err != nil {
		t.Fatal(err)
	}
	report := w.reconcile(reconcile.Request{All: true, DryRun: true})
	if len(report.Policy.Violations) != 1 || report.Policy.Revoked() != 1 {
		t.Fatalf("dry run: %+v", report.Policy)
	}
	res := w.reconcile(reconcile.Request{All: true})
	got := strings.Join(w.rules(), "\n")
	if strings.Contains(got, "|22|22|cidr4:0.0.0.0/0") || !strings.Contains(got, "|22|22|cidr4:192.0.2.0/24") || !strings.Contains(got, "|443|443|") {
		t.Fatalf("want only the world-open SSH rule revoked:\n%s", got)
	}
	if !res.Executed || res.Policy.Revoked() != 1 || res.Drift.Unmanaged != 2 { // the office SSH rule and the default egress
		t.Fatalf("result: %+v, unmanaged %d", res.Policy, res.Drift.Unmanaged)
	}
}

// revokeByHand revokes a group's ingress rules matching the port, as an
// incident responder would in the console.
func (w *world) revokeByHand(group string, port int32) {
	w.t.Helper()
	ctx := context.Background()
	out, err := w.ec2.DescribeSecurityGroupRules(ctx, &ec2.DescribeSecurityGroupRulesInput{
		Filters: []ec2types.Filter{{Name: aws.String("group-id"), Values: []string{group}}}})
	if err != nil {
		w.t.Fatal(err)
	}
	var ids []string
	for _, r := range out.SecurityGroupRules {
		if !aws.ToBool(r.IsEgress) && aws.ToInt32(r.FromPort) == port {
			ids = append(ids, aws.ToString(r.SecurityGroupRuleId))
		}
	}
	if len(ids) == 0 {
		w.t.Fatalf("no ingress rule on port %d in %s", port, group)
	}
	if _, err := w.ec2.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: &group, SecurityGroupRuleIds: ids}); err != nil {
		w.t.Fatal(err)
	}
}

// refusedText renders the refusals of a run, one per line.
func refusedText(res reconcile.Result) string {
	var out []string
	for _, r := range res.Policy.Refused {
		out = append(out, r.String())
	}
	return strings.Join(out, "\n")
}

// A rule applied from a file, then denied by a new policy, then revoked
// by a person: the sweep does not write it again (admission refuses the
// restore and reports it), whatever the policy's enforce.
func TestAdmissionRefusesDeniedRestore(t *testing.T) {
	for _, enforce := range []string{"report", "revoke"} {
		t.Run(enforce, func(t *testing.T) {
			w := policyWorld(t)
			web := w.groups["team-a-web"]
			w.put("rules/ssh.yaml", []byte(ruleFile("team-a-web", "ingress", "tcp", 22, 22, "cidrBlocks: [0.0.0.0/0]")))
			w.reconcile(reconcile.Request{All: true})
			if got := strings.Join(w.rules(), "\n"); !strings.Contains(got, web+"|ingress|tcp|22|22|cidr4:0.0.0.0/0") {
				t.Fatalf("not applied:\n%s", got)
			}
			w.put(policyKey, []byte("deny:\n  - id: no-world-ssh\n    type: ingress\n    ports: 22\n    cidrs: [0.0.0.0/0]\nenforce: "+enforce+"\n"))
			res := w.reconcile(reconcile.Request{All: true})
			if s := sourceOf(res, "rules/ssh.yaml"); s.Status != reconcile.StatusInvalid || len(res.Policy.Violations) != 1 || !res.Policy.Violations[0].Managed {
				t.Fatalf("after the policy: %s %+v", s.Status, res.Policy)
			}
			w.revokeByHand(web, 22)
			for run := 0; run < 2; run++ {
				res = w.reconcile(reconcile.Request{All: true})
				if got := strings.Join(w.rules(), "\n"); strings.Contains(got, "|22|22|cidr4:0.0.0.0/0") {
					t.Fatalf("run %d: the sweep wrote the denied rule again (reverted %d):\n%s", run, res.Drift.Reverted, got)
				}
				want := "refused: authorize " + web + "|ingress|tcp|22|22|cidr4:0.0.0.0/0 (drift-deleted) for rules/ssh.yaml rule r: violates policy NO-WORLD-SSH: ingress tcp 22 from 0.0.0.0/0"
				if got := refusedText(res); got != want {
					t.Errorf("run %d: refused\n%s\nwant\n%s", run, got, want)
				}
				if s := sourceOf(res, "rules/ssh.yaml"); s.Status != reconcile.StatusInvalid {
					t.Errorf("run %d: ssh.yaml %s", run, s.Status)
				}
			}
		})
	}
}

// A group handed from team a to team b: team a's rule, revoked by team b,
// is not written back into team b's group by the sweep.
func TestAdmissionRefusesRestoreIntoAnotherTenantsGroup(t *testing.T) {
	w := policyWorld(t)
	web := w.groups["team-a-web"]
	w.put(policyKey, []byte("tenants:\n  - prefix: team-a/\n    groups: {tags: {team: a}}\n  - prefix: team-b/\n    groups: {tags: {team: b}}\n"))
	w.put("rules/team-a/web.yaml", []byte(ruleFile("team-a-web", "ingress", "tcp", 8080, 8080, "cidrBlocks: [10.0.0.0/8]")))
	if s := sourceOf(w.reconcile(reconcile.Request{All: true}), "rules/team-a/web.yaml"); s.Status != reconcile.StatusApplied {
		t.Fatalf("team-a/web.yaml: %s %q", s.Status, s.Diagnostics.Strings())
	}
	if _, err := w.ec2.CreateTags(context.Background(), &ec2.CreateTagsInput{Resources: []string{web},
		Tags: []ec2types.Tag{{Key: aws.String("team"), Value: aws.String("b")}}}); err != nil {
		t.Fatal(err)
	}
	w.revokeByHand(web, 8080)
	for run := 0; run < 2; run++ {
		res := w.reconcile(reconcile.Request{All: true})
		if got := strings.Join(w.rules(), "\n"); strings.Contains(got, web+"|ingress|tcp|8080|8080|") {
			t.Fatalf("run %d: team a's rule written back into team b's group (reverted %d):\n%s", run, res.Drift.Reverted, got)
		}
		if s := sourceOf(res, "rules/team-a/web.yaml"); s.Status != reconcile.StatusInvalid {
			t.Errorf("run %d: team-a/web.yaml %s %q", run, s.Status, s.Diagnostics.Strings())
		}
		want := "refused: authorize " + web + "|ingress|tcp|8080|8080|cidr4:10.0.0.0/8 (drift-deleted) for rules/team-a/web.yaml rule r: violates policy tenant team-a/: group " + web + " is not a group of the tenant ({tags: {team: a}})"
		if got := refusedText(res); got != want {
			t.Errorf("run %d: refused\n%s\nwant\n%s", run, got, want)
		}
	}
}

// With an invalid policy nothing is written, a restore neither: the
// policy it would pass is not known. Fixed, the restore is admitted.
func TestAdmissionRefusesEveryWriteWithAnInvalidPolicy(t *testing.T) {
	w := policyWorld(t)
	web := w.groups["team-a-web"]
	w.put(policyKey, []byte("deny:\n  - id: no-world-ssh\n    ports: 22\n    cidrs: [0.0.0.0/0]\n"))
	w.put("rules/web.yaml", []byte(ruleFile("team-a-web", "ingress", "tcp", 443, 443, "cidrBlocks: [10.0.0.0/8]")))
	w.reconcile(reconcile.Request{All: true})
	w.put(policyKey, []byte("deny:\n  - id: no-world-ssh\n    port: 22\n"))
	w.revokeByHand(web, 443)
	res := w.reconcile(reconcile.Request{All: true})
	if got := strings.Join(w.rules(), "\n"); strings.Contains(got, "|443|443|") {
		t.Fatalf("restored under an invalid policy:\n%s", got)
	}
	if len(res.Policy.Refused) != 1 || res.Policy.Refused[0].Policy != "" || !strings.Contains(res.Policy.Refused[0].Reason, "policy "+policyKey+" is invalid") {
		t.Fatalf("refused: %s", refusedText(res))
	}
	w.put(policyKey, []byte("deny:\n  - id: no-world-ssh\n    ports: 22\n    cidrs: [0.0.0.0/0]\n"))
	res = w.reconcile(reconcile.Request{All: true})
	if got := strings.Join(w.rules(), "\n"); !strings.Contains(got, web+"|ingress|tcp|443|443|cidr4:10.0.0.0/8") || len(res.Policy.Refused) != 0 {
		t.Fatalf("not restored with the policy fixed (refused %q):\n%s", refusedText(res), got)
	}
}

// A managed rule the policy now denies, modified by hand into another
// permission: putting it back in place is a write the policy refuses;
// the modified rule, which nothing declares, is revoked as the drift it is
// (as when the rule had been revoked and another one authorized).
func TestAdmissionRefusesPuttingBackAModifiedRule(t *testing.T) {
	w := policyWorld(t)
	web := w.groups["team-a-web"]
	w.put("rules/ssh.yaml", []byte(ruleFile("team-a-web", "ingress", "tcp", 22, 22, "cidrBlocks: [0.0.0.0/0]")))
	w.reconcile(reconcile.Request{All: true})
	w.put(policyKey, []byte("deny:\n  - id: no-world-ssh\n    type: ingress\n    ports: 22\n    cidrs: [0.0.0.0/0]\n"))
	w.reconcile(reconcile.Request{All: true})
	out, err := w.ec2.DescribeSecurityGroupRules(context.Background(), &ec2.DescribeSecurityGroupRulesInput{
		Filters: []ec2types.Filter{{Name: aws.String("group-id"), Values: []string{web}}}})
	if err != nil {
		t.Fatal(err)
	}
	var id string
	for _, r := range out.SecurityGroupRules {
		if !aws.ToBool(r.IsEgress) && aws.ToInt32(r.FromPort) == 22 {
			id = aws.ToString(r.SecurityGroupRuleId)
		}
	}
	if _, err := w.ec2.ModifySecurityGroupRules(context.Background(), &ec2.ModifySecurityGroupRulesInput{GroupId: &web,
		SecurityGroupRules: []ec2types.SecurityGroupRuleUpdate{{SecurityGroupRuleId: &id, SecurityGroupRule: &ec2types.SecurityGroupRuleRequest{
			IpProtocol: aws.String("tcp"), FromPort: aws.Int32(2222), ToPort: aws.Int32(2222), CidrIpv4: aws.String("0.0.0.0/0")}}}}); err != nil {
		t.Fatal(err)
	}
	res := w.reconcile(reconcile.Request{All: true})
	got := strings.Join(w.rules(), "\n")
	if strings.Contains(got, web+"|ingress|tcp|22|22|") || strings.Contains(got, web+"|ingress|tcp|2222|2222|") {
		t.Fatalf("want neither the denied rule put back nor the modified one kept:\n%s", got)
	}
	want := "refused: modify " + web + "|ingress|tcp|22|22|cidr4:0.0.0.0/0 (drift-modified) for rules/ssh.yaml rule r: violates policy NO-WORLD-SSH: ingress tcp 22 from 0.0.0.0/0"
	if got := refusedText(res); got != want {
		t.Errorf("refused\n%s\nwant\n%s", got, want)
	}
	// The next sweep: the record's rule is gone; its restore is refused.
	res = w.reconcile(reconcile.Request{All: true})
	if got := refusedText(res); !strings.Contains(got, "refused: authorize "+web+"|ingress|tcp|22|22|cidr4:0.0.0.0/0 (drift-deleted)") {
		t.Errorf("next sweep refused:\n%s", got)
	}
	if got := strings.Join(w.rules(), "\n"); strings.Contains(got, web+"|ingress|tcp|22|22|") {
		t.Fatalf("next sweep wrote the denied rule:\n%s", got)
	}
}
