package template

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The rules bucket's name is new for each stack (a part of the stack id),
// so that the retained bucket of a deleted stack does not collide with the
// bucket of a new stack of the same name; the functions and their policy
// name the bucket by the same expression (issue 23.7).
func TestBucketNameIsNewForEachStack(t *testing.T) {
	tpl := load(t, filepath.Join(root, "template.yaml"))
	bucket := mapAt(tpl, "Resources", "RulesBucket")
	if bucket["DeletionPolicy"] != "Retain" {
		t.Errorf("RulesBucket DeletionPolicy = %v: the rule files are kept (README)", bucket["DeletionPolicy"])
	}
	name := mapAt(bucket, "Properties")["BucketName"]
	nm, _ := name.(map[string]any)
	sub, ok := nm["Fn::Sub"].([]any)
	if !ok || len(sub) != 2 {
		t.Fatalf("BucketName = %v, want !Sub [name, {vars}]", name)
	}
	if !strings.Contains(fmt.Sprint(sub[1]), "AWS::StackId") {
		t.Errorf("BucketName = %v: the same for every stack of the same name in an account and region; a retained bucket collides with a redeployment", name)
	}
	// The longest stack name the README and the template's description
	// allow: S3 bucket names have at most 63 characters.
	s, _ := sub[0].(string)
	rest := strings.ReplaceAll(strings.ReplaceAll(s, "${AWS::StackName}", ""), "${StackSuffix}", strings.Repeat("f", 12))
	if strings.Contains(rest, "${") {
		t.Fatalf("BucketName %q: other variables than the stack name and the suffix", s)
	}
	maxStack := 63 - len(rest)
	want := fmt.Sprintf("at most %d characters", maxStack)
	for _, doc := range []string{fmt.Sprint(tpl["Description"]), readme(t)} {
		if !strings.Contains(strings.Join(strings.Fields(doc), " "), want) {
			t.Errorf("the template's description or the README does not say the stack name is %s", want)
		}
	}
	fns := functions(tpl)
	for _, id := range []string{"ReconcileFunction", "DriftFunction"} {
		if v := mapAt(fns[id], "Properties", "Environment", "Variables")["RULES_BUCKET"]; !same(v, name) {
			t.Errorf("%s RULES_BUCKET = %v, want the BucketName %v", id, v, name)
		}
	}
	// Every other !Sub naming the bucket by its name uses the same suffix.
	var walk func(v any)
	n := 0
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if s, ok := v["Fn::Sub"].(string); ok && strings.Contains(s, "-rules-") {
				t.Errorf("!Sub %q names the bucket without the stack suffix", s)
			}
			if l, ok := v["Fn::Sub"].([]any); ok && len(l) == 2 && strings.Contains(fmt.Sprint(l[0]), sub[0].(string)) {
				n++
				if !same(l[1], sub[1]) {
					t.Errorf("!Sub %v: other variables than BucketName's %v", l, sub[1])
				}
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(tpl["Resources"])
	if n < 4 {
		t.Errorf("found the bucket's name %d times, want it in the bucket, the access policy and both functions", n)
	}
}

// The hub accepts no target role name the target template refuses: the
// target template names a second role NAME-events, and IAM role names have
// at most 64 characters (issue 23.7).
func TestTargetRoleNameLimitsAgree(t *testing.T) {
	hub := mapAt(load(t, filepath.Join(root, "template.yaml")), "Parameters", "TargetRoleName")
	target := load(t, filepath.Join(root, "template-target.yaml"))
	tp := mapAt(target, "Parameters", "RoleName")
	if hub["AllowedPattern"] != tp["AllowedPattern"] {
		t.Errorf("hub TargetRoleName AllowedPattern %v, target RoleName %v: they differ", hub["AllowedPattern"], tp["AllowedPattern"])
	}
	m := regexp.MustCompile(`\{1,(\d+)\}\$$`).FindStringSubmatch(fmt.Sprint(tp["AllowedPattern"]))
	if m == nil {
		t.Fatalf("target RoleName AllowedPattern %v: no length bound", tp["AllowedPattern"])
	}
	max, _ := strconv.Atoi(m[1])
	events := fmt.Sprint(mapAt(target, "Resources", "ForwardEventsRole", "Properties")["RoleName"])
	suffix := strings.TrimPrefix(strings.TrimSuffix(events, "]"), "map[Fn::Sub:${RoleName}")
	if suffix == events || max+len(suffix) > 64 {
		t.Errorf("RoleName of at most %d characters, forwarding role %s: longer than IAM's 64", max, events)
	}
	if max+len(suffix) < 64 {
		t.Errorf("RoleName of at most %d characters refuses names IAM accepts (forwarding role %s)", max, events)
	}
}

// With no ManagedGroupTag the functions may change every security group:
// the parameter's description in both templates and the README say so
// (issue 23.7).
func TestEmptyManagedGroupTagIsSaid(t *testing.T) {
	for _, file := range []string{"template.yaml", "template-target.yaml"} {
		d := fmt.Sprint(mapAt(load(t, filepath.Join(root, file)), "Parameters", "ManagedGroupTag")["Description"])
		if !strings.Contains(strings.Join(strings.Fields(d), " "), "the rules of every security group") {
			t.Errorf("%s ManagedGroupTag does not say that empty means every security group: %q", file, d)
		}
	}
	for _, l := range strings.Split(readme(t), "\n") {
		if strings.HasPrefix(l, "| `ManagedGroupTag` |") && !strings.Contains(l, "the rules of every security group") {
			t.Errorf("README ManagedGroupTag row does not say that empty means every security group: %s", l)
		}
	}
}

func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
