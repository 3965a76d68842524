package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sgrules/sgrules/pkg/rules"
)

const (
	sgWeb = "sg-0000000a"
	sgApp = "sg-0000000b"
	sgDB  = "sg-0000000c"
)

type harness struct {
	t   *testing.T
	ec2 *fakeEC2
	led *fakeLedger
	src *fakeSource
	eng *Engine
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, ec2: newFakeEC2(), led: newFakeLedger(), src: newFakeSource()}
	h.ec2.addGroup(sgWeb, "web")
	h.ec2.addGroup(sgApp, "app")
	h.ec2.addGroup(sgDB, "db")
	h.eng = h.engine(Config{})
	return h
}

func (h *harness) engine(cfg Config) *Engine {
	h.t.Helper()
	cfg.Source, cfg.Groups, cfg.Ledger = h.src, h.ec2, h.led
	if cfg.LedgerID == "" {
		cfg.LedgerID = testLedgerID
	}
	if cfg.DeploymentID == "" {
		cfg.DeploymentID = cfg.LedgerID // an identity equal to the table's name, as before deployments had one
	}
	e, err := New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	return e
}

func (h *harness) reconcile(req Request) Result {
	h.t.Helper()
	res, err := h.eng.Reconcile(context.Background(), req)
	if err != nil {
		h.t.Fatalf("reconcile %+v: %v", req, err)
	}
	return res
}

func (h *harness) apply(keys ...string) Result {
	h.t.Helper()
	return h.reconcile(Request{Keys: keys})
}

