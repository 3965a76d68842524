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
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/internal/report/render"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
	"github.com/sgrules/sgrules/pkg/rules"
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

// revokeByHand revokes the ingress rule of group with fromPort port.
func (w *cliWorld) revokeByHand(group string, port int32) {
	w.t.Helper()
	actual, err := ec2sg.New(w.ec2).DescribeRules(context.Background(), []string{group})
	if err != nil {
		w.t.Fatal(err)
	}
	var ids []string
	for _, a := range actual {
		if a.Key.Direction == rules.Ingress && a.Key.FromPort == port {
			ids = append(ids, a.RuleID)
		}
	}
	if len(ids) != 1 {
		w.t.Fatalf("%d ingress rules from port %d in %s", len(ids), port, group)
	}
	if _, err := w.ec2.RevokeSecurityGroupIngress(context.Background(), &ec2.RevokeSecurityGroupIngressInput{
		GroupId: &group, SecurityGroupRuleIds: ids}); err != nil {
		w.t.Fatal(err)
	}
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
	var doc report.PlanDoc
	if err := json.Unmarshal([]byte(js), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Summary.Adopt != len(before) || len(doc.Actions) != len(before) {
		t.Errorf("plan before apply: %+v, want %d adoptions only", doc.Summary, len(before))
	}
	// Importing hands the rules over: the file and every adoption say so.
	if !strings.Contains(out, "removing a rule (or this file) revokes it") {
		t.Errorf("imported file does not say that it hands the rules over:\n%s", out)
	}
	text := w.expect(0, nil, "plan", w.dir)
	if n := strings.Count(text, "# "+render.AdoptNote); n != len(before) {
		t.Errorf("plan has %d adoptions saying %q, want %d:\n%s", n, render.AdoptNote, len(before), text)
	}
	w.expect(0, []string{"Applied: 0 authorized, 0 updated, 0 revoked, " + itoa(len(before)) + " adopted."}, "apply", w.dir)
	w.expect(0, []string{"No changes"}, "plan", "--detailed-exitcode", w.dir)
	w.expect(0, []string{"No drift in 2 groups checked."}, "drift", w.dir)
	if after := w.rules(web, db); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("rules changed:\nbefore:\n%s\nafter:\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
	}
	// ... and removing the imported file revokes them all, the default
	// egress rules included, as the docs say.
	if err := os.Remove(filepath.Join(w.dir, "imported.yaml")); err != nil {
		t.Fatal(err)
	}
	w.write("empty.yaml", "rules: {}\n")
	// Every rule the files owned: the relative mass-revoke guard holds it.
	w.expect(exitFail, []string{"Rule files gone (1): rules/imported.yaml", "plan held"}, "plan", w.dir)
	w.expect(0, []string{"0 to authorize, 0 to update, " + itoa(len(before)) + " to revoke", "- egress all traffic to 0.0.0.0/0"}, "plan", "--allow-mass-revoke", w.dir)
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
	var doc report.PlanDoc
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
	// RULES_PREFIX is normalised as the functions normalise it: "rules" is
	// "rules/", so the file keeps its key rules/web.yaml.
	t.Setenv("RULES_PREFIX", "rules")
	for _, args := range [][]string{{"plan", "--output", "json", w.dir}, {"plan", "--output", "json", "--prefix", "rules", w.dir}} {
		var doc report.PlanDoc
		if err := json.Unmarshal([]byte(w.expect(0, nil, args...)), &doc); err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, s := range doc.Sources {
			keys = append(keys, s.Key)
		}
		if len(doc.Actions) != 0 || strings.Join(keys, " ") != "rules/web.yaml" {
			t.Errorf("%v with RULES_PREFIX=rules: sources %v, actions %+v; want rules/web.yaml and no change", args, keys, doc.Actions)
		}
	}
	t.Setenv("RULES_PREFIX", "")

	// Drift: revoke the rule by hand.
	w.revokeByHand(web, 443)
	w.expect(exitDrift, []string{"before: missing", "after:  would be authorized again", "Drift: 1 rule changed outside sgrules in 1 group checked."}, "drift", w.dir)
	js = w.expect(exitDrift, nil, "drift", "--output", "json", w.dir)
	var ddoc report.DriftDoc
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
	// drift agrees: an invalid file is exit 1, whether or not drift was
	// found (an error outranks drift, as with plan --detailed-exitcode).
	w.expect(1, []string{"No drift", "rules/bad.yaml: invalid"}, "drift", w.dir)
	w.expect(1, []string{"rules/bad.yaml: invalid"}, "drift", "--revert", w.dir)
	w.revokeByHand(web, 22)
	w.expect(1, []string{"rules/bad.yaml: invalid", "Drift: 1 rule changed outside sgrules"}, "drift", w.dir)
	w.expect(1, []string{"Reverted 1 of 1 drifted rule"}, "drift", "--revert", w.dir)
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
		{"bad output", []string{"plan", "--output", "yaml", dir}, 2, "--output must be table, json or markdown"},
		{"bad output apply", []string{"apply", "--output", "markdown", dir}, 2, "--output must be table or json"},
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
	// The environment means what it means to the Lambda functions
	// (internal/config): MAX_REVOKE=0 is refused, not the default.
	for v, want := range map[string]string{"many": `MAX_REVOKE "many": not an integer`, "0": `MAX_REVOKE "0": must not be 0`} {
		t.Run("MAX_REVOKE="+v, func(t *testing.T) {
			t.Setenv("MAX_REVOKE", v)
			if code, _, errs := runCmd(t, "plan", "--table", "t", dir); code != 2 || !strings.Contains(errs, want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errs, want)
			}
		})
	}
	t.Run("--max-revoke 0", func(t *testing.T) {
		if code, _, errs := runCmd(t, "apply", "--table", "t", "--max-revoke", "0", dir); code != 2 || !strings.Contains(errs, "--max-revoke 0: must not be 0") {
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

// Without its ledger table a command says which table is missing where and
// how to create it; "sgrules init" creates it (idempotently) and refuses a
// table with other keys.
func TestInitLedgerTable(t *testing.T) {
	w := newCLIWorld(t)
	w.group("web")
	w.write("web.yaml", "rules: {}\n")
	t.Setenv("STATE_TABLE", "fresh")
	for _, cmd := range []string{"plan", "apply", "drift"} {
		code, _, errs := runCmd(t, cmd, w.dir)
		for _, want := range []string{`ledger table "fresh" not found in region us-east-1 at ` + w.url, "sgrules init --table fresh"} {
			if code != 1 || !strings.Contains(errs, want) {
				t.Errorf("%s without a table: exit %d, stderr %q; want 1 and %q", cmd, code, errs, want)
			}
		}
	}
	w.expect(0, []string{"Ledger table fresh is active in region us-east-1"}, "init", "--table", "fresh")
	w.expect(0, []string{"No changes"}, "plan", w.dir)
	w.expect(0, []string{"Ledger table fresh is active"}, "init") // STATE_TABLE, again
	ddb := dynamodb.NewFromConfig(w.cfg)
	td, err := ddb.DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String("fresh")})
	if err != nil {
		t.Fatal(err)
	}
	if len(td.Table.KeySchema) != 2 || td.Table.BillingModeSummary == nil || td.Table.BillingModeSummary.BillingMode != ddbtypes.BillingModePayPerRequest {
		t.Errorf("table = keys %+v, billing %+v", td.Table.KeySchema, td.Table.BillingModeSummary)
	}

	if _, err := ddb.CreateTable(context.Background(), &dynamodb.CreateTableInput{
		TableName:            aws.String("wrong"),
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: ddbtypes.KeyTypeHash}},
		BillingMode:          ddbtypes.BillingModePayPerRequest,
	}); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := runCmd(t, "init", "--table", "wrong"); code != 1 || !strings.Contains(errs, "table wrong exists but is not a ledger table: its key is id (S, HASH)") {
		t.Errorf("init on a table with other keys: exit %d, stderr %q", code, errs)
	}
	if code, _, errs := runCmd(t, "init", "--table", ""); code != 2 || !strings.Contains(errs, "no table") {
		t.Errorf("init without a table: exit %d, stderr %q", code, errs)
	}
}

