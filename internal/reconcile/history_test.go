package reconcile

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sgrules/sgrules/pkg/rules"
)

// fakeHistory is an in-memory HistoryLog; fail makes every write fail.
type fakeHistory struct {
	mu     sync.Mutex
	events []HistoryEvent
	writes int
	fail   error
}

func (f *fakeHistory) RecordHistory(_ context.Context, evs []HistoryEvent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	if f.fail != nil {
		return f.fail
	}
	for _, ev := range evs {
		if i := slices.IndexFunc(f.events, func(e HistoryEvent) bool { return ev.ID != "" && e.ID == ev.ID }); i >= 0 {
			f.events[i] = ev
			continue
		}
		ev.ID = fmt.Sprint(len(f.events))
		f.events = append(f.events, ev)
	}
	return nil
}

func (f *fakeHistory) GroupHistory(_ context.Context, g string) ([]HistoryEvent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []HistoryEvent
	for i := len(f.events) - 1; i >= 0; i-- {
		if f.events[i].Key.GroupID == g {
			out = append(out, f.events[i])
		}
	}
	return out, nil
}

// lines renders the events of a group newest first: "kind key-port by".
func (f *fakeHistory) lines(g string) []string {
	evs, _ := f.GroupHistory(context.Background(), g)
	var out []string
	for _, ev := range evs {
		s := fmt.Sprintf("%s %d/%s", ev.Kind, ev.Key.FromPort, ev.Key.Peer.Value)
		if ev.Change != "" {
			s += " " + ev.Change
		}
		if ev.By != nil {
			s += " by " + ev.By.Principal
			if ev.LateBy {
				s += " (late)"
			}
		}
		out = append(out, s)
	}
	return out
}

// versioned gives the objects of a source a version id and a commit.
type versioned struct{ Source }

func (v versioned) Get(ctx context.Context, key string) (Object, error) {
	o, err := v.Source.Get(ctx, key)
	o.VersionID, o.Commit = "v-"+o.ETag, "c0ffee"
	return o, err
}

const histSSHFile = `rules:
  ssh:
    securityGroup: sg-0000000a
    type: ingress
    protocol: tcp
    fromPort: 22
    toPort: 22
    cidrBlocks: [192.0.2.0/24]
    description: SSH
`

func historyHarness(t *testing.T) (*harness, *fakeHistory, *time.Time) {
	h := newHarness(t)
	hist := &fakeHistory{}
	now := time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC)
	h.eng = h.engine(Config{History: hist, Now: func() time.Time { return now }})
	h.eng.cfg.Source = versioned{h.src}
	return h, hist, &now
}

