package chaos_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/testutil/faultproxy"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Defaults of the bounded run (make test); make chaos sets CHAOS_SCENARIOS.
const (
	defaultScenarios = 20
	defaultSeed      = 20261101
	stepsPerScenario = 6
	groupsPerWorld   = 3
)

func envInt(name string, def int) int {
	if v := os.Getenv(name); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

// totals across scenarios.
type totals struct {
	scenarios, steps, runs, failedRuns, concurrent, sweeps, ledgerLosses, handRules int
	faults                                                                          map[faultproxy.Kind]int
	calls                                                                           int
	// bulk files created, oversized invalid uploads, scenarios with a second
	// deployment, its runs and its mutating EC2 calls checked
	bulkFiles, poisoned, otherScenarios, otherRuns, otherCallChecks int
	// scenarios with a guardrail policy, uploads it refused, rules checked
	// against it in EC2 samples
	policyScenarios, refused, policyChecks int
	// refused uploads spelling world-open otherwise (halves, 2000::/3, a
	// prefix list), rules a responder revoked by hand after a new deny
	// clause, hand-made rules with this deployment's tags
	worldOpen, responded, spoofed int
	// groups handed from one tenant to another
	handoffs int
	// scenarios with a hub of two targets (a reconcile.Fleet), its runs,
	// moves its new target refused
	fleetScenarios, fleetRuns, refusedMoves int
	// samples of EC2 state taken, and protected permissions checked in them
	samples, protectedChecks int
	violations               []string
	// ops counts the operations of deployments_test.go and
	// offboard_test.go by name (opsSummary).
	ops map[string]int
}

// TestChaos runs randomised scenarios (see scenario.run) and checks three
// invariants; the seed of a failing scenario is printed so it can be
// replayed alone with CHAOS_SEED=<seed> CHAOS_SCENARIOS=1.
func TestChaos(t *testing.T) {
	n := envInt("CHAOS_SCENARIOS", defaultScenarios)
	base := uint64(envInt("CHAOS_SEED", defaultSeed))
	srv := motoserver.Shared(t)
	start := time.Now()
	tot := &totals{faults: map[faultproxy.Kind]int{}, ops: map[string]int{}}
	pa := faultproxy.Start(t, srv.URL, base)
	pb := faultproxy.Start(t, srv.URL, base+1)
	pc := faultproxy.Start(t, srv.URL, base+2)
	pd := faultproxy.Start(t, srv.URL, base+3)
	for i := 0; i < n; i++ {
		seed := base + uint64(i)
		s := newScenario(t, srv, seed, pa, pb, pc, pd, tot)
		s.run()
		tot.scenarios++
		if tot.scenarios%25 == 0 && tot.scenarios < n {
			t.Logf("chaos: %d of %d scenarios, %d violations, %s", tot.scenarios, n, len(tot.violations), time.Since(start).Round(time.Second))
		}
		if len(s.violations) > 0 {
			for _, v := range s.violations {
				tot.violations = append(tot.violations, fmt.Sprintf("seed %d: %s", seed, v))
			}
			t.Errorf("scenario seed %d: %d violations (replay: CHAOS_SEED=%d CHAOS_SCENARIOS=1 go test -v -run TestChaos ./internal/dev/chaos)\n%s\nhistory:\n%s",
				seed, len(s.violations), seed, strings.Join(s.violations, "\n"), strings.Join(s.history, "\n"))
			if len(tot.violations) > 20 {
				break
			}
		}
	}
	injected := 0
	kinds := make([]string, 0, len(tot.faults))
	for k, v := range tot.faults {
		injected += v
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(kinds)
	summary := fmt.Sprintf("chaos: %d scenarios (seeds %d..%d), %d steps, %d reconcile runs (%d failed, %d concurrent pairs, %d sweeps), "+
		"%d ledger losses, %d rules added by hand, %d bulk files (>100 permissions), %d oversized invalid uploads, "+
		"%d scenarios with a second deployment (%d of its runs, %d of its calls checked), "+
		"%d scenarios with a policy (%d uploads refused by it, %d of them world-open spelled otherwise, %d rules checked against it, %d violating rules revoked by a responder, %d groups handed between tenants), "+
		"%d hand-made rules with this deployment's tags, "+
		"%d scenarios with a hub of two accounts (%d of its runs, %d moves refused by the new target), "+
		"%d EC2 samples (%d protected-permission checks), %d AWS calls, %d faults injected (%s), %d violations, %s",
		tot.scenarios, base, base+uint64(tot.scenarios)-1, tot.steps, tot.runs, tot.failedRuns, tot.concurrent, tot.sweeps,
		tot.ledgerLosses, tot.handRules, tot.bulkFiles, tot.poisoned, tot.otherScenarios, tot.otherRuns, tot.otherCallChecks,
		tot.policyScenarios, tot.refused, tot.worldOpen, tot.policyChecks, tot.responded, tot.handoffs, tot.spoofed, tot.fleetScenarios, tot.fleetRuns, tot.refusedMoves,
		tot.samples, tot.protectedChecks, tot.calls, injected, strings.Join(kinds, " "), len(tot.violations), time.Since(start).Round(time.Millisecond))
	summary += "; " + opsSummary(tot.ops)
	t.Log(summary)
	if path := os.Getenv("CHAOS_SUMMARY"); path != "" {
		_ = os.WriteFile(path, []byte(summary+"\n"), 0o644)
	}
}

// file is one rule file of the bucket, as rule name → YAML body lines.
type file struct {
	rules map[string]string
}

func (f file) render() string {
	var b strings.Builder
	b.WriteString("rules:\n")
	names := make([]string, 0, len(f.rules))
	for n := range f.rules {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b.WriteString("  " + n + ":\n" + f.rules[n])
	}
	return b.String()
}

type scenario struct {
	t      *testing.T
	seed   uint64
	rng    *rand.Rand
	w      *world
	pa, pb *faultproxy.Proxy
	pc     *faultproxy.Proxy // the second deployment's
	other  *other            // nil: no second deployment in this scenario
	pd     *faultproxy.Proxy // the hub's
	fleet  *fleet            // nil: no hub of two accounts in this scenario
	engA   *reconcile.Engine
	engB   *reconcile.Engine
	guard  *guard // nil: no policy in this scenario
	tot    *totals

	files   map[string]file // the bucket
	nextID  int
	shared  []string // rule bodies (without description) reused across files
	pending []string // keys with an undelivered event
	hand    map[string]reconcile.ActualRule
	bulk    string                 // the key of the bulk file, "" if none
	fixed   map[string]string      // files no step changes (deployments_test.go)
	poison  map[string]bool        // keys whose object is an oversized invalid upload
	base    []reconcile.ActualRule // rules of the new groups (moto's default egress)
	// lost are the rules sgrules had created or claimed when the ledger
	// was lost: nothing proves them its own any more (their tag alone
	// does not), so those no file declares again stay (reported as
	// unproven when they carry its sgrules:ledger tag).
	lost map[string]reconcile.ActualRule
	// lostDescs are, for each rule of lost, the descriptions the first
	// deployment may have given it since the (last) loss: the one it had
	// then and those its files declared for its permission after
	// (noteLostDescriptions, deployments_test.go).
	lostDescs map[string]map[string]bool

	mu         sync.Mutex
	protected  map[rules.Key]string // key → rule id that must stay during the step
	step       int
	violations []string
	history    []string
}

func newScenario(t *testing.T, srv *motoserver.Server, seed uint64, pa, pb, pc, pd *faultproxy.Proxy, tot *totals) *scenario {
	w := newWorld(t, srv, groupsPerWorld, "web", "spare")
	pa.Reset()
	pb.Reset()
	pc.Reset()
	pd.Reset()
	pa.Reseed(seed)
	pb.Reseed(seed ^ 0xb)
	pc.Reseed(seed ^ 0xc)
	pd.Reseed(seed ^ 0xd)
	s := &scenario{t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, 0xc4a05)), w: w, pa: pa, pb: pb, pc: pc, pd: pd, tot: tot,
		files: map[string]file{}, hand: map[string]reconcile.ActualRule{}, poison: map[string]bool{},
		lost: map[string]reconcile.ActualRule{}, lostDescs: map[string]map[string]bool{}}
	if seed%2 == 0 { // a guardrail policy in every other scenario
		s.guard = newGuard(w)
		w.policy = true
		tot.policyScenarios++
	}
	s.engA = w.engine(pa, fmt.Sprintf("A-%d", seed), nil)
	s.engB = w.engine(pb, fmt.Sprintf("B-%d", seed), nil)
	s.base = w.rules()
	for i := 0; i < 3; i++ {
		s.shared = append(s.shared, s.ruleBody())
	}
	if s.rng.IntN(3) == 0 {
		s.other = newOther(s, pc)
		tot.otherScenarios++
	}
	s.bothExclusive()
	if seed%4 == 3 { // a hub of two accounts in a quarter of the scenarios
		s.fleet = newFleet(s, pd)
		tot.fleetScenarios++
	}
	return s
}

