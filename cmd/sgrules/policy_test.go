package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testPolicy = `deny:
  - id: no-world-ssh
    message: SSH must not be open to the internet
    type: ingress
    ports: 22
    cidrs: [0.0.0.0/0, "::/0"]
  - id: db-not-from-world
    groups: {tags: {tier: db}}
    broaderThan: {ipv4: 8}
tenants:
  - prefix: team-a/
    groups: {tags: {team: a}}
`

func ruleText(group, cidr string, port int) string {
	return "rules:\n  r:\n    securityGroup: " + group + "\n    type: ingress\n    protocol: tcp\n    fromPort: " + itoa(port) +
		"\n    toPort: " + itoa(port) + "\n    cidrBlocks: [" + cidr + "]\n"
}

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestValidatePolicy: offline policy checks, one case per outcome.
func TestValidatePolicy(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		args  []string // after "validate --policy DIR/policy.yaml"; paths relative to DIR
		code  int
		want  []string
		not   []string
	}{
		{name: "compliant", files: map[string]string{"web.yaml": ruleText("{tags: {Name: web}}", "10.0.0.0/8", 22)},
			args: []string{"."}, code: 0,
			want: []string{"1 file checked, 0 invalid: 0 errors, 0 warnings, 0 policy violations, 0 checks skipped\n"}},
		{name: "skipped", files: map[string]string{"web.yaml": ruleText("{tags: {Name: web}}", "0.0.0.0/0", 443)},
			args: []string{"."}, code: 0,
			want: []string{"1 file checked, 0 invalid: 0 errors, 0 warnings, 0 policy violations, 1 check skipped (skipped checks need group facts from AWS: add --online)",
				"web.yaml:8:18: r: skipped policy DB-NOT-FROM-WORLD: needs the tags of group {tags: {Name: web}}"}},
		{name: "world ssh", files: map[string]string{"web.yaml": ruleText("{tags: {Name: web}}", "0.0.0.0/0", 22)},
			args: []string{"."}, code: 1,
			want: []string{"web.yaml:8:18: r: violates policy NO-WORLD-SSH: SSH must not be open to the internet (ingress tcp 22 from 0.0.0.0/0)",
				"1 file checked, 1 invalid: 0 errors, 1 warning, 1 policy violation, 1 check skipped"}},
		{name: "decided offline by the reference's tags", files: map[string]string{"db.yaml": ruleText("{tags: {tier: db}}", "0.0.0.0/0", 5432)},
			args: []string{"."}, code: 1,
			want: []string{"db.yaml:8:18: r: violates policy DB-NOT-FROM-WORLD: ingress tcp 5432 from 0.0.0.0/0"}},
		{name: "tenant: another team's group", files: map[string]string{"team-a/web.yaml": ruleText("{tags: {team: b}}", "10.0.0.0/8", 443)},
			args: []string{"."}, code: 1,
			want: []string{"team-a/web.yaml:3:20: r: violates policy tenant team-a/: securityGroup {tags: {team: b}} is not a group of the tenant ({tags: {team: a}})"}},
		{name: "tenant: own group", files: map[string]string{"team-a/web.yaml": ruleText("{tags: {team: a}}", "10.0.0.0/8", 443)},
			args: []string{"."}, code: 0, not: []string{"violates"}},
		{name: "tenant prefix is relative to the directory given", files: map[string]string{"rules/team-a/web.yaml": ruleText("{tags: {team: b}}", "10.0.0.0/8", 443)},
			args: []string{"rules"}, code: 1, want: []string{"violates policy tenant team-a/"}},
		{name: "tenant accounts: the file's literal account decides offline", files: map[string]string{
			"policy.yaml":        "tenants:\n  - prefix: team-a/\n    groups: {tags: {team: a}}\n    accounts: [\"111122223333\"]\n",
			"team-a/other.yaml":  "account: \"444455556666\"\n" + ruleText("{tags: {team: a}}", "10.0.0.0/8", 443),
			"team-a/listed.yaml": "account: \"111122223333\"\n" + ruleText("{tags: {team: a}}", "10.0.0.0/8", 443),
			"team-a/home.yaml":   ruleText("{tags: {team: a}}", "10.0.0.0/8", 443),
		}, args: []string{"."}, code: 1,
			want: []string{"team-a/other.yaml:1:10: violates policy tenant team-a/: account 444455556666 is not an account of the tenant (111122223333)",
				"team-a/home.yaml:1:1: skipped policy tenant team-a/: needs the account the file applies to",
				"3 files checked, 1 invalid: 0 errors, 0 warnings, 1 policy violation, 1 check skipped"},
			not: []string{"listed.yaml"}},
		{name: "the policy file in the tree is not a rule file", files: map[string]string{"web.yaml": ruleText("{tags: {Name: web}}", "10.0.0.0/8", 443)},
			args: []string{"."}, code: 0, want: []string{"1 file checked"}},
		{name: "a broken policy fails", files: map[string]string{"policy.yaml": "deny:\n  - id: x\n    port: 22\n", "web.yaml": ruleText("{tags: {Name: web}}", "10.0.0.0/8", 443)},
			args: []string{"web.yaml"}, code: 1, want: []string{`policy.yaml:3:5: x: unknown field "port" (did you mean "ports"?)`}},
		{name: "an invalid rule file is reported, not checked", files: map[string]string{"bad.yaml": "rules:\n  x:\n    securityGroup: sg-nope\n"},
			args: []string{"bad.yaml"}, code: 1, want: []string{"bad.yaml:3:20: x: securityGroup"}, not: []string{"policy NO-"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := tc.files["policy.yaml"]; !ok {
				tc.files["policy.yaml"] = testPolicy
			}
			dir := writeTree(t, tc.files)
			t.Chdir(dir)
			code, out, errs := runCmd(t, append([]string{"validate", "--policy", "policy.yaml"}, tc.args...)...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\n%s%s", code, tc.code, out, errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(out, n) {
					t.Errorf("output has %q:\n%s", n, out)
				}
			}
		})
	}
}

