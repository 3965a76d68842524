package ddbledger

import (
	"context"
	"fmt"
	"time"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Evidence is reconcile.UsageEvidence from the traffic counters the
// flow-log function writes (Counters): what the functions check before a
// revoke or narrowing.
//
//   - A rule is matched by its rule id, else by its permission (the
//     counters keep both; a rule modified in place keeps its id).
//   - Known: the rule's group has counters on some day of the window (its
//     interfaces' flow logs are ingested). A group without any is
//     "usage unknown": the counters cannot tell an idle group from one
//     whose logs are not delivered.
//   - The window is read in whole days (UTC): the first day's counters
//     may hold flows from before since. A rule whose last flow is before
//     since is unused; otherwise its flows count, so the check errs
//     towards keeping a rule, never towards removing a used one.
type Evidence struct {
	l *Ledger
	// now is the window's end (time.Now).
	now func() time.Time
}

var _ reconcile.UsageEvidence = (*Evidence)(nil)

// Evidence returns the usage evidence of the ledger's counters (every
// target's: RuleUsage names the target).
func (l *Ledger) Evidence() *Evidence { return &Evidence{l: l, now: time.Now} }

// RuleUsage implements reconcile.UsageEvidence.
func (e *Evidence) RuleUsage(ctx context.Context, target rules.Target, asked []reconcile.UsageRule, since time.Time) ([]reconcile.RuleUse, error) {
	out := make([]reconcile.RuleUse, len(asked))
	if len(asked) == 0 {
		return out, nil
	}
	groups := make([]string, 0, len(asked))
	for _, a := range asked {
		groups = append(groups, a.Key.GroupID)
	}
	counts, err := e.l.CountersFor(target).Read(ctx, groups, since, e.now())
	if err != nil {
		return nil, fmt.Errorf("traffic evidence: %w", err)
	}
	covered := map[string]bool{}
	byID, byKey := map[string]RuleCounter{}, map[rules.Key]RuleCounter{}
	for _, c := range counts {
		covered[c.Key.GroupID] = true
		byKey[c.Key] = c
		if c.RuleID != "" {
			m := byID[c.RuleID]
			m.merge(c)
			byID[c.RuleID] = m
		}
	}
	for i, a := range asked {
		if !covered[a.Key.GroupID] {
			continue
		}
		c, ok := byID[a.RuleID]
		if !ok || a.RuleID == "" {
			c = byKey[a.Key]
		}
		u := reconcile.RuleUse{Known: true}
		if c.Flows > 0 && (c.Last.IsZero() || !c.Last.Before(since)) {
			u.Flows, u.Bytes, u.Last = c.Flows, c.Bytes, c.Last
			if c.LastPeer.IsValid() {
				u.Peer = c.LastPeer.String()
			}
		}
		out[i] = u
	}
	return out, nil
}
