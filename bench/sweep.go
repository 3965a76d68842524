package bench

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/sgrules/sgrules/internal/reconcile"
)

// Sweep is the dedicated drift-sweep benchmark: Rules managed rules in
// Groups groups (the workload of genRules: 50 per group, 40 ingress and
// 10 egress), applied from scratch (Setup, measured but not the point),
// then one Request{All: true} with nothing drifted (Clean). Clean must
// make no mutating EC2 call and no DynamoDB write.
type Sweep struct {
	Rules  int `json:"rules"`
	Groups int `json:"groups"`
	Setup  Row `json:"setup"`
	Clean  Row `json:"clean"`
}

// ScSweepBig names the rows of the dedicated sweep benchmark.
const (
	ScSweepSetup = "sweep-setup"
	ScSweepBig   = "sweep-clean"
)

func runSweep(ctx context.Context, url string, n int, logf func(string, ...any)) (*Sweep, error) {
	g := groupsFor(n)
	w, err := newWorld(ctx, url, g)
	if err != nil {
		return nil, err
	}
	eng, err := w.engine()
	if err != nil {
		return nil, err
	}
	files, err := renderFiles(genRules(n, g), n, nil)
	if err != nil {
		return nil, err
	}
	if err := w.putFiles(ctx, files); err != nil {
		return nil, err
	}
	setup, res, err := reconcileRow(ctx, w, eng, n, g, ScSweepSetup, reconcile.Request{Keys: slices.Sorted(maps.Keys(files))}, logf)
	if err != nil {
		return nil, err
	}
	if got := res.Plan.Count(reconcile.ActAuthorize); got != n {
		return nil, fmt.Errorf("%s: authorized %d rules, want %d", ScSweepSetup, got, n)
	}
	clean, res, err := reconcileRow(ctx, w, eng, n, g, ScSweepBig, reconcile.Request{All: true}, logf)
	if err != nil {
		return nil, err
	}
	if clean.EC2Mutating != 0 || clean.DynamoDBWrites != 0 || len(res.Plan.Actions) != 0 {
		return nil, fmt.Errorf("%s: nothing drifted, yet %d mutating EC2 calls, %d DynamoDB writes, %d actions",
			ScSweepBig, clean.EC2Mutating, clean.DynamoDBWrites, len(res.Plan.Actions))
	}
	if res.Drift.GroupsChecked != g {
		return nil, fmt.Errorf("%s: checked %d groups, want %d", ScSweepBig, res.Drift.GroupsChecked, g)
	}
	return &Sweep{Rules: n, Groups: g, Setup: setup, Clean: clean}, nil
}
