// Package template holds the tests of the SAM template (template.yaml at
// the module root) and of the target account template
// (template-target.yaml): the functions are built the way the Makefile and
// the code expect, every environment variable the code reads is set, and
// IAM grants no wildcard actions. multiaccount_test.go checks how the two
// templates fit together.
package template

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/config"
)

const root = "../../.."

// load parses a CloudFormation YAML template into plain values. Short-form
// intrinsic functions become their long form: !Ref X is {"Ref": X},
// !GetAtt A.B is {"Fn::GetAtt": [A, B]}, any other !Name v is
// {"Fn::Name": v}.
func load(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := parse(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return tpl
}

func parse(b []byte) (map[string]any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, fmt.Errorf("not one YAML document")
	}
	v, err := convert(doc.Content[0])
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("template is a %T, not a mapping", v)
	}
	return m, nil
}

func convert(n *yaml.Node) (any, error) {
	var v any
	switch n.Kind {
	case yaml.AliasNode:
		return convert(n.Alias)
	case yaml.ScalarNode:
		v = n.Value
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			cv, err := convert(c)
			if err != nil {
				return nil, err
			}
			s = append(s, cv)
		}
		v = s
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			cv, err := convert(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[n.Content[i].Value] = cv
		}
		v = m
	default:
		return nil, fmt.Errorf("line %d: unexpected YAML node kind %v", n.Line, n.Kind)
	}
	if !strings.HasPrefix(n.Tag, "!") || strings.HasPrefix(n.Tag, "!!") {
		return v, nil
	}
	switch fn := strings.TrimPrefix(n.Tag, "!"); fn {
	case "Ref", "Condition":
		return map[string]any{fn: v}, nil
	case "GetAtt":
		if s, ok := v.(string); ok {
			res, attr, ok := strings.Cut(s, ".")
			if !ok {
				return nil, fmt.Errorf("line %d: !GetAtt %q is not RESOURCE.ATTRIBUTE", n.Line, s)
			}
			v = []any{res, attr}
		}
		return map[string]any{"Fn::GetAtt": v}, nil
	default:
		return map[string]any{"Fn::" + fn: v}, nil
	}
}

func mapAt(v any, path ...string) map[string]any {
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	m, _ := v.(map[string]any)
	return m
}

// functions returns the serverless functions by logical id.
func functions(tpl map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range mapAt(tpl, "Resources") {
		if mapAt(r)["Type"] == "AWS::Serverless::Function" {
			out[id] = mapAt(r)
		}
	}
	return out
}

func TestFunctionsAreBuiltAsProvidedAL2023Bootstraps(t *testing.T) {
	tpl := load(t, filepath.Join(root, "template.yaml"))
	if tpl["Transform"] != "AWS::Serverless-2016-10-31" {
		t.Errorf("Transform = %v", tpl["Transform"])
	}
	fns := functions(tpl)
	if len(fns) == 0 {
		t.Fatal("no AWS::Serverless::Function in the template")
	}
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for id, fn := range fns {
		props := mapAt(fn, "Properties")
		for key, want := range map[string]any{
			"Handler":       "bootstrap",
			"Runtime":       "provided.al2023",
			"Architectures": []any{"arm64"},
			"CodeUri":       ".",
		} {
			if got := props[key]; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s: %s = %v, want %v", id, key, got, want)
			}
		}
		if got := mapAt(fn, "Metadata")["BuildMethod"]; got != "makefile" {
			t.Errorf("%s: Metadata.BuildMethod = %v, want makefile", id, got)
		}
		if !strings.Contains(string(makefile), "\nbuild-"+id+":") {
			t.Errorf("Makefile has no build-%s target (sam build runs it)", id)
		}
	}
}

