package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/sgrules/sgrules/internal/ec2sg"
	"github.com/sgrules/sgrules/internal/render"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
)

func TestMain(m *testing.M) { motoserver.Main(m) }

// cliWorld is a moto account with a VPC and a ledger table, and the
// environment the commands read (endpoint, credentials, table).
type cliWorld struct {
	t   *testing.T
	cfg aws.Config
	ec2 *ec2.Client
	vpc string
	dir string
	url string
}

func newCLIWorld(t *testing.T) *cliWorld {
	t.Helper()
	srv := motoserver.Shared(t)
	srv.Reset(t)
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	for _, k := range []string{"SGRULES_BUCKET", "RULES_BUCKET", "RULES_PREFIX", "MAX_REVOKE", "NO_COLOR"} {
		t.Setenv(k, "")
	}
	t.Setenv("STATE_TABLE", "ledger")
	w := &cliWorld{t: t, cfg: srv.Config(t), dir: t.TempDir(), url: srv.URL}
	w.ec2 = ec2.NewFromConfig(w.cfg)
	w.vpc = motoserver.CreateVPC(t, w.cfg)
	motoserver.CreateTable(t, w.cfg, "ledger")
	return w
}

func (w *cliWorld) group(name string) string {
	return motoserver.CreateGroup(w.t, w.cfg, w.vpc, name+"-sg", map[string]string{"Name": name})
}

func (w *cliWorld) write(name, body string) {
	w.t.Helper()
	if err := os.WriteFile(filepath.Join(w.dir, name), []byte(body), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

func (w *cliWorld) authorize(group string, egress bool, perms ...ec2types.IpPermission) {
	w.t.Helper()
	ctx := context.Background()
	var err error
	if egress {
		_, err = w.ec2.AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: &group, IpPermissions: perms})
	} else {
		_, err = w.ec2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: &group, IpPermissions: perms})
	}
	if err != nil {
		w.t.Fatalf("authorize on %s: %v", group, err)
	}
}

// rules returns the rules of groups as sorted "key description" lines.
func (w *cliWorld) rules(groups ...string) []string {
	w.t.Helper()
	actual, err := ec2sg.New(w.ec2).DescribeRules(context.Background(), groups)
	if err != nil {
		w.t.Fatal(err)
	}
	var out []string
	for _, a := range actual {
		out = append(out, a.Key.String()+" "+a.Description)
	}
	sort.Strings(out)
	return out
}

