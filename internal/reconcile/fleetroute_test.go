package reconcile

import (
	"context"
	"maps"
	"testing"

	"github.com/sgrules/sgrules/pkg/rules"
)

// TestFleetPlannedSweeps: the planner routes every file once per schedule
// (Survey: one ListAllSources); each target's sweep message, carrying its
// route, reads no other target's records (no ListAllSources; another
// target's ledger only for the record of a file that moved there) and
// converges as the unplanned sweeps do: new files applied, a changed file
// re-applied, a moved file applied in its new target and, once there,
// revoked in its old one; a file changed after the planning is routed by
// the sweep itself.
func TestFleetPlannedSweeps(t *testing.T) {
	h := newFleetHarness(t)
	ctx := context.Background()
	h.src.put("rules/home.yaml", targetFile("", 22))
	h.src.put("rules/b1.yaml", targetFile("account: \"111122223333\"\n", 80))
	h.src.put("rules/x.yaml", targetFile("account: \"111122223333\"\n", 81))
	h.src.put("rules/c.yaml", targetFile("account: \"444455556666\"\n", 5432))
	h.run(Request{All: true})

	h.src.put("rules/x.yaml", targetFile("account: \"444455556666\"\n", 81))  // moves B1 -> C
	h.src.put("rules/n.yaml", targetFile("account: \"444455556666\"\n", 90))  // new in C
	h.src.put("rules/b1.yaml", targetFile("account: \"111122223333\"\n", 88)) // changed in B1

	schedule := func(changeAfterPlanning func()) {
		t.Helper()
		h.tgts.mu.Lock()
		h.tgts.listAll = 0
		h.tgts.mu.Unlock()
		survey, err := h.fleet.Survey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if changeAfterPlanning != nil {
			changeAfterPlanning()
		}
		for _, tg := range survey.Targets {
			h.tgts.mu.Lock()
			h.tgts.listAll, h.tgts.scoped = 0, nil
			h.tgts.mu.Unlock()
			res, err := h.fleet.Reconcile(ctx, Request{All: true, Route: survey.Routes[tg]}, []rules.Target{tg})
			if err != nil || res.Err() != nil {
				t.Fatalf("sweep of %s: %v %v", tg, err, res.Err())
			}
			h.tgts.mu.Lock()
			listAll, scoped := h.tgts.listAll, maps.Clone(h.tgts.scoped)
			h.tgts.mu.Unlock()
			if listAll != 0 {
				t.Errorf("sweep of %s listed the sources of every target (%d times)", tg, listAll)
			}
			for other := range scoped {
				if other != tg && !(tg == fleetB1 && other == fleetC) {
					t.Errorf("sweep of %s read the ledger of %s", tg, other)
				}
			}
		}
	}
	// B1 is swept before C: the move is pending there, x keeps its rule.
	schedule(nil)
	if got := h.rulesIn(fleetC); got != "5432,81,90" {
		t.Errorf("C has %q, want 5432,81,90", got)
	}
	if got := h.rulesIn(fleetB1); got != "81,88" {
		t.Errorf("B1 has %q after the first schedule, want 81 (pending move) and 88", got)
	}
	// The next schedule completes the move; a file changed after the
	// planning (home.yaml) is routed by its target's sweep.
	schedule(func() { h.src.put("rules/home.yaml", targetFile("", 23)) })
	if got := h.rulesIn(fleetB1); got != "88" {
		t.Errorf("B1 has %q, want 88 (x.yaml revoked once applied in C)", got)
	}
	if got := h.rulesIn(fleetHome); got != "23" {
		t.Errorf("home has %q, want 23", got)
	}
	if recs, _ := h.tgts.For(fleetB1).ListSources(ctx); len(recs) != 1 || recs[0].Key != "rules/b1.yaml" {
		t.Errorf("B1 records %+v, want b1.yaml only", recs)
	}
}