// envReads returns the environment variables read with os.Getenv or
// os.LookupEnv by the non-test Go files of dir. A call whose argument is not
// a string literal is an error: the test could not see what it reads.
func envReads(t *testing.T, dir string) []string {
	t.Helper()
	// A moved package would otherwise be read as one that reads nothing.
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("envReads: %v", err)
	}
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var vars []string
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		osName := ""
		for _, imp := range f.Imports {
			if imp.Path.Value == `"os"` {
				osName = "os"
				if imp.Name != nil {
					osName = imp.Name.Name
				}
			}
		}
		if osName == "" {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "Getenv" && sel.Sel.Name != "LookupEnv") {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); !ok || id.Name != osName || len(call.Args) != 1 {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				t.Errorf("%s: os.%s with a non-literal name: the template test cannot check it", fset.Position(call.Pos()), sel.Sel.Name)
				return true
			}
			name, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(vars, name) {
				vars = append(vars, name)
			}
			return true
		})
	}
	slices.Sort(vars)
	return vars
}

// logicalID names the template function of functions/<dir>.
func logicalID(dir string) string {
	return strings.ToUpper(dir[:1]) + dir[1:] + "Function"
}

// configUses reports whether the non-test Go files of dir refer to
// config.<name> (internal/config), the reader of a function's environment.
func configUses(t *testing.T, dir, name string) bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		local := ""
		for _, imp := range f.Imports {
			if imp.Path.Value == `"github.com/sgrules/sgrules/internal/config"` {
				local = "config"
				if imp.Name != nil {
					local = imp.Name.Name
				}
			}
		}
		if local == "" {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == local && sel.Sel.Name == name {
					found = true
				}
			}
			return true
		})
	}
	return found
}

// Every variable a function reads is set in its template.yaml
// environment: what internal/config reads for it (config.Functions, whose
// Vars are exactly what Load reads, as the config tests check), and any
// os.Getenv left in its main package or in internal/lambda/handler and
// internal/config.
func TestEnvironmentCoversWhatTheCodeReads(t *testing.T) {
	tpl := load(t, filepath.Join(root, "template.yaml"))
	fns := functions(tpl)
	shared := append(envReads(t, filepath.Join(root, "internal", "lambda", "handler")), envReads(t, filepath.Join(root, "internal", "config"))...)
	dirs, err := os.ReadDir(filepath.Join(root, "functions"))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		id := logicalID(d.Name())
		fn, ok := fns[id]
		if !ok {
			t.Errorf("functions/%s has no %s in template.yaml", d.Name(), id)
			continue
		}
		i := slices.IndexFunc(config.Functions, func(f config.Function) bool { return f.Name == d.Name() })
		if i < 0 {
			t.Errorf("functions/%s has no reader in config.Functions", d.Name())
			continue
		}
		reader := strings.ToUpper(d.Name()[:1]) + d.Name()[1:]
		if !configUses(t, filepath.Join(root, "functions", d.Name()), reader) {
			t.Errorf("functions/%s does not read its environment with config.%s", d.Name(), reader)
		}
		reads := append(envReads(t, filepath.Join(root, "functions", d.Name())), shared...)
		reads = append(reads, config.Functions[i].Vars...)
		if len(reads) == 0 {
			t.Errorf("functions/%s reads no environment variable: this test checks nothing", d.Name())
		}
		env := mapAt(fn, "Properties", "Environment", "Variables")
		for _, v := range reads {
			if _, ok := env[v]; !ok {
				t.Errorf("%s: the code reads %s but the template does not set it", id, v)
			}
		}
		t.Logf("%s reads %v", id, reads)
		checked++
	}
	if checked == 0 {
		t.Error("no function checked")
	}
}

