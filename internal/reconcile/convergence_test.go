package reconcile

import (
	"strings"
	"testing"
	"time"

	"github.com/sgrules/sgrules/pkg/rules"
)

// Sweeps judge the current file and the current EC2 state: a file refused
// because of EC2 state, or applied through names and tags, is judged again
// by every sweep.

const tagFile = `rules:
  ssh:
    securityGroup: {tags: {Name: web-tier}}
    type: ingress
    protocol: tcp
    fromPort: 22
    toPort: 22
    cidrBlocks: [10.1.0.0/16]
`

func (h *harness) source(res Result, key string) SourceResult {
	h.t.Helper()
	for _, s := range res.Sources {
		if s.Key == key {
			return s
		}
	}
	h.t.Fatalf("no result for %s in %+v", key, res.Sources)
	return SourceResult{}
}

func (h *harness) rulesOf(group string) string {
	var lines []string
	for k := range h.ec2.snapshot() {
		if k.GroupID == group {
			lines = append(lines, k.String())
		}
	}
	sortStrings(lines)
	return strings.Join(lines, "\n")
}

func TestInvalidBecauseOfEC2IsJudgedAgainBySweeps(t *testing.T) {
	h := newHarness(t)
	h.src.put("rules/ssh.yaml", tagFile)
	res := h.reconcile(Request{All: true})
	if s := h.source(res, "rules/ssh.yaml"); s.Status != StatusInvalid ||
		!strings.Contains(strings.Join(s.Diagnostics.Strings(), "\n"), "no security group matches") {
		t.Fatalf("first sweep: %+v", s)
	}
	// The group appears; the file is unchanged.
	h.ec2.addGroup("sg-0000000e", "web-tier")
	res = h.reconcile(Request{All: true})
	if s := h.source(res, "rules/ssh.yaml"); s.Status != StatusApplied {
		t.Fatalf("second sweep after the group appeared: %+v", s)
	}
	if got := h.rulesOf("sg-0000000e"); !strings.Contains(got, "tcp|22|22|cidr4:10.1.0.0/16") {
		t.Fatalf("rule not applied: %q", got)
	}
	// A second group with the same tag makes the reference ambiguous: the
	// file is invalid again, and keeps what it applied.
	h.ec2.addGroup("sg-0000000f", "web-tier")
	res = h.reconcile(Request{All: true})
	if s := h.source(res, "rules/ssh.yaml"); s.Status != StatusInvalid ||
		!strings.Contains(strings.Join(s.Diagnostics.Strings(), "\n"), "matches 2 groups") {
		t.Fatalf("ambiguous reference: %+v", s)
	}
	if h.rulesOf("sg-0000000e") == "" || h.rulesOf("sg-0000000f") != "" {
		t.Fatal("an invalid file changed EC2")
	}
}

func TestTagReferencesAreResolvedAgainBySweeps(t *testing.T) {
	h := newHarness(t)
	h.ec2.addGroup("sg-0000000e", "web-tier")
	h.src.put("rules/ssh.yaml", tagFile)
	h.reconcile(Request{All: true})
	if h.rulesOf("sg-0000000e") == "" {
		t.Fatal("not applied")
	}
	// The tag moves to another group: the rule follows it.
	h.ec2.mu.Lock()
	h.ec2.groups["sg-0000000e"].Tags["Name"] = "retired"
	h.ec2.mu.Unlock()
	h.ec2.addGroup("sg-00000010", "web-tier")
	res := h.reconcile(Request{All: true})
	if s := h.source(res, "rules/ssh.yaml"); s.Status != StatusApplied {
		t.Fatalf("after the tag moved: %+v", s)
	}
	if h.rulesOf("sg-0000000e") != "" || h.rulesOf("sg-00000010") == "" {
		t.Fatalf("rule did not follow the tag: old %q new %q", h.rulesOf("sg-0000000e"), h.rulesOf("sg-00000010"))
	}
	// The group is deleted and created again with the same tag (a new id).
	h.ec2.mu.Lock()
	delete(h.ec2.groups, "sg-00000010")
	for id, r := range h.ec2.rules {
		if r.Key.GroupID == "sg-00000010" {
			delete(h.ec2.rules, id)
		}
	}
	h.ec2.mu.Unlock()
	h.ec2.addGroup("sg-00000011", "web-tier")
	h.reconcile(Request{All: true})
	if h.rulesOf("sg-00000011") == "" {
		t.Fatal("re-created group did not get its rules back")
	}
}