// Every write the engine makes is told in the rule's history, with the
// file, its version and commit; drift names the CloudTrail caller of the
// groups it named; the events of one run are one write.
func TestHistoryRecordsWrites(t *testing.T) {
	h, hist, now := historyHarness(t)
	h.src.put("rules/ssh.yaml", histSSHFile)
	h.apply("rules/ssh.yaml")
	if len(hist.events) != 1 || hist.writes != 1 {
		t.Fatalf("after apply: %d writes %+v", hist.writes, hist.events)
	}
	ev := hist.events[0]
	if ev.Kind != HistCreated || ev.File != "rules/ssh.yaml" || ev.Commit != "c0ffee" || !strings.HasPrefix(ev.VersionID, "v-") ||
		ev.RuleID == "" || ev.Description != "SSH" || len(ev.Owners) != 1 || ev.Owners[0].String() != "rules/ssh.yaml#ssh" || !ev.At.Equal(*now) {
		t.Errorf("created: %+v", ev)
	}

	// Deleted by alice; her CloudTrail event makes the run look.
	ssh := key(sgWeb, rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "192.0.2.0/24")
	id := h.ec2.snapshot()[ssh].RuleID
	h.ec2.mu.Lock()
	delete(h.ec2.rules, id)
	h.ec2.mu.Unlock()
	alice := &Caller{Principal: "assumed-role/Admin/alice", EventName: "RevokeSecurityGroupIngress", EventTime: now.Add(-time.Minute), Groups: []string{sgWeb}}
	h.reconcile(Request{All: true, Groups: []string{sgWeb}, Caller: alice, Reason: "cloudtrail:RevokeSecurityGroupIngress"})

	// Changed in the file, then the file deleted.
	h.src.put("rules/ssh.yaml", strings.Replace(histSSHFile, "SSH", "SSH from the office", 1))
	h.apply("rules/ssh.yaml")
	h.src.remove("rules/ssh.yaml")
	h.apply("rules/ssh.yaml")

	want := []string{
		"revoked 22/192.0.2.0/24",
		"modified 22/192.0.2.0/24",
		"reverted 22/192.0.2.0/24",
		"drifted 22/192.0.2.0/24 deleted by assumed-role/Admin/alice",
		"created 22/192.0.2.0/24",
	}
	if got := hist.lines(sgWeb); !slices.Equal(got, want) {
		t.Errorf("history:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if hist.writes != 4 {
		t.Errorf("%d history writes, want one per run that wrote", hist.writes)
	}
	if got := hist.events[len(hist.events)-1]; got.File != "rules/ssh.yaml" || got.VersionID == "" {
		t.Errorf("revoked: %+v", got)
	}
}

// A rule revoked because its deadline passed is "expired", with the
// deadline.
func TestHistoryExpired(t *testing.T) {
	h, hist, now := historyHarness(t)
	deadline := now.Add(time.Hour)
	h.src.put("rules/ssh.yaml", strings.Replace(histSSHFile, "    description: SSH\n", "    description: SSH\n    expiresAt: "+deadline.Format(time.RFC3339)+"\n", 1))
	h.apply("rules/ssh.yaml")
	*now = deadline.Add(time.Second)
	h.reconcile(Request{All: true})
	got := hist.lines(sgWeb)
	if len(got) != 2 || got[0] != "expired 22/192.0.2.0/24" || !hist.events[1].ExpiresAt.Equal(deadline) {
		t.Errorf("history: %v %+v", got, hist.events)
	}
}

// A history that cannot be written fails nothing: the run succeeds and
// EC2 keeps the change.
func TestHistoryFailureFailsNothing(t *testing.T) {
	h, hist, _ := historyHarness(t)
	hist.fail = fmt.Errorf("throttled: %w", errInjected)
	h.src.put("rules/ssh.yaml", histSSHFile)
	res := h.apply("rules/ssh.yaml")
	if len(res.Sources) != 1 || res.Sources[0].Status != StatusApplied || !strings.Contains(h.state(), "192.0.2.0/24") || hist.writes != 1 {
		t.Fatalf("status %+v, state %s, writes %d", res.Sources, h.state(), hist.writes)
	}
	if len(h.led.owned()) != 1 {
		t.Errorf("ledger: %+v", h.led.owned())
	}
}

// A scheduled sweep reverts a deletion naming nobody; alice's CloudTrail
// event, arriving later, finds nothing to revert and completes the
// drifted event with her name. Events of other calls, other groups, or
// too late do not.
func TestHistoryLateAttribution(t *testing.T) {
	h, hist, now := historyHarness(t)
	h.src.put("rules/ssh.yaml", histSSHFile)
	h.apply("rules/ssh.yaml")
	ssh := key(sgWeb, rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "192.0.2.0/24")
	id := h.ec2.snapshot()[ssh].RuleID
	h.ec2.mu.Lock()
	delete(h.ec2.rules, id)
	h.ec2.mu.Unlock()
	called := now.Add(-2 * time.Minute)
	h.reconcile(Request{All: true, Reason: "schedule"})
	if got := hist.lines(sgWeb); len(got) != 3 || got[1] != "drifted 22/192.0.2.0/24 deleted" {
		t.Fatalf("after the sweep: %v", got)
	}

	for _, c := range []Caller{
		{Principal: "user/bob", EventName: "RevokeSecurityGroupEgress", EventTime: called, Groups: []string{sgWeb}},
		{Principal: "user/bob", EventName: "RevokeSecurityGroupIngress", EventTime: called, Groups: []string{sgApp}},
		{Principal: "user/bob", EventName: "RevokeSecurityGroupIngress", EventTime: now.Add(time.Minute), Groups: []string{sgWeb}},
		{Principal: "user/bob", EventName: "RevokeSecurityGroupIngress", EventTime: now.Add(-2 * LateWindow), Groups: []string{sgWeb}},
		{Principal: "user/bob", EventName: "UpdateSecurityGroupRuleDescriptionsIngress", EventTime: called, Groups: []string{sgWeb}},
	} {
		res := h.reconcile(Request{All: true, Groups: c.Groups, Caller: &c})
		if len(res.Attributed) != 0 {
			t.Errorf("%s at %s in %v completed %+v", c.EventName, c.EventTime, c.Groups, res.Attributed)
		}
	}
	alice := Caller{Principal: "assumed-role/Admin/alice", EventName: "RevokeSecurityGroupIngress", EventTime: called, Groups: []string{sgWeb}}
	res := h.reconcile(Request{All: true, Groups: []string{sgWeb}, Caller: &alice})
	if len(res.Attributed) != 1 || res.Attributed[0].By.Principal != "assumed-role/Admin/alice" || res.Attributed[0].Key != ssh {
		t.Fatalf("attributed: %+v", res.Attributed)
	}
	want := []string{"reverted 22/192.0.2.0/24", "drifted 22/192.0.2.0/24 deleted by assumed-role/Admin/alice (late)", "created 22/192.0.2.0/24"}
	if got := hist.lines(sgWeb); !slices.Equal(got, want) {
		t.Errorf("history:\n%s", strings.Join(got, "\n"))
	}
	// Once named, the drift is not named again.
	if res := h.reconcile(Request{All: true, Groups: []string{sgWeb}, Caller: &alice}); len(res.Attributed) != 0 {
		t.Errorf("attributed twice: %+v", res.Attributed)
	}
	// A dry run completes nothing.
	if res := h.reconcile(Request{All: true, Groups: []string{sgWeb}, Caller: &alice, DryRun: true}); len(res.Attributed) != 0 {
		t.Errorf("dry run: %+v", res.Attributed)
	}
}
