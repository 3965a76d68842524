package reconcile

import (
	"context"
	"time"

	"github.com/sgrules/sgrules/pkg/rules"
)

// Traffic evidence: before the plan revokes or narrows a rule that a rule
// file declared, the engine asks whether the rule carried traffic lately
// (Config.Evidence, over Config.UsedWithin). A rule that did is kept, and
// the removal reported as refused (Result.Usage), unless the request or
// the file acknowledges it (docs/usage.md, "Never remove a used rule by
// accident").
//
// The engine knows the evidence only through the interface below. The CLI
// implements it with the flow logs it reads over the window (sgrules plan
// --flow-logs); the reconcile function with the per-rule counters that the
// flow-log ingestion writes to the ledger.

// UsageEvidence tells whether rules carried traffic.
type UsageEvidence interface {
	// RuleUsage returns the use of each rule asked (out[i] for asked[i],
	// len(out) == len(asked)) on or after since, in target (the engine's
	// account and region; empty fields when it has none). The engine asks
	// once per plan, for the rules the plan would revoke or narrow, many
	// groups at once.
	//
	// A rule is identified by its EC2 rule id (sgr-…), which flow-log
	// attribution and the ledger's counters are keyed by, and by the
	// permission it carries now (Key: group, direction, protocol, ports,
	// peer), for implementations that credit permissions rather than ids.
	//
	// Known false means the evidence cannot tell (no counters are kept for
	// the rule's group or VPC, say no flow log delivers there): the plan
	// says "usage unknown" and the removal goes ahead. Known with Flows 0
	// means no traffic since since. An error fails the run (it is retried):
	// evidence that cannot be read never lets a removal through.
	RuleUsage(ctx context.Context, target rules.Target, asked []UsageRule, since time.Time) ([]RuleUse, error)
}

// UsageRule is one rule whose use the engine asks about.
type UsageRule struct {
	RuleID string
	Key    rules.Key
}

// RuleUse is the use of one rule within the window asked.
type RuleUse struct {
	// Known: the evidence covers the rule (false: unknown, see
	// UsageEvidence).
	Known bool
	// Flows and Bytes add up the flows credited to the rule in the window
	// (counted as pkg/flowlog.Usage counts them); Flows 0: unused.
	Flows, Bytes int64
	// Last is when the rule was last seen carrying traffic (zero when
	// unused or the logs carry no times), and Peer the peer address of
	// that flow ("" when unknown).
	Last time.Time
	Peer string
}

// Used reports whether the evidence shows traffic.
func (u RuleUse) Used() bool { return u.Known && u.Flows > 0 }

// DefaultUsedWithin is the default window of Config.UsedWithin: a rule
// that carried traffic within it is not removed by accident.
const DefaultUsedWithin = 30 * 24 * time.Hour
