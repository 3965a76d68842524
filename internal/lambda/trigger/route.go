package trigger

import (
	"slices"
	"strings"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// MaxRouteBytes bounds the route a sweep message carries (SQS takes 256
// KiB per message and per batch of 10): a larger one (the first schedule
// of many new files) is left out, and that target's sweep routes every
// file itself.
const MaxRouteBytes = 16 << 10

// FlattenRoute is a target's route (reconcile.Survey.Routes) in a sweep
// message, nil when there is none or it is larger than MaxRouteBytes.
func FlattenRoute(r *reconcile.TargetRoute) *SweepRoute {
	if r == nil {
		return nil
	}
	out := &SweepRoute{Read: r.Read}
	size := 0
	for _, k := range r.Read {
		size += len(k) + 3
	}
	for k, t := range r.Moves {
		out.Moves = append(out.Moves, SweepMove{Key: k, Account: t.Account, Region: t.Region})
		size += len(k) + 60
	}
	if size > MaxRouteBytes {
		return nil
	}
	slices.SortFunc(out.Moves, func(a, b SweepMove) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// ExpandRoute is the route of a sweep message for the Fleet
// (reconcile.Request.Route).
func ExpandRoute(r *SweepRoute) *reconcile.TargetRoute {
	if r == nil {
		return nil
	}
	out := &reconcile.TargetRoute{Read: r.Read}
	for _, m := range r.Moves {
		if out.Moves == nil {
			out.Moves = map[string]rules.Target{}
		}
		out.Moves[m.Key] = rules.Target{Account: m.Account, Region: m.Region}
	}
	return out
}
