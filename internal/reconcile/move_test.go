package reconcile

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/sgrules/sgrules/pkg/rules"
)

// A file moves between targets only when its new target accepts it; until
// then its old target keeps what it applied (make before break). The
// moto tests (internal/fleetrt/move_test.go) run the same on real adapters.

// withPolicy makes the harness's engines in tg check store.
func (h *fleetHarness) withPolicy(tg rules.Target, store PolicyStore) {
	next := h.fleet.cfg.Engine
	h.fleet.cfg.Engine = func(ctx context.Context, t rules.Target, src Source, led Ledger) (*Engine, error) {
		e, err := next(ctx, t, src, led)
		if err == nil && t == tg {
			e.cfg.Policy = store
		}
		return e, err
	}
}

func fleetSource(res FleetResult, tg rules.Target, key string) *SourceResult {
	for _, tr := range res.Targets {
		if tr.Target != tg {
			continue
		}
		for _, s := range tr.Result.Sources {
			if s.Key == key {
				return &s
			}
		}
	}
	return nil
}

func worldSSHFile(header string) string {
	return header + `rules:
  r22:
    securityGroup: sg-0000000a
    type: ingress
    protocol: tcp
    fromPort: 22
    toPort: 22
    cidrBlocks: [0.0.0.0/0]
`
}

func TestFleetMoveIsPendingUntilTheNewTargetAccepts(t *testing.T) {
	const key = "rules/mv.yaml"
	moved := "account: \"111122223333\"\n"
	cases := []struct {
		name   string
		file   func(header string) string
		block  func(h *fleetHarness) // makes B refuse the file
		lift   func(h *fleetHarness)
		reason string
	}{
		{"group missing there", func(hd string) string { return targetFile(hd, 22) },
			func(h *fleetHarness) { delete(h.tgts.ec2[fleetB1].groups, sgWeb) },
			func(h *fleetHarness) { h.tgts.ec2[fleetB1].addGroup(sgWeb, "web") },
			"invalid there: rules/mv.yaml:4:20: r22: security group sg-0000000a does not exist"},
		{"policy denies there", worldSSHFile,
			func(h *fleetHarness) { h.withPolicy(fleetB1, &fakePolicyStore{text: noWorldSSH}) },
			nil, "invalid there: rules/mv.yaml:9:18: r22: violates policy NO-WORLD-SSH"},
		{"role denied", func(hd string) string { return targetFile(hd, 22) },
			func(h *fleetHarness) { h.deny[fleetB1] = true },
			func(h *fleetHarness) { h.deny[fleetB1] = false },
			"assume role: AccessDenied"},
	}
	for _, tc := range cases {
		for _, mode := range []string{"keys", "sweep", "sweep of the old target"} {
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				h := newFleetHarness(t)
				h.src.put(key, tc.file(""))
				h.run(Request{Keys: []string{key}})
				if h.rulesIn(fleetHome) != "22" {
					t.Fatalf("home has %q", h.rulesIn(fleetHome))
				}
				tc.block(h)
				h.src.put(key, tc.file(moved))
				req, only := Request{Keys: []string{key}}, []rules.Target(nil)
				switch mode {
				case "sweep":
					req = Request{All: true}
				case "sweep of the old target":
					req, only = Request{All: true}, []rules.Target{fleetHome}
				}
				res := h.run(req, only...)
				if h.rulesIn(fleetHome) != "22" || h.rulesIn(fleetB1) != "" {
					t.Fatalf("home %q, B %q: want the rule kept at home, none in B", h.rulesIn(fleetHome), h.rulesIn(fleetB1))
				}
				s := fleetSource(res, fleetHome, key)
				want := "pending move to 111122223333/us-east-1: "
				if mode != "sweep of the old target" {
					want += tc.reason
				}
				if s == nil || s.Status != StatusPending || !strings.HasPrefix(s.Message, want) {
					t.Fatalf("home: %+v, want pending, message %q…", s, want)
				}
				// The old target's sweep after a run of both names B's reason.
				if mode != "sweep of the old target" {
					res = h.run(Request{All: true}, fleetHome)
					if s := fleetSource(res, fleetHome, key); s == nil || s.Status != StatusPending || !strings.Contains(s.Message, tc.reason) {
						t.Errorf("home's own sweep: %+v, want pending naming %q", s, tc.reason)
					}
					if h.rulesIn(fleetHome) != "22" {
						t.Fatalf("home's own sweep revoked: %q", h.rulesIn(fleetHome))
					}
				}

				// B accepts the file (lifted, or fixed): created there, then
				// revoked at home, in one run.
				if tc.lift != nil {
					tc.lift(h)
				} else {
					h.src.put(key, targetFile(moved, 22))
				}
				res = h.run(Request{All: true})
				if err := res.Err(); err != nil {
					t.Fatal(err)
				}
				if h.rulesIn(fleetHome) != "" || h.rulesIn(fleetB1) != "22" {
					t.Fatalf("after B accepts: home %q, B %q", h.rulesIn(fleetHome), h.rulesIn(fleetB1))
				}
				if recs, _ := h.tgts.For(fleetHome).ListSources(context.Background()); len(recs) != 0 {
					t.Errorf("home keeps records %+v", recs)
				}
			})
		}
	}
}

