package reconcile

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sgrules/sgrules/pkg/policy"
	"github.com/sgrules/sgrules/pkg/rules"
)

// fakePolicyStore serves a policy text parsed with pkg/policy; its adapter
// is internal/adapters/policyload's in miniature (that package imports this one).
type fakePolicyStore struct {
	text  string // "" means no policy
	calls int
}

func (s *fakePolicyStore) Policy(context.Context) (Policy, error) {
	s.calls++
	if s.text == "" {
		return nil, nil
	}
	p, diags := policy.Parse("policy/sgrules.yaml", []byte(s.text))
	if p == nil {
		return nil, &PolicyError{Key: "policy/sgrules.yaml", Diagnostics: diags}
	}
	return fakePolicy{p}, nil
}

type fakePolicy struct{ p *policy.Policy }

func facts(pf PolicyFacts) policy.Facts {
	f := policy.Facts{Groups: map[string]policy.Group{}, PrefixLists: pf.PrefixLists, Held: pf.Held}
	for id, g := range pf.Groups {
		if g != nil {
			f.Groups[id] = policy.Group{ID: g.GroupID, Name: g.Name, VPCID: g.VPCID, Tags: g.Tags, Complete: true}
		}
	}
	return f
}

func (f fakePolicy) Name() string { return f.p.Name }
func (f fakePolicy) Revoke() bool { return f.p.Enforce == policy.EnforceRevoke }

// CheckSource refuses what it cannot decide, as policyload's does.
func (f fakePolicy) CheckSource(src PolicySource, pf PolicyFacts) rules.Diagnostics {
	res := f.p.Check(policy.Source{File: src.File, Perms: src.Perms, Resolve: src.Resolve,
		Path: strings.TrimPrefix(src.Key, "rules/"), Account: src.Target.Account}, facts(pf))
	out := res.Diagnostics()
	for _, s := range res.Skipped {
		d := s.Diagnostic
		d.Severity, d.Msg = rules.SeverityError, "cannot decide policy "+s.Policy+": needs "+strings.Join(s.Need, " and ")
		out = append(out, d)
	}
	return out
}

func (f fakePolicy) CheckRules(keys []rules.Key, pf PolicyFacts) [][]PolicyClause {
	out := make([][]PolicyClause, len(keys))
	for i, ms := range f.p.CheckRules(keys, facts(pf)) {
		for _, m := range ms {
			if !m.Skipped {
				out[i] = append(out[i], PolicyClause{ID: m.Clause.ID, Message: m.Clause.Message})
			}
		}
	}
	return out
}

func (f fakePolicy) Admit(w PolicyWrite, pf PolicyFacts) []PolicyDenial {
	pw := policy.Write{Key: w.Key, Account: w.Target.Account}
	for _, o := range w.Owners {
		path := ""
		if o.Kind == KindFile {
			path = strings.TrimPrefix(o.Source, "rules/")
		}
		pw.Paths = append(pw.Paths, path)
	}
	var out []PolicyDenial
	for _, r := range f.p.Admit(pw, facts(pf)) {
		out = append(out, PolicyDenial{Owner: r.Owner, Policy: r.Policy, Reason: r.Msg, Undecided: r.Skipped, Need: r.Need})
	}
	return out
}

const noWorldSSH = `deny:
  - id: no-world-ssh
    message: SSH must not be open to the internet
    type: ingress
    protocol: tcp
    ports: 22
    cidrs: [0.0.0.0/0, "::/0"]
`

const sshFile = `rules:
  ssh:
    securityGroup: sg-0000000a
    type: ingress
    protocol: tcp
    fromPort: 22
    toPort: 22
    cidrBlocks: [192.0.2.0/24, 0.0.0.0/0]
`

func policyHarness(t *testing.T, text string) (*harness, *fakePolicyStore) {
	h := newHarness(t)
	store := &fakePolicyStore{text: text}
	h.eng = h.engine(Config{Policy: store})
	return h, store
}

func source(res Result, key string) SourceResult {
	for _, s := range res.Sources {
		if s.Key == key {
			return s
		}
	}
	return SourceResult{}
}