func (s *scenario) logf(format string, args ...any) {
	s.history = append(s.history, fmt.Sprintf("  [step %d] ", s.step)+fmt.Sprintf(format, args...))
}

func (s *scenario) violate(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.violations = append(s.violations, fmt.Sprintf("step %d: ", s.step)+fmt.Sprintf(format, args...))
}

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

var (
	cidr4 = []string{"10.0.0.0/8", "10.1.0.0/16", "192.168.1.0/24", "172.16.0.0/12", "203.0.113.7/32"}
	cidr6 = []string{"2001:db8::/32", "2001:db8:1::/48", "fd00::/8"}
	descs = []string{"", "web", "db access", "ops team", "temporary (ticket 42)"}
)

// ruleBody returns a random rule without description: group, type,
// protocol, ports and peers.
func (s *scenario) ruleBody() string {
	r := s.rng
	g := r.IntN(groupsPerWorld)
	var b strings.Builder
	fmt.Fprintf(&b, "    securityGroup: {tags: {Name: g%d}}\n", g)
	fmt.Fprintf(&b, "    type: %s\n", pick(r, "ingress", "ingress", "egress"))
	switch pick(r, "tcp", "tcp", "tcp", "udp", "icmp", "-1") {
	case "tcp", "udp":
		proto := pick(r, "tcp", "udp")
		from := pick(r, int32(22), 80, 443, 5432, 8080)
		to := from
		if r.IntN(4) == 0 {
			from, to = 8000, 8100
		}
		fmt.Fprintf(&b, "    protocol: %s\n    fromPort: %d\n    toPort: %d\n", proto, from, to)
	case "icmp":
		fmt.Fprintf(&b, "    protocol: icmp\n    fromPort: %d\n    toPort: -1\n", pick(r, 0, 8))
	default:
		b.WriteString("    protocol: \"-1\"\n")
	}
	peers := 0
	if r.IntN(2) == 0 {
		fmt.Fprintf(&b, "    cidrBlocks: [%s]\n", pick(r, cidr4...))
		peers++
	}
	if r.IntN(3) == 0 {
		fmt.Fprintf(&b, "    ipv6CidrBlocks: [\"%s\"]\n", pick(r, cidr6...))
		peers++
	}
	if peers == 0 || r.IntN(3) == 0 {
		other := (g + 1 + r.IntN(groupsPerWorld-1)) % groupsPerWorld
		fmt.Fprintf(&b, "    sourceSecurityGroups: [{tags: {Name: g%d}}]\n", other)
	}
	return b.String()
}

