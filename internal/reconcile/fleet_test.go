package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/sgrules/sgrules/pkg/rules"
)

// fakeTargets is one fake ledger scope and one fake EC2 per target.
type fakeTargets struct {
	mu   sync.Mutex
	led  map[rules.Target]*fakeLedger
	ec2  map[rules.Target]*fakeEC2
	home rules.Target
	// listAll counts ListAllSources calls, scoped the targets whose
	// ledger For returned.
	listAll int
	scoped  map[rules.Target]int
}

func (f *fakeTargets) For(t rules.Target) Ledger {
	f.mu.Lock()
	defer f.mu.Unlock()
	t = t.Resolve(f.home)
	if f.scoped == nil {
		f.scoped = map[rules.Target]int{}
	}
	f.scoped[t]++
	if f.led[t] == nil {
		f.led[t] = newFakeLedger()
	}
	return f.led[t]
}

// ec2For is the target's fake EC2; a target the harness did not set up
// (swept because its account is allowed) has empty groups web and app.
func (f *fakeTargets) ec2For(t rules.Target) *fakeEC2 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ec2[t] == nil {
		e := newFakeEC2()
		e.addGroup(sgWeb, "web")
		e.addGroup(sgApp, "app")
		f.ec2[t] = e
	}
	return f.ec2[t]
}

func (f *fakeTargets) ListAllSources(ctx context.Context) (map[rules.Target][]SourceRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listAll++
	out := map[rules.Target][]SourceRecord{}
	for t, l := range f.led {
		recs, _ := l.ListSources(ctx)
		if len(recs) > 0 {
			out[t] = recs
		}
	}
	return out, nil
}

var (
	fleetHome = rules.Target{Account: "000000000000", Region: "us-east-1"}
	fleetB1   = rules.Target{Account: "111122223333", Region: "us-east-1"}
	fleetB2   = rules.Target{Account: "111122223333", Region: "eu-west-1"}
	fleetC    = rules.Target{Account: "444455556666", Region: "us-east-1"}
)

type fleetHarness struct {
	t    *testing.T
	src  *fakeSource
	tgts *fakeTargets
	// deny makes the engine of these targets fail (AssumeRole denied).
	deny  map[rules.Target]bool
	fleet *Fleet
}

func newFleetHarness(t *testing.T) *fleetHarness {
	h := &fleetHarness{t: t, src: newFakeSource(), deny: map[rules.Target]bool{},
		tgts: &fakeTargets{led: map[rules.Target]*fakeLedger{}, ec2: map[rules.Target]*fakeEC2{}, home: fleetHome}}
	allow := func(a string) bool { return a == fleetHome.Account || a == fleetB1.Account || a == fleetC.Account }
	for _, tg := range []rules.Target{fleetHome, fleetB1, fleetB2, fleetC} {
		e := newFakeEC2()
		e.addGroup(sgWeb, "web")
		e.addGroup(sgApp, "app")
		h.tgts.ec2[tg] = e
	}
	fl, err := NewFleet(FleetConfig{Home: fleetHome, AllowAccount: allow, Source: h.src, Ledger: h.tgts,
		Engine: func(_ context.Context, tg rules.Target, src Source, led Ledger) (*Engine, error) {
			if h.deny[tg] {
				return nil, errors.New("assume role: AccessDenied")
			}
			return New(Config{Source: src, Groups: h.tgts.ec2For(tg), Ledger: led, LedgerID: testLedgerID,
				Target: tg, Home: fleetHome, AllowAccount: allow})
		}})
	if err != nil {
		t.Fatal(err)
	}
	h.fleet = fl
	return h
}

func (h *fleetHarness) run(req Request, only ...rules.Target) FleetResult {
	h.t.Helper()
	res, err := h.fleet.Reconcile(context.Background(), req, only)
	if err != nil {
		h.t.Fatal(err)
	}
	return res
}

// rulesIn renders the ports of the ingress rules in a target's web group.
func (h *fleetHarness) rulesIn(tg rules.Target) string {
	var ports []string
	for k := range h.tgts.ec2[tg].snapshot() {
		ports = append(ports, fmt.Sprint(k.FromPort))
	}
	sortStrings(ports)
	return strings.Join(ports, ",")
}

func targetFile(header string, port int) string {
	return header + fmt.Sprintf(`rules:
  r%d:
    securityGroup: sg-0000000a
    type: ingress
    protocol: tcp
    fromPort: %d
    toPort: %d
    cidrBlocks: [10.0.0.0/8]
`, port, port, port)
}

