package fleetrt

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/sgrules/sgrules/internal/config"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Survey is reconcile.Fleet.Survey: the targets a sweep visits and the
// offboarded ones (records in accounts no longer in TargetAccounts).
func (f *Fleet) Survey(ctx context.Context) (reconcile.Survey, error) {
	if err := f.init(ctx); err != nil {
		return reconcile.Survey{}, err
	}
	return f.fleet.Survey(ctx)
}

// OffboardedTarget is the outcome of Offboard in one target.
type OffboardedTarget struct {
	Target rules.Target
	reconcile.OffboardResult
	Err error
}

// Offboard settles the offboarded targets of account (in region, or every
// region when empty) with reconcile.Offboard: revoke (through the target
// role, while the hub may still assume it) and forget, or only forget. An
// account the hub may still name (its own, or one of TargetAccounts) is
// refused: a sweep would apply its files again, or clean up its rules as
// orphans. Targets without records are not offboarded (nothing to do).
// One target's failure does not stop the others.
func (f *Fleet) Offboard(ctx context.Context, account, region string, revoke bool) ([]OffboardedTarget, error) {
	if err := f.init(ctx); err != nil {
		return nil, err
	}
	if f.AllowAccount(account) {
		return nil, fmt.Errorf("account %s is still a target account (the hub's own, or in %s): take it out first", account, config.EnvTargetAccounts)
	}
	all, err := f.ledger.ListAllSources(ctx)
	if err != nil {
		return nil, fmt.Errorf("list ledger sources: %w", err)
	}
	var out []OffboardedTarget
	for t := range all {
		if t.Account != account || (region != "" && t.Region != region) {
			continue
		}
		r, err := reconcile.Offboard(ctx, f.groupsOf(t), f.ledger.For(t), f.opts.Holder, revoke)
		if err != nil {
			err = f.Explain(&reconcile.TargetError{Target: t, Err: err})
		}
		out = append(out, OffboardedTarget{Target: t, OffboardResult: r, Err: err})
	}
	slices.SortFunc(out, func(a, b OffboardedTarget) int { return cmp.Compare(a.Target.Region, b.Target.Region) })
	return out, nil
}