func TestPolicyViolationMakesFileInvalidAndLocated(t *testing.T) {
	h, _ := policyHarness(t, noWorldSSH)
	h.src.put("rules/ssh.yaml", sshFile)
	h.src.put("rules/web.yaml", webFile)
	res := h.apply("rules/ssh.yaml", "rules/web.yaml")
	ssh := source(res, "rules/ssh.yaml")
	want := "rules/ssh.yaml:8:32: ssh: violates policy NO-WORLD-SSH: SSH must not be open to the internet (ingress tcp 22 from 0.0.0.0/0)"
	if ssh.Status != StatusInvalid || len(ssh.Diagnostics) != 2 || ssh.Diagnostics[1].String() != want {
		t.Fatalf("ssh.yaml: %+v\nwant %s", ssh, want)
	}
	if strings.Contains(h.state(), "tcp/22") || source(res, "rules/web.yaml").Status != StatusApplied {
		t.Fatalf("the invalid file changed EC2, or the valid one was not applied:\n%s", h.state())
	}
	if got := res.Policy.Rejected; len(got) != 1 || got[0] != "rules/ssh.yaml" {
		t.Fatalf("rejected: %v", got)
	}
	if rec := h.led.sources["rules/ssh.yaml"]; rec.Status != StatusInvalid || !strings.Contains(strings.Join(rec.Diagnostics, "\n"), "NO-WORLD-SSH") {
		t.Fatalf("ledger: %+v", rec)
	}
}

func TestPolicyTenantRefusesAnotherTeamsGroup(t *testing.T) {
	h, _ := policyHarness(t, "tenants:\n  - prefix: team-a/\n    groups: {tags: {team: a}}\n")
	h.ec2.groups[sgWeb].Tags["team"] = "a"
	h.ec2.groups[sgDB].Tags["team"] = "b"
	h.src.put("rules/team-a/web.yaml", "rules:\n  w:\n    securityGroup: {tags: {Name: web}}\n    type: ingress\n    protocol: tcp\n    fromPort: 443\n    toPort: 443\n    cidrBlocks: [10.0.0.0/8]\n")
	h.src.put("rules/team-a/db.yaml", "rules:\n  pg:\n    securityGroup: {tags: {Name: db}}\n    type: ingress\n    protocol: tcp\n    fromPort: 5432\n    toPort: 5432\n    cidrBlocks: [10.0.0.0/8]\n")
	res := h.reconcile(Request{All: true})
	if s := source(res, "rules/team-a/web.yaml"); s.Status != StatusApplied {
		t.Fatalf("web: %+v", s)
	}
	db := source(res, "rules/team-a/db.yaml")
	want := "rules/team-a/db.yaml:3:20: pg: violates policy tenant team-a/: securityGroup {tags: {Name: db}} (sg-0000000c) is not a group of the tenant ({tags: {team: a}})"
	if db.Status != StatusInvalid || len(db.Diagnostics) != 1 || db.Diagnostics[0].String() != want {
		t.Fatalf("db: %+v\nwant %s", db.Diagnostics.Strings(), want)
	}
	if strings.Contains(h.state(), "5432") {
		t.Fatal("the tenant's violation reached EC2")
	}
}

func TestBrokenPolicyAppliesNothingAndResumes(t *testing.T) {
	h, store := policyHarness(t, noWorldSSH)
	h.src.put("rules/web.yaml", webFile)
	h.apply("rules/web.yaml")
	before := h.state()

	store.text = "deny:\n  - id: x\n    prot: tcp\n"
	h.src.put("rules/web.yaml", strings.ReplaceAll(webFile, "443", "8443"))
	h.src.put("rules/db.yaml", dbFile)
	h.src.remove("rules/nothing.yaml")
	mut := h.ec2.mutating()
	res := h.reconcile(Request{All: true})
	if res.Policy.Invalid == nil || !strings.Contains(res.Policy.Invalid.Error(), "policy/sgrules.yaml:3:5") {
		t.Fatalf("policy report: %+v", res.Policy)
	}
	for _, s := range res.Sources {
		if s.Status != StatusHeld || !strings.Contains(s.Message, "policy policy/sgrules.yaml is invalid") {
			t.Fatalf("%s: %+v", s.Key, s)
		}
	}
	if h.ec2.mutating() != mut || h.state() != before {
		t.Fatalf("a broken policy changed EC2:\n%s", h.state())
	}

	store.text = noWorldSSH
	res = h.reconcile(Request{All: true})
	for _, s := range res.Sources {
		if s.Status != StatusApplied {
			t.Fatalf("after the fix, %s: %+v", s.Key, s)
		}
	}
	if !strings.Contains(h.state(), "8443") || !strings.Contains(h.state(), "5432") {
		t.Fatalf("not resumed:\n%s", h.state())
	}
}