func TestFleetAppliesEachFileInItsTarget(t *testing.T) {
	h := newFleetHarness(t)
	h.src.put("rules/home.yaml", targetFile("", 22))
	h.src.put("rules/b1.yaml", targetFile("account: \"111122223333\"\n", 80))
	h.src.put("rules/b2.yaml", targetFile("account: \"111122223333\"\nregion: eu-west-1\n", 443))
	h.src.put("rules/c.yaml", targetFile("account: \"444455556666\"\n", 5432))
	res := h.run(Request{All: true})
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tr := range res.Targets {
		got = append(got, tr.Target.String())
	}
	if want := "000000000000/us-east-1 111122223333/eu-west-1 111122223333/us-east-1 444455556666/us-east-1"; strings.Join(got, " ") != want {
		t.Errorf("targets run = %v, want %s (home first)", got, want)
	}
	for tg, want := range map[rules.Target]string{fleetHome: "22", fleetB1: "80", fleetB2: "443", fleetC: "5432"} {
		if got := h.rulesIn(tg); got != want {
			t.Errorf("%s has ports %q, want %q", tg, got, want)
		}
	}
	targets, err := h.fleet.Targets(context.Background())
	if err != nil || len(targets) != 4 || targets[0] != fleetHome {
		t.Errorf("Targets = %v, %v", targets, err)
	}

	// A second sweep reads no file again (the ledger tells each file's target).
	h.src.gets = 0
	h.run(Request{All: true})
	if h.src.gets != 0 {
		t.Errorf("second sweep read %d files, want 0", h.src.gets)
	}

	// Removing a file revokes only in its target.
	h.src.remove("rules/b2.yaml")
	h.run(Request{Keys: []string{"rules/b2.yaml"}})
	for tg, want := range map[rules.Target]string{fleetHome: "22", fleetB1: "80", fleetB2: "", fleetC: "5432"} {
		if got := h.rulesIn(tg); got != want {
			t.Errorf("after removing b2.yaml: %s has ports %q, want %q", tg, got, want)
		}
	}
}

func TestFleetMovedFileIsRevokedInTheOldTarget(t *testing.T) {
	for _, mode := range []string{"keys", "sweep"} {
		t.Run(mode, func(t *testing.T) {
			h := newFleetHarness(t)
			h.src.put("rules/x.yaml", targetFile("account: \"111122223333\"\n", 80))
			h.run(Request{Keys: []string{"rules/x.yaml"}})
			h.src.put("rules/x.yaml", targetFile("account: \"444455556666\"\n", 80))
			req := Request{Keys: []string{"rules/x.yaml"}}
			if mode == "sweep" {
				req = Request{All: true}
			}
			h.run(req)
			if got := h.rulesIn(fleetB1); got != "" {
				t.Errorf("old target still has %q", got)
			}
			if got := h.rulesIn(fleetC); got != "80" {
				t.Errorf("new target has %q, want 80", got)
			}
			if recs, _ := h.tgts.For(fleetB1).ListSources(context.Background()); len(recs) != 0 {
				t.Errorf("old target keeps records %+v", recs)
			}
		})
	}
}

func TestFleetDisallowedAccountChangesNothing(t *testing.T) {
	h := newFleetHarness(t)
	h.src.put("rules/x.yaml", targetFile("account: \"111122223333\"\n", 80))
	h.run(Request{Keys: []string{"rules/x.yaml"}})
	h.src.put("rules/x.yaml", targetFile("account: \"999999999999\"\n", 80))
	res := h.run(Request{Keys: []string{"rules/x.yaml"}})
	srcs := res.Sources()
	if len(srcs) != 1 || srcs[0].Status != StatusInvalid || !strings.Contains(srcs[0].Diagnostics.Strings()[0], "rules/x.yaml:1:") {
		t.Fatalf("sources = %+v, want x.yaml invalid with a located error", srcs)
	}
	if res.Targets[0].Target != fleetB1 {
		t.Errorf("judged in %v, want the target holding its record", res.Targets[0].Target)
	}
	if got := h.rulesIn(fleetB1); got != "80" {
		t.Errorf("target has %q, want 80 kept", got)
	}
	// A new file naming such an account is invalid at home and reaches nothing.
	h.src.put("rules/y.yaml", targetFile("account: \"999999999999\"\n", 22))
	res = h.run(Request{Keys: []string{"rules/y.yaml"}})
	if len(res.Targets) != 1 || res.Targets[0].Target != fleetHome || res.Sources()[0].Status != StatusInvalid {
		t.Errorf("result = %+v", res)
	}
	for _, tg := range []rules.Target{fleetHome, fleetB2, fleetC} {
		if got := h.rulesIn(tg); got != "" {
			t.Errorf("%s has %q", tg, got)
		}
	}
}

