package reconcile

import (
	"strings"
	"testing"

	"github.com/sgrules/sgrules/pkg/rules"
)

func perm(k rules.Key, desc, owner string) rules.Permission {
	return rules.Permission{Key: k, Description: desc, Owner: rules.ParseOwner(owner)}
}

// render prints a plan as one line per action: "kind key [ruleId] desc (loss)".
func render(p Plan) string {
	var b strings.Builder
	for _, a := range p.Actions {
		b.WriteString(string(a.Kind) + " " + a.Key.String())
		if a.RuleID != "" {
			b.WriteString(" " + a.RuleID)
		}
		if a.Description != "" && a.Kind != ActRevoke {
			b.WriteString(" " + a.Description)
		}
		if a.Loss {
			b.WriteString(" (loss)")
		}
		if a.Drift() {
			b.WriteString(" (drift)")
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestDiff(t *testing.T) {
	k80 := key(sgWeb, rules.Ingress, "tcp", 80, 80, rules.PeerCIDR4, "0.0.0.0/0")
	k81 := key(sgWeb, rules.Ingress, "tcp", 81, 81, rules.PeerCIDR4, "0.0.0.0/0")
	kEg := key(sgWeb, rules.Egress, "-1", -1, -1, rules.PeerCIDR4, "0.0.0.0/0")
	web := map[string]bool{sgWeb: true}
	ours := map[string]string{TagManaged: "true", TagLedger: "t1"}
	k80v6 := key(sgWeb, rules.Ingress, "tcp", 80, 80, rules.PeerCIDR6, "::/0")
	owned := func(k rules.Key, id, desc string, owners ...string) OwnedPermission {
		m := map[rules.Owner]string{}
		for _, o := range owners {
			m[rules.ParseOwner(o)] = desc
		}
		return OwnedPermission{Key: k, RuleID: id, Owners: m, Description: desc, Version: 1}
	}
	tests := []struct {
		name string
		in   diffInput
		want string
		put  int
		del  int
	}{
		{
			name: "new rule is authorized",
			in:   diffInput{scope: map[string][]rules.Permission{"a": {perm(k80, "http", "a#r")}}, groups: web},
			want: "authorize " + k80.String() + " http\n",
			put:  1,
		},
		{
			name: "existing unmanaged rule is adopted",
			in: diffInput{scope: map[string][]rules.Permission{"a": {perm(k80, "http", "a#r")}}, groups: web,
				actual: []ActualRule{{Key: k80, RuleID: "sgr-1", Description: "http"}}},
			want: "adopt " + k80.String() + " sgr-1 http\n",
			put:  1,
		},
		{
			name: "converged is empty",
			in: diffInput{scope: map[string][]rules.Permission{"a": {perm(k80, "http", "a#r")}}, groups: web,
				actual: []ActualRule{{Key: k80, RuleID: "sgr-1", Description: "http"}},
				owned:  []OwnedPermission{owned(k80, "sgr-1", "http", "a#r")}},
			want: "",
		},
		{
			name: "description change is an in-place update",
			in: diffInput{scope: map[string][]rules.Permission{"a": {perm(k80, "web", "a#r")}}, groups: web,
				actual: []ActualRule{{Key: k80, RuleID: "sgr-1", Description: "http"}},
				owned:  []OwnedPermission{owned(k80, "sgr-1", "http", "a#r")}},
			want: "update " + k80.String() + " sgr-1 web\n",
			put:  1,
		},
		{
			name: "description edited by hand is drift",
			in: diffInput{scope: map[string][]rules.Permission{"a": {perm(k80, "http", "a#r")}}, groups: web,
				actual: []ActualRule{{Key: k80, RuleID: "sgr-1", Description: "hand"}},
				owned:  []OwnedPermission{owned(k80, "sgr-1", "http", "a#r")}},
			want: "update " + k80.String() + " sgr-1 http (drift)\n",
		},
		{
			name: "port change replaces, not a loss",
			in: diffInput{scope: map[string][]rules.Permission{"a": {perm(k81, "http", "a#r")}}, groups: web,
				scopeRules: map[string]map[string]bool{"a": {"r": true}},
				actual:     []ActualRule{{Key: k80, RuleID: "sgr-1", Description: "http"}},
				owned:      []OwnedPermission{owned(k80, "sgr-1", "http", "a#r")}},
			want: "authorize " + k81.String() + " http\nrevoke " + k80.String() + " sgr-1\n",
			put:  1, del: 1,
		},
		{
			name: "removed rule is a loss",
			in: diffInput{scope: map[string][]rules.Permission{"a": nil}, groups: web,
				scopeRules: map[string]map[string]bool{"a": {}},
				actual:     []ActualRule{{Key: k80, RuleID: "sgr-1", Description: "http"}},
				owned:      []OwnedPermission{owned(k80, "sgr-1", "http", "a#r")}},
			want: "revoke " + k80.String() + " sgr-1 (loss)\n",
			del:  1,
		},
		{
			name: "other owner outside scope keeps it",
			in: diffInput{scope: map[string][]rules.Permission{"a": nil}, groups: web,
				actual: []ActualRule{{Key: k80, RuleID: "sgr-1", Description: "http"}},
				owned:  []OwnedPermission{owned(k80, "sgr-1", "http", "a#r", "b#s")}},
			want: "",
			put:  1,
		},
		{
			name: "owned rule already gone is forgotten",
			in: diffInput{scope: map[string][]rules.Permission{"a": nil}, groups: web,
				owned: []OwnedPermission{owned(k80, "sgr-1", "http", "a#r")}},
			want: "forget " + k80.String() + " sgr-1\n",
			del:  1,
		},
		{
			name: "unmanaged rule is left alone",
			in: diffInput{scope: map[string][]rules.Permission{"a": nil}, groups: web,
				actual: []ActualRule{{Key: kEg, RuleID: "sgr-9"}}},
			want: "",
		},
		{
			name: "unmanaged rule in exclusive group is revoked",
			in: diffInput{scope: map[string][]rules.Permission{"a": nil}, groups: web, exclusive: web,
				actual: []ActualRule{{Key: kEg, RuleID: "sgr-9"}}},
			want: "revoke " + kEg.String() + " sgr-9 (loss) (drift)\n",
		},
		{
			name: "tagged orphan kept unless the sweep is complete",
			in: diffInput{scope: map[string][]rules.Permission{"a": nil}, groups: web, ledgerID: "t1",
				actual: []ActualRule{{Key: kEg, RuleID: "sgr-9", Tags: ours}}},
			want: "",
		},
		{
			name: "tagged orphan with an intent revoked by a complete sweep",
			in: diffInput{scope: map[string][]rules.Permission{"a": nil}, groups: web, complete: true, ledgerID: "t1",
				intents: map[rules.Key]bool{kEg: true},
				actual:  []ActualRule{{Key: kEg, RuleID: "sgr-9", Tags: ours}}},
			want: "revoke " + kEg.String() + " sgr-9 (loss) (drift)\n",
		},
		{
			name: "a rule carrying this deployment's tag without an intent is left alone (a tag proves nothing)",
			in: diffInput{scope: map[string][]rules.Permission{"a": nil}, groups: web, complete: true, ledgerID: "t1",
				intents: map[rules.Key]bool{k80: true},
				actual:  []ActualRule{{Key: kEg, RuleID: "sgr-9", Tags: ours}}},
			want: "",
		},
		{
			name: "another deployment's rule is unmanaged for this one, even in a complete sweep",
			in: diffInput{scope: map[string][]rules.Permission{"a": nil}, groups: web, complete: true, ledgerID: "t1",
				actual: []ActualRule{{Key: kEg, RuleID: "sgr-9", Tags: map[string]string{TagManaged: "true", TagLedger: "t2"}}}},
			want: "",
		},
		{
			name: "a rule of an older version (managed tag, no ledger tag) is left alone",
			in: diffInput{scope: map[string][]rules.Permission{"a": nil}, groups: web, complete: true, ledgerID: "t1",
				actual: []ActualRule{{Key: kEg, RuleID: "sgr-9", Tags: map[string]string{TagManaged: "true"}}}},
			want: "",
		},
		{
			name: "owner without a source record or file is gone in a complete sweep",
			in: diffInput{scope: map[string][]rules.Permission{"a": nil}, groups: web, complete: true, known: map[string]bool{"a": true},
				owned:  []OwnedPermission{owned(k80, "sgr-1", "http", "ghost#r")},
				actual: []ActualRule{{Key: k80, RuleID: "sgr-1", Description: "http"}}},
			want: "revoke " + k80.String() + " sgr-1 (loss)\n",
			del:  1,
		},
		{
			name: "owner without a record is kept by a run that is not a complete sweep",
			in: diffInput{scope: map[string][]rules.Permission{"a": nil}, groups: web,
				owned:  []OwnedPermission{owned(k80, "sgr-1", "http", "ghost#r")},
				actual: []ActualRule{{Key: k80, RuleID: "sgr-1", Description: "http"}}},
			want: "",
		},
		{
			name: "a gone owner does not win the description over a live one",
			in: diffInput{scope: map[string][]rules.Permission{"b": {perm(k80, "web", "b#r")}}, groups: web, complete: true,
				known:  map[string]bool{"b": true},
				owned:  []OwnedPermission{owned(k80, "sgr-1", "http", "a#r", "b#r")},
				actual: []ActualRule{{Key: k80, RuleID: "sgr-1", Description: "http"}}},
			want: "update " + k80.String() + " sgr-1 web\n",
			put:  1,
		},
		{
			name: "rule modified by hand: put back in place",
			in: diffInput{scope: map[string][]rules.Permission{"a": {perm(k80, "http", "a#r")}}, groups: web,
				actual: []ActualRule{{Key: k81, RuleID: "sgr-1", Description: "http"}},
				owned:  []OwnedPermission{owned(k80, "sgr-1", "http", "a#r")}},
			want: "modify " + k80.String() + " sgr-1 http (drift)\n",
		},
		{
			name: "rule modified by hand into another peer kind: re-authorize, revoke the modified one",
			in: diffInput{scope: map[string][]rules.Permission{"a": {perm(k80, "http", "a#r")}}, groups: web,
				actual: []ActualRule{{Key: k80v6, RuleID: "sgr-1", Description: "http"}},
				owned:  []OwnedPermission{owned(k80, "sgr-1", "http", "a#r")}},
			want: "authorize " + k80.String() + " http (drift)\nrevoke " + k80v6.String() + " sgr-1 (drift)\n",
			put:  1,
		},
		{
			name: "ports of a rule this deployment created change: modified in place",
			in: diffInput{scope: map[string][]rules.Permission{"a": {perm(k81, "http", "a#r")}}, groups: web, ledgerID: "t1",
				scopeRules: map[string]map[string]bool{"a": {"r": true}},
				actual:     []ActualRule{{Key: k80, RuleID: "sgr-1", Description: "http", Tags: ours}},
				owned:      []OwnedPermission{owned(k80, "sgr-1", "http", "a#r")}},
			want: "modify " + k81.String() + " sgr-1 http\n",
			put:  1, del: 1,
		},
		{
			name: "an adopted rule (not created by this deployment) is never rewritten",
			in: diffInput{scope: map[string][]rules.Permission{"a": {perm(k81, "http", "a#r")}}, groups: web, ledgerID: "t1",
				scopeRules: map[string]map[string]bool{"a": {"r": true}},
				actual:     []ActualRule{{Key: k80, RuleID: "sgr-1", Description: "http"}},
				owned:      []OwnedPermission{owned(k80, "sgr-1", "http", "a#r")}},
			want: "authorize " + k81.String() + " http\nrevoke " + k80.String() + " sgr-1\n",
			put:  1, del: 1,
		},
		{
			name: "a rule another owner still declares is never rewritten",
			in: diffInput{scope: map[string][]rules.Permission{"a": {perm(k81, "http", "a#r")}}, groups: web, ledgerID: "t1",
				scopeRules: map[string]map[string]bool{"a": {"r": true}},
				actual:     []ActualRule{{Key: k80, RuleID: "sgr-1", Description: "http", Tags: ours}},
				owned:      []OwnedPermission{owned(k80, "sgr-1", "http", "a#r", "b#s")}},
			want: "authorize " + k81.String() + " http\n",
			put:  2,
		},
		{
			name: "another owner's new rule does not take over the rule going away",
			in: diffInput{scope: map[string][]rules.Permission{"a": nil, "b": {perm(k81, "http", "b#r")}}, groups: web, ledgerID: "t1",
				scopeRules: map[string]map[string]bool{"a": {}, "b": {"r": true}},
				actual:     []ActualRule{{Key: k80, RuleID: "sgr-1", Description: "http", Tags: ours}},
				owned:      []OwnedPermission{owned(k80, "sgr-1", "http", "a#r")}},
			want: "authorize " + k81.String() + " http\nrevoke " + k80.String() + " sgr-1 (loss)\n",
			put:  1, del: 1,
		},
		{
			name: "other groups are out of scope",
			in: diffInput{scope: map[string][]rules.Permission{"a": {perm(key(sgDB, rules.Ingress, "tcp", 1, 1, rules.PeerCIDR4, "10.0.0.0/8"), "", "a#r")}},
				groups: web},
			want: "",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.in.scopeRules == nil {
				tc.in.scopeRules = map[string]map[string]bool{}
			}
			out := diff(tc.in)
			if got := render(out.plan); got != tc.want {
				t.Errorf("plan:\n%s\nwant:\n%s", got, tc.want)
			}
			if len(out.put) != tc.put || len(out.del) != tc.del {
				t.Errorf("ledger put %d del %d, want %d %d", len(out.put), len(out.del), tc.put, tc.del)
			}
			// Same input, same output.
			if again := render(diff(tc.in).plan); again != render(out.plan) {
				t.Errorf("diff is not stable")
			}
		})
	}
}

func TestDiffConflictFirstOwnerWins(t *testing.T) {
	k := key(sgWeb, rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "10.0.0.0/8")
	out := diff(diffInput{
		scope:  map[string][]rules.Permission{"b": {perm(k, "bee", "b#r")}, "a": {perm(k, "ay", "a#r")}},
		groups: map[string]bool{sgWeb: true},
	})
	if len(out.plan.Conflicts) != 1 || out.plan.Conflicts[0].Winner.String() != "a#r" || out.plan.Actions[0].Description != "ay" {
		t.Fatalf("conflict: %+v actions %s", out.plan.Conflicts, render(out.plan))
	}
}
