package policy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/sgrules/sgrules/pkg/rules"
)

const (
	schemaPath    = "../../schema/policy.schema.json"
	examplePolicy = "../../examples/policy/sgrules.yaml"
	examplesDir   = "../../examples"
)

// asJSONValue reads YAML (or JSON) as the JSON value an editor would check
// against the schema.
func asJSONValue(t *testing.T, data []byte) any {
	t.Helper()
	var y any
	if err := yaml.Unmarshal(data, &y); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(y)
	if err != nil {
		t.Fatal(err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func loadSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	s, err := jsonschema.NewCompiler().Compile(schemaPath)
	if err != nil {
		t.Fatalf("compile schema: %v", err)
	}
	return s
}

func TestSchemaExamples(t *testing.T) {
	s := loadSchema(t)
	for name, src := range map[string][]byte{
		"examples/policy/sgrules.yaml": readFile(t, examplePolicy),
		"issue example":                []byte(issueExample),
	} {
		if err := s.Validate(asJSONValue(t, src)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// The schema is not vacuous: policies it can judge and Parse refuses, it
// refuses too.
func TestSchemaRejects(t *testing.T) {
	s := loadSchema(t)
	for _, src := range []string{
		"deny: {id: x}\n",
		"deny:\n  - {type: ingress}\n",
		"deny:\n  - {id: x}\n",
		"deny:\n  - {id: 'a b', type: ingress}\n",
		"deny:\n  - {id: x, cidr: [0.0.0.0/0]}\n",
		"deny:\n  - {id: x, type: inbound}\n",
		"deny:\n  - {id: x, protocol: tcpp}\n",
		"deny:\n  - {id: x, ports: 70000}\n",
		"deny:\n  - {id: x, ports: ssh}\n",
		"deny:\n  - {id: x, ports: []}\n",
		"deny:\n  - {id: x, cidrs: 0.0.0.0/0}\n",
		"deny:\n  - {id: x, cidrs: [everywhere]}\n",
		"deny:\n  - {id: x, broaderThan: {ipv4: 33}}\n",
		"deny:\n  - {id: x, broaderThan: {}}\n",
		"deny:\n  - {id: x, groups: {tags: {}}}\n",
		"deny:\n  - {id: x, groups: {groupName: web}}\n",
		"deny:\n  - {id: x, cidrs: [0.0.0.0/0], peerGroups: sg-0123456789abcdef0}\n",
		"tenants:\n  - {prefix: team-a/}\n",
		"tenants:\n  - {prefix: team-a, groups: sg-0123456789abcdef0}\n",
		"tenants:\n  - {prefix: /team-a/, groups: sg-0123456789abcdef0}\n",
		"tenants:\n  - {prefix: a/, groups: sg-0123456789abcdef0, accounts: ['1234']}\n",
		"deny:\n  - {id: x, ports: 22, allowIfExpiresWithin: 8}\n",
		"tenants:\n  - {prefix: a/, groups: sg-0123456789abcdef0, maxDuration: 1w}\n",
		"enforce: block\n",
		"denies: []\n",
	} {
		if _, diags := Parse("p.yaml", []byte(src)); !diags.HasErrors() {
			t.Errorf("Parse accepts %q", src)
		}
		if err := s.Validate(asJSONValue(t, []byte(src))); err == nil {
			t.Errorf("schema accepts %q", src)
		}
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// exampleRuleFiles lists the example rule files the README and CI validate
// (examples/ and examples/exclusive/; the other subdirectories are not
// rule files, see examples/.sgrulesignore).
func exampleRuleFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, dir := range []string{examplesDir, filepath.Join(examplesDir, "exclusive")} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if !e.IsDir() && rules.IsRuleFile(e.Name()) {
				out = append(out, filepath.Join(dir, e.Name()))
			}
		}
	}
	if len(out) < 8 {
		t.Fatalf("only %d example rule files", len(out))
	}
	return out
}

// Every example rule file passes the example policy. Offline, only the
// rule on a group known by id alone cannot be decided.
func TestExamplesPassPolicy(t *testing.T) {
	p, diags := Parse("examples/policy/sgrules.yaml", readFile(t, examplePolicy))
	if p == nil || len(diags) != 0 {
		t.Fatalf("example policy: %s", strings.Join(diags.Strings(), "\n"))
	}
	if len(p.Deny) < 5 || len(p.Tenants) == 0 {
		t.Fatalf("the example policy lost its clauses: %+v", p)
	}
	var skipped []string
	for _, path := range exampleRuleFiles(t) {
		rel, _ := filepath.Rel(examplesDir, path)
		rel = filepath.ToSlash(rel)
		f, diags := rules.Parse(rel, readFile(t, path))
		if f == nil {
			t.Fatalf("%s: %s", path, strings.Join(diags.Strings(), "\n"))
		}
		src, facts := offlineSource(t, f, rel)
		res := p.Check(src, facts)
		for _, v := range res.Violations {
			t.Errorf("%s", v.String())
		}
		for _, s := range res.Skipped {
			skipped = append(skipped, s.String())
		}
	}
	want := "raw-group-id.yaml:10:18: existing-sg-rule: skipped policy NO-BROAD-RANGES: needs the tags of group sg-1234567890abcdef0"
	if got := strings.Join(skipped, "\n"); got != want {
		t.Errorf("skipped:\n%s\nwant:\n%s", got, want)
	}
}

// The example policy is not vacuous: a world-open SSH rule and a rule of
// the orders team on another group are refused.
func TestExamplePolicyRefuses(t *testing.T) {
	p, _ := Parse("sgrules.yaml", readFile(t, examplePolicy))
	f := mustFile(t, "exclusive/orders.yaml", `rules:
  ssh:
    securityGroup: {tags: {Name: orders-app}}
    type: ingress
    protocol: tcp
    fromPort: 0
    toPort: 65535
    cidrBlocks: [0.0.0.0/0]
  web:
    securityGroup: {tags: {Name: web}}
    type: ingress
    protocol: tcp
    fromPort: 443
    toPort: 443
    cidrBlocks: [10.0.0.0/8]
`)
	src, facts := offlineSource(t, f, f.Name)
	got := lines(p.Check(src, facts).Diagnostics())
	for _, want := range []string{
		"exclusive/orders.yaml:8:18: ssh: violates policy NO-WORLD-SSH: SSH must not be open to the internet",
		"exclusive/orders.yaml:8:18: ssh: violates policy NO-WORLD-RDP:",
		"exclusive/orders.yaml:8:18: ssh: violates policy INTERNET-WEB-PORTS-ONLY:",
		"exclusive/orders.yaml:8:18: ssh: violates policy NO-BROAD-RANGES:",
		"exclusive/orders.yaml:10:20: web: violates policy tenant exclusive/: securityGroup {tags: {Name: web}} is not a group of the tenant",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("violations do not contain %q:\n%s", want, got)
		}
	}
}