func TestFleetTargetFailsAlone(t *testing.T) {
	h := newFleetHarness(t)
	h.deny[fleetC] = true
	h.src.put("rules/home.yaml", targetFile("", 22))
	h.src.put("rules/c.yaml", targetFile("account: \"444455556666\"\n", 5432))
	h.src.put("rules/b1.yaml", targetFile("account: \"111122223333\"\n", 80))
	res := h.run(Request{All: true})
	err := res.Err()
	if err == nil || !strings.Contains(err.Error(), "account 444455556666 region us-east-1: assume role: AccessDenied") {
		t.Fatalf("Err = %v", err)
	}
	var te *TargetError
	if !errors.As(err, &te) || te.Target != fleetC {
		t.Errorf("error is not a TargetError of %v: %v", fleetC, err)
	}
	if h.rulesIn(fleetHome) != "22" || h.rulesIn(fleetB1) != "80" {
		t.Errorf("other targets not applied: home %q, b1 %q", h.rulesIn(fleetHome), h.rulesIn(fleetB1))
	}
	// only narrows the run.
	res = h.run(Request{All: true}, rules.Target{Account: fleetB1.Account})
	if len(res.Targets) != 1 || res.Targets[0].Target != fleetB1 {
		t.Errorf("only b1: ran %+v", res.Targets)
	}
}

// A crash between a target's EC2 calls and its commit leaves rules of
// ours there with no record; once the file moves away, no file and no
// record name that target. Sweeps still visit every allowed account in
// the regions in use, and clean the orphans up.
func TestFleetSweepFindsOrphansInTargetsWithoutRecords(t *testing.T) {
	h := newFleetHarness(t)
	h.fleet.cfg.Accounts = []string{fleetB1.Account, fleetC.Account}
	h.src.put("rules/x.yaml", targetFile("account: \"111122223333\"\n", 80))
	h.tgts.For(fleetB1).(*fakeLedger).failNext = errInjected
	if _, err := h.fleet.Reconcile(context.Background(), Request{Keys: []string{"rules/x.yaml"}}, nil); err != nil {
		t.Fatal(err)
	}
	if h.rulesIn(fleetB1) != "80" {
		t.Fatalf("the crash did not come after the EC2 calls: %q", h.rulesIn(fleetB1))
	}
	h.src.put("rules/x.yaml", targetFile("", 80)) // moved home
	h.run(Request{Keys: []string{"rules/x.yaml"}})
	h.run(Request{All: true})
	if got := h.rulesIn(fleetB1); got != "" {
		t.Fatalf("orphans left in a target no file or record names: %q", got)
	}
	if got := h.rulesIn(fleetHome); got != "80" {
		t.Fatalf("home has %q, want 80", got)
	}
}

// Each file is parsed once per run: the Fleet parses a file to route it,
// and the engine of its target uses that parse (issue 24).
func TestFleetParsesEachFileOnce(t *testing.T) {
	var mu sync.Mutex
	parses := map[string]int{}
	orig := parseFile
	parseFile = func(key string, body []byte) (*rules.File, rules.Diagnostics) {
		mu.Lock()
		parses[key]++
		mu.Unlock()
		return orig(key, body)
	}
	t.Cleanup(func() { parseFile = orig })

	h := newFleetHarness(t)
	files := map[string]string{
		"rules/once-home.yaml": targetFile("", 22),
		"rules/once-b1.yaml":   targetFile("account: \"111122223333\"\n", 80),
		"rules/once-c.yaml":    targetFile("account: \"444455556666\"\nregion: us-east-1\n", 5432),
	}
	var keys []string
	for k, b := range files {
		h.src.put(k, b)
		keys = append(keys, k)
	}
	for _, req := range []Request{{Keys: keys}, {All: true}} {
		clear(parses)
		res := h.run(req)
		if err := res.Err(); err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if parses[k] > 1 {
				t.Errorf("%+v: %s parsed %d times", req, k, parses[k])
			}
		}
	}
}
