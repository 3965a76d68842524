package reconcile

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sgrules/sgrules/pkg/rules"
)

// fakeEvidence answers from a table of permissions: used ones carry
// traffic, unknown ones are not covered, others carried none.
type fakeEvidence struct {
	mu      sync.Mutex
	used    map[rules.Key]bool
	unknown map[rules.Key]bool
	err     error
	asked   int
}

func (f *fakeEvidence) RuleUsage(_ context.Context, _ rules.Target, asked []UsageRule, since time.Time) ([]RuleUse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked += len(asked)
	if f.err != nil {
		return nil, f.err
	}
	out := make([]RuleUse, len(asked))
	for i, r := range asked {
		switch {
		case f.unknown[r.Key]:
		case f.used[r.Key]:
			out[i] = RuleUse{Known: true, Flows: 1200, Bytes: 99000, Last: since.Add(time.Hour), Peer: "10.1.4.7"}
		default:
			out[i] = RuleUse{Known: true}
		}
	}
	return out, nil
}

const evApp = `rules:
  pg:
    securityGroup: sg-0000000c
    type: ingress
    protocol: tcp
    fromPort: 5432
    toPort: 5432
    cidrBlocks: [10.1.0.0/16]
  ssh:
    securityGroup: sg-0000000c
    type: ingress
    protocol: tcp
    fromPort: 22
    toPort: 22
    cidrBlocks: [10.9.0.0/16]
`

var (
	evPG  = key(sgDB, rules.Ingress, "tcp", 5432, 5432, rules.PeerCIDR4, "10.1.0.0/16")
	evSSH = key(sgDB, rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "10.9.0.0/16")
)

// dropRule removes one rule (name and its six field lines) from evApp.
func dropRule(src, name string) string {
	lines := strings.Split(src, "\n")
	for i, l := range lines {
		if l == "  "+name+":" {
			return strings.Join(append(lines[:i:i], lines[i+7:]...), "\n")
		}
	}
	panic(name)
}

