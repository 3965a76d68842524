package fleetrt

import (
	"context"

	"github.com/sgrules/sgrules/internal/reconcile"
)

// Budget is the revoke budget of one scheduled sweep (run: the schedule's
// event id), kept in the ledger table: every sweep message of the schedule
// shares MaxRevoke (ddbledger.Ledger.Budget).
func (f *Fleet) Budget(run string) reconcile.RevokeBudget { return runBudget{f: f, run: run} }

type runBudget struct {
	f   *Fleet
	run string
}

func (b runBudget) Claim(ctx context.Context, claimant string, n, limit int) (bool, int, error) {
	if err := b.f.init(ctx); err != nil {
		return false, 0, err
	}
	return b.f.ledger.Budget(b.run).Claim(ctx, claimant, n, limit)
}