// A rule whose ports are changed by hand (ModifySecurityGroupRules) is one
// drifted rule, shown in the words of a rule file, not two changes with an
// internal key.
func TestDriftModifiedRule(t *testing.T) {
	w := newCLIWorld(t)
	web := w.group("web")
	w.write("web.yaml", `rules:
  admin:
    securityGroup: `+web+`
    type: ingress
    protocol: tcp
    fromPort: 9443
    toPort: 9443
    cidrBlocks: [10.0.0.0/16]
`)
	w.expect(0, []string{"Applied: 1 authorized"}, "apply", w.dir)
	actual, err := ec2sg.New(w.ec2).DescribeRules(context.Background(), []string{web})
	if err != nil {
		t.Fatal(err)
	}
	var id string
	for _, a := range actual {
		if a.Key.FromPort == 9443 {
			id = a.RuleID
		}
	}
	if _, err := w.ec2.ModifySecurityGroupRules(context.Background(), &ec2.ModifySecurityGroupRulesInput{GroupId: &web,
		SecurityGroupRules: []ec2types.SecurityGroupRuleUpdate{{SecurityGroupRuleId: &id, SecurityGroupRule: &ec2types.SecurityGroupRuleRequest{
			IpProtocol: aws.String("tcp"), FromPort: aws.Int32(8443), ToPort: aws.Int32(8443), CidrIpv4: aws.String("10.0.0.0/16")}}}}); err != nil {
		t.Fatal(err)
	}
	out := w.expect(exitDrift, []string{"~ ingress tcp 9443 from 10.0.0.0/16", "before: modified to ingress tcp 8443 from 10.0.0.0/16",
		"# drift: rule modified outside sgrules (ports 9443 -> 8443)", "Drift: 1 rule changed outside sgrules in 1 group checked."}, "drift", w.dir)
	if strings.Contains(out, "|ingress|") {
		t.Errorf("drift shows an internal key:\n%s", out)
	}
	js := w.expect(exitDrift, nil, "drift", "--output", "json", w.dir)
	var doc report.DriftDoc
	if err := json.Unmarshal([]byte(js), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Drifted) != 1 || doc.Drifted[0].FromPort != 9443 || doc.Drifted[0].Replaces == nil || doc.Drifted[0].Replaces.FromPort != 8443 {
		t.Errorf("drift json drifted = %+v", doc.Drifted)
	}
	w.expect(0, []string{"Reverted 1 of 1 drifted rule"}, "drift", "--revert", w.dir)
	w.expect(0, []string{"No drift"}, "drift", w.dir)
}

