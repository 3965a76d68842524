package reconcile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
)

// One blast radius per run: MaxRevoke bounds the revocations of a whole
// run, not of each target. The engines of one run share a RevokeBudget: a
// Fleet call gives every target's engine the same in-memory budget
// (NewRunBudget), and the shards and messages of one scheduled sweep share
// one kept in the ledger table under the schedule's run id
// (ddbledger.Ledger.Budget). Each engine claims the losses of its plan
// before executing it; a claim that does not fit holds the plan, as a plan
// over MaxRevoke on its own is held. Claims are first come, first served.

// RevokeBudget is the revocations one run may still make.
type RevokeBudget interface {
	// Claim sets claimant's claim to n revocations out of a run limit of
	// limit: granted when every claim of the run, this one replacing the
	// claimant's earlier one (a re-plan), adds up to at most limit. A
	// claim that is not granted leaves the earlier one in place; spent is
	// what the other claimants hold.
	Claim(ctx context.Context, claimant string, n, limit int) (granted bool, spent int, err error)
}

// NewRunBudget returns an in-memory budget for the engines of one process.
func NewRunBudget() RevokeBudget { return &runBudget{claims: map[string]int{}} }

type runBudget struct {
	mu     sync.Mutex
	claims map[string]int
}

func (b *runBudget) Claim(_ context.Context, claimant string, n, limit int) (bool, int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	spent := 0
	for c, m := range b.claims {
		if c != claimant {
			spent += m
		}
	}
	if n > 0 && spent+n > limit {
		return false, spent, nil
	}
	b.claims[claimant] = n
	return true, spent, nil
}

// claim sets this engine's claim in the request's budget to n (no
// budget: granted). A budget that cannot be read fails the run (it is
// retried): the guard never lets a plan through unchecked.
func (e *Engine) claim(ctx context.Context, req Request, n int) (granted bool, spent int, err error) {
	if req.Budget == nil {
		return true, 0, nil
	}
	granted, spent, err = req.Budget.Claim(ctx, e.claimant(req), n, e.cfg.MaxRevoke)
	if err != nil {
		return false, 0, fmt.Errorf("revoke budget of the run: %w", err)
	}
	return granted, spent, nil
}

// claimant names this engine's run in a budget: its target and the groups
// of the request (a shard), hashed.
func (e *Engine) claimant(req Request) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s|%s", e.cfg.Target, strings.Join(req.Groups, ","))))
	return hex.EncodeToString(sum[:8])
}
