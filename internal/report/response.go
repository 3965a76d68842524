package report

import (
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// The documents a Lambda invocation returns, and the parts the CLI's JSON
// documents share with them (SourceDoc, TargetDoc). Each is defined here
// once; docs/cli.md and README.md ("Invocation responses") describe them.

// Response is the JSON document an invocation returns, except for SQS
// batches (an events.SQSEventResponse) and CloudFormation requests
// (answered at their ResponseURL). It owns its shape: explicit, stable,
// camelCase names, converted from the engine's types (which carry no JSON
// tags).
type Response struct {
	// Kind is the event: objects, schedule, api-call, s3-test, ...
	Kind string `json:"kind"`
	// Ignored says why nothing was reconciled.
	Ignored string `json:"ignored,omitempty"`
	// Error is a terminal error that was logged instead of retried.
	Error string `json:"error,omitempty"`
	// Request is what the engine was asked to look at.
	Request *RequestDoc `json:"request,omitempty"`
	// Sources are the outcomes per rule source.
	Sources []SourceDoc `json:"sources,omitempty"`
	// Drift is the drift report (drift function) of a run in one target.
	Drift *Report `json:"drift,omitempty"`
	// Refused are the writes the guardrail policy refused at admission,
	// never written, in every target (the reconcile function; the drift
	// function's reports carry them per target).
	Refused []Refusal `json:"policyRefused,omitempty"`
	// Targets are the targets run (absent for a handler without a fleet).
	Targets []TargetDoc `json:"targets,omitempty"`
	// Sweeps are the sweep messages a scheduled event planned.
	Sweeps []SweepDoc `json:"sweeps,omitempty"`
	// Offboarded are the targets a scheduled sweep left alone: ledger
	// records in accounts no longer in TARGET_ACCOUNTS.
	Offboarded []SweepDoc `json:"offboarded,omitempty"`
}

// SweepDoc is one sweep: a target (empty account and region: the hub's),
// the groups of a shard, and the schedule (run) that planned it.
type SweepDoc struct {
	Account string   `json:"account,omitempty"`
	Region  string   `json:"region,omitempty"`
	Groups  []string `json:"groups,omitempty"`
	Run     string   `json:"run,omitempty"`
}

// TargetDoc is the outcome in one target (account and region): in a
// Lambda response the count of sources judged there, the error that
// failed it and its drift report; in the CLI's JSON over several
// targets, Result is the target's plan or drift document.
type TargetDoc struct {
	Account string `json:"account"`
	Region  string `json:"region"`
	// Sources counts the rule sources judged there.
	Sources int `json:"sources"`
	// Error is why the target failed (the others went on).
	Error string  `json:"error,omitempty"`
	Drift *Report `json:"drift,omitempty"`
	// Result is the CLI's document of the target (PlanDoc, DriftDoc).
	Result any `json:"result,omitempty"`
}

// NewTargetDoc is the document of one target's outcome.
func NewTargetDoc(t reconcile.TargetResult) TargetDoc {
	d := TargetDoc{Account: t.Target.Account, Region: t.Target.Region, Sources: len(t.Result.Sources)}
	if t.Err != nil {
		d.Error = t.Err.Error()
	}
	return d
}

// NewTargetDocs lists the targets of a fleet run (none for a run without
// a fleet: the zero target).
func NewTargetDocs(res reconcile.FleetResult) []TargetDoc {
	var out []TargetDoc
	for _, t := range res.Targets {
		if t.Target.IsZero() {
			continue
		}
		out = append(out, NewTargetDoc(t))
	}
	return out
}

// FleetRefusals lists the refused writes of every target, each with its
// account and region.
func FleetRefusals(res reconcile.FleetResult) []Refusal {
	var out []Refusal
	for _, t := range res.Targets {
		for _, r := range Refusals(t.Result) {
			r.Account, r.Region = t.Target.Account, t.Target.Region
			out = append(out, r)
		}
	}
	return out
}

// RequestDoc is a reconcile.Request as the response shows it.
type RequestDoc struct {
	// Keys are the rule files named by the event.
	Keys []string `json:"keys,omitempty"`
	// All is a sweep of every source; Groups, if any, restrict it.
	All    bool     `json:"all,omitempty"`
	Groups []string `json:"groups,omitempty"`
	DryRun bool     `json:"dryRun"`
	// Reason names the event ("ObjectCreated:Put", "schedule", ...).
	Reason string `json:"reason"`
}

// NewRequestDoc is the document of a request.
func NewRequestDoc(req reconcile.Request) *RequestDoc {
	return &RequestDoc{Keys: req.Keys, All: req.All, Groups: req.Groups, DryRun: req.DryRun, Reason: req.Reason}
}

// SourceDoc is the outcome of one rule source, in a Lambda response and
// in the CLI's plan, apply and drift documents alike.
type SourceDoc struct {
	Key string `json:"key"`
	// Status is applied, invalid, held, pending (a move out of this
	// target its new target has not accepted) or unknown.
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
	// Diagnostics of reading the source in this run (never null).
	Diagnostics rules.Diagnostics `json:"diagnostics"`
	// Recorded are the diagnostics the ledger holds for a source this run
	// did not read again (a CloudFormation resource in a sweep).
	Recorded []string `json:"recorded,omitempty"`
	// RecordedDiagnostics is Recorded under the name the CLI's documents
	// (formatVersion 1) used; kept so that their readers do not break.
	RecordedDiagnostics []string `json:"recordedDiagnostics,omitempty"`
	// Guard is set when the blast-radius guard held the source.
	Guard *GuardDoc `json:"guard,omitempty"`
	// RuleIDs of the rules the source owns after the run, sorted by key.
	RuleIDs []string `json:"ruleIds"`
}

// GuardDoc says why the blast-radius guard held a source: the plan would
// revoke Losses rules (FromSource of them because of this source), over
// Limit (MAX_REVOKE), or, with Spent, besides the Spent the other targets
// and shards of the same run claimed first, over Limit together.
type GuardDoc struct {
	Losses     int `json:"losses"`
	FromSource int `json:"fromSource"`
	Limit      int `json:"limit"`
	Spent      int `json:"spent,omitempty"`
}

// NewSourceDocs is the document of each source outcome; lists are never
// null.
func NewSourceDocs(srcs []reconcile.SourceResult) []SourceDoc {
	out := make([]SourceDoc, 0, len(srcs))
	for _, s := range srcs {
		d := SourceDoc{
			Key: s.Key, Status: string(s.Status), Message: s.Message,
			Diagnostics: s.Diagnostics, Recorded: s.Recorded, RecordedDiagnostics: s.Recorded,
			RuleIDs: s.RuleIDs,
		}
		if d.Diagnostics == nil {
			d.Diagnostics = rules.Diagnostics{}
		}
		if d.RuleIDs == nil {
			d.RuleIDs = []string{}
		}
		if g := s.Guard; g != nil {
			d.Guard = &GuardDoc{Losses: g.Losses, FromSource: g.FromSource, Limit: g.Limit, Spent: g.Spent}
		}
		out = append(out, d)
	}
	return out
}