func (s *scenario) randomRule() string {
	body := s.ruleBody()
	if s.rng.IntN(4) == 0 {
		body = pick(s.rng, s.shared...)
	}
	if d := pick(s.rng, descs...); d != "" {
		body += fmt.Sprintf("    description: %q\n", d)
	}
	return body
}

// valid tells whether f parses and expands without error (no two rules of
// one file with the same permission) and, with a policy, passes it.
func (s *scenario) valid(key string, f file) bool {
	perms, err := s.w.expand(key, f.render())
	return err == nil && (s.guard == nil || s.guard.accepts(perms))
}

func (s *scenario) newFile(key string) file {
	for {
		f := file{rules: map[string]string{}}
		for i := 0; i < 1+s.rng.IntN(3); i++ {
			f.rules[fmt.Sprintf("r%d", s.nextRule())] = s.randomRule()
		}
		if s.valid(key, f) {
			return f
		}
	}
}

func (s *scenario) nextRule() int { s.nextID++; return s.nextID }

// mutate changes one thing of f: add, remove, replace or rename a rule,
// or change a description.
func (s *scenario) mutate(key string, f file) (file, string) {
	for {
		g := file{rules: map[string]string{}}
		for n, b := range f.rules {
			g.rules[n] = b
		}
		names := make([]string, 0, len(g.rules))
		for n := range g.rules {
			names = append(names, n)
		}
		sort.Strings(names)
		victim := pick(s.rng, names...)
		what := pick(s.rng, "add", "remove", "replace", "rename", "describe", "describe")
		switch what {
		case "add":
			g.rules[fmt.Sprintf("r%d", s.nextRule())] = s.randomRule()
		case "remove":
			if len(g.rules) == 1 {
				continue
			}
			delete(g.rules, victim)
		case "replace":
			g.rules[victim] = s.randomRule()
		case "rename":
			g.rules[fmt.Sprintf("r%d", s.nextRule())] = g.rules[victim]
			delete(g.rules, victim)
		case "describe":
			body := g.rules[victim]
			if i := strings.Index(body, "    description:"); i >= 0 {
				body = body[:i]
			}
			g.rules[victim] = body + fmt.Sprintf("    description: %q\n", pick(s.rng, descs[1:]...)+" v"+strconv.Itoa(s.nextRule()))
		}
		if s.valid(key, g) {
			return g, what + " " + victim
		}
	}
}

func (s *scenario) content() map[string]string {
	out := make(map[string]string, len(s.files))
	for k, f := range s.files {
		out[k] = f.render()
	}
	maps.Copy(out, s.fixed)
	return out
}