// keys renders the EC2 rules of the fake as sorted "key desc" lines.
func (h *harness) state() string {
	var lines []string
	for k, r := range h.ec2.snapshot() {
		lines = append(lines, k.String()+" "+r.Description)
	}
	sortStrings(lines)
	return strings.Join(lines, "\n")
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func key(group string, dir rules.Direction, proto string, from, to int32, kind rules.PeerKind, peer string) rules.Key {
	return rules.Key{GroupID: group, Direction: dir, Protocol: proto, FromPort: from, ToPort: to, Peer: rules.Peer{Kind: kind, Value: peer}}
}

const webFile = `rules:
  http:
    securityGroup: sg-0000000a
    type: ingress
    protocol: tcp
    fromPort: 80
    toPort: 80
    cidrBlocks: ["0.0.0.0/0", "10.0.0.0/8"]
    description: HTTP
  https:
    securityGroup: sg-0000000a
    type: ingress
    protocol: tcp
    fromPort: 443
    toPort: 443
    cidrBlocks: ["0.0.0.0/0"]
    description: HTTPS
  out:
    securityGroup: sg-0000000a
    type: egress
    protocol: tcp
    fromPort: 443
    toPort: 443
    sourceSecurityGroups: [sg-0000000b]
    description: to app
`

const dbFile = `rules:
  pg:
    securityGroup: {tags: {Name: db}}
    type: ingress
    protocol: tcp
    fromPort: 5432
    toPort: 5432
    sourceSecurityGroups: [sg-0000000b, {tags: {Name: web}}]
    description: Postgres
`

func TestApplyCreatesOneRulePerSourceBatched(t *testing.T) {
	h := newHarness(t)
	h.src.put("rules/web.yaml", webFile)
	h.src.put("rules/db.yaml", dbFile)
	res := h.apply("rules/web.yaml", "rules/db.yaml")

	want := strings.Join([]string{
		key(sgWeb, rules.Egress, "tcp", 443, 443, rules.PeerGroup, sgApp).String() + " to app",
		key(sgWeb, rules.Ingress, "tcp", 443, 443, rules.PeerCIDR4, "0.0.0.0/0").String() + " HTTPS",
		key(sgWeb, rules.Ingress, "tcp", 80, 80, rules.PeerCIDR4, "0.0.0.0/0").String() + " HTTP",
		key(sgWeb, rules.Ingress, "tcp", 80, 80, rules.PeerCIDR4, "10.0.0.0/8").String() + " HTTP",
		key(sgDB, rules.Ingress, "tcp", 5432, 5432, rules.PeerGroup, sgApp).String() + " Postgres",
		key(sgDB, rules.Ingress, "tcp", 5432, 5432, rules.PeerGroup, sgWeb).String() + " Postgres",
	}, "\n")
	got := h.state()
	wantLines := strings.Split(want, "\n")
	sortStrings(wantLines)
	if got != strings.Join(wantLines, "\n") {
		t.Fatalf("rules:\n%s\nwant:\n%s", got, strings.Join(wantLines, "\n"))
	}
	// One authorize per group and direction: web ingress, web egress, db ingress.
	if n := h.ec2.calls["authorize"]; n != 3 {
		t.Errorf("authorize calls = %d, want 3 (ops %v)", n, h.ec2.ops)
	}
	if len(h.led.owned()) != 6 {
		t.Errorf("ledger owns %d, want 6", len(h.led.owned()))
	}
	for _, s := range res.Sources {
		if s.Status != StatusApplied || len(s.RuleIDs) == 0 {
			t.Errorf("source %s: status %s, rule ids %v", s.Key, s.Status, s.RuleIDs)
		}
	}
	for _, r := range h.ec2.snapshot() {
		if r.Tags[TagManaged] != "true" {
			t.Errorf("rule %s not tagged as managed: %v", r.RuleID, r.Tags)
		}
	}
}

func TestSecondApplyChangesNothing(t *testing.T) {
	h := newHarness(t)
	h.src.put("rules/web.yaml", webFile)
	h.apply("rules/web.yaml")
	mut, writes := h.ec2.mutating(), h.led.writes
	res := h.apply("rules/web.yaml")
	if h.ec2.mutating() != mut || h.led.writes != writes {
		t.Fatalf("second apply: mutating calls %d→%d, ledger writes %d→%d", mut, h.ec2.mutating(), writes, h.led.writes)
	}
	if len(res.Plan.Actions) != 0 {
		t.Fatalf("second plan not empty: %+v", res.Plan.Actions)
	}
	// A sweep over unchanged sources does not even read them again.
	gets := h.src.gets
	h.reconcile(Request{All: true})
	if h.ec2.mutating() != mut || h.led.writes != writes || h.src.gets != gets {
		t.Fatalf("sweep: mutating %d, writes %d, gets %d→%d", h.ec2.mutating()-mut, h.led.writes-writes, gets, h.src.gets)
	}
}

func TestUnmanagedRulesSurviveAndDeclaredOnesAreAdopted(t *testing.T) {
	h := newHarness(t)
	manual := h.ec2.addRule(key(sgWeb, rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "192.0.2.0/24"), "ssh by hand", nil)
	existing := h.ec2.addRule(key(sgWeb, rules.Ingress, "tcp", 443, 443, rules.PeerCIDR4, "0.0.0.0/0"), "old text", nil)
	h.src.put("rules/web.yaml", webFile)
	res := h.apply("rules/web.yaml")
	if res.Plan.Count(ActAdopt) != 1 || res.Plan.Count(ActUpdate) != 1 {
		t.Fatalf("want one adopt and one in-place update, got %+v", res.Plan.Actions)
	}
	snap := h.ec2.snapshot()
	if r := snap[key(sgWeb, rules.Ingress, "tcp", 443, 443, rules.PeerCIDR4, "0.0.0.0/0")]; r.RuleID != existing || r.Description != "HTTPS" {
		t.Fatalf("adopted rule: %+v, want id %s with declared description", r, existing)
	}
	// Removing the file revokes what it owns, adopted included, and never the manual rule.
	h.src.remove("rules/web.yaml")
	h.apply("rules/web.yaml")
	snap = h.ec2.snapshot()
	if len(snap) != 1 || snap[key(sgWeb, rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "192.0.2.0/24")].RuleID != manual {
		t.Fatalf("after delete: %s", h.state())
	}
	if len(h.led.owned()) != 0 || len(h.led.sources) != 0 {
		t.Fatalf("ledger not empty after delete: %v %v", h.led.owned(), h.led.sources)
	}
}

func TestDescriptionChangeIsInPlaceAndPortChangeIsMakeBeforeBreak(t *testing.T) {
	h := newHarness(t)
	h.src.put("rules/web.yaml", webFile)
	h.apply("rules/web.yaml")
	h.ec2.ops = nil

	h.src.put("rules/web.yaml", strings.Replace(webFile, "description: HTTPS", "description: HTTPS v2", 1))
	h.apply("rules/web.yaml")
	if strings.Join(h.ec2.ops, ";") != "update sg-0000000a 1" {
		t.Fatalf("description change ops = %v, want one in-place update", h.ec2.ops)
	}

	h.ec2.ops = nil
	before := h.ec2.snapshot()
	h.src.put("rules/web.yaml", strings.Replace(webFile, "fromPort: 80\n    toPort: 80", "fromPort: 8080\n    toPort: 8080", 1))
	res := h.apply("rules/web.yaml")
	for _, r := range before {
		if _, kept := h.ec2.rules[r.RuleID]; !kept {
			t.Errorf("rule %s (%s) was replaced, not modified", r.RuleID, r.Key)
		}
	}
	// Ports of rules sgrules created: modified in place, with the
	// description change, in one call; the rules keep their ids.
	if got := strings.Join(h.ec2.ops, ";"); got != "update sg-0000000a 3" {
		t.Fatalf("port change ops = %q", got)
	}
	ids := map[string]bool{}
	for _, s := range res.Sources {
		for _, id := range s.RuleIDs {
			ids[id] = true
		}
	}
	if len(ids) != 4 || res.Plan.Count(ActModify) != 2 {
		t.Fatalf("rule ids %v after a port change, plan %+v", ids, res.Plan.Actions)
	}
	for _, a := range res.Plan.Actions {
		if a.Loss {
			t.Errorf("a replacement counted as loss: %+v", a)
		}
	}
}

func TestSharedOwnershipKeepsRuleWhileAnyOwnerDeclaresIt(t *testing.T) {
	h := newHarness(t)
	one := "rules:\n  a:\n    securityGroup: sg-0000000a\n    type: ingress\n    protocol: tcp\n    fromPort: 22\n    toPort: 22\n    cidrBlocks: [10.1.0.0/16]\n    description: from one\n"
	two := strings.Replace(one, "from one", "from two", 1)
	h.src.put("rules/1.yaml", one)
	h.src.put("rules/2.yaml", two)
	res := h.apply("rules/1.yaml", "rules/2.yaml")
	if len(res.Plan.Conflicts) != 1 || res.Plan.Conflicts[0].Winner.String() != "rules/1.yaml#a" {
		t.Fatalf("conflicts = %+v", res.Plan.Conflicts)
	}
	if got := h.state(); !strings.HasSuffix(got, " from one") {
		t.Fatalf("lexically first owner's description must win: %s", got)
	}
	h.src.remove("rules/1.yaml")
	h.apply("rules/1.yaml")
	if got := h.state(); !strings.HasSuffix(got, " from two") {
		t.Fatalf("rule must stay, with the remaining owner's description: %q", got)
	}
	h.src.remove("rules/2.yaml")
	h.apply("rules/2.yaml")
	if got := h.state(); got != "" {
		t.Fatalf("rule must go with its last owner: %q", got)
	}
}

func TestInvalidFileChangesNothingAndIsRecorded(t *testing.T) {
	h := newHarness(t)
	h.src.put("rules/web.yaml", webFile)
	h.src.put("rules/db.yaml", dbFile)
	h.apply("rules/web.yaml", "rules/db.yaml")
	before := h.state()

	h.src.put("rules/web.yaml", strings.Replace(webFile, "toPort: 443", "toPort: 70000", 1))
	h.src.put("rules/new.yaml", "rules:\n  x:\n    securityGroup: sg-0000000b\n    type: ingress\n    protocol: udp\n    fromPort: 53\n    toPort: 53\n    cidrBlocks: [10.0.0.0/8]\n")
	res := h.apply("rules/web.yaml", "rules/new.yaml")
	var web SourceResult
	for _, s := range res.Sources {
		if s.Key == "rules/web.yaml" {
			web = s
		}
	}
	if web.Status != StatusInvalid || !strings.Contains(strings.Join(web.Diagnostics.Strings(), "\n"), "rules/web.yaml:") {
		t.Fatalf("web: %+v", web)
	}
	after := h.state()
	if !strings.Contains(after, before) && len(strings.Split(after, "\n")) != len(strings.Split(before, "\n"))+1 {
		t.Fatalf("invalid file changed EC2 or the good file was not applied:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	for _, line := range strings.Split(before, "\n") {
		if !strings.Contains(after, line) {
			t.Fatalf("lost %q", line)
		}
	}
	if rec := h.led.sources["rules/web.yaml"]; rec.Status != StatusInvalid || len(rec.Diagnostics) == 0 || len(rec.Permissions) != 4 {
		t.Fatalf("ledger record: %+v", rec)
	}
}

func TestBlastRadiusGuardHoldsMassRevoke(t *testing.T) {
	h := newHarness(t)
	h.eng = h.engine(Config{MaxRevoke: 3})
	h.src.put("rules/web.yaml", webFile)
	h.apply("rules/web.yaml")
	before := h.state()

	h.src.remove("rules/web.yaml")
	res := h.apply("rules/web.yaml")
	if g := res.Sources[0].Guard; res.Sources[0].Status != StatusHeld || g == nil || *g != (GuardHold{Losses: 4, FromSource: 4, Limit: 3}) ||
		!strings.Contains(res.Sources[0].Message, "limit of 3") {
		t.Fatalf("want held with the guard's numbers, got %+v", res.Sources[0])
	}
	if h.state() != before {
		t.Fatal("a held plan changed EC2")
	}
	// A replacement of many permissions does not count as loss.
	h.src.put("rules/web.yaml", strings.ReplaceAll(webFile, "tcp", "udp"))
	res = h.apply("rules/web.yaml")
	if res.Sources[0].Status != StatusApplied || res.Plan.Count(ActModify) != 4 {
		t.Fatalf("replacement held or incomplete: %+v %+v", res.Sources[0], res.Plan.Actions)
	}
	h.src.remove("rules/web.yaml")
	h.reconcile(Request{Keys: []string{"rules/web.yaml"}, AllowMassRevoke: true})
	if h.state() != "" {
		t.Fatalf("allow-mass-revoke did not revoke: %s", h.state())
	}
}

func TestDriftIsReverted(t *testing.T) {
	h := newHarness(t)
	h.src.put("rules/web.yaml", webFile)
	h.apply("rules/web.yaml")
	want := h.state()
	snap := h.ec2.snapshot()

	https := snap[key(sgWeb, rules.Ingress, "tcp", 443, 443, rules.PeerCIDR4, "0.0.0.0/0")]
	http := snap[key(sgWeb, rules.Ingress, "tcp", 80, 80, rules.PeerCIDR4, "10.0.0.0/8")]
	out := snap[key(sgWeb, rules.Egress, "tcp", 443, 443, rules.PeerGroup, sgApp)]
	h.ec2.mu.Lock()
	delete(h.ec2.rules, https.RuleID) // deleted by hand
	r := h.ec2.rules[http.RuleID]     // description edited
	r.Description = "edited"
	h.ec2.rules[http.RuleID] = r
	r = h.ec2.rules[out.RuleID] // ports modified, same rule id
	r.Key.FromPort, r.Key.ToPort = 0, 65535
	h.ec2.rules[out.RuleID] = r
	h.ec2.mu.Unlock()
	manual := h.ec2.addRule(key(sgWeb, rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "192.0.2.0/24"), "by hand", nil)

	// The modified rule is put back with one in-place modification.
	report := h.reconcile(Request{All: true, DryRun: true})
	if len(report.Drift.Drifted) != 3 || report.Drift.Unmanaged != 1 || report.Executed || report.Plan.Count(ActModify) != 1 {
		t.Fatalf("report: %+v", report.Drift)
	}
	h.ec2.ops = nil
	res := h.reconcile(Request{All: true})
	if res.Drift.Reverted != 3 || strings.Join(h.ec2.ops, ";") != "authorize sg-0000000a ingress 1;update sg-0000000a 2" {
		t.Fatalf("reverted %d with %v: %+v", res.Drift.Reverted, h.ec2.ops, res.Drift.Drifted)
	}
	if h.ec2.rules[out.RuleID].Key != out.Key {
		t.Fatalf("modified rule not put back in place: %+v", h.ec2.rules[out.RuleID])
	}
	if res.Drift.Reverted != 3 {
		t.Fatalf("reverted %d: %+v", res.Drift.Reverted, res.Drift.Drifted)
	}
	got := h.state()
	if !strings.Contains(got, "192.0.2.0/24") {
		t.Fatal("unmanaged rule revoked")
	}
	delete(h.ec2.rules, manual)
	if got := h.state(); got != want {
		t.Fatalf("after revert:\n%s\nwant:\n%s", got, want)
	}
}

func TestExclusiveGroupRevokesUndeclared(t *testing.T) {
	h := newHarness(t)
	h.ec2.addRule(key(sgDB, rules.Egress, "-1", -1, -1, rules.PeerCIDR4, "0.0.0.0/0"), "", nil)
	h.ec2.addRule(key(sgWeb, rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "192.0.2.0/24"), "", nil)
	h.src.put("rules/db.yaml", "exclusiveGroups: [sg-0000000c]\n"+dbFile)
	res := h.apply("rules/db.yaml")
	if res.Plan.Count(ActRevoke) != 1 {
		t.Fatalf("want the default egress revoked in the exclusive group: %+v", res.Plan.Actions)
	}
	for k := range h.ec2.snapshot() {
		if k.GroupID == sgDB && k.Direction == rules.Egress {
			t.Fatalf("undeclared egress survived in exclusive group")
		}
	}
	if !strings.Contains(h.state(), "192.0.2.0/24") {
		t.Fatal("rule in a non-exclusive group revoked")
	}
}

func TestPausedGroupIsReportedNotReverted(t *testing.T) {
	h := newHarness(t)
	h.src.put("rules/web.yaml", webFile)
	h.apply("rules/web.yaml")
	for id, r := range h.ec2.snapshot() {
		_ = id
		h.ec2.mu.Lock()
		delete(h.ec2.rules, r.RuleID)
		h.ec2.mu.Unlock()
		break
	}
	g := h.ec2.groups[sgWeb]
	g.Tags[TagPause] = time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	before := h.ec2.mutating()
	res := h.reconcile(Request{All: true})
	if h.ec2.mutating() != before || len(res.Drift.Paused) != 1 || len(res.Drift.Drifted) != 1 ||
		!res.Drift.Drifted[0].Paused || res.Drift.Reverted != 0 {
		t.Fatalf("paused group touched: mutating %d, report %+v", h.ec2.mutating()-before, res.Drift)
	}
	g.Tags[TagPause] = "2000-01-01T00:00:00Z"
	res = h.reconcile(Request{All: true})
	if res.Drift.Reverted != 1 {
		t.Fatalf("expired pause: %+v", res.Drift)
	}
}

func TestLedgerLossRebuildsWithoutDuplicates(t *testing.T) {
	h := newHarness(t)
	h.src.put("rules/web.yaml", webFile)
	h.apply("rules/web.yaml")
	h.ec2.addRule(key(sgWeb, rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "192.0.2.0/24"), "", nil)
	want := h.state()
	h.led.wiped()
	before := h.ec2.mutating()
	res := h.reconcile(Request{All: true})
	if h.ec2.mutating() != before || h.state() != want {
		t.Fatalf("rebuild changed EC2: %+v", res.Plan.Actions)
	}
	if res.Plan.Count(ActAdopt) != 4 || len(h.led.owned()) != 4 {
		t.Fatalf("want 4 adopted, got plan %+v, ledger %d", res.Plan.Actions, len(h.led.owned()))
	}
}

func TestOrphanTaggedRuleRevokedBySweepOnly(t *testing.T) {
	h := newHarness(t)
	orphan := key(sgApp, rules.Ingress, "tcp", 9000, 9000, rules.PeerCIDR4, "10.9.0.0/16")
	h.ec2.addRule(orphan, "", map[string]string{TagManaged: "true", TagLedger: testLedgerID})
	// The intent written before its authorize, whose commit never came.
	if err := h.led.RecordIntents(context.Background(), []Intent{{Key: orphan}}); err != nil {
		t.Fatal(err)
	}
	h.src.put("rules/web.yaml", webFile)
	h.apply("rules/web.yaml")
	if _, ok := h.ec2.snapshot()[orphan]; !ok {
		t.Fatal("a single-source run revoked a tagged rule it cannot judge")
	}
	h.reconcile(Request{All: true})
	if _, ok := h.ec2.snapshot()[orphan]; ok {
		t.Fatal("sweep left a rule tagged as ours that no source declares")
	}
}

// A rule carrying this deployment's tag that its ledger neither holds nor
// has an intent for (a spoofed tag, a lost ledger) is reported, never
// revoked, even by a complete sweep.
func TestTaggedRuleWithoutProofIsReportedNotRevoked(t *testing.T) {
	h := newHarness(t)
	spoofed := key(sgApp, rules.Ingress, "tcp", 5432, 5432, rules.PeerCIDR4, "10.9.0.0/16")
	h.ec2.addRule(spoofed, "", map[string]string{TagLedger: testLedgerID})
	h.src.put("rules/web.yaml", webFile)
	res := h.reconcile(Request{All: true})
	if _, ok := h.ec2.snapshot()[spoofed]; !ok {
		t.Fatal("a sweep revoked a rule whose only claim to be ours is its tag")
	}
	if len(res.Plan.Unproven) != 1 || res.Plan.Unproven[0].Key != spoofed {
		t.Fatalf("unproven: %+v", res.Plan.Unproven)
	}
}

// A crash between authorize and commit, then the file deleted: the rule
// left behind carries the tag and an intent, and the next sweep revokes it
// and clears the intent.
func TestCrashBeforeCommitThenDeletedFileRevokedBySweep(t *testing.T) {
	h := newHarness(t)
	h.src.put("rules/web.yaml", webFile)
	h.led.failNext = errors.New("crash before the commit")
	if _, err := h.eng.Reconcile(context.Background(), Request{Keys: []string{"rules/web.yaml"}}); err == nil {
		t.Fatal("the run went through the crash")
	}
	if n := len(h.led.intents); n == 0 || !strings.Contains(h.state(), "sg-0000000a") {
		t.Fatalf("after the crash: %d intents, EC2 %s", n, h.state())
	}
	h.src.remove("rules/web.yaml")
	h.eng = h.engine(Config{MaxRevoke: -1})
	h.reconcile(Request{All: true})
	if strings.Contains(h.state(), "sg-0000000a") || len(h.led.intents) != 0 {
		t.Fatalf("after the sweep: %d intents, EC2 %s", len(h.led.intents), h.state())
	}
}

func TestCrashMidRunConverges(t *testing.T) {
	for k := 1; k <= 4; k++ {
		t.Run(fmt.Sprintf("fail-call-%d", k), func(t *testing.T) {
			h := newHarness(t)
			h.src.put("rules/web.yaml", webFile)
			h.apply("rules/web.yaml")
			h.src.put("rules/web.yaml", strings.Replace(strings.Replace(webFile, "fromPort: 80\n    toPort: 80", "fromPort: 81\n    toPort: 81", 1), "HTTPS", "secure", 1))
			// Every mutating call from the k-th on fails: the run dies there,
			// as a Lambda killed mid-run would.
			n := 0
			h.ec2.beforeMutate = func(string) error {
				n++
				if n >= k {
					return errInjected
				}
				return nil
			}
			if _, err := h.eng.Reconcile(context.Background(), Request{Keys: []string{"rules/web.yaml"}}); !errors.Is(err, errInjected) && n >= k {
				t.Fatalf("want the injected fault, got %v", err)
			}
			h.ec2.beforeMutate = nil
			h.reconcile(Request{All: true})
			want := newHarness(t)
			want.src.put("rules/web.yaml", string(h.src.files["rules/web.yaml"]))
			want.apply("rules/web.yaml")
			if h.state() != want.state() {
				t.Fatalf("did not converge:\n%s\nwant:\n%s", h.state(), want.state())
			}
			if len(h.led.owned()) != len(want.led.owned()) {
				t.Fatalf("ledger owns %d, want %d", len(h.led.owned()), len(want.led.owned()))
			}
		})
	}
}

func TestConcurrentReconcilesDoNotLoseRules(t *testing.T) {
	for i := 0; i < 20; i++ {
		h := newHarness(t)
		// Two files claim the same permission; one is being removed while
		// the other is being added: the rule must survive.
		one := "rules:\n  a:\n    securityGroup: sg-0000000a\n    type: ingress\n    protocol: tcp\n    fromPort: 22\n    toPort: 22\n    cidrBlocks: [10.1.0.0/16]\n"
		h.src.put("rules/1.yaml", one)
		h.apply("rules/1.yaml")
		h.src.remove("rules/1.yaml")
		h.src.put("rules/2.yaml", one)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j, k := range []string{"rules/1.yaml", "rules/2.yaml"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e := h.engine(Config{Holder: k})
				_, errs[j] = e.Reconcile(context.Background(), Request{Keys: []string{k}})
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if h.state() == "" {
			t.Fatalf("iteration %d: the rule declared by rules/2.yaml was lost", i)
		}
		h.reconcile(Request{All: true})
		if h.state() == "" || len(h.led.owned()) != 1 {
			t.Fatalf("iteration %d: after sweep %q, ledger %v", i, h.state(), h.led.owned())
		}
	}
}

func TestMissingGroupMakesSourceInvalid(t *testing.T) {
	h := newHarness(t)
	h.src.put("rules/x.yaml", "rules:\n  a:\n    securityGroup: sg-0000000f\n    type: ingress\n    protocol: tcp\n    fromPort: 22\n    toPort: 22\n    cidrBlocks: [10.1.0.0/16]\n")
	h.src.put("rules/web.yaml", webFile)
	res := h.apply("rules/web.yaml", "rules/x.yaml")
	for _, s := range res.Sources {
		switch s.Key {
		case "rules/x.yaml":
			if s.Status != StatusInvalid || !strings.Contains(strings.Join(s.Diagnostics.Strings(), ""), "sg-0000000f does not exist") {
				t.Fatalf("x: %+v", s)
			}
		default:
			if s.Status != StatusApplied {
				t.Fatalf("%s: %+v", s.Key, s)
			}
		}
	}
}

func TestUnresolvedReferenceIsInvalid(t *testing.T) {
	h := newHarness(t)
	h.src.put("rules/x.yaml", "rules:\n  a:\n    securityGroup: {tags: {Name: nope}}\n    type: ingress\n    protocol: tcp\n    fromPort: 22\n    toPort: 22\n    cidrBlocks: [10.1.0.0/16]\n")
	res := h.apply("rules/x.yaml")
	if res.Sources[0].Status != StatusInvalid || h.ec2.mutating() != 0 {
		t.Fatalf("%+v", res.Sources[0])
	}
}

func TestConcurrentBatchesKeepMakeBeforeBreak(t *testing.T) {
	h := newHarness(t)
	h.eng = h.engine(Config{Concurrency: 8})
	// A change of peer kind (IPv4 to IPv6) is authorize + revoke, never a
	// modification.
	file := func(peer string) string {
		var b strings.Builder
		b.WriteString("rules:\n")
		for _, g := range []string{sgWeb, sgApp, sgDB} {
			for _, dir := range []string{"ingress", "egress"} {
				fmt.Fprintf(&b, "  r-%s-%s:\n    securityGroup: %s\n    type: %s\n    protocol: tcp\n    fromPort: 80\n    toPort: 80\n    %s\n",
					g, dir, g, dir, peer)
			}
		}
		return b.String()
	}
	h.src.put("rules/all.yaml", file("cidrBlocks: [10.0.0.0/8]"))
	h.apply("rules/all.yaml")
	h.ec2.ops = nil
	h.src.put("rules/all.yaml", file(`ipv6CidrBlocks: ["2001:db8::/32"]`))
	h.apply("rules/all.yaml")
	if len(h.ec2.ops) != 12 {
		t.Fatalf("ops = %v, want 6 authorize and 6 revoke batches", h.ec2.ops)
	}
	for i, op := range h.ec2.ops {
		if want := i < 6; strings.HasPrefix(op, "authorize") != want {
			t.Fatalf("op %d is %q: every authorize must come before any revoke: %v", i, op, h.ec2.ops)
		}
	}
}

func TestForEachStopsAtFirstError(t *testing.T) {
	e, err := New(Config{Groups: newFakeEC2(), Ledger: newFakeLedger(), LedgerID: testLedgerID, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	ran := 0
	err = e.forEach(context.Background(), 100, func(ctx context.Context, i int) error {
		mu.Lock()
		ran++
		mu.Unlock()
		if i == 3 {
			return errInjected
		}
		return nil
	})
	if !errors.Is(err, errInjected) || ran >= 100 {
		t.Fatalf("err %v after %d calls; want the injected error and the rest skipped", err, ran)
	}
}

// A file that would push a group over EC2's rules quota is invalid (not
// retried forever) and keeps what it applied before; the other files of
// the same request are applied.
func TestRulesQuotaIsTerminalForTheSourceOnly(t *testing.T) {
	h := newHarness(t)
	h.ec2.quota = 3
	h.src.put("rules/web.yaml", webFile)
	var big strings.Builder
	big.WriteString("rules:\n  many:\n    securityGroup: sg-0000000c\n    type: ingress\n    protocol: tcp\n    fromPort: 1\n    toPort: 1\n    cidrBlocks: [10.1.0.0/16, 10.2.0.0/16, 10.3.0.0/16, 10.4.0.0/16]\n")
	h.src.put("rules/big.yaml", big.String())
	res := h.apply("rules/web.yaml", "rules/big.yaml")
	for _, s := range res.Sources {
		switch s.Key {
		case "rules/big.yaml":
			if s.Status != StatusInvalid || !strings.Contains(strings.Join(s.Diagnostics.Strings(), ""), "quota") {
				t.Fatalf("big.yaml: %+v", s)
			}
		default:
			if s.Status != StatusApplied {
				t.Fatalf("%s: %+v", s.Key, s)
			}
		}
	}
	for k := range h.ec2.snapshot() {
		if k.GroupID == sgDB {
			t.Fatalf("a rule of the refused file was created: %s", k)
		}
	}
	if len(h.led.owned()) != 4 {
		t.Fatalf("ledger owns %d, want web.yaml's 4", len(h.led.owned()))
	}
}

// A file renamed (deleted under one key, created under another) and
// reconciled in one request moves ownership without touching EC2.
func TestRenameInOneRequestChangesNoRule(t *testing.T) {
	h := newHarness(t)
	h.src.put("rules/old.yaml", webFile)
	h.apply("rules/old.yaml")
	before, mutating := h.state(), h.ec2.mutating()
	h.src.remove("rules/old.yaml")
	h.src.put("rules/new.yaml", webFile)
	h.apply("rules/old.yaml", "rules/new.yaml")
	if h.ec2.mutating() != mutating || h.state() != before {
		t.Fatalf("rename made %d EC2 calls: %v", h.ec2.mutating()-mutating, h.ec2.ops)
	}
	for k, o := range h.led.owned() {
		for owner := range o.Owners {
			if owner.Source != "rules/new.yaml" {
				t.Fatalf("%s still owned by %s", k, owner)
			}
		}
	}
	if _, ok := h.led.sources["rules/old.yaml"]; ok {
		t.Fatal("the old key's record is left in the ledger")
	}
}

// Another writer changes a source's ledger record between this run's read
// and its write: the write conflicts, and the run reads everything again
// and succeeds instead of failing on the stale version every attempt.
func TestConflictOnSourceRecordReReads(t *testing.T) {
	h := newHarness(t)
	h.src.put("rules/web.yaml", webFile)
	h.apply("rules/web.yaml")
	h.src.put("rules/web.yaml", strings.Replace(webFile, "toPort: 443", "toPort: 70000", 1)) // invalid: a record-only write
	bumped := false
	h.led.beforeWrite = func(l *fakeLedger) {
		if !bumped {
			bumped = true
			r := l.sources["rules/web.yaml"]
			r.Version++
			l.sources["rules/web.yaml"] = r
		}
	}
	res := h.apply("rules/web.yaml")
	if !bumped || h.led.calls < 2 || res.Sources[0].Status != StatusInvalid || h.led.sources["rules/web.yaml"].Status != StatusInvalid {
		t.Fatalf("bumped %v, writes %d, result %+v, record %+v", bumped, h.led.calls, res.Sources, h.led.sources["rules/web.yaml"])
	}
}