func TestUsedRuleRemoval(t *testing.T) {
	const web = `  web:
    securityGroup: sg-0000000c
    type: ingress
    protocol: tcp
    fromPort: 443
    toPort: 443
    cidrBlocks: [10.2.0.0/16]
`
	evHTTPS := key(sgDB, rules.Ingress, "tcp", 443, 443, rules.PeerCIDR4, "10.2.0.0/16")
	for _, tc := range []struct {
		name string
		// next is the file after the change ("" deletes it); req the request.
		next string
		req  Request
		used []rules.Key
		// present and absent are the permissions in EC2 after the run;
		// refused and allowed the rule names reported.
		present, absent  []rules.Key
		refused, allowed string
	}{
		{name: "used rule removed: refused, the unrelated change goes ahead",
			next: dropRule(evApp, "pg") + web, used: []rules.Key{evPG},
			present: []rules.Key{evPG, evSSH, evHTTPS}, refused: "pg"},
		{name: "unused rule removed normally",
			next: dropRule(evApp, "ssh"), used: []rules.Key{evPG},
			present: []rules.Key{evPG}, absent: []rules.Key{evSSH}},
		{name: "acknowledged in the file",
			next: dropRule(evApp, "pg") + "allowUsedRemoval: [pg]\n", used: []rules.Key{evPG},
			present: []rules.Key{evSSH}, absent: []rules.Key{evPG}, allowed: "pg"},
		{name: "another rule acknowledged does not count",
			next: dropRule(evApp, "pg") + "allowUsedRemoval: [ssh]\n", used: []rules.Key{evPG},
			present: []rules.Key{evPG, evSSH}, refused: "pg"},
		{name: "acknowledged by the request",
			next: dropRule(evApp, "pg"), req: Request{AllowUsedRemoval: true}, used: []rules.Key{evPG},
			present: []rules.Key{evSSH}, absent: []rules.Key{evPG}, allowed: "pg"},
		{name: "narrowed: the old permission stays, the new one is added",
			next: strings.Replace(evApp, "[10.1.0.0/16]", "[10.1.4.0/24]", 1), used: []rules.Key{evPG},
			present: []rules.Key{evPG, key(sgDB, rules.Ingress, "tcp", 5432, 5432, rules.PeerCIDR4, "10.1.4.0/24")}, refused: "pg"},
		{name: "widened: modified in place",
			next: strings.Replace(evApp, "[10.1.0.0/16]", "[10.0.0.0/8]", 1), used: []rules.Key{evPG},
			present: []rules.Key{key(sgDB, rules.Ingress, "tcp", 5432, 5432, rules.PeerCIDR4, "10.0.0.0/8")}, absent: []rules.Key{evPG}},
		{name: "ports changed",
			next: strings.Replace(evApp, "fromPort: 22\n    toPort: 22", "fromPort: 2222\n    toPort: 2222", 1), used: []rules.Key{evSSH},
			present: []rules.Key{evPG, evSSH, key(sgDB, rules.Ingress, "tcp", 2222, 2222, rules.PeerCIDR4, "10.9.0.0/16")}, refused: "ssh"},
		{name: "covered by a rule that stays: removed",
			next: dropRule(evApp, "pg") + strings.Replace(strings.Replace(web, "443", "5432", 2), "10.2.0.0/16", "10.0.0.0/8", 1),
			used: []rules.Key{evPG}, absent: []rules.Key{evPG}},
		{name: "file deleted: its used rule stays, the unused one goes",
			used: []rules.Key{evPG}, present: []rules.Key{evPG}, absent: []rules.Key{evSSH}, refused: "pg"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			ev := &fakeEvidence{used: map[rules.Key]bool{}}
			for _, k := range tc.used {
				ev.used[k] = true
			}
			h.eng = h.engine(Config{Evidence: ev})
			h.src.put("rules/db.yaml", evApp)
			h.apply("rules/db.yaml")
			if tc.next == "" {
				h.src.remove("rules/db.yaml")
			} else {
				h.src.put("rules/db.yaml", tc.next)
			}
			req := tc.req
			req.Keys = []string{"rules/db.yaml"}
			res := h.reconcile(req)
			got := h.ec2.snapshot()
			for _, k := range tc.present {
				if _, ok := got[k]; !ok {
					t.Errorf("%s was removed:\n%s", k, h.state())
				}
			}
			for _, k := range tc.absent {
				if _, ok := got[k]; ok {
					t.Errorf("%s is still there", k)
				}
			}
			names := func(rs []UsageRefusal) string {
				var s []string
				for _, r := range rs {
					s = append(s, r.Owner.Rule)
				}
				return strings.Join(s, ",")
			}
			if g := names(res.Usage.Refused); g != tc.refused {
				t.Errorf("refused %q, want %q: %v", g, tc.refused, res.Usage.Refused)
			}
			if g := names(res.Usage.Allowed); g != tc.allowed {
				t.Errorf("allowed %q, want %q", g, tc.allowed)
			}
			for _, r := range res.Usage.Refused {
				if s := r.String(); !strings.Contains(s, "rules/db.yaml rule "+r.Owner.Rule) || !strings.Contains(s, "from 10.1.4.7") || r.Action.Usage == nil {
					t.Errorf("refusal reads %q", s)
				}
			}
			for _, a := range res.Plan.Actions {
				if (a.Kind == ActRevoke || a.Kind == ActModify) && a.Usage == nil {
					t.Errorf("%s %s carries no usage", a.Kind, a.Key)
				}
			}
			// Level-based: a sweep judges again and changes nothing more.
			h.ec2.ops = nil
			again := h.reconcile(Request{All: true, AllowUsedRemoval: tc.req.AllowUsedRemoval})
			if len(h.ec2.ops) != 0 {
				t.Errorf("the sweep after it changed EC2: %v", h.ec2.ops)
			}
			if g := names(again.Usage.Refused); g != tc.refused {
				t.Errorf("sweep refused %q, want %q", g, tc.refused)
			}
			if tc.refused == "" {
				return
			}
			// Once acknowledged by the request, the removal goes through,
			// and the ledger forgets the permission.
			h.reconcile(Request{All: true, AllowUsedRemoval: true})
			for _, k := range tc.used {
				if _, ok := h.ec2.snapshot()[k]; ok {
					t.Errorf("%s still there after the acknowledged sweep", k)
				}
				if _, ok := h.led.owned()[k]; ok {
					t.Errorf("%s still in the ledger", k)
				}
			}
			if tc.next == "" {
				if _, ok, _ := h.led.GetSource(context.Background(), "rules/db.yaml"); ok {
					t.Error("the deleted file's record is still there")
				}
			}
		})
	}
}

