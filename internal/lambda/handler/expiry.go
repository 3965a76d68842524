package handler

import (
	"context"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// keepExpiry keeps the expiry schedules of the targets res reconciled
// without error (Config.Expiry), unless the run was a dry run. (A
// handler on a single Engine has no named target: nothing to keep.)
func (h *core) keepExpiry(ctx context.Context, req reconcile.Request, res reconcile.FleetResult) {
	if h.cfg.Expiry == nil || req.DryRun {
		return
	}
	var ts []rules.Target
	for _, t := range res.Targets {
		if t.Err == nil && !t.Target.IsZero() {
			ts = append(ts, t.Target)
		}
	}
	if len(ts) == 0 {
		return
	}
	if err := h.cfg.Expiry(ctx, ts); err != nil {
		h.log.WarnContext(ctx, "expiry schedules not kept: expired rules wait for the next sweep", "error", err)
	}
}
