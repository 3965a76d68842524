package chaos_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

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

// worldOpen are rules opening tcp 22 to the internet spelled otherwise
// than 0.0.0.0/0 or ::/0, in the group named web (exempt from
// no-broad-ranges, so only the internet's semantics refuse them): the two
// halves of IPv4 in one rule or in two, 2000::/3 (all global unicast
// IPv6), and a customer prefix list whose only entry is 0.0.0.0/0 (%s, the
// world's). Half of the refused uploads add one of them.
var worldOpen = [][]string{
	{"    securityGroup: {tags: {Name: web}}\n    type: ingress\n    protocol: tcp\n    fromPort: 22\n    toPort: 22\n    cidrBlocks: [0.0.0.0/1, 128.0.0.0/1]\n    description: \"halves\"\n"},
	{"    securityGroup: {tags: {Name: web}}\n    type: ingress\n    protocol: tcp\n    fromPort: 22\n    toPort: 22\n    cidrBlocks: [0.0.0.0/1]\n",
		"    securityGroup: {tags: {Name: web}}\n    type: ingress\n    protocol: tcp\n    fromPort: 22\n    toPort: 22\n    cidrBlocks: [128.0.0.0/1]\n"},
	{"    securityGroup: {tags: {Name: web}}\n    type: ingress\n    protocol: tcp\n    fromPort: 22\n    toPort: 22\n    ipv6CidrBlocks: [\"2000::/3\"]\n"},
	{"    securityGroup: {tags: {Name: web}}\n    type: ingress\n    protocol: tcp\n    fromPort: 22\n    toPort: 22\n    prefixListIds: [%s]\n"},
}

// guard is the policy of a scenario, as the suite checks it.
type guard struct {
	checker policyload.Checker
	body    string // the policy in the bucket
	groups  map[string]*reconcile.GroupInfo
	// lists are the entries of the world's prefix lists; world is the one
	// whose only entry is 0.0.0.0/0.
	lists map[string][]netip.Prefix
	world string
}

func newGuard(w *world) *guard {
	w.tb.Helper()
	body, err := os.ReadFile(policyPath)
	if err != nil {
		w.tb.Fatal(err)
	}
	pl, err := w.ec2.CreateManagedPrefixList(context.Background(), &ec2.CreateManagedPrefixListInput{
		PrefixListName: aws.String("everyone"), AddressFamily: aws.String("IPv4"), MaxEntries: aws.Int32(2),
		Entries: []ec2types.AddPrefixListEntry{{Cidr: aws.String("0.0.0.0/0")}}})
	if err != nil {
		w.tb.Fatalf("create prefix list: %v", err)
	}
	id := aws.ToString(pl.PrefixList.PrefixListId)
	g := &guard{groups: map[string]*reconcile.GroupInfo{}, world: id,
		lists: map[string][]netip.Prefix{id: {netip.MustParsePrefix("0.0.0.0/0")}}}
	for i, id := range w.ids {
		g.groups[id] = &reconcile.GroupInfo{GroupID: id, Tags: map[string]string{"Name": w.names[i]}}
	}
	before, after, ok := strings.Cut(string(body), "\ntenants:\n")
	if !ok {
		w.tb.Fatalf("%s has no tenants", policyPath)
	}
	g.upload(w, before+"\ntenants:\n"+tenants+after)
	return g
}

// upload parses body as the policy, puts it in the bucket and makes it
// the one the suite checks.
func (g *guard) upload(w *world, body string) {
	w.tb.Helper()
	pol, err := policyload.Parse(policyKey, reconcile.Object{Body: []byte(body)}, prefix)
	if err != nil {
		w.tb.Fatalf("policy: %v\n%s", err, body)
	}
	w.put(policyKey, body)
	g.checker, g.body = pol.(policyload.Checker), body
}

// violations judges keys together, as the sweep judges live rules (a
// group's peers for one port taken together: halves and prefix-list
// entries count): out[i] names the deny clauses keys[i] violates ("" when
// none).
func (g *guard) violations(keys []rules.Key) []string {
	out := make([]string, len(keys))
	for i, cs := range g.checker.CheckRules(keys, reconcile.PolicyFacts{Groups: g.groups, PrefixLists: g.lists, Now: time.Now()}) {
		names := make([]string, len(cs))
		for j, c := range cs {
			names[j] = c.Name()
		}
		out[i] = strings.Join(names, ", ")
	}
	return out
}

// accepts tells whether the permissions of a valid file, taken together,
// pass.
func (g *guard) accepts(perms []rules.Permission) bool {
	keys := make([]rules.Key, len(perms))
	for i, p := range perms {
		keys[i] = p.Key
	}
	for _, v := range g.violations(keys) {
		if v != "" {
			return false
		}
	}
	return true
}

// violatingRules returns one or two rules the policy denies (together).
func (s *scenario) violatingRules() []string {
	if s.rng.IntN(2) == 0 {
		var out []string
		for _, b := range pick(s.rng, worldOpen...) {
			if strings.Contains(b, "%s") {
				b = fmt.Sprintf(b, s.guard.world)
			}
			out = append(out, b)
		}
		s.tot.worldOpen++
		return out
	}
	return []string{fmt.Sprintf(pick(s.rng, violating...), s.rng.IntN(groupsPerWorld))}
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
	for _, b := range s.violatingRules() {
		g.rules[fmt.Sprintf("r%d", s.nextRule())] = b
	}
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

// closedPorts are ports the example policy closes to the internet
// (no-world-ssh, no-world-rdp).
var closedPorts = []int32{22, 3389}

// worldOpen is the suite's own reading of "the internet" (docs/policy.md),
// independent of pkg/policy: for each group and each closed port of tcp and
// udp, the IPv4 and IPv6 peers its ingress rules grant there, prefix-list
// entries included, taken together, must not cover the routable space of a
// family (rules.WorldOpen). It returns what is open.
func (g *guard) worldOpen(rs []reconcile.ActualRule) []string {
	type point struct {
		group, proto string
		port         int32
	}
	sets := map[point][]netip.Prefix{}
	for _, r := range rs {
		k := r.Key
		if k.Direction != rules.Ingress {
			continue
		}
		var peers []netip.Prefix
		switch k.Peer.Kind {
		case rules.PeerCIDR4, rules.PeerCIDR6:
			peers = []netip.Prefix{netip.MustParsePrefix(k.Peer.Value)}
		case rules.PeerPrefixList:
			peers = g.lists[k.Peer.Value]
		}
		for _, proto := range []string{"tcp", "udp"} {
			for _, p := range closedPorts {
				if k.Protocol == "-1" || k.Protocol == proto && k.FromPort <= p && p <= k.ToPort {
					at := point{k.GroupID, proto, p}
					sets[at] = append(sets[at], peers...)
				}
			}
		}
	}
	var out []string
	for at, set := range sets {
		if _, open := rules.WorldOpen(set); open {
			out = append(out, fmt.Sprintf("%s %s %d is open to the internet (%v)", at.group, at.proto, at.port, set))
		}
	}
	slices.Sort(out)
	return out
}