func TestPolicyChangeKeepsAppliedFileMarkedInvalid(t *testing.T) {
	h, store := policyHarness(t, "")
	h.src.put("rules/ssh.yaml", sshFile)
	h.apply("rules/ssh.yaml")
	if h.led.sources["rules/ssh.yaml"].Status != StatusApplied || !h.led.sources["rules/ssh.yaml"].Static {
		t.Fatal("setup: ssh.yaml not applied as a static file")
	}
	before := h.state()

	store.text = noWorldSSH
	res := h.reconcile(Request{All: true})
	if s := source(res, "rules/ssh.yaml"); s.Status != StatusInvalid || !strings.Contains(strings.Join(s.Diagnostics.Strings(), ""), "NO-WORLD-SSH") {
		t.Fatalf("a static file unchanged since apply was not re-checked: %+v", s)
	}
	if h.state() != before {
		t.Fatalf("the file's rules changed:\n%s", h.state())
	}
	// Its world-open rule is a managed violation: reported, not revoked.
	if v := res.Policy.Violations; len(v) != 1 || !v[0].Managed || v[0].Revoke || v[0].Rule.Key.Peer.Value != "0.0.0.0/0" {
		t.Fatalf("violations: %+v", v)
	}
}

func TestPolicyRevokesUnmanagedViolationsOnly(t *testing.T) {
	h, _ := policyHarness(t, noWorldSSH+"enforce: revoke\n")
	h.src.put("rules/web.yaml", webFile)
	h.src.put("rules/app.yaml", "rules:\n  dns:\n    securityGroup: sg-0000000b\n    type: egress\n    protocol: udp\n    fromPort: 53\n    toPort: 53\n    cidrBlocks: [10.0.0.2/32]\n")
	h.reconcile(Request{All: true})
	open := h.ec2.addRule(key(sgWeb, rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "0.0.0.0/0"), "by hand", nil)
	office := h.ec2.addRule(key(sgWeb, rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "192.0.2.0/24"), "office", nil)
	pausedOpen := h.ec2.addRule(key(sgApp, rules.Ingress, "tcp", 0, 65535, rules.PeerCIDR6, "::/0"), "", nil)
	h.ec2.groups[sgApp].Tags[TagPause] = time.Now().Add(time.Hour).UTC().Format(time.RFC3339)

	report := h.reconcile(Request{All: true, DryRun: true})
	if n := len(report.Policy.Violations); n != 2 || report.Policy.Revoked() != 1 || report.Executed {
		t.Fatalf("dry run: %+v", report.Policy)
	}
	res := h.reconcile(Request{All: true})
	snap := h.ec2.snapshot()
	ids := map[string]bool{}
	for _, r := range snap {
		ids[r.RuleID] = true
	}
	if ids[open] || !ids[office] || !ids[pausedOpen] {
		t.Fatalf("want only the world-open SSH rule revoked: %v", ids)
	}
	if res.Policy.Revoked() != 1 || res.Drift.Unmanaged != 2 || res.Plan.Count(ActRevoke) != 1 || res.Plan.Actions[0].Cause != CausePolicy {
		t.Fatalf("result: %+v %+v", res.Policy, res.Plan.Actions)
	}
	var paused PolicyViolation
	for _, v := range res.Policy.Violations {
		if v.Rule.RuleID == pausedOpen {
			paused = v
		}
	}
	if !paused.Paused || paused.Revoke {
		t.Fatalf("paused group: %+v", paused)
	}
}

func TestPolicyRevokesAreHeldByTheGuard(t *testing.T) {
	h, _ := policyHarness(t, noWorldSSH+"enforce: revoke\n")
	h.eng = h.engine(Config{Policy: &fakePolicyStore{text: noWorldSSH + "enforce: revoke\n"}, MaxRevoke: 1})
	h.src.put("rules/web.yaml", webFile)
	h.src.put("rules/db.yaml", dbFile)
	h.reconcile(Request{All: true})
	h.ec2.addRule(key(sgWeb, rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "0.0.0.0/0"), "", nil)
	h.ec2.addRule(key(sgDB, rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "0.0.0.0/0"), "", nil)
	mut := h.ec2.mutating()
	res := h.reconcile(Request{All: true})
	if h.ec2.mutating() != mut || res.HeldCleanup != 2 || res.Policy.Revoked() != 0 || len(res.Policy.Violations) != 2 {
		t.Fatalf("guard: held %d, %+v", res.HeldCleanup, res.Policy)
	}
}

func TestNoPolicyObjectIsNoPolicy(t *testing.T) {
	h, store := policyHarness(t, "")
	h.src.put("rules/ssh.yaml", sshFile)
	res := h.apply("rules/ssh.yaml")
	if source(res, "rules/ssh.yaml").Status != StatusApplied || res.Policy.Name != "" || store.calls != 1 {
		t.Fatalf("%+v, %d calls", res, store.calls)
	}
}