func TestUsedRuleRemovalEvidence(t *testing.T) {
	t.Run("unknown usage: removed", func(t *testing.T) {
		h := newHarness(t)
		h.eng = h.engine(Config{Evidence: &fakeEvidence{unknown: map[rules.Key]bool{evPG: true}}})
		h.src.put("rules/db.yaml", evApp)
		h.apply("rules/db.yaml")
		h.src.put("rules/db.yaml", dropRule(evApp, "pg"))
		res := h.apply("rules/db.yaml")
		if _, ok := h.ec2.snapshot()[evPG]; ok || len(res.Usage.Refused) != 0 {
			t.Fatalf("refused %v", res.Usage.Refused)
		}
		if a := res.Plan.Actions[0]; a.Usage == nil || a.Usage.Summary() != "usage unknown" {
			t.Fatalf("action %+v", a)
		}
	})
	t.Run("evidence unreadable: nothing written", func(t *testing.T) {
		h := newHarness(t)
		ev := &fakeEvidence{}
		h.eng = h.engine(Config{Evidence: ev})
		h.src.put("rules/db.yaml", evApp)
		h.apply("rules/db.yaml")
		ev.err = errors.New("throttled")
		h.src.put("rules/db.yaml", dropRule(evApp, "pg"))
		if _, err := h.eng.Reconcile(context.Background(), Request{Keys: []string{"rules/db.yaml"}}); err == nil || !strings.Contains(err.Error(), "throttled") {
			t.Fatalf("err = %v", err)
		}
		if _, ok := h.ec2.snapshot()[evPG]; !ok {
			t.Fatal("revoked without evidence")
		}
	})
	t.Run("expired rule: revoked", func(t *testing.T) {
		h := newHarness(t)
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		clock := now
		h.eng = h.engine(Config{Evidence: &fakeEvidence{used: map[rules.Key]bool{evPG: true}}, Now: func() time.Time { return clock }})
		h.src.put("rules/db.yaml", strings.Replace(evApp, "[10.1.0.0/16]\n", "[10.1.0.0/16]\n    expiresAt: 2026-01-02T00:00:00Z\n", 1))
		h.apply("rules/db.yaml")
		clock = now.Add(48 * time.Hour)
		res := h.reconcile(Request{All: true})
		if _, ok := h.ec2.snapshot()[evPG]; ok || len(res.Usage.Refused) != 0 {
			t.Fatalf("expired rule kept: %v", res.Usage.Refused)
		}
	})
	t.Run("no evidence: not asked", func(t *testing.T) {
		h := newHarness(t)
		h.src.put("rules/db.yaml", evApp)
		h.apply("rules/db.yaml")
		h.src.put("rules/db.yaml", dropRule(evApp, "pg"))
		res := h.apply("rules/db.yaml")
		if _, ok := h.ec2.snapshot()[evPG]; ok || res.Plan.Actions[0].Usage != nil {
			t.Fatal("without evidence the rule is revoked, unmarked")
		}
	})
}

func TestCombineEvidence(t *testing.T) {
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	logs := staticEvidence{{Known: true}, {}, {Known: true, Flows: 3, Bytes: 30, Last: at, Peer: "10.0.0.1"}, {Known: true, Flows: 1, Last: at.Add(time.Hour), Peer: "10.0.0.2"}}
	ledger := staticEvidence{{}, {}, {Known: true, Flows: 5, Bytes: 10, Last: at.Add(-time.Hour), Peer: "10.0.0.9"}, {Known: true, Flows: 2, Last: at, Peer: "10.0.0.3"}}
	if CombineEvidence(nil, nil) != nil || CombineEvidence(nil, logs) == nil {
		t.Fatal("nil evidence is left out")
	}
	got, err := CombineEvidence(logs, ledger).RuleUsage(context.Background(), rules.Target{}, make([]UsageRule, 4), at)
	if err != nil {
		t.Fatal(err)
	}
	want := []RuleUse{{Known: true}, {}, {Known: true, Flows: 5, Bytes: 30, Last: at, Peer: "10.0.0.1"}, {Known: true, Flows: 2, Last: at.Add(time.Hour), Peer: "10.0.0.2"}}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("rule %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if _, err := CombineEvidence(logs, &fakeEvidence{err: errors.New("throttled")}).RuleUsage(context.Background(), rules.Target{}, make([]UsageRule, 4), at); err == nil {
		t.Error("an error of either is the run's")
	}
}

type staticEvidence []RuleUse

func (s staticEvidence) RuleUsage(context.Context, rules.Target, []UsageRule, time.Time) ([]RuleUse, error) {
	return s, nil
}
