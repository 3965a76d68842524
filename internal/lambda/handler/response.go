package handler

import (
	"github.com/sgrules/sgrules/internal/lambda/trigger"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Response is the JSON document an invocation returns, except for SQS
// batches (an events.SQSEventResponse) and CloudFormation requests
// (answered at their ResponseURL). It owns its shape: explicit, stable,
// camelCase names, converted from the engine's types (which carry no JSON
// tags); docs/cli.md describes it.
type Response struct {
	Kind trigger.Kind `json:"kind"`
	// Ignored says why nothing was reconciled.
	Ignored string `json:"ignored,omitempty"`
	// Error is a terminal error that was logged instead of retried.
	Error string `json:"error,omitempty"`
	// Request is what the engine was asked to look at.
	Request *RequestDoc `json:"request,omitempty"`
	// Sources are the outcomes per rule source.
	Sources []SourceDoc `json:"sources,omitempty"`
	// Drift is the drift report (drift function) of a run in one target.
	Drift *report.Report `json:"drift,omitempty"`
	// Refused are the writes the guardrail policy refused at admission,
	// never written, in every target (the reconcile function; the drift
	// function's reports carry them per target).
	Refused []report.Refusal `json:"policyRefused,omitempty"`
	// Targets are the targets run (absent for a handler without a fleet).
	Targets []TargetDoc `json:"targets,omitempty"`
	// Sweeps are the sweep messages a scheduled event planned.
	Sweeps []trigger.Sweep `json:"sweeps,omitempty"`
	// Offboarded are the targets a scheduled sweep left alone: ledger
	// records in accounts no longer in TARGET_ACCOUNTS.
	Offboarded []trigger.Sweep `json:"offboarded,omitempty"`
}

// TargetDoc is the outcome in one target (account and region).
type TargetDoc struct {
	Account string `json:"account"`
	Region  string `json:"region"`
	// Sources counts the rule sources judged there.
	Sources int `json:"sources"`
	// Error is why the target failed (the others went on).
	Error string         `json:"error,omitempty"`
	Drift *report.Report `json:"drift,omitempty"`
}

// flattenRefused lists the refused writes of every target.
func flattenRefused(res reconcile.FleetResult) []report.Refusal {
	var out []report.Refusal
	for _, t := range res.Targets {
		for _, r := range report.Refusals(t.Result) {
			r.Account, r.Region = t.Target.Account, t.Target.Region
			out = append(out, r)
		}
	}
	return out
}

func flattenTargets(res reconcile.FleetResult) []TargetDoc {
	var out []TargetDoc
	for _, t := range res.Targets {
		if t.Target.IsZero() {
			continue
		}
		d := TargetDoc{Account: t.Target.Account, Region: t.Target.Region, Sources: len(t.Result.Sources)}
		if t.Err != nil {
			d.Error = t.Err.Error()
		}
		out = append(out, d)
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

// SourceDoc is the outcome of one rule source.
type SourceDoc struct {
	Key string `json:"key"`
	// Status is applied, invalid, held, pending (a move out of this
	// target its new target has not accepted) or unknown.
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
	// Diagnostics of reading the source in this run.
	Diagnostics rules.Diagnostics `json:"diagnostics,omitempty"`
	// Recorded are the diagnostics the ledger holds for a source this run
	// did not read again (a CloudFormation resource in a sweep).
	Recorded []string `json:"recorded,omitempty"`
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

func flattenRequest(req reconcile.Request) *RequestDoc {
	return &RequestDoc{Keys: req.Keys, All: req.All, Groups: req.Groups, DryRun: req.DryRun, Reason: req.Reason}
}

func flattenSources(srcs []reconcile.SourceResult) []SourceDoc {
	if len(srcs) == 0 {
		return nil
	}
	out := make([]SourceDoc, len(srcs))
	for i, s := range srcs {
		out[i] = SourceDoc{
			Key: s.Key, Status: string(s.Status), Message: s.Message,
			Diagnostics: s.Diagnostics, Recorded: s.Recorded,
			RuleIDs: s.RuleIDs,
		}
		if out[i].RuleIDs == nil {
			out[i].RuleIDs = []string{}
		}
		if g := s.Guard; g != nil {
			out[i].Guard = &GuardDoc{Losses: g.Losses, FromSource: g.FromSource, Limit: g.Limit, Spent: g.Spent}
		}
	}
	return out
}
