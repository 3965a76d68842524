package template

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// ec2Writes are the EC2 calls that change rules; each is authorised
// against the security group and against its security group rules.
var ec2Writes = []string{
	"ec2:AuthorizeSecurityGroupIngress",
	"ec2:AuthorizeSecurityGroupEgress",
	"ec2:RevokeSecurityGroupIngress",
	"ec2:RevokeSecurityGroupEgress",
	"ec2:ModifySecurityGroupRules",
}

// stackValues stand for the pseudo parameters and parameters of a stack
// deployed in the hub account and region.
var stackValues = map[string]string{
	"AWS::Partition":  "aws",
	"AWS::AccountId":  "111122223333",
	"AWS::Region":     "eu-central-1",
	"ManagedGroupTag": "sgrules:managed",
}

// sub resolves the ${Name} references of an Fn::Sub string with
// stackValues; an unknown name fails the test.
func sub(t *testing.T, s string) string {
	t.Helper()
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.Index(s[i:], "}")
		if j < 0 {
			t.Fatalf("unterminated ${ in %q", s)
		}
		name := s[i+2 : i+j]
		v, ok := stackValues[name]
		if !ok {
			t.Fatalf("no value for ${%s}", name)
		}
		b.WriteString(s[:i])
		b.WriteString(v)
		s = s[i+j+1:]
	}
}

// resolve turns a template value into plain data as CloudFormation would
// for a stack with stackValues, once per Fn::If branch: it returns every
// variant. An Fn::Sub string holding a JSON document is decoded.
func resolve(t *testing.T, v any) []any {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		if c, ok := v["Fn::If"].([]any); ok && len(v) == 1 && len(c) == 3 {
			return append(resolve(t, c[1]), resolve(t, c[2])...)
		}
		if s, ok := v["Fn::Sub"].(string); ok && len(v) == 1 {
			out := sub(t, s)
			if strings.Contains(out, "Statement") {
				var doc any
				if err := json.Unmarshal([]byte(out), &doc); err != nil {
					t.Fatalf("policy document string is not JSON: %v", err)
				}
				return []any{doc}
			}
			return []any{out}
		}
		variants := []any{map[string]any{}}
		for k, c := range v {
			var next []any
			for _, cv := range resolve(t, c) {
				for _, m := range variants {
					n := map[string]any{}
					for mk, mv := range m.(map[string]any) {
						n[mk] = mv
					}
					n[k] = cv
					next = append(next, n)
				}
			}
			variants = next
		}
		return variants
	case []any:
		variants := []any{[]any{}}
		for _, c := range v {
			var next []any
			for _, cv := range resolve(t, c) {
				for _, s := range variants {
					next = append(next, append(append([]any{}, s.([]any)...), cv))
				}
			}
			variants = next
		}
		return variants
	}
	return []any{v}
}

// arnLike reports whether an IAM resource pattern matches arn: * matches
// any run of characters (colons included), ? any one character.
func arnLike(pattern, arn string) bool {
	if pattern == "" {
		return arn == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(arn); i++ {
			if arnLike(pattern[1:], arn[i:]) {
				return true
			}
		}
		return false
	case '?':
		return arn != "" && arnLike(pattern[1:], arn[1:])
	}
	return arn != "" && arn[0] == pattern[0] && arnLike(pattern[1:], arn[1:])
}

// allowedBy reports whether some Allow statement of doc allows action on
// arn (conditions aside).
func allowedBy(doc any, action, arn string) bool {
	stmts, ok := mapAt(doc)["Statement"].([]any)
	if !ok {
		stmts = []any{mapAt(doc)["Statement"]}
	}
	for _, s := range stmts {
		st := mapAt(s)
		if st["Effect"] != "Allow" {
			continue
		}
		acts := strings1(st["Action"])
		if !contains(acts, action) {
			continue
		}
		for _, r := range strings1(st["Resource"]) {
			if arnLike(r, arn) {
				return true
			}
		}
	}
	return false
}

func contains(s []string, v string) bool {
	for _, e := range s {
		if e == v {
			return true
		}
	}
	return false
}

// docs/multi-account.md: "For its own account (any region) it uses its own
// credentials". A rule file with region: and no account: is written with
// the hub functions' own role, so the hub's EC2 write statements allow
// every region of the hub's account, and no other account (those go
// through the target role).
func TestHubWritesInEveryRegionOfItsAccount(t *testing.T) {
	res := mapAt(load(t, filepath.Join(root, "template.yaml")), "Resources")
	docs := resolve(t, mapAt(res, "SecurityGroupWritePolicy", "Properties")["PolicyDocument"])
	if len(docs) != 2 {
		t.Fatalf("SecurityGroupWritePolicy has %d variants, want 2 (with and without ManagedGroupTag)", len(docs))
	}
	acct := stackValues["AWS::AccountId"]
	for i, doc := range docs {
		for _, region := range []string{stackValues["AWS::Region"], "eu-west-1", "me-west-1"} {
			group := "arn:aws:ec2:" + region + ":" + acct + ":security-group/sg-0123456789abcdef0"
			rule := "arn:aws:ec2:" + region + ":" + acct + ":security-group-rule/sgr-0123456789abcdef0"
			for _, a := range ec2Writes {
				if !allowedBy(doc, a, group) {
					t.Errorf("variant %d: %s not allowed on %s", i, a, group)
				}
				if !allowedBy(doc, a, rule) {
					t.Errorf("variant %d: %s not allowed on %s", i, a, rule)
				}
			}
			if !allowedBy(doc, "ec2:CreateTags", rule) {
				t.Errorf("variant %d: ec2:CreateTags not allowed on %s", i, rule)
			}
		}
		other := "arn:aws:ec2:eu-west-1:444455556666:security-group/sg-0123456789abcdef0"
		for _, a := range append(ec2Writes, "ec2:CreateTags") {
			if allowedBy(doc, a, other) || allowedBy(doc, a, strings.Replace(other, "security-group/sg", "security-group-rule/sgr", 1)) {
				t.Errorf("variant %d: %s allowed in another account (%s): the target role is the way there", i, a, other)
			}
		}
	}
}

func TestArnLike(t *testing.T) {
	for _, tc := range []struct {
		pattern, arn string
		want         bool
	}{
		{"arn:aws:ec2:*:1:security-group/*", "arn:aws:ec2:eu-west-1:1:security-group/sg-1", true},
		{"arn:aws:ec2:eu-central-1:1:security-group/*", "arn:aws:ec2:eu-west-1:1:security-group/sg-1", false},
		{"arn:aws:ec2:*:1:security-group/*", "arn:aws:ec2:eu-west-1:2:security-group/sg-1", false},
		{"arn:aws:ec2:*:1:security-group/*", "arn:aws:ec2:eu-west-1:1:security-group-rule/sgr-1", false},
		{"arn:aws:ec2:?u-west-1:1:*", "arn:aws:ec2:eu-west-1:1:x", true},
		{"*", "anything", true},
	} {
		if got := arnLike(tc.pattern, tc.arn); got != tc.want {
			t.Errorf("arnLike(%q, %q) = %v, want %v", tc.pattern, tc.arn, got, tc.want)
		}
	}
}

// The functions ask DescribeRegions for a region name the SDK does not
// know (internal/fleetrt.RegionCheck).
func TestFunctionsMayDescribeRegions(t *testing.T) {
	tpl := load(t, filepath.Join(root, "template.yaml"))
	st := allows(tpl, "ec2:DescribeRegions")
	if len(st) != 1 || !same(st[0]["Resource"], "*") {
		t.Errorf("ec2:DescribeRegions allowed by %v, want one statement on \"*\"", st)
	}
}
