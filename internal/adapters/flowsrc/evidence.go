package flowsrc

import (
	"context"
	"sync"
	"time"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/flowlog"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Evidence is the engine's traffic evidence (reconcile.UsageEvidence) read
// from the flow logs themselves: the logs of the window (since the
// engine's since, up to now) are read once and aggregated, then the rules
// asked are credited as "sgrules usage" credits them. A read is reused
// for MaxAge (the CLI's one run; a warm function's invocations), then the
// logs are read again.
//
// Known is false for every rule when the window holds no log object of
// the account and region (no flow log delivers there): the evidence
// cannot tell. Otherwise every rule is known, unused when no flow credits
// it. Flows whose opener is ambiguous count as use: a rule is never taken
// for unused on doubtful evidence.
type Evidence struct {
	logs *Logs
	lk   *Lookup
	now  func() time.Time
	// MaxAge bounds how long a read of the logs is reused (0: 10 minutes).
	MaxAge time.Duration

	mu    sync.Mutex
	read  time.Time // when the logs were read (zero: never)
	since time.Time
	ag    *flowlog.Aggregator
	objs  int
}

var _ reconcile.UsageEvidence = (*Evidence)(nil)

// NewEvidence returns the evidence of the logs (already narrowed to one
// account and region: Logs.Accounts, Logs.Regions) with the interfaces and
// prefix lists of lk (that account and region's EC2).
func NewEvidence(logs *Logs, lk *Lookup) *Evidence {
	return &Evidence{logs: logs, lk: lk, now: time.Now}
}

// Stats returns what the last read saw: its records, malformed lines and
// unreadable objects, and how many objects it listed.
func (e *Evidence) Stats() (flowlog.Stats, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ag == nil {
		return flowlog.Stats{}, 0
	}
	return e.ag.Stats(), e.objs
}

// RuleUsage implements reconcile.UsageEvidence.
func (e *Evidence) RuleUsage(ctx context.Context, _ rules.Target, asked []reconcile.UsageRule, since time.Time) ([]reconcile.RuleUse, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	maxAge := e.MaxAge
	if maxAge <= 0 {
		maxAge = 10 * time.Minute
	}
	now := e.now()
	if e.ag == nil || now.Sub(e.read) > maxAge || since.Before(e.since) {
		ag := flowlog.NewAggregator(since, now)
		objs, err := e.logs.Read(ctx, ag, since, now)
		if err != nil {
			return nil, err
		}
		e.ag, e.read, e.since, e.objs = ag, now, since, len(objs)
	}
	out := make([]reconcile.RuleUse, len(asked))
	if e.objs == 0 {
		return out, nil // no log here: unknown
	}
	managed := make([]flowlog.Rule, len(asked))
	for i, r := range asked {
		managed[i] = flowlog.Rule{Key: r.Key, RuleID: r.RuleID}
	}
	rep, err := flowlog.Attribute(ctx, e.ag.Flows(), managed, e.lk)
	if err != nil {
		return nil, err
	}
	byID := map[string]flowlog.Usage{}
	for _, u := range rep.Rules {
		byID[u.RuleID+"\x00"+u.Key.String()] = u
	}
	for i, r := range asked {
		u := byID[r.RuleID+"\x00"+r.Key.String()]
		if !u.Last.IsZero() && u.Last.Before(since) {
			u = flowlog.Usage{} // a record read for the day, before the window
		}
		out[i] = reconcile.RuleUse{Known: true, Flows: u.Flows, Bytes: u.Bytes, Last: u.Last}
		if u.LastPeer.IsValid() {
			out[i].Peer = u.LastPeer.String()
		}
	}
	return out, nil
}