func TestEnvReadsFindsCalls(t *testing.T) {
	dir := t.TempDir()
	src := `package x

import sys "os"

const name = "FROM_CONST"

func f() {
	_ = sys.Getenv("A")
	_, _ = sys.LookupEnv("B")
	_ = sys.Getenv("A")
}
`
	if err := os.WriteFile(filepath.Join(dir, "x.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "x_test.go"), []byte("package x\nimport \"os\"\nvar _ = os.Getenv(\"TEST_ONLY\")\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := envReads(t, dir); !slices.Equal(got, []string{"A", "B"}) {
		t.Errorf("envReads = %v, want [A B]", got)
	}
}

// policyProblems walks the whole template and checks every IAM statement
// (role, managed and inline policies, bucket policies, SAM Policies, and
// policy documents given as Fn::Sub JSON strings). It returns the problems
// and the number of Allow statements it checked.
func policyProblems(tpl map[string]any) (problems []string, allows int) {
	var walk func(path string, v any)
	checkDoc := func(path string, doc map[string]any) {
		stmts, ok := doc["Statement"].([]any)
		if !ok {
			stmts = []any{doc["Statement"]}
		}
		for i, s := range stmts {
			st, _ := s.(map[string]any)
			if st["Effect"] != "Allow" {
				continue
			}
			allows++
			where := fmt.Sprintf("%s.Statement[%d]", path, i)
			if _, ok := st["NotAction"]; ok {
				problems = append(problems, where+": Allow with NotAction")
			}
			if _, ok := st["NotResource"]; ok {
				problems = append(problems, where+": Allow with NotResource")
			}
			actions := strings1(st["Action"])
			resources := strings1(st["Resource"])
			for _, a := range actions {
				svc, op, _ := strings.Cut(a, ":")
				if a == "*" || op == "*" {
					problems = append(problems, fmt.Sprintf("%s: wildcard action %q", where, a))
				}
				if (svc == "s3" || svc == "dynamodb") && slices.Contains(resources, "*") {
					problems = append(problems, fmt.Sprintf("%s: %s on Resource \"*\"", where, a))
				}
			}
		}
	}
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if _, ok := v["Statement"]; ok {
				checkDoc(path, v)
			}
			if sub, ok := v["Fn::Sub"]; ok {
				s, _ := sub.(string)
				if l, ok := sub.([]any); ok && len(l) > 0 {
					s, _ = l[0].(string)
				}
				var doc map[string]any
				if strings.Contains(s, "Statement") {
					if err := json.Unmarshal([]byte(s), &doc); err != nil {
						problems = append(problems, fmt.Sprintf("%s: policy document string is not JSON: %v", path, err))
					} else {
						checkDoc(path+"(Fn::Sub)", doc)
					}
				}
			}
			for k, c := range v {
				walk(path+"."+k, c)
			}
		case []any:
			for i, c := range v {
				walk(fmt.Sprintf("%s[%d]", path, i), c)
			}
		}
	}
	walk("", tpl)
	slices.Sort(problems)
	return problems, allows
}

// strings1 returns a string or a list of strings as a list; intrinsic
// functions (maps) are rendered so "*" can only match a literal.
func strings1(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			out = append(out, strings1(e)...)
		}
		return out
	case nil:
		return nil
	}
	return []string{fmt.Sprint(v)}
}

func TestPoliciesGrantNoWildcards(t *testing.T) {
	// The hub: both roles' statements, the shared policy, both variants of
	// the security group policy, AssumeRole and the bus policy. The target:
	// its trust, describe and both variants of the same security group
	// policy, the forwarding role. Far more than these.
	for file, least := range map[string]int{"template.yaml": 12, "template-target.yaml": 9} {
		tpl := load(t, filepath.Join(root, file))
		problems, allows := policyProblems(tpl)
		for _, p := range problems {
			t.Errorf("%s: %s", file, p)
		}
		t.Logf("%s: %d Allow statements checked", file, allows)
		if allows < least {
			t.Errorf("%s: only %d Allow statements checked: is the walk still finding the policies?", file, allows)
		}
	}
}

