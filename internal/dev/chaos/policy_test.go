package chaos_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/sgrules/sgrules/internal/adapters/policyload"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// A guardrail policy in half of the scenarios: examples/policy/sgrules.yaml
// (the realistic policy of docs/policy.md), uploaded to the bucket at
// policyKey, outside the rules prefix, and read by every engine of the
// first deployment through its fault proxy. The generator then only
// makes files the policy accepts, except for refused uploads: one update
// in ten adds a rule violating a deny clause to a file, one create in ten
// creates a file with one. A refused file is invalid as a whole: it keeps
// what it applied before (the suite applies it without faults first, so
// that is its modelled content) or nothing for a new file, and its record
// is invalid. Every EC2 sample checks that no rule in the groups violates a
// deny clause but the groups' own and the hand-made ones (which violate
// none either).
const (
	policyKey  = "policy/sgrules.yaml"
	policyPath = "../../../examples/policy/sgrules.yaml"
)

// violating are rules each violating a deny clause of the example policy.
var violating = []string{
	"    securityGroup: {tags: {Name: g%d}}\n    type: ingress\n    protocol: tcp\n    fromPort: 22\n    toPort: 22\n    cidrBlocks: [0.0.0.0/0]\n    description: \"world ssh\"\n",
	"    securityGroup: {tags: {Name: g%d}}\n    type: ingress\n    protocol: tcp\n    fromPort: 3389\n    toPort: 3389\n    ipv6CidrBlocks: [\"::/0\"]\n",
	"    securityGroup: {tags: {Name: g%d}}\n    type: ingress\n    protocol: \"-1\"\n    cidrBlocks: [10.0.0.0/8]\n    description: \"all from a /8\"\n",
	"    securityGroup: {tags: {Name: g%d}}\n    type: ingress\n    protocol: tcp\n    fromPort: 8443\n    toPort: 8443\n    cidrBlocks: [0.0.0.0/0]\n",
	"    securityGroup: {tags: {Name: g%d}}\n    type: ingress\n    protocol: udp\n    fromPort: 5432\n    toPort: 5432\n    ipv6CidrBlocks: [\"fd00::/8\"]\n",
}

// guard is the policy of a scenario, as the suite checks it.
type guard struct {
	checker policyload.Checker
	groups  map[string]*reconcile.GroupInfo
}

func newGuard(w *world) *guard {
	w.tb.Helper()
	body, err := os.ReadFile(policyPath)
	if err != nil {
		w.tb.Fatal(err)
	}
	pol, err := policyload.Parse(policyPath, reconcile.Object{Body: body}, prefix)
	if err != nil {
		w.tb.Fatalf("example policy: %v", err)
	}
	w.put(policyKey, string(body))
	g := &guard{checker: pol.(policyload.Checker), groups: map[string]*reconcile.GroupInfo{}}
	for i, id := range w.ids {
		g.groups[id] = &reconcile.GroupInfo{GroupID: id, Tags: map[string]string{"Name": w.names[i]}}
	}
	return g
}

// violations returns the deny clauses k violates ("" when none).
func (g *guard) violations(k rules.Key) string {
	cs := g.checker.CheckRules([]rules.Key{k}, reconcile.PolicyFacts{Groups: g.groups})[0]
	if len(cs) == 0 {
		return ""
	}
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.Name()
	}
	return strings.Join(names, ", ")
}

// accepts tells whether every permission of a valid file passes.
func (g *guard) accepts(perms []rules.Permission) bool {
	for _, p := range perms {
		if g.violations(p.Key) != "" {
			return false
		}
	}
	return true
}

// violatingRule returns a random rule the policy denies.
func (s *scenario) violatingRule() string {
	return fmt.Sprintf(pick(s.rng, violating...), s.rng.IntN(groupsPerWorld))
}

// refuse uploads a file violating the policy at key: the current content
// plus a violating rule (an update; the file is applied without faults
// first, so what it applied before is its modelled content), or a new
// file with one (a create, declaring nothing). The upload's run, without
// faults, must succeed, report the source invalid and rejected by the
// policy, record it invalid and change nothing in EC2. Its event is also
// delivered with the step's, under faults.
func (s *scenario) refuse(key string) {
	s.tot.refused++
	f, update := s.files[key]
	if update {
		if err := s.reconcile(s.engA, reconcile.Request{Keys: []string{key}, Reason: "before the refused upload"}); err != nil {
			s.violate("run of %s without faults: %v", key, err)
			return
		}
	} else {
		f = s.newFile(key)
	}
	g := file{rules: map[string]string{}}
	for n, b := range f.rules {
		g.rules[n] = b
	}
	g.rules[fmt.Sprintf("r%d", s.nextRule())] = s.violatingRule()
	if _, err := s.w.expand(key, g.render()); err != nil {
		// the violating rule repeats a permission of the file
		s.logf("refused upload of %s skipped (not valid)", key)
		return
	}
	before := s.w.rules()
	s.w.put(key, g.render())
	s.poison[key] = true
	s.pending = append(s.pending, key)
	res, err := s.reconcileResult(s.engA, reconcile.Request{Keys: []string{key}, Reason: "refused upload"})
	s.logf("upload of %s violating the policy (%s): %v", key, map[bool]string{true: "update", false: "create"}[update], err)
	if err != nil {
		s.violate("the run of the upload of %s violating the policy failed: %v", key, err)
		return
	}
	for _, r := range res.Sources {
		if r.Key == key && (r.Status != reconcile.StatusInvalid || !slices.ContainsFunc(r.Diagnostics, func(d rules.Diagnostic) bool {
			return strings.Contains(d.Msg, "violates policy ")
		})) {
			s.violate("upload of %s violating the policy: status %s, diagnostics %v, want invalid by the policy", key, r.Status, r.Diagnostics)
		}
	}
	if !slices.Contains(res.Policy.Rejected, key) {
		s.violate("upload of %s violating the policy: not in the rejected sources %v", key, res.Policy.Rejected)
	}
	rec, ok, err := s.w.ledger.GetSource(context.Background(), key)
	switch {
	case err != nil:
		s.t.Fatalf("seed %d: read source %s: %v", s.seed, key, err)
	case !ok || rec.Status != reconcile.StatusInvalid:
		s.violate("upload of %s violating the policy: record %v %+v, want status invalid", key, ok, rec.Status)
	}
	if d := diffLines(ruleLines(s.w.rules()), ruleLines(before)); d != "" {
		s.violate("the upload of %s violating the policy changed EC2:\n%s", key, d)
	}
}

// ruleLines renders rules with their ids.
func ruleLines(rs []reconcile.ActualRule) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.RuleID + " " + r.Key.String() + " " + r.Description
	}
	slices.Sort(out)
	return out
}