func (s *scenario) fileOp() {
	keys := make([]string, 0, len(s.files))
	for k := range s.files {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	op := "create"
	if len(keys) > 0 {
		op = pick(s.rng, "create", "update", "update", "update", "delete", "rename")
	}
	if len(keys) >= 4 && op == "create" {
		op = "update"
	}
	if op == "update" && s.rng.IntN(12) == 0 {
		op = "poison"
	}
	if (op == "update" || op == "create") && s.guard != nil && s.rng.IntN(5) == 0 {
		op = "refuse " + op
	}
	switch op {
	case "refuse create":
		s.refuse(fmt.Sprintf("%sf%d.yaml", prefix, s.nextRule()))
	case "refuse update":
		s.refuse(pick(s.rng, keys...))
	case "create":
		key := fmt.Sprintf("%sf%d.yaml", prefix, s.nextRule())
		if s.bulk == "" && s.rng.IntN(10) == 0 {
			s.files[key] = s.bulkFile()
			s.bulk = key
			s.tot.bulkFiles++
			s.logf("create %s: bulk, %d rules", key, len(s.files[key].rules))
		} else {
			s.files[key] = s.newFile(key)
			s.logf("create %s", key)
		}
		s.w.put(key, s.files[key].render())
		s.pending = append(s.pending, key)
	case "update":
		key := pick(s.rng, keys...)
		f, what := s.mutate(key, s.files[key])
		if key == s.bulk && s.rng.IntN(2) == 0 {
			f, what = s.reshape(f)
		}
		s.files[key] = f
		delete(s.poison, key)
		s.w.put(key, f.render())
		s.pending = append(s.pending, key)
		s.logf("update %s: %s", key, what)
	case "poison":
		s.poisonFile(pick(s.rng, keys...))
	case "delete":
		key := pick(s.rng, keys...)
		delete(s.files, key)
		delete(s.poison, key)
		if key == s.bulk {
			s.bulk = ""
		}
		s.w.remove(key)
		s.pending = append(s.pending, key)
		s.logf("delete %s", key)
	case "rename":
		old := pick(s.rng, keys...)
		key := fmt.Sprintf("%sf%d.yaml", prefix, s.nextRule())
		s.files[key] = s.files[old]
		delete(s.files, old)
		delete(s.poison, old)
		if old == s.bulk {
			s.bulk = key
		}
		s.w.put(key, s.files[key].render())
		s.w.remove(old)
		s.pending = append(s.pending, key, old)
		s.logf("rename %s -> %s", old, key)
	}
}

// faults draws the faults of one engine for one step.
func (s *scenario) faults() faultproxy.Faults { return drawFaults(s.rng) }

// drawFaults draws random faults: rates, sometimes an abort after the
// k-th mutating call, sometimes a cut of the k-th ledger commit chunk.
func drawFaults(r *rand.Rand) faultproxy.Faults {
	if r.IntN(4) == 0 {
		return faultproxy.Faults{}
	}
	f := faultproxy.Faults{
		ThrottleRate:    pick(r, 0, 0.05, 0.15, 0.3),
		ServerErrorRate: pick(r, 0, 0.03, 0.1),
		DropAfterRate:   pick(r, 0, 0.1, 0.3),
		DelayRate:       pick(r, 0, 0.1),
		MaxDelay:        20 * time.Millisecond,
	}
	if r.IntN(4) == 0 {
		f.AbortAfter = 1 + r.IntN(6)
	}
	if r.IntN(4) == 0 {
		f.CutAt, f.CutMode, f.CutCalls = 1+r.IntN(3), pick(r, faultproxy.CutBefore, faultproxy.CutAfter), isCommitChunk
	}
	return f
}

// run plays the scenario: steps of file changes and event deliveries
// under faults, then a sweep with faults off, then the final checks.
func (s *scenario) run() {
	for s.step = 1; s.step <= stepsPerScenario; s.step++ {
		s.tot.steps++
		before := s.content()
		if s.rng.IntN(4) == 0 {
			g := pick(s.rng, s.w.ids...)
			for s.other != nil && g == s.other.excl { // the other would rightly revoke it
				g = pick(s.rng, s.w.ids...)
			}
			port := int32(9000 + len(s.hand))
			r := s.w.handRule(g, port, fmt.Sprintf("by hand %d", len(s.hand)), nil)
			s.hand[r.RuleID] = r
			s.tot.handRules++
			s.logf("hand rule %s", r.Key)
		}
		if s.rng.IntN(5) == 0 {
			s.spoof()
		}
		if s.step > 1 && s.rng.IntN(12) == 0 {
			for _, r := range s.w.rules() {
				// Its claim on a rule of the second deployment is as
				// unproven as its tag: when the second lets the rule go
				// to it (no peer ledgers: the claim is honoured), nothing
				// revokes it (docs/reliability.md, "Other deployments").
				claimed := r.Tags[reconcile.TagClaimPrefix+deployment] != ""
				if _, byHand := s.hand[r.RuleID]; !byHand && (r.Tags[reconcile.TagLedger] == deployment || claimed) {
					s.lost[r.RuleID] = r
					s.lostDescs[r.RuleID] = map[string]bool{r.Description: true}
				}
			}
			n := s.w.wipeLedger()
			s.tot.ledgerLosses++
			s.logf("ledger lost (%d items)", n)
			// An invalid file keeps what it applied only as long as its
			// record holds it: without one it declares nothing.
			for k := range s.poison {
				delete(s.files, k)
				if k == s.bulk {
					s.bulk = ""
				}
			}
		}
		if guardrail := s.rng.IntN(2) == 0; s.guard != nil && s.step > 1 && guardrail {
			if keys := sortedFileKeys(s.files); len(keys) > 0 && s.rng.IntN(2) == 0 {
				s.respond(pick(s.rng, keys...))
			} else {
				s.handoff()
			}
		}
		s.noteLostDescriptions(s.content()) // after the loss, a respond or handoff
		for i := 0; i < 1+s.rng.IntN(2); i++ {
			s.fileOp()
		}
		s.noteLostDescriptions(s.content())
		if s.other != nil && s.rng.IntN(2) == 0 {
			s.other.fileOp()
		}
		if s.fleet != nil && s.fleet.rng.IntN(3) > 0 {
			s.fleet.fileOp()
		}
		s.protect(before, s.content())
		s.deliver()
		s.check("after step", nil, "")
	}
	s.step = 0
	s.converge()
}

// protect computes the permissions that must stay (with their rule id)
// while the step's events are delivered: every rule in EC2 now whose key
// the bucket declared before the step's file changes and still declares
// after them, and whose every owner in the ledger still declares it after
// them (the owners of its key, and those of a record holding its rule id
// under another key: see recordedOwners). Such a permission has an owner whichever subset of the events
// runs, in whichever order, so make-before-break forbids it to vanish or
// be replaced (a revoke+authorize changes the rule id). A rule of the
// second deployment that the first's ledger does not hold is left to
// protectShared (see othersRules).
func (s *scenario) protect(before, after map[string]string) {
	db, da := s.w.desire(before), s.w.desire(after)
	owned := s.w.owned()
	others := s.othersRules()
	prot := map[rules.Key]string{}
	for _, r := range s.w.rules() {
		owners := recordedOwners(owned, r)
		if len(owners) == 0 && others[r.RuleID] {
			continue
		}
		if _, ok := db[r.Key]; !ok {
			continue
		}
		if _, ok := da[r.Key]; !ok {
			continue
		}
		srcs := da.sourcesOf(r.Key)
		ok := true
		for o := range owners {
			if !srcs[o] {
				ok = false
			}
		}
		if ok {
			prot[r.Key] = r.RuleID
		}
	}
	s.protectShared(prot)
	s.mu.Lock()
	s.protected = prot
	s.mu.Unlock()
}

// check samples EC2: rules added by hand are untouched, protected
// permissions are present with the same rule id, and the second
// deployment's rules are as it left them when it is idle. With a call (a
// mutating EC2 call about to be forwarded, of the deployment ledger), it
// also checks the call names no rule of the other deployment, no rule
// added by hand and no group's own rule.
func (s *scenario) check(when string, call *faultproxy.Call, ledger string) {
	have := map[string]reconcile.ActualRule{}
	byKey := map[rules.Key]string{}
	for _, r := range s.w.rules() {
		have[r.RuleID] = r
		byKey[r.Key] = r.RuleID
	}
	s.mu.Lock()
	prot := s.protected
	s.tot.samples++
	s.tot.protectedChecks += len(prot)
	s.mu.Unlock()
	for id, h := range s.hand {
		got, ok := have[id]
		switch {
		case !ok:
			s.violate("%s: rule added by hand %s %s was revoked", when, id, h.Key)
		case got.Key != h.Key || got.Description != h.Description:
			s.violate("%s: rule added by hand %s changed: %s %q -> %s %q", when, id, h.Key, h.Description, got.Key, got.Description)
		}
	}
	for _, b := range s.base {
		if _, ok := have[b.RuleID]; !ok {
			s.violate("%s: the group's own rule %s %s was revoked", when, b.RuleID, b.Key)
		}
	}
	if s.guard != nil {
		ids := slices.Sorted(maps.Keys(have))
		keys := make([]rules.Key, len(ids))
		for i, id := range ids {
			keys[i] = have[id].Key
		}
		for i, v := range s.guard.violations(keys) {
			if v != "" {
				s.violate("%s: rule %s %s violates policy %s", when, ids[i], keys[i], v)
			}
		}
		for _, v := range s.guard.worldOpen(slices.Collect(maps.Values(have))) {
			s.violate("%s: %s", when, v)
		}
		s.mu.Lock()
		s.tot.policyChecks += len(have)
		s.mu.Unlock()
	}
	for k, id := range prot {
		got, ok := byKey[k]
		switch {
		case !ok:
			s.violate("%s: make-before-break: %s missing while declared before and after", when, k)
		case got != id:
			s.violate("%s: make-before-break: %s replaced (rule %s -> %s) while declared before and after", when, k, id, got)
		}
	}
	if s.other != nil {
		if snap, idle := s.other.idleRules(); idle {
			for id, o := range snap {
				got, ok := have[id]
				switch {
				case !ok:
					s.violate("%s: rule %s %s of the other deployment was revoked", when, id, o.Key)
				case got.Key != o.Key || got.Description != o.Description:
					s.violate("%s: rule %s of the other deployment changed: %s %q -> %s %q", when, id, o.Key, o.Description, got.Key, got.Description)
				}
			}
		}
	}
	if call == nil {
		return
	}
	if s.other != nil && ledger == s.other.id {
		s.mu.Lock()
		s.tot.otherCallChecks++
		s.mu.Unlock()
	}
	for _, id := range namedRuleIDs(*call) {
		r, ok := have[id]
		if !ok {
			continue
		}
		_, byHand := s.hand[id]
		switch owner := r.Tags[reconcile.TagLedger]; {
		case owner != "" && owner != ledger:
			s.violate("%s: deployment %s names rule %s %s of deployment %s", when, ledger, id, r.Key, owner)
		case byHand:
			s.violate("%s: deployment %s names rule %s %s added by hand", when, ledger, id, r.Key)
		}
		for _, b := range s.base {
			if b.RuleID == id {
				s.violate("%s: deployment %s names the group's own rule %s %s", when, ledger, id, r.Key)
			}
		}
	}
}

// deliver sends the pending events, shuffled, some duplicated, some
// dropped, in one or two batches, maybe concurrently on two engines, and
// maybe with a sweep, under faults.
func (s *scenario) deliver() {
	r := s.rng
	reqs := eventRequests(r, s.pending, s.logf)
	s.pending = nil
	if r.IntN(6) == 0 {
		reqs = append(reqs, reconcile.Request{All: true, Reason: "sweep"})
	}
	fa, fb := s.faults(), s.faults()
	s.pa.Set(fa)
	s.pb.Set(fb)
	sampler := func(ledger string) func(faultproxy.Call) {
		return func(c faultproxy.Call) {
			if c.Service == faultproxy.EC2 && c.Mutating {
				s.check("before "+c.Action, &c, ledger)
			}
		}
	}
	s.pa.Before(sampler(deployment))
	s.pb.Before(sampler(deployment))
	defer func() {
		s.pa.Before(nil)
		s.pb.Before(nil)
		s.pc.Before(nil)
		s.pd.Before(nil)
		s.pd.Set(faultproxy.Faults{})
		s.pa.Set(faultproxy.Faults{})
		s.pb.Set(faultproxy.Faults{})
		s.pc.Set(faultproxy.Faults{})
	}()
	if s.other != nil {
		oreqs, fc := s.other.plan()
		if len(oreqs) > 0 {
			s.pc.Set(fc)
			s.pc.Before(sampler(s.other.id))
			wait := s.other.start(oreqs)
			defer func() {
				log := wait()
				s.tot.otherRuns += len(oreqs)
				s.history = append(s.history, log...)
			}()
		}
	}
	if s.fleet != nil {
		freqs, fd := s.fleet.plan()
		if len(freqs) > 0 {
			s.pd.Set(fd)
			s.pd.Before(sampler(fleetTable))
			wait := s.fleet.start(freqs)
			defer func() { s.history = append(s.history, wait()...) }()
		}
	}

	if len(reqs) >= 2 && r.IntN(2) == 0 {
		s.tot.concurrent++
		runPair(s.engA, s.engB, reqs, s.reconcile, s.logf)
		reqs = reqs[2:]
	}
	for _, req := range reqs {
		eng := s.engA
		if r.IntN(2) == 0 {
			eng = s.engB
		}
		err := s.reconcile(eng, req)
		s.logf("run %v: %v", describe(req), err)
	}
}

// eventRequests turns the keys with a pending event into one or two
// requests: each event dropped (10 %, logged), duplicated (20 %) or sent
// once, shuffled, cut in two at a random point. Every scenario kind
// delivers its events so, drawing from r in this order (a seed replays
// identically).
func eventRequests(r *rand.Rand, pending []string, logf func(string, ...any)) []reconcile.Request {
	var events []string
	for _, k := range pending {
		switch x := r.IntN(10); {
		case x == 0:
			logf("event %s dropped", k)
		case x < 3:
			events = append(events, k, k)
		default:
			events = append(events, k)
		}
	}
	r.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
	var reqs []reconcile.Request
	if len(events) > 0 {
		cut := r.IntN(len(events) + 1)
		for _, part := range [][]string{events[:cut], events[cut:]} {
			if len(part) > 0 {
				reqs = append(reqs, reconcile.Request{Keys: part, Reason: "event"})
			}
		}
	}
	return reqs
}

// runPair runs reqs[0] on a and reqs[1] on b concurrently and logs both
// outcomes.
func runPair(a, b *reconcile.Engine, reqs []reconcile.Request, run func(*reconcile.Engine, reconcile.Request) error, logf func(string, ...any)) {
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, eng := range []*reconcile.Engine{a, b} {
		wg.Go(func() { errs[i] = run(eng, reqs[i]) })
	}
	wg.Wait()
	logf("concurrent %v | %v: %v | %v", describe(reqs[0]), describe(reqs[1]), errs[0], errs[1])
}

func describe(req reconcile.Request) string {
	if req.All {
		return "sweep"
	}
	return strings.Join(req.Keys, ",")
}

func (s *scenario) reconcile(eng *reconcile.Engine, req reconcile.Request) error {
	_, err := s.reconcileResult(eng, req)
	return err
}

func (s *scenario) reconcileResult(eng *reconcile.Engine, req reconcile.Request) (reconcile.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := eng.Reconcile(ctx, req)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tot.runs++
	if req.All {
		s.tot.sweeps++
	}
	if err != nil {
		s.tot.failedRuns++
	}
	return res, err
}

// converge runs the drift sweeps with faults off (a second one if the
// first failed, e.g. on a lease a crashed run left), the second
// deployment's first (and once more after the first's when that one let
// go of rules the second claims), then checks that EC2 is exactly the desired state
// of both deployments' files plus the unmanaged rules, that each ledger
// owns exactly its declared rules with their declaring owners (no ghost
// owner) and keeps one record per file, and that one more sweep of each
// changes nothing.
func (s *scenario) converge() {
	for _, p := range []*faultproxy.Proxy{s.pa, s.pb, s.pc, s.pd} {
		st := p.Stats()
		s.tot.calls += st.Calls
		for k, v := range st.Faults {
			s.tot.faults[k] += v
		}
		p.Reset()
	}
	s.protected = nil
	if s.fleet != nil {
		if err := s.fleet.finalSweep(); err != nil {
			s.violate("the hub's final sweep failed without faults: %v", err)
			return
		}
	}
	if s.other != nil {
		if err := s.other.finalSweep(); err != nil {
			s.violate("the other deployment's final sweep failed without faults: %v", err)
			return
		}
		s.other.snap() // the final sweep of the first deployment must leave these alone
	}
	var err error
	released := false
	for attempt := 0; attempt < 3; attempt++ {
		var res reconcile.Result
		res, err = s.reconcileResult(s.engA, reconcile.Request{All: true, Reason: "final sweep"})
		released = released || slices.ContainsFunc(res.Plan.Actions, func(a reconcile.Action) bool { return a.Kind == reconcile.ActRelease })
		if err == nil {
			break
		}
		s.logf("final sweep %d: %v", attempt+1, err)
	}
	if err != nil {
		s.violate("final sweep failed without faults: %v", err)
		return
	}
	s.check("after the final sweep", nil, "")
	if released && s.other != nil {
		// The first let go of rules the second claims (its files
		// declare them no more, e.g. a file whose deletion only this
		// sweep saw): when the creator lets go, the remaining claimer
		// sets its own description at its next run
		// (docs/reliability.md, "Other deployments"); its final sweep
		// ran before. A flap still shows: the idle sweeps below must
		// write nothing.
		s.tot.ops["rules the first deployment's final sweep handed to the second"]++
		if err := s.other.finalSweep(); err != nil {
			s.violate("the other deployment's sweep after a release failed without faults: %v", err)
			return
		}
		s.other.snap()
	}

	ctx := context.Background()
	d := s.w.desire(s.content())
	all := declared{}
	for k, v := range d {
		all[k] = v
	}
	var od declared
	if s.other != nil {
		od = s.w.desire(s.other.content())
		s.mergeShared(all, od) // both may declare a permission (deployments_test.go)
	}
	var fd declared
	if s.fleet != nil {
		fd = s.fleet.desire(false)
		for k, v := range fd {
			if _, dup := all[k]; dup {
				s.t.Fatalf("seed %d: the hub and another deployment declare %s (the suite must keep them apart)", s.seed, k)
			}
			all[k] = v
		}
	}
	var keep []reconcile.ActualRule
	for _, b := range s.base {
		if _, declared := all[b.Key]; !declared { // the other's exclusive group declares its own
			keep = append(keep, b)
		}
	}
	keep = append(keep, slices.Collect(maps.Values(s.hand))...)
	actual := s.w.rules()
	for _, r := range actual {
		if _, declared := all[r.Key]; !declared && s.lost[r.RuleID].RuleID != "" {
			keep = append(keep, r) // unproven since the ledger loss: left alone
		}
	}
	for _, v := range ec2Violations(actual, all, keep) {
		s.violate("after the final sweeps, %s", v)
	}
	ids := map[rules.Key]string{}
	for _, a := range actual {
		ids[a.Key] = a.RuleID
	}
	keys := s.content()
	for k := range s.poison {
		keys[k] = ""
	}
	poisoned := map[string]reconcile.Status{}
	for k := range s.poison {
		poisoned[k] = reconcile.StatusInvalid
	}
	vs, err := ledgerViolations(ctx, s.w.ledger, d, keys, poisoned, ids)
	if err != nil {
		s.t.Fatalf("seed %d: read ledger: %v", s.seed, err)
	}
	for _, v := range vs {
		s.violate("%s", v)
	}
	if s.other != nil {
		vs, err := ledgerViolations(ctx, s.other.led, od, s.other.content(), nil, ids)
		if err != nil {
			s.t.Fatalf("seed %d: read the other ledger: %v", s.seed, err)
		}
		for _, v := range vs {
			s.violate("other deployment: %s", v)
		}
	}

	if s.fleet != nil {
		files, status := s.fleet.records(false)
		vs, err := ledgerViolations(ctx, s.fleet.led.For(s.fleet.home), fd, files, status, ids)
		if err != nil {
			s.t.Fatalf("seed %d: read the fleet's ledger: %v", s.seed, err)
		}
		for _, v := range vs {
			s.violate("fleet, home target: %s", v)
		}
		s.fleet.checkRemote(ctx)
		before := s.pd.Stats().Mutating
		var writes callLog
		s.pd.Before(writes.record("hub"))
		if err := s.fleet.reconcile(reconcile.Request{All: true, Reason: "idle sweep"}); err != nil {
			s.violate("the hub's idle sweep: %v", err)
		}
		s.pd.Before(nil)
		if n := s.pd.Stats().Mutating - before; n != 0 {
			s.violate("the hub's sweep after convergence made %d mutating calls: %s", n, writes.String())
		}
	}

	// Converged: another sweep of each changes nothing.
	before := s.pa.Stats().Mutating + s.pc.Stats().Mutating
	var writes callLog
	s.pa.Before(writes.record(deployment))
	if err := s.reconcile(s.engA, reconcile.Request{All: true, Reason: "idle sweep"}); err != nil {
		s.violate("idle sweep: %v", err)
	}
	s.pa.Before(nil)
	if s.other != nil {
		s.pc.Before(writes.record(s.other.id))
		if err := s.reconcile(s.other.eng, reconcile.Request{All: true, Reason: "idle sweep"}); err != nil {
			s.violate("the other deployment's idle sweep: %v", err)
		}
		s.pc.Before(nil)
	}
	if n := s.pa.Stats().Mutating + s.pc.Stats().Mutating - before; n != 0 {
		s.violate("sweeps after convergence made %d mutating calls: %s", n, writes.String())
	}
	s.checkReports()
}

// callLog collects the mutating calls a proxy forwards (its Before
// function), to name them in a violation.
type callLog struct {
	mu    sync.Mutex
	calls []string
}

// record returns a Before function adding each mutating call, as made by
// the deployment of ledger, to the log.
func (l *callLog) record(ledger string) func(faultproxy.Call) {
	return func(c faultproxy.Call) {
		if !c.Mutating {
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		l.calls = append(l.calls, ledger+" "+describeCall(c))
	}
}

func (l *callLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return "[" + strings.Join(l.calls, "; ") + "]"
}

// describeCall names a call with what it touches: an EC2 call's form
// fields (group, rule ids, tags, descriptions), a DynamoDB call's request
// (table, keys, items) or an S3 call's method and path, cut to a readable
// length.
func describeCall(c faultproxy.Call) string {
	const max = 1500
	var detail string
	switch c.Service {
	case faultproxy.EC2:
		var fields []string
		for _, k := range slices.Sorted(maps.Keys(c.Params)) {
			if k == "Action" || k == "Version" {
				continue
			}
			fields = append(fields, k+"="+strings.Join(c.Params[k], ","))
		}
		detail = strings.Join(fields, " ")
	case faultproxy.DynamoDB:
		detail = string(c.Body)
	}
	if len(detail) > max {
		detail = detail[:max] + "..."
	}
	return strings.TrimSpace(c.String() + " " + detail)
}

// bulkFile returns a file of 101 to 120 single-permission rules: its
// commits span two TransactWriteItems chunks.
func (s *scenario) bulkFile() file {
	return file{rules: bigRules(101+s.rng.IntN(20), 20000+(s.nextRule()%150)*250, "10.200.0.0/16")}
}

// reshape replaces a third of a bulk file's rules by new ones (other
// ports): one commit of some 35 puts and 35 deletes.
func (s *scenario) reshape(f file) (file, string) {
	for {
		g := file{rules: map[string]string{}}
		names := sortedFileKeys(f.rules)
		n := len(names) / 3
		s.rng.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
		for _, name := range names[n:] {
			g.rules[name] = f.rules[name]
		}
		for name, body := range bigRules(n, 20000+(s.nextRule()%150)*250, "10.200.0.0/16") {
			g.rules[name] = body
		}
		if len(g.rules) == len(f.rules) && s.valid("bulk", g) {
			return g, fmt.Sprintf("reshape (%d rules replaced)", n)
		}
	}
}

// poisonRules is the number of invalid rules of an oversized invalid
// upload: some 3000 errors in about 500 KB.
const poisonRules = 3000

// poisonBody is a file of poisonRules rules whose ports are out of range.
func poisonBody() string {
	var b strings.Builder
	b.WriteString("rules:\n")
	for i := 0; i < poisonRules; i++ {
		fmt.Fprintf(&b, "  bad%d:\n    securityGroup: {tags: {Name: g%d}}\n    type: ingress\n    protocol: tcp\n    fromPort: %d\n    toPort: %d\n    cidrBlocks: [10.0.0.0/8]\n    description: \"a rule of an oversized invalid upload\"\n",
			i, i%groupsPerWorld, 70000+i, 70000+i)
	}
	return b.String()
}

// poisonFile replaces a file by an oversized invalid upload. The file's
// content is applied first (one run without faults), so that what it
// applied before is known; then the upload's run, also without faults,
// must succeed (an invalid file is terminal: no retry storm) and record
// the source invalid, with capped diagnostics, keeping every permission
// the file applied before. The file model keeps the previous content; a
// later valid upload replaces it.
func (s *scenario) poisonFile(key string) {
	s.tot.poisoned++
	if err := s.reconcile(s.engA, reconcile.Request{Keys: []string{key}, Reason: "before the oversized upload"}); err != nil {
		s.violate("run of %s without faults: %v", key, err)
		return
	}
	s.w.put(key, poisonBody())
	s.poison[key] = true
	res, err := s.reconcileResult(s.engA, reconcile.Request{Keys: []string{key}, Reason: "oversized invalid upload"})
	s.logf("oversized invalid upload %s: %v", key, err)
	if err != nil {
		s.violate("the run of the oversized invalid upload %s failed: %v", key, err)
		return
	}
	for _, r := range res.Sources {
		if r.Key == key && (r.Status != reconcile.StatusInvalid || len(r.Diagnostics) < poisonRules) {
			s.violate("oversized invalid upload %s: status %s with %d diagnostics, want invalid with at least %d", key, r.Status, len(r.Diagnostics), poisonRules)
		}
	}
	rec, ok, err := s.w.ledger.GetSource(context.Background(), key)
	switch {
	case err != nil:
		s.t.Fatalf("seed %d: read source %s: %v", s.seed, key, err)
	case !ok || rec.Status != reconcile.StatusInvalid:
		s.violate("oversized invalid upload %s: record %v %+v, want status invalid", key, ok, rec.Status)
	case len(rec.Diagnostics) > reconcile.MaxStoredDiagnostics+1:
		s.violate("oversized invalid upload %s: the record stores %d diagnostics", key, len(rec.Diagnostics))
	}
	have := map[rules.Key]bool{}
	for _, r := range s.w.rules() {
		have[r.Key] = true
	}
	for k := range s.w.desire(map[string]string{key: s.files[key].render()}) {
		if !have[k] {
			s.violate("oversized invalid upload %s: %s, applied before, is gone", key, k)
		}
	}
}