func TestPolicyProblemsFindsWildcards(t *testing.T) {
	tpl, err := parse([]byte(`
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      Policies:
        - PolicyDocument:
            Statement:
              - {Effect: Allow, Action: "*", Resource: !GetAtt Table.Arn}
              - {Effect: Allow, Action: [ec2:DescribeSecurityGroups, "ec2:*"], Resource: "*"}
              - {Effect: Allow, Action: dynamodb:GetItem, Resource: "*"}
              - {Effect: Allow, Action: s3:GetObject, Resource: ["*"]}
              - {Effect: Allow, NotAction: iam:*, Resource: !Sub "arn:${AWS::Partition}:s3:::b"}
              - {Effect: Deny, Action: "s3:*", Resource: "*"}
              - {Effect: Allow, Action: ec2:DescribeSecurityGroups, Resource: "*"}
  Other:
    Properties:
      Doc: !Sub '{"Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "arn:${AWS::Partition}:sqs:q"}]}'
`))
	if err != nil {
		t.Fatal(err)
	}
	problems, allows := policyProblems(tpl)
	want := []string{
		`.Resources.Other.Properties.Doc(Fn::Sub).Statement[0]: wildcard action "sqs:*"`,
		`.Resources.Role.Properties.Policies[0].PolicyDocument.Statement[0]: wildcard action "*"`,
		`.Resources.Role.Properties.Policies[0].PolicyDocument.Statement[1]: wildcard action "ec2:*"`,
		`.Resources.Role.Properties.Policies[0].PolicyDocument.Statement[2]: dynamodb:GetItem on Resource "*"`,
		`.Resources.Role.Properties.Policies[0].PolicyDocument.Statement[3]: s3:GetObject on Resource "*"`,
		`.Resources.Role.Properties.Policies[0].PolicyDocument.Statement[4]: Allow with NotAction`,
	}
	if !slices.Equal(problems, want) {
		t.Errorf("problems =\n%s\nwant\n%s", strings.Join(problems, "\n"), strings.Join(want, "\n"))
	}
	if allows != 7 {
		t.Errorf("checked %d Allow statements, want 7", allows)
	}
}