func TestValidatePolicyOutputs(t *testing.T) {
	dir := writeTree(t, map[string]string{"policy.yaml": testPolicy, "web.yaml": ruleText("{tags: {Name: web}}", "0.0.0.0/0", 22)})
	t.Chdir(dir)
	code, out, _ := runCmd(t, "validate", "--output", "json", "--policy", "policy.yaml", "web.yaml")
	if code != 1 {
		t.Errorf("exit %d", code)
	}
	var ds []map[string]any
	if err := json.Unmarshal([]byte(out), &ds); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	bySeverity := map[string]map[string]any{}
	for _, d := range ds {
		bySeverity[d["severity"].(string)] = d
	}
	if v := bySeverity["error"]; v == nil || v["policy"] != "no-world-ssh" || v["field"] != "cidrBlocks[0]" || v["line"] != 8.0 ||
		!strings.HasPrefix(v["message"].(string), "violates policy NO-WORLD-SSH: ") {
		t.Errorf("violation = %v", v)
	}
	if s := bySeverity["notice"]; s == nil || s["policy"] != "db-not-from-world" || !strings.HasPrefix(s["message"].(string), "skipped policy DB-NOT-FROM-WORLD") {
		t.Errorf("skipped = %v", s)
	}
	if w := bySeverity["warning"]; w == nil || w["policy"] != "" {
		t.Errorf("warning = %v", w)
	}

	code, out, _ = runCmd(t, "validate", "--output", "github", "--policy", "policy.yaml", "web.yaml")
	if code != 1 {
		t.Errorf("exit %d", code)
	}
	for _, want := range []string{
		"::error file=web.yaml,line=8,col=18,title=r::violates policy NO-WORLD-SSH: SSH must not be open to the internet (ingress tcp 22 from 0.0.0.0/0)\n",
		"::notice file=web.yaml,line=8,col=18,title=r::skipped policy DB-NOT-FROM-WORLD: needs the tags of group {tags: {Name: web}}\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("github output lacks %q:\n%s", want, out)
		}
	}
}

// The example policy: every example passes it.
func TestValidateExamplesPolicy(t *testing.T) {
	code, out, errs := runCmd(t, "validate", "--policy", "../../examples/policy/sgrules.yaml", "../../examples/")
	if code != 0 || errs != "" || !strings.Contains(out, "0 invalid: 0 errors, 0 warnings, 0 policy violations") {
		t.Errorf("exit %d\n%s%s", code, out, errs)
	}
}