func TestSweepRereadsOnlyFilesThatDependOnEC2(t *testing.T) {
	h := newHarness(t)
	h.ec2.addGroup("sg-0000000e", "web-tier")
	h.src.put("rules/web.yaml", webFile) // every group by id
	h.src.put("rules/ssh.yaml", tagFile) // a tag reference
	h.reconcile(Request{All: true})
	h.reconcile(Request{All: true}) // records the static flag of files applied before it existed
	gets, describes := h.src.gets, h.ec2.calls["describe-groups"]
	h.reconcile(Request{All: true})
	if got := h.src.gets - gets; got != 1 {
		t.Errorf("sweep read %d files, want 1 (only the file with a tag reference)", got)
	}
	if got := h.ec2.calls["describe-groups"] - describes; got != 1 {
		t.Errorf("sweep made %d group look-ups, want 1 (one batch for every reference)", got)
	}
}

func TestQuotaRefusalIsJudgedAgainOnceThereIsRoom(t *testing.T) {
	h := newHarness(t)
	h.ec2.quota = 2
	h.ec2.addRule(key(sgWeb, rules.Ingress, "tcp", 1, 1, rules.PeerCIDR4, "192.0.2.1/32"), "", nil)
	h.src.put("rules/web.yaml", webFile)
	res := h.reconcile(Request{All: true})
	if s := h.source(res, "rules/web.yaml"); s.Status != StatusInvalid {
		t.Fatalf("quota: %+v", s)
	}
	h.ec2.quota = 0 // room is made (quota raised)
	res = h.reconcile(Request{All: true})
	if s := h.source(res, "rules/web.yaml"); s.Status != StatusApplied {
		t.Fatalf("after room was made: %+v", s)
	}
}

func TestPauseIsHonouredByEveryRunButExplicitChanges(t *testing.T) {
	h := newHarness(t)
	h.src.put("rules/web.yaml", webFile)
	h.reconcile(Request{All: true})
	h.ec2.mu.Lock()
	h.ec2.groups[sgWeb].Tags[TagPause] = time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for id, r := range h.ec2.rules {
		if r.Key.GroupID == sgWeb && r.Key.FromPort == 443 && r.Key.Direction == rules.Ingress {
			delete(h.ec2.rules, id) // deleted by hand during the pause
		}
	}
	h.ec2.mu.Unlock()
	before := h.state()

	// A sweep with no file changed (the CLI's plain apply, the schedule)
	// and a run of the file's key (an S3 event) both leave it alone.
	for _, req := range []Request{{All: true}, {Keys: []string{"rules/web.yaml"}}} {
		res := h.reconcile(req)
		if h.state() != before || res.Drift.Reverted != 0 || len(res.Drift.Paused) != 1 {
			t.Fatalf("%+v touched the paused group: %+v", req, res.Drift)
		}
	}
	// An explicit change of the file is applied, drift still is not.
	h.src.put("rules/web.yaml", strings.Replace(webFile, "fromPort: 80\n    toPort: 80", "fromPort: 8080\n    toPort: 8080", 1))
	h.reconcile(Request{Keys: []string{"rules/web.yaml"}})
	got := h.rulesOf(sgWeb)
	if !strings.Contains(got, "|8080|8080|") || strings.Contains(got, "|80|80|") || strings.Contains(got, "ingress|tcp|443|443") {
		t.Fatalf("explicit change in a paused group: %s", got)
	}
}

func TestTwoDeploymentsInOneAccountLeaveEachOthersRulesAlone(t *testing.T) {
	h := newHarness(t)
	h.src.put("rules/web.yaml", webFile)
	h.reconcile(Request{All: true})
	mine := h.state()

	// A second deployment (its own ledger and files) in the same account.
	other := &harness{t: t, ec2: h.ec2, led: newFakeLedger(), src: newFakeSource()}
	other.eng = other.engine(Config{LedgerID: "other-stack"})
	other.src.put("rules/db.yaml", "rules:\n  pg:\n    securityGroup: sg-0000000c\n    type: ingress\n    protocol: tcp\n    fromPort: 5432\n    toPort: 5432\n    cidrBlocks: [10.2.0.0/16]\n")
	other.reconcile(Request{All: true})
	both := h.state()

	for range 2 {
		h.reconcile(Request{All: true})
		other.reconcile(Request{All: true})
	}
	if h.state() != both {
		t.Fatalf("sweeps of two deployments changed each other's rules:\n%s\nwant\n%s", h.state(), both)
	}
	// Wipe this deployment's ledger and files: its rules still carry its
	// tag, but nothing proves them its own any more. They are reported as
	// unproven, and only to it; nothing is revoked.
	h.led.wiped()
	h.src.remove("rules/web.yaml")
	h.eng = h.engine(Config{MaxRevoke: -1})
	res := h.reconcile(Request{All: true})
	if h.state() != both {
		t.Fatalf("after the ledger loss: %s (before: %s)", h.state(), mine)
	}
	for _, u := range res.Plan.Unproven {
		if u.Key.GroupID != "sg-0000000a" {
			t.Errorf("another deployment's rule reported as this one's: %s", u.Key)
		}
	}
	if len(res.Plan.Unproven) == 0 {
		t.Error("the rules carrying this deployment's tag are not reported")
	}
}