func TestShortFormIntrinsics(t *testing.T) {
	tpl, err := parse([]byte(`
A: !Ref Bucket
B: !GetAtt Table.Arn
C: !Sub "${AWS::StackName}-x"
D: !If [Cond, !Ref X, !Ref AWS::NoValue]
E: &anchor {k: v}
F: *anchor
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"A": map[string]any{"Ref": "Bucket"},
		"B": map[string]any{"Fn::GetAtt": []any{"Table", "Arn"}},
		"C": map[string]any{"Fn::Sub": "${AWS::StackName}-x"},
		"D": map[string]any{"Fn::If": []any{"Cond", map[string]any{"Ref": "X"}, map[string]any{"Ref": "AWS::NoValue"}}},
		"E": map[string]any{"k": "v"},
		"F": map[string]any{"k": "v"},
	}
	if fmt.Sprint(tpl) != fmt.Sprint(want) {
		t.Errorf("parse =\n%v\nwant\n%v", tpl, want)
	}
}

func TestServiceTokenIsExported(t *testing.T) {
	tpl := load(t, filepath.Join(root, "template.yaml"))
	out := mapAt(tpl, "Outputs", "ServiceToken")
	if fmt.Sprint(out["Value"]) != fmt.Sprint(map[string]any{"Fn::GetAtt": []any{"ReconcileFunction", "Arn"}}) {
		t.Errorf("ServiceToken value = %v", out["Value"])
	}
	if got := mapAt(out, "Export")["Name"]; fmt.Sprint(got) != fmt.Sprint(map[string]any{"Fn::Sub": "${AWS::StackName}-ServiceToken"}) {
		t.Errorf("ServiceToken export = %v", got)
	}
}

// The ledger table of the template is the one ddbledger.CreateTable (and so
// "sgrules init") creates: same keys, billing, encryption, TTL attribute
// and point-in-time recovery.
func TestLedgerTableMatchesCreateTable(t *testing.T) {
	tpl := load(t, filepath.Join(root, "template.yaml"))
	var tables []map[string]any
	for _, r := range mapAt(tpl, "Resources") {
		if mapAt(r)["Type"] == "AWS::DynamoDB::Table" {
			tables = append(tables, mapAt(r, "Properties"))
		}
	}
	if len(tables) != 1 {
		t.Fatalf("%d DynamoDB tables in the template, want 1", len(tables))
	}
	props := tables[0]
	in := ddbledger.TableInput("x")
	var attrs, keys []any
	for _, a := range in.AttributeDefinitions {
		attrs = append(attrs, map[string]any{"AttributeName": *a.AttributeName, "AttributeType": string(a.AttributeType)})
	}
	for _, k := range in.KeySchema {
		keys = append(keys, map[string]any{"AttributeName": *k.AttributeName, "KeyType": string(k.KeyType)})
	}
	for field, want := range map[string]any{
		"AttributeDefinitions": attrs,
		"KeySchema":            keys,
		"BillingMode":          string(in.BillingMode),
		// SSEEnabled true is KMS with the AWS managed key.
		"SSESpecification":                 map[string]any{"SSEEnabled": fmt.Sprint(*in.SSESpecification.Enabled && in.SSESpecification.SSEType == "KMS")},
		"TimeToLiveSpecification":          map[string]any{"AttributeName": ddbledger.TTLAttribute, "Enabled": "true"},
		"PointInTimeRecoverySpecification": map[string]any{"PointInTimeRecoveryEnabled": "true"},
	} {
		if got := props[field]; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("template %s = %v, ddbledger.CreateTable makes %v", field, got, want)
		}
	}
	for field := range props {
		switch field {
		case "AttributeDefinitions", "KeySchema", "BillingMode", "SSESpecification", "TimeToLiveSpecification", "PointInTimeRecoverySpecification":
		default:
			t.Errorf("template table sets %s, which ddbledger.CreateTable does not", field)
		}
	}
}

// The guardrail policy: its key is read by both functions, its uploads
// trigger the reconcile function, and the bucket policy denies writes
// under policy/ to everyone but the policy writers and the deploy role.
func TestPolicyKeyIsProtectedAndWatched(t *testing.T) {
	tpl := load(t, filepath.Join(root, "template.yaml"))
	fns := functions(tpl)
	for _, id := range []string{"ReconcileFunction", "DriftFunction"} {
		if v := mapAt(fns[id], "Properties", "Environment", "Variables")["POLICY_KEY"]; fmt.Sprint(v) != fmt.Sprint(map[string]any{"Ref": "PolicyKey"}) {
			t.Errorf("%s POLICY_KEY = %v", id, v)
		}
	}
	ev := mapAt(fns["ReconcileFunction"], "Properties", "Events", "PolicyFile", "Properties")
	if !strings.Contains(fmt.Sprint(ev["Filter"]), "map[Ref:PolicyKey]") || fmt.Sprint(ev["Events"]) != "[s3:ObjectCreated:* s3:ObjectRemoved:*]" {
		t.Errorf("PolicyFile event = %v", ev)
	}
	read := fmt.Sprint(mapAt(tpl, "Resources", "SgrulesAccessPolicy", "Properties", "PolicyDocument"))
	if !strings.Contains(read, "/${PolicyKey}") {
		t.Errorf("the functions may not read the policy: %s", read)
	}
	var deny map[string]any
	for _, st := range mapAt(tpl, "Resources", "RulesBucketPolicy", "Properties", "PolicyDocument")["Statement"].([]any) {
		if mapAt(st)["Sid"] == "OnlyPolicyWritersWritePolicy" {
			deny = mapAt(st)
		}
	}
	if deny == nil || deny["Effect"] != "Deny" || !strings.Contains(fmt.Sprint(deny["Action"]), "s3:PutObject") ||
		!strings.Contains(fmt.Sprint(deny["Resource"]), "/policy/*") {
		t.Fatalf("no deny of writes under policy/: %v", deny)
	}
	cond := fmt.Sprint(mapAt(deny, "Condition", "ArnNotLike"))
	if !strings.Contains(cond, "PolicyWriterArns") {
		t.Errorf("the deny does not except PolicyWriterArns: %s", cond)
	}
	// The CI role that syncs rules writes the policy only when it is named
	// a policy writer.
	if strings.Contains(cond, "DeployRoleArn") {
		t.Errorf("the deny excepts DeployRoleArn: %s", cond)
	}
	// Every way to put or remove an object under policy/: replication
	// writes and deletes too.
	for _, a := range []string{"s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:ReplicateObject", "s3:ReplicateDelete"} {
		if !strings.Contains(fmt.Sprint(deny["Action"]), a) {
			t.Errorf("the deny on policy/ misses %s: %v", a, deny["Action"])
		}
	}
	// A lifecycle rule (or a replication configuration) on the bucket can
	// expire or overwrite the policy: only the policy writers may set one.
	var bucketDeny map[string]any
	for _, st := range mapAt(tpl, "Resources", "RulesBucketPolicy", "Properties", "PolicyDocument")["Statement"].([]any) {
		if mapAt(st)["Sid"] == "OnlyPolicyWritersConfigureLifecycle" {
			bucketDeny = mapAt(st)
		}
	}
	if bucketDeny == nil || bucketDeny["Effect"] != "Deny" || !strings.Contains(fmt.Sprint(bucketDeny["Action"]), "s3:PutLifecycleConfiguration") ||
		!strings.Contains(fmt.Sprint(bucketDeny["Action"]), "s3:PutReplicationConfiguration") ||
		strings.Contains(fmt.Sprint(bucketDeny["Resource"]), "/*") || !strings.Contains(fmt.Sprint(bucketDeny["Condition"]), "PolicyWriterArns") {
		t.Errorf("no deny of lifecycle configuration on the bucket except for policy writers: %v", bucketDeny)
	}
	if fmt.Sprint(mapAt(tpl, "Parameters", "PolicyWriterArns")["Type"]) != "CommaDelimitedList" {
		t.Error("PolicyWriterArns is not a list parameter")
	}
	// A missing policy is reported (PolicyMissing, alarmed) and, with
	// RequirePolicy (on by default when policy writers are named), holds
	// every change.
	if p := mapAt(tpl, "Parameters", "RequirePolicy"); fmt.Sprint(p["Default"]) != "auto" || fmt.Sprint(p["AllowedValues"]) != "[auto true false]" {
		t.Errorf("RequirePolicy parameter = %v", p)
	}
	if c := fmt.Sprint(mapAt(tpl, "Conditions", "RequirePolicyOn")); !strings.Contains(c, "PolicyWriterArns") || !strings.Contains(c, "RequirePolicy") {
		t.Errorf("RequirePolicyOn = %s", c)
	}
	for _, id := range []string{"ReconcileFunction", "DriftFunction"} {
		if v := fmt.Sprint(mapAt(fns[id], "Properties", "Environment", "Variables")["REQUIRE_POLICY"]); !strings.Contains(v, "RequirePolicyOn") {
			t.Errorf("%s REQUIRE_POLICY = %v", id, v)
		}
	}
	if a := mapAt(tpl, "Resources", "PolicyMissingAlarm", "Properties"); a["MetricName"] != "PolicyMissing" || a["Namespace"] != "sgrules" {
		t.Errorf("PolicyMissingAlarm = %v", a)
	}
	// Break-glass is capped (default 24 hours).
	if p := mapAt(tpl, "Parameters", "PauseUntilMax"); fmt.Sprint(p["Default"]) != "24" {
		t.Errorf("PauseUntilMax parameter = %v", p)
	}
	for _, id := range []string{"ReconcileFunction", "DriftFunction"} {
		if v := fmt.Sprint(mapAt(fns[id], "Properties", "Environment", "Variables")["PAUSE_UNTIL_MAX"]); !strings.Contains(v, "PauseUntilMax") {
			t.Errorf("%s PAUSE_UNTIL_MAX = %v", id, v)
		}
	}
}
