package reconcile

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/sgrules/sgrules/pkg/rules"
)

var update = flag.Bool("update", false, "rewrite the golden plans in testdata/plans/")

// planCase is one golden plan's input state (testdata/plans/NAME.yaml):
// what the sources in scope declare, what the ledger owns and what EC2
// has, with keys in their Key.String() form.
type planCase struct {
	Complete  bool                `yaml:"complete"`
	LedgerID  string              `yaml:"ledgerId"`
	Known     []string            `yaml:"known"`
	Exclusive []string            `yaml:"exclusive"`
	Intents   []string            `yaml:"intents"` // keys with a write-ahead intent
	Scope     map[string][]string `yaml:"scope"`   // source → "KEY | RULE | DESCRIPTION"
	Owned     []string            `yaml:"owned"`   // "KEY | RULE-ID | DESCRIPTION | OWNER, OWNER"
	Actual    []string            `yaml:"actual"`  // "KEY | RULE-ID | DESCRIPTION | TAG=V, TAG=V"
}

func fields(s string, n int) []string {
	f := strings.Split(s, "|")
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	for len(f) < n {
		f = append(f, "")
	}
	return f
}

// The key string has "|" separators of its own: the first six fields are
// the key.
func splitKey(t *testing.T, s string, rest int) (rules.Key, []string) {
	t.Helper()
	f := fields(s, 6+rest)
	k, err := rules.ParseKey(strings.Join(f[:6], "|"))
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return k, f[6:]
}

func (c planCase) input(t *testing.T) diffInput {
	in := diffInput{scope: map[string][]rules.Permission{}, scopeRules: map[string]map[string]bool{},
		complete: c.Complete, ledgerID: c.LedgerID, known: setOf(c.Known), groups: map[string]bool{}, exclusive: setOf(c.Exclusive),
		intents: map[rules.Key]bool{}}
	for _, i := range c.Intents {
		k, _ := splitKey(t, i, 0)
		in.intents[k] = true
	}
	for src, perms := range c.Scope {
		in.scope[src] = []rules.Permission{}
		in.scopeRules[src] = map[string]bool{}
		for _, p := range perms {
			k, f := splitKey(t, p, 2)
			in.scope[src] = append(in.scope[src], rules.Permission{Key: k, Owner: rules.Owner{Source: src, Rule: f[0]}, Description: f[1]})
			in.scopeRules[src][f[0]] = true
			in.groups[k.GroupID] = true
		}
	}
	for _, o := range c.Owned {
		k, f := splitKey(t, o, 3)
		owners := map[rules.Owner]string{}
		for _, ow := range strings.Split(f[2], ",") {
			if ow = strings.TrimSpace(ow); ow != "" {
				owners[rules.ParseOwner(ow)] = f[1]
			}
		}
		in.owned = append(in.owned, OwnedPermission{Key: k, RuleID: f[0], Description: f[1], Owners: owners, Version: 1})
		in.groups[k.GroupID] = true
	}
	for _, a := range c.Actual {
		k, f := splitKey(t, a, 3)
		tags := map[string]string{}
		for _, kv := range strings.Split(f[2], ",") {
			if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok {
				tags[k] = v
			}
		}
		in.actual = append(in.actual, ActualRule{Key: k, RuleID: f[0], Description: f[1], Tags: tags})
		in.groups[k.GroupID] = true
	}
	return in
}

// renderPlan prints every field a plan decides, one action a line.
func renderPlan(out diffOutput) string {
	var b strings.Builder
	for _, a := range out.plan.Actions {
		fmt.Fprintf(&b, "%s %s %s", a.Kind, a.Cause, a.Key)
		if a.Kind == ActModify {
			fmt.Fprintf(&b, " from %s", a.From)
		}
		if a.RuleID != "" {
			fmt.Fprintf(&b, " %s", a.RuleID)
		}
		if a.Description != "" || a.OldDescription != "" {
			fmt.Fprintf(&b, " %q", a.Description)
			if a.OldDescription != a.Description && a.OldDescription != "" {
				fmt.Fprintf(&b, " (was %q)", a.OldDescription)
			}
		}
		if len(a.Owners) > 0 {
			fmt.Fprintf(&b, " owners=%s", joinOwners(a.Owners))
		}
		if a.Loss {
			fmt.Fprintf(&b, " loss(%s)", a.LossSource)
		}
		b.WriteString("\n")
	}
	for _, c := range out.plan.Conflicts {
		fmt.Fprintf(&b, "conflict %s winner=%s\n", c.Key, c.Winner)
	}
	for _, u := range out.plan.Unmanaged {
		fmt.Fprintf(&b, "unmanaged %s %s\n", u.Key, u.RuleID)
	}
	for _, u := range out.plan.Unproven {
		fmt.Fprintf(&b, "unproven %s %s\n", u.Key, u.RuleID)
	}
	for _, p := range out.put {
		fmt.Fprintf(&b, "ledger put %s %s owners=%s\n", p.Key, p.RuleID, joinOwners(sortedOwners(p.Owners)))
	}
	for _, p := range out.del {
		fmt.Fprintf(&b, "ledger delete %s\n", p.Key)
	}
	return b.String()
}

// TestGoldenPlans diffs each input state under testdata/plans and
// compares the sorted plan with NAME.golden (-update rewrites them).
func TestGoldenPlans(t *testing.T) {
	files, err := filepath.Glob("testdata/plans/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden plans: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var c planCase
			if err := yaml.Unmarshal(b, &c); err != nil {
				t.Fatal(err)
			}
			got := renderPlan(diff(c.input(t)))
			if again := renderPlan(diff(c.input(t))); again != got {
				t.Fatalf("the same input gave two plans:\n%s\n%s", got, again)
			}
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if got != string(want) {
				t.Errorf("plan of %s:\n%s\nwant:\n%s", f, got, want)
			}
		})
	}
}
