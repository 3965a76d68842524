package reconcile

import (
	"context"
	"sync"
)

// A run is one invocation's work: a Fleet's Reconcile over its targets
// and shards, or an Engine's Reconcile outside a Fleet, with all its
// attempts. Something every engine of a run meets (an absent policy
// object) is reported once per run, not once per engine and attempt.

type runKey struct{}

type runState struct {
	mu   sync.Mutex
	seen map[string]bool
}

// WithRun marks ctx as one run, unless it already is one.
func WithRun(ctx context.Context) context.Context {
	if _, ok := ctx.Value(runKey{}).(*runState); ok {
		return ctx
	}
	return context.WithValue(ctx, runKey{}, &runState{seen: map[string]bool{}})
}

// FirstInRun reports whether what (a report's name) is met for the first
// time in ctx's run; always true outside a run.
func FirstInRun(ctx context.Context, what string) bool {
	st, ok := ctx.Value(runKey{}).(*runState)
	if !ok {
		return true
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.seen[what] {
		return false
	}
	st.seen[what] = true
	return true
}