// A CloudFormation resource the policy refused owns nothing; its Delete
// (the rollback) reports it deleted, so the custom resource answers
// SUCCESS. (The run has no EC2 action: the result used to be built
// before the source records, and said "applied".)
func TestRefusedInlineSourceIsDeleted(t *testing.T) {
	h, _ := policyHarness(t, noWorldSSH)
	f, diags := rules.Parse("cfn/app/OpenSSH", []byte(sshFile))
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	const key = "cfn/app/OpenSSH"
	res := h.reconcile(Request{Inline: map[string]Inline{key: {File: f}}})
	if s := source(res, key); s.Status != StatusInvalid {
		t.Fatalf("create: %+v", s)
	}
	res = h.reconcile(Request{Inline: map[string]Inline{key: {}}})
	if s := source(res, key); s.Status != StatusDeleted {
		t.Fatalf("delete: %+v", s)
	}
	if _, ok := h.led.sources[key]; ok {
		t.Fatal("the record of the deleted source is kept")
	}
}

// A prefix list the policy cannot read refuses the file at its
// prefixListIds element, saying why (fail closed); an AWS-managed list is
// known to open nothing; a throttled read fails the run (retried). Each
// list is read once per attempt.
func TestPolicyPrefixListsFailClosed(t *testing.T) {
	const plOwn, plAWS = "pl-0000000000000000a", "pl-0000000000000000b"
	file := func(pl string) string {
		return "rules:\n  ssh:\n    securityGroup: sg-0000000a\n    type: ingress\n    protocol: tcp\n    fromPort: 22\n    toPort: 22\n    prefixListIds: [" + pl + "]\n"
	}
	tests := []struct {
		name            string
		pl              string
		entries         []netip.Prefix
		describeErr     error
		entriesErr      error
		want            string // "" = applied
		wantErr         bool
		describes, gets int
	}{
		{name: "private entries", pl: plOwn, entries: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, describes: 1, gets: 1},
		{name: "the world", pl: plOwn, entries: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}, describes: 1, gets: 1,
			want: "rules/f.yaml:8:21: ssh: violates policy NO-WORLD-SSH: SSH must not be open to the internet (ingress tcp 22 from " + plOwn + ", which covers the internet (0.0.0.0/0))"},
		{name: "AWS-managed", pl: plAWS, describes: 1},
		{name: "missing", pl: "pl-0000000000000000c", describes: 1,
			want: "rules/f.yaml:8:21: ssh: cannot decide policy no-world-ssh: needs the entries of prefix list pl-0000000000000000c"},
		{name: "entries denied", pl: plOwn, entriesErr: fmt.Errorf("get: %w", ErrAccessDenied), describes: 1, gets: 1,
			want: "cannot decide policy no-world-ssh: needs the entries of prefix list " + plOwn},
		{name: "describe denied", pl: plOwn, describeErr: fmt.Errorf("describe: %w", ErrAccessDenied), describes: 1,
			want: "cannot decide policy no-world-ssh: needs the entries of prefix list " + plOwn},
		{name: "throttled", pl: plOwn, entriesErr: errors.New("RequestLimitExceeded"), wantErr: true, describes: 1, gets: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := policyHarness(t, noWorldSSH)
			h.ec2.prefixLists = map[string]PrefixListInfo{plOwn: {ID: plOwn, MaxEntries: 5, AddressFamily: "IPv4"}, plAWS: {ID: plAWS, AWSManaged: true}}
			h.ec2.entries = map[string][]netip.Prefix{plOwn: tc.entries}
			h.ec2.prefixListErr, h.ec2.entriesErr = tc.describeErr, tc.entriesErr
			h.src.put("rules/f.yaml", file(tc.pl))
			res, err := h.eng.Reconcile(context.Background(), Request{Keys: []string{"rules/f.yaml"}})
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "RequestLimitExceeded") {
					t.Fatalf("err = %v, want the read error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s := source(res, "rules/f.yaml")
			diags := strings.Join(s.Diagnostics.Strings(), "\n")
			if tc.want == "" && s.Status != StatusApplied || tc.want != "" && (s.Status != StatusInvalid || !strings.Contains(diags, tc.want)) {
				t.Fatalf("%s %s\nwant %q", s.Status, diags, tc.want)
			}
			if d, g := h.ec2.calls["describe-prefix-lists"], h.ec2.calls["prefix-list-entries"]; d != tc.describes || g != tc.gets {
				t.Errorf("%d describes, %d entry reads; want %d, %d", d, g, tc.describes, tc.gets)
			}
		})
	}
}
