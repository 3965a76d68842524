package reconcile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sgrules/sgrules/pkg/rules"
)

// Offboarding: an account taken out of the target accounts
// (TARGET_ACCOUNTS) while the ledger still holds records of its targets.
// Its targets are offboarded: a Fleet leaves them out of every run (their
// records are kept, never swept: nothing is revoked there without the
// operator's say, and no file can reach them any more) and reports them
// (Survey, FleetResult.Offboarded). Offboard then settles one such target
// by the operator's choice: revoke what the ledger proves sgrules made
// there and forget it, or only forget it.

// offboarded reports whether records of t name an account no longer
// allowed.
func (f *Fleet) offboarded(t rules.Target) bool {
	return t != f.cfg.Home && !f.cfg.AllowAccount(t.Account)
}

// Survey is what a sweep of every target would visit.
type Survey struct {
	// Targets are run by a sweep, sorted, home first (Targets).
	Targets []rules.Target
	// Offboarded hold ledger records but are in accounts no longer
	// allowed: never run.
	Offboarded []rules.Target
	// Routes are what the sweep of each target needs of this routing of
	// every target (Request.Route), by target.
	Routes map[rules.Target]*TargetRoute
}

// Survey returns the targets a sweep visits, the offboarded ones, and
// each target's route: the planner routes every file once per schedule.
func (f *Fleet) Survey(ctx context.Context) (Survey, error) {
	rt, err := f.route(ctx, Request{All: true})
	if err != nil {
		return Survey{}, err
	}
	s := Survey{Targets: rt.targets, Offboarded: rt.offboarded, Routes: map[rules.Target]*TargetRoute{}}
	for _, t := range rt.targets {
		s.Routes[t] = rt.routeOf(t)
	}
	return s, nil
}

func targetSet(ts []rules.Target) map[rules.Target]bool {
	out := make(map[rules.Target]bool, len(ts))
	for _, t := range ts {
		out[t] = true
	}
	return out
}

// OffboardResult is what Offboard did in one target.
type OffboardResult struct {
	// Revoked are the rule ids revoked (Revoke only), sorted.
	Revoked []string
	// Gone counts the permissions the ledger held whose rule no longer
	// exists as recorded (deleted or replaced by hand): nothing to revoke.
	Gone int
	// Sources and Permissions count the records deleted.
	Sources, Permissions int
}

// offboardLease bounds the group leases Offboard takes.
const offboardLease = 2 * time.Minute

// Offboard settles one offboarded target: with revoke, every rule the
// ledger holds (a rule id sgrules created or adopted there, still of the
// recorded permission) is revoked, one call per group and direction,
// while access remains; then every record of the target (permissions,
// intents, sources) is deleted. A rule the ledger does not name is never
// revoked. A failed revoke stops before the records are touched, so
// Offboard can be run again.
func Offboard(ctx context.Context, groups Groups, led Ledger, holder string, revoke bool) (OffboardResult, error) {
	var res OffboardResult
	perms, err := led.AllPermissions(ctx)
	if err != nil {
		return res, fmt.Errorf("read owned permissions: %w", err)
	}
	srcs, err := led.ListSources(ctx)
	if err != nil {
		return res, fmt.Errorf("read source records: %w", err)
	}
	ids := map[string]bool{}
	for _, p := range perms {
		ids[p.Key.GroupID] = true
	}
	groupIDs := sortedKeys(ids)
	if len(groupIDs) > 0 {
		unlock, err := led.Lock(ctx, groupIDs, holder, offboardLease, 30*time.Second)
		if err != nil {
			return res, fmt.Errorf("lock groups: %w", err)
		}
		defer func() { _ = unlock(context.WithoutCancel(ctx)) }()
	}
	if revoke && len(perms) > 0 {
		if res, err = revokeOwned(ctx, groups, perms); err != nil {
			return res, err
		}
	}
	intents, err := led.Intents(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("read intents: %w", err)
	}
	if len(intents) > 0 {
		keys := make([]rules.Key, len(intents))
		for i, in := range intents {
			keys[i] = in.Key
		}
		if err := led.ClearIntents(ctx, keys); err != nil {
			return res, fmt.Errorf("clear intents: %w", err)
		}
	}
	if err := led.Write(ctx, Commit{Delete: perms, DeleteSources: srcs}); err != nil {
		return res, fmt.Errorf("delete records: %w", err)
	}
	res.Sources, res.Permissions = len(srcs), len(perms)
	return res, nil
}

// revokeOwned revokes the rules of perms that still exist as recorded
// (same rule id, same permission), batched per group and direction.
func revokeOwned(ctx context.Context, groups Groups, perms []OwnedPermission) (OffboardResult, error) {
	var res OffboardResult
	want := map[string]rules.Key{}
	ids := map[string]bool{}
	for _, p := range perms {
		if p.RuleID != "" {
			want[p.RuleID] = p.Key
			ids[p.Key.GroupID] = true
		}
	}
	actual, err := groups.DescribeRules(ctx, sortedKeys(ids))
	if err != nil {
		return res, fmt.Errorf("describe rules: %w", err)
	}
	type batch struct {
		group string
		dir   rules.Direction
	}
	batches := map[batch][]string{}
	for _, a := range actual {
		if k, ok := want[a.RuleID]; ok && k == a.Key {
			b := batch{a.Key.GroupID, a.Key.Direction}
			batches[b] = append(batches[b], a.RuleID)
		}
	}
	keys := make([]batch, 0, len(batches))
	for b := range batches {
		keys = append(keys, b)
	}
	slices.SortFunc(keys, func(x, y batch) int {
		return cmp.Or(cmp.Compare(x.group, y.group), cmp.Compare(x.dir, y.dir))
	})
	for _, b := range keys {
		ruleIDs := batches[b]
		slices.Sort(ruleIDs)
		if err := groups.Revoke(ctx, b.group, b.dir, ruleIDs); err != nil {
			if errors.Is(err, ErrNotFound) {
				err = fmt.Errorf("a rule went meanwhile (run offboard again): %w", err)
			}
			return res, fmt.Errorf("revoke %d rules in %s %s: %w", len(ruleIDs), b.group, b.dir, err)
		}
		res.Revoked = append(res.Revoked, ruleIDs...)
	}
	slices.Sort(res.Revoked)
	res.Gone = len(want) - len(res.Revoked)
	return res, nil
}