// TestValidatePolicyOnline: clauses that need group tags are skipped
// offline and decided with --online, against moto.
func TestValidatePolicyOnline(t *testing.T) {
	w := newCLIWorld(t)
	web := motoserver.CreateGroup(t, w.cfg, w.vpc, "web-sg", map[string]string{"Name": "web", "tier": "web", "team": "a"})
	db := motoserver.CreateGroup(t, w.cfg, w.vpc, "db-sg", map[string]string{"Name": "db", "tier": "db", "team": "b"})
	w.write("policy.yaml", testPolicy+`  - prefix: ids/
    groups: `+web+`
`)
	if err := os.MkdirAll(filepath.Join(w.dir, "team-a"), 0o755); err != nil {
		t.Fatal(err)
	}
	w.write("team-a/web.yaml", ruleText("{tags: {Name: web}}", "0.0.0.0/0", 443))
	w.write("team-a/db.yaml", ruleText("{tags: {Name: db}}", "0.0.0.0/0", 5432))
	policyPath := filepath.Join(w.dir, "policy.yaml")
	webFile := filepath.Join(w.dir, "team-a/web.yaml")
	dbFile := filepath.Join(w.dir, "team-a/db.yaml")

	// Offline: nothing decided about the groups, nothing fails.
	w.expect(0, []string{
		webFile + ":3:20: r: skipped policy tenant team-a/: needs the tags of group {tags: {Name: web}}",
		dbFile + ":8:18: r: skipped policy DB-NOT-FROM-WORLD: needs the tags of group {tags: {Name: db}}",
		"2 files checked, 0 invalid: 0 errors, 1 warning, 0 policy violations, 4 checks skipped",
	}, "validate", "--policy", policyPath, w.dir)

	// Online: the db group is tagged tier=db and team=b.
	out := w.expect(1, []string{
		dbFile + ":3:20: r: violates policy tenant team-a/: securityGroup {tags: {Name: db}} (" + db + ") is not a group of the tenant ({tags: {team: a}})",
		dbFile + ":8:18: r: violates policy DB-NOT-FROM-WORLD: ingress tcp 5432 from 0.0.0.0/0",
		"2 files checked, 1 invalid: 0 errors, 1 warning, 2 policy violations, 0 checks skipped\n",
	}, "validate", "--policy", policyPath, "--online", w.dir)
	if strings.Contains(out, webFile) {
		t.Errorf("the compliant file is reported:\n%s", out)
	}

	// A reference that matches no group is an error online, as for plan;
	// a group known by id only is decided online.
	if err := os.MkdirAll(filepath.Join(w.dir, "ids"), 0o755); err != nil {
		t.Fatal(err)
	}
	w.write("ids/web.yaml", ruleText(web, "10.0.0.0/8", 443))
	w.write("ids/db.yaml", ruleText(db, "10.0.0.0/8", 443))
	w.write("team-a/db.yaml", ruleText("{tags: {Name: nothing}}", "10.0.0.0/8", 443))
	w.expect(1, []string{
		dbFile + ":3:20: r: securityGroup {tags: {Name: nothing}}: no security group matches",
		filepath.Join(w.dir, "ids/db.yaml") + ":3:20: r: violates policy tenant ids/: securityGroup " + db + " is not a group of the tenant (" + web + ")",
		"4 files checked, 2 invalid: 1 error, 0 warnings, 1 policy violation, 0 checks skipped\n",
	}, "validate", "--policy", policyPath, "--online", w.dir)
}