// In a dry run the plan shows the move as it will run: created in the
// new target, revoked in the old; nothing changes.
func TestFleetMoveDryRunPlansBoth(t *testing.T) {
	h := newFleetHarness(t)
	h.src.put("rules/mv.yaml", targetFile("", 22))
	h.run(Request{Keys: []string{"rules/mv.yaml"}})
	h.src.put("rules/mv.yaml", targetFile("account: \"111122223333\"\n", 22))
	res := h.run(Request{Keys: []string{"rules/mv.yaml"}, DryRun: true})
	plans := map[rules.Target]string{}
	for _, tr := range res.Targets {
		plans[tr.Target] = fmt.Sprintf("%d+ %d-", tr.Result.Plan.Count(ActAuthorize), tr.Result.Plan.Count(ActRevoke))
	}
	if plans[fleetHome] != "0+ 1-" || plans[fleetB1] != "1+ 0-" {
		t.Errorf("plans %v, want the authorize in B and the revoke at home", plans)
	}
	if h.rulesIn(fleetHome) != "22" || h.rulesIn(fleetB1) != "" {
		t.Errorf("dry run changed EC2: home %q, B %q", h.rulesIn(fleetHome), h.rulesIn(fleetB1))
	}
}

// A pending move undone (the file back where it was applied) settles in
// one run: applied at home, B's invalid record released.
func TestFleetPendingMoveUndone(t *testing.T) {
	h := newFleetHarness(t)
	const key = "rules/mv.yaml"
	h.src.put(key, targetFile("", 22))
	h.run(Request{Keys: []string{key}})
	delete(h.tgts.ec2[fleetB1].groups, sgWeb)
	h.src.put(key, targetFile("account: \"111122223333\"\n", 22))
	h.run(Request{Keys: []string{key}})
	h.src.put(key, targetFile("", 22))
	res := h.run(Request{Keys: []string{key}})
	if s := fleetSource(res, fleetHome, key); s == nil || s.Status != StatusApplied {
		t.Errorf("home: %+v, want applied", s)
	}
	if h.rulesIn(fleetHome) != "22" {
		t.Errorf("home has %q", h.rulesIn(fleetHome))
	}
	if recs, _ := h.tgts.For(fleetB1).ListSources(context.Background()); len(recs) != 0 {
		t.Errorf("B keeps records %+v", recs)
	}
	res = h.run(Request{All: true})
	for _, tr := range res.Targets {
		if len(tr.Result.Plan.Actions) != 0 {
			t.Errorf("sweep after: %s plans %+v", tr.Target, tr.Result.Plan.Actions)
		}
	}
}

// Two files swapping targets in one run: each target is the new target
// of one move and the old target of the other. One sweep completes both
// moves (make before break in each), and the next changes nothing.
func TestFleetSwapCompletesInOneRun(t *testing.T) {
	for _, mode := range []string{"keys", "sweep"} {
		t.Run(mode, func(t *testing.T) {
			h := newFleetHarness(t)
			h.src.put("rules/a.yaml", targetFile("", 22))
			h.src.put("rules/b.yaml", targetFile("account: \"111122223333\"\n", 80))
			h.run(Request{All: true})
			h.src.put("rules/a.yaml", targetFile("account: \"111122223333\"\n", 22))
			h.src.put("rules/b.yaml", targetFile("", 80))
			req := Request{Keys: []string{"rules/a.yaml", "rules/b.yaml"}}
			if mode == "sweep" {
				req = Request{All: true}
			}
			res := h.run(req)
			if err := res.Err(); err != nil {
				t.Fatal(err)
			}
			if h.rulesIn(fleetHome) != "80" || h.rulesIn(fleetB1) != "22" {
				t.Errorf("after one run: home %q, B %q; want 80, 22", h.rulesIn(fleetHome), h.rulesIn(fleetB1))
			}
			if len(res.Targets) != 2 {
				t.Errorf("%d target results, want one per target", len(res.Targets))
			}
			for _, tr := range res.Targets {
				if tr.Result.Plan.Count(ActAuthorize) != 1 || tr.Result.Plan.Count(ActRevoke) != 1 {
					t.Errorf("%s: plan %+v, want one authorize and one revoke", tr.Target, tr.Result.Plan.Actions)
				}
				for _, s := range tr.Result.Sources {
					if s.Status == StatusPending {
						t.Errorf("%s: %s still pending: %s", tr.Target, s.Key, s.Message)
					}
				}
			}
			for _, tg := range []rules.Target{fleetHome, fleetB1} {
				if recs, _ := h.tgts.For(tg).ListSources(context.Background()); len(recs) != 1 {
					t.Errorf("%s keeps records %+v, want one", tg, recs)
				}
			}
			res = h.run(Request{All: true})
			for _, tr := range res.Targets {
				if len(tr.Result.Plan.Actions) != 0 {
					t.Errorf("sweep after: %s plans %+v", tr.Target, tr.Result.Plan.Actions)
				}
			}
		})
	}
}