func TestOwnersWithoutASourceRecordAreGoneInASweep(t *testing.T) {
	h := newHarness(t)
	h.src.put("rules/web.yaml", webFile)
	h.src.put("rules/b.yaml", strings.ReplaceAll(webFile, "description: HTTPS", "description: B"))
	h.reconcile(Request{All: true})
	// A commit cut short by an earlier version: permissions name a source
	// whose record was never written, and whose file is gone.
	h.led.mu.Lock()
	delete(h.led.sources, "rules/web.yaml")
	h.led.mu.Unlock()
	h.src.remove("rules/web.yaml")
	h.src.put("rules/b.yaml", strings.ReplaceAll(webFile, "description: HTTPS", "description: B"))
	h.eng = h.engine(Config{MaxRevoke: -1})
	h.reconcile(Request{All: true})
	for k, o := range h.led.owned() {
		for owner := range o.Owners {
			if owner.Source == "rules/web.yaml" {
				t.Fatalf("%s still owned by the gone source", k)
			}
		}
	}
	if !strings.Contains(h.stateWithDescriptions(), `"B"`) {
		t.Fatalf("the gone owner's description still wins: %s", h.stateWithDescriptions())
	}
}

func (h *harness) stateWithDescriptions() string {
	var lines []string
	for k, r := range h.ec2.snapshot() {
		lines = append(lines, k.String()+" "+`"`+r.Description+`"`)
	}
	sortStrings(lines)
	return strings.Join(lines, "\n")
}

func TestStoredDiagnosticsStayWithinLimits(t *testing.T) {
	var ds rules.Diagnostics
	for i := range 3000 {
		ds = append(ds, rules.Diagnostic{File: "f.yaml", Line: i + 1, Col: 1, Severity: rules.SeverityError, Msg: strings.Repeat("x", 5000)})
	}
	got := storedDiagnostics(ds)
	if len(got) != MaxStoredDiagnostics+1 || !strings.Contains(got[len(got)-1], "and 2950 more") {
		t.Fatalf("%d stored, last %q", len(got), got[len(got)-1])
	}
	for _, s := range got {
		if len(s) > MaxDiagnosticBytes {
			t.Fatalf("diagnostic of %d bytes stored", len(s))
		}
	}
	if got := storedDiagnostics(ds[:3]); len(got) != 3 {
		t.Fatalf("a short list is cut: %q", got)
	}
}

func TestManagedGroupTagLimitsChanges(t *testing.T) {
	h := newHarness(t)
	h.eng = h.engine(Config{ManagedGroupTag: "sgrules"})
	h.ec2.mu.Lock()
	h.ec2.groups[sgApp].Tags["sgrules"] = "yes"
	h.ec2.mu.Unlock()
	h.src.put("rules/web.yaml", webFile) // sg-0000000a, not tagged
	h.src.put("rules/app.yaml", strings.ReplaceAll(strings.ReplaceAll(webFile, "sg-0000000a", "sg-0000000X"), "sg-0000000b", "sg-0000000a"))
	h.src.put("rules/app.yaml", strings.ReplaceAll(h.srcBody("rules/app.yaml"), "sg-0000000X", sgApp))
	res := h.reconcile(Request{All: true})
	web, app := h.source(res, "rules/web.yaml"), h.source(res, "rules/app.yaml")
	if web.Status != StatusInvalid || !strings.Contains(strings.Join(web.Diagnostics.Strings(), "\n"), "rules/web.yaml:3:20: http: security group sg-0000000a is not tagged sgrules") {
		t.Fatalf("a file for an untagged group: %+v", web)
	}
	if app.Status != StatusApplied || h.rulesOf(sgApp) == "" || h.rulesOf(sgWeb) != "" {
		t.Fatalf("the tagged group: %+v; rules web %q app %q", app, h.rulesOf(sgWeb), h.rulesOf(sgApp))
	}
}

func (h *harness) srcBody(key string) string {
	h.src.mu.Lock()
	defer h.src.mu.Unlock()
	return string(h.src.files[key])
}