// TestValidatePolicyOnlineAccount: a tenant's accounts, for a file naming
// no account, need the account: offline the check is skipped; --online
// decides it with the caller's account (the hub's, where such a file
// applies).
func TestValidatePolicyOnlineAccount(t *testing.T) {
	w := newCLIWorld(t)
	motoserver.CreateGroup(t, w.cfg, w.vpc, "web-sg", map[string]string{"Name": "web", "team": "a"})
	w.write("policy.yaml", "tenants:\n  - prefix: team-a/\n    groups: {tags: {team: a}}\n    accounts: [\"999999999999\"]\n")
	if err := os.MkdirAll(filepath.Join(w.dir, "team-a"), 0o755); err != nil {
		t.Fatal(err)
	}
	w.write("team-a/web.yaml", ruleText("{tags: {Name: web}}", "10.0.0.0/8", 443))
	policyPath := filepath.Join(w.dir, "policy.yaml")
	webFile := filepath.Join(w.dir, "team-a/web.yaml")
	w.expect(0, []string{webFile + ":1:1: skipped policy tenant team-a/: needs the account the file applies to"},
		"validate", "--policy", policyPath, w.dir)
	w.expect(1, []string{webFile + ":1:1: violates policy tenant team-a/: account 123456789012 is not an account of the tenant (999999999999)",
		"1 file checked, 1 invalid"}, "validate", "--policy", policyPath, "--online", w.dir)
}