// expect runs a command and checks its exit code and that stdout contains
// every want string.
func (w *cliWorld) expect(code int, want []string, args ...string) string {
	w.t.Helper()
	got, out, errs := runCmd(w.t, args...)
	if got != code {
		w.t.Fatalf("sgrules %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), got, code, out, errs)
	}
	for _, s := range want {
		if !strings.Contains(out, s) {
			w.t.Errorf("sgrules %s: stdout does not contain %q:\n%s", strings.Join(args, " "), s, out)
		}
	}
	return out
}

func ipPerm(proto string, from, to int32) ec2types.IpPermission {
	return ec2types.IpPermission{IpProtocol: aws.String(proto), FromPort: aws.Int32(from), ToPort: aws.Int32(to)}
}

// TestImportRoundTrip: import → apply → plan shows no change, for CIDR,
// IPv6, group, prefix-list, ICMP, numbered-protocol and all-traffic rules.
func TestImportRoundTrip(t *testing.T) {
	w := newCLIWorld(t)
	ctx := context.Background()
	web, db := w.group("web"), w.group("db")
	pl, err := w.ec2.CreateManagedPrefixList(ctx, &ec2.CreateManagedPrefixListInput{
		PrefixListName: aws.String("cdn"), AddressFamily: aws.String("IPv4"), MaxEntries: aws.Int32(5),
		Entries: []ec2types.AddPrefixListEntry{{Cidr: aws.String("198.51.100.0/24")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	plID := aws.ToString(pl.PrefixList.PrefixListId)

	https := ipPerm("tcp", 443, 443)
	https.IpRanges = []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0"), Description: aws.String("HTTPS")}}
	https.Ipv6Ranges = []ec2types.Ipv6Range{{CidrIpv6: aws.String("::/0"), Description: aws.String("HTTPS")}}
	ssh := ipPerm("tcp", 22, 22)
	ssh.IpRanges = []ec2types.IpRange{{CidrIp: aws.String("10.0.0.0/8"), Description: aws.String("ssh from the office")}, {CidrIp: aws.String("10.1.0.0/16")}}
	http := ipPerm("tcp", 80, 80)
	http.PrefixListIds = []ec2types.PrefixListId{{PrefixListId: aws.String(plID), Description: aws.String("CDN")}}
	ping := ipPerm("icmp", 8, -1)
	ping.IpRanges = []ec2types.IpRange{{CidrIp: aws.String("10.0.0.0/8")}}
	icmp6 := ipPerm("58", -1, -1)
	icmp6.Ipv6Ranges = []ec2types.Ipv6Range{{CidrIpv6: aws.String("2001:db8::/32")}}
	gre := ipPerm("47", -1, -1)
	gre.IpRanges = []ec2types.IpRange{{CidrIp: aws.String("192.168.0.0/16")}}
	w.authorize(web, false, https, ssh, http, ping, icmp6, gre)
	pg := ipPerm("tcp", 5432, 5432)
	pg.UserIdGroupPairs = []ec2types.UserIdGroupPair{{GroupId: aws.String(web), Description: aws.String("postgres from web")}}
	w.authorize(db, false, pg)
	toDB := ipPerm("tcp", 5432, 5432)
	toDB.UserIdGroupPairs = []ec2types.UserIdGroupPair{{GroupId: aws.String(db)}}
	w.authorize(web, true, toDB)
	all6 := ipPerm("-1", -1, -1)
	all6.Ipv6Ranges = []ec2types.Ipv6Range{{CidrIpv6: aws.String("::/0")}}
	w.authorize(db, true, all6)
	before := w.rules(web, db)

	out := w.expect(0, []string{"web-ingress-tcp-443:", "web-egress-all:", "db-egress-all:", "web-ingress-icmp-8:",
		"web-ingress-icmpv6:", "web-ingress-proto-47:", "web-ingress-tcp-80:", "db-ingress-tcp-5432:", "exclusiveGroups:"},
		"import", "--exclusive", web, db)
	w.write("imported.yaml", out)
	w.expect(0, nil, "validate", filepath.Join(w.dir, "imported.yaml"))

	// Before apply: only adoptions.
	code, js, errs := runCmd(t, "plan", "--output", "json", "--dir", w.dir)
	if code != 0 {
		t.Fatalf("plan: exit %d\n%s%s", code, js, errs)
	}
	var doc render.PlanDoc
	if err := json.Unmarshal([]byte(js), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Summary.Adopt != len(before) || len(doc.Actions) != len(before) {
		t.Errorf("plan before apply: %+v, want %d adoptions only", doc.Summary, len(before))
	}
	w.expect(0, []string{"Applied: 0 authorized, 0 updated, 0 revoked, " + itoa(len(before)) + " adopted."}, "apply", w.dir)
	w.expect(0, []string{"No changes"}, "plan", "--detailed-exitcode", w.dir)
	w.expect(0, []string{"No drift in 2 groups checked."}, "drift", w.dir)
	if after := w.rules(web, db); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("rules changed:\nbefore:\n%s\nafter:\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
	}
}

func TestPlanApplyDrift(t *testing.T) {
	w := newCLIWorld(t)
	web := w.group("web")
	w.write("web.yaml", `rules:
  https:
    securityGroup: {tags: {Name: web}}
    type: ingress
    protocol: tcp
    fromPort: 443
    toPort: 443
    cidrBlocks: [10.0.0.0/8]
    description: HTTPS inside
`)
	planText := w.expect(0, []string{web + " (web)", `+ ingress tcp 443 from 10.0.0.0/8 "HTTPS inside"`,
		"# declared by rules/web.yaml#https", "Plan: 1 to authorize, 0 to update, 0 to revoke, 0 to adopt. 1 unmanaged rule left alone."},
		"plan", "--dir", w.dir)
	if strings.Contains(planText, "\x1b[") {
		t.Error("colour written to a buffer")
	}
	w.expect(exitChanges, nil, "plan", "--detailed-exitcode", w.dir)
	// The flag works after the directory too, and with --endpoint-url.
	w.expect(exitChanges, nil, "plan", w.dir, "--detailed-exitcode", "--endpoint-url", w.url, "--region", "us-east-1")

	js := w.expect(0, nil, "plan", "--output", "json", w.dir)
	var doc render.PlanDoc
	if err := json.Unmarshal([]byte(js), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Actions) != 1 || doc.Actions[0].GroupName != "web" || doc.Actions[0].Action != "authorize" ||
		doc.Actions[0].Peer != "10.0.0.0/8" || doc.Actions[0].Owners[0] != "rules/web.yaml#https" {
		t.Errorf("plan json actions = %+v", doc.Actions)
	}

	w.expect(0, []string{"sgrules made these changes:", "Applied: 1 authorized"}, "apply", w.dir)
	w.expect(0, []string{"No changes"}, "plan", "--detailed-exitcode", w.dir)
	w.expect(0, []string{"No drift in 1 group checked."}, "drift", w.dir)

	// Drift: revoke the rule by hand.
	var ruleID string
	actual, err := ec2sg.New(w.ec2).DescribeRules(context.Background(), []string{web})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range actual {
		if a.Key.FromPort == 443 {
			ruleID = a.RuleID
		}
	}
	if _, err := w.ec2.RevokeSecurityGroupIngress(context.Background(), &ec2.RevokeSecurityGroupIngressInput{
		GroupId: &web, SecurityGroupRuleIds: []string{ruleID}}); err != nil {
		t.Fatal(err)
	}
	w.expect(exitDrift, []string{"before: missing", "after:  would be authorized again", "Drift: 1 rule changed outside sgrules in 1 group checked."}, "drift", w.dir)
	js = w.expect(exitDrift, nil, "drift", "--output", "json", w.dir)
	var ddoc render.DriftDoc
	if err := json.Unmarshal([]byte(js), &ddoc); err != nil {
		t.Fatal(err)
	}
	if len(ddoc.Drifted) != 1 || ddoc.Drifted[0].FromPort != 443 || ddoc.Reverted {
		t.Errorf("drift json = %+v", ddoc)
	}
	w.expect(0, []string{"Drift found and reverted:", "Reverted 1 of 1 drifted rule"}, "drift", "--revert", w.dir)
	w.expect(0, []string{"No drift"}, "drift", w.dir)

	// An invalid file: plan and apply exit 1, apply still applies the rest.
	w.write("bad.yaml", "rules:\n  x:\n    securityGroup: sg-nope\n")
	w.write("ssh.yaml", `rules:
  ssh:
    securityGroup: `+web+`
    type: ingress
    protocol: tcp
    fromPort: 22
    toPort: 22
    cidrBlocks: [10.1.0.0/16]
`)
	w.expect(1, []string{"Sources not applied", "rules/bad.yaml: invalid", "rules/bad.yaml:3:20: x: securityGroup", "1 source invalid."}, "plan", w.dir)
	w.expect(1, []string{"Applied: 1 authorized", "1 source invalid."}, "apply", w.dir)
	if got := strings.Join(w.rules(web), "\n"); !strings.Contains(got, "|22|22|cidr4:10.1.0.0/16") {
		t.Errorf("ssh rule not applied next to the invalid file:\n%s", got)
	}
	if err := os.Remove(filepath.Join(w.dir, "bad.yaml")); err != nil {
		t.Fatal(err)
	}

	// Blast-radius guard: removing a file that owns 2 rules with
	// --max-revoke 1 is held (exit 1) until --allow-mass-revoke.
	if err := os.Remove(filepath.Join(w.dir, "web.yaml")); err != nil {
		t.Fatal(err)
	}
	w.write("ssh.yaml", "rules: {}\n")
	w.expect(1, []string{"rules/ssh.yaml: held", "No changes. 1 unmanaged rule left alone. 2 sources held."}, "apply", "--max-revoke", "1", w.dir)
	w.expect(0, []string{"Applied: 0 authorized, 0 updated, 2 revoked"}, "apply", "--max-revoke", "1", "--allow-mass-revoke", w.dir)
}

func TestReconcileUsage(t *testing.T) {
	for _, k := range []string{"SGRULES_BUCKET", "RULES_BUCKET", "STATE_TABLE", "MAX_REVOKE"} {
		t.Setenv(k, "")
	}
	dir := t.TempDir()
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no source", []string{"plan", "--table", "t"}, 2, "no rule source"},
		{"no table", []string{"plan", dir}, 2, "no ledger"},
		{"both", []string{"apply", "--bucket", "b", "--dir", dir, "--table", "t"}, 2, "not both"},
		{"two dirs", []string{"drift", dir, dir, "--table", "t"}, 2, "at most one argument"},
		{"not a dir", []string{"plan", "--table", "t", "main.go"}, 2, "main.go is not a directory"},
		{"bad output", []string{"plan", "--output", "yaml", dir}, 2, "--output must be table or json"},
		{"apply has no detailed exit code", []string{"apply", "--detailed-exitcode", dir}, 2, "not defined"},
		{"import no ids", []string{"import"}, 2, "missing GROUP_ID"},
		{"import bad id", []string{"import", "web"}, 2, `"web" is not a security group id`},
		{"completion no shell", []string{"completion"}, 2, "want one shell"},
		{"completion bad shell", []string{"completion", "tcsh"}, 2, `unknown shell "tcsh"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCmd(t, tc.args...)
			if code != tc.code || !strings.Contains(errs, tc.stderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q\nstdout: %s", code, errs, tc.code, tc.stderr, out)
			}
		})
	}
	t.Run("bad MAX_REVOKE", func(t *testing.T) {
		t.Setenv("MAX_REVOKE", "many")
		if code, _, errs := runCmd(t, "plan", dir); code != 2 || !strings.Contains(errs, `MAX_REVOKE="many"`) {
			t.Errorf("exit %d, stderr %q", code, errs)
		}
	})
}

func TestHelpExamples(t *testing.T) {
	for _, name := range []string{"plan", "apply", "drift", "import", "completion"} {
		t.Run(name, func(t *testing.T) {
			code, out, _ := runCmd(t, name, "--help")
			if code != 0 || !strings.Contains(out, "Examples:\n  sgrules "+name) {
				t.Errorf("exit %d, help without examples:\n%s", code, out)
			}
		})
	}
}
