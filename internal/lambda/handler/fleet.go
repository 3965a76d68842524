package handler

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sgrules/sgrules/internal/lambda/trigger"
	"github.com/sgrules/sgrules/internal/report"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Fleet is what the handler needs of *reconcile.Fleet: rule files of
// every target (account and region).
type Fleet interface {
	Reconcile(ctx context.Context, req reconcile.Request, only []rules.Target) (reconcile.FleetResult, error)
	// Survey tells the targets a sweep visits and the offboarded ones.
	Survey(ctx context.Context) (reconcile.Survey, error)
}

var _ Fleet = (*reconcile.Fleet)(nil)

// Queue sends sweep messages (internal/adapters/sqsqueue on SWEEP_QUEUE_URL).
type Queue interface {
	Send(ctx context.Context, bodies []string) error
}

// DefaultShardSize is the number of groups per sweep message of a large
// target.
const DefaultShardSize = 500

// engineFleet is a single-target fleet on one Engine (the home target, a
// zero Target): a handler configured with an Engine only. It has one
// target, so only is moot.
type engineFleet struct{ Engine }

func (e engineFleet) Reconcile(ctx context.Context, req reconcile.Request, _ []rules.Target) (reconcile.FleetResult, error) {
	res, err := e.Engine.Reconcile(ctx, req)
	if err != nil {
		return reconcile.FleetResult{Targets: []reconcile.TargetResult{{Result: res, Err: err}}}, nil
	}
	return reconcile.FleetResult{Targets: []reconcile.TargetResult{{Result: res}}}, nil
}

func (engineFleet) Survey(context.Context) (reconcile.Survey, error) {
	return reconcile.Survey{Targets: []rules.Target{{}}}, nil
}

// holderFleet names the Lambda invocation in every request (see
// holderEngine).
type holderFleet struct{ Fleet }

func (f holderFleet) Reconcile(ctx context.Context, req reconcile.Request, only []rules.Target) (reconcile.FleetResult, error) {
	req.Holder = holderOf(ctx, req.Holder)
	return f.Fleet.Reconcile(ctx, req, only)
}

// plan is the scheduled event of a drift function with a queue: one sweep
// message per target (per shard of ShardSize groups of a larger target),
// sent through the Queue. The sweeps run in the invocations the queue
// starts, so one target's sweep neither waits for nor fails another's.
func (h *Drift) plan(ctx context.Context, sched *trigger.Schedule) (any, error) {
	run := ""
	if sched != nil {
		run = sched.ID
	}
	survey, err := h.fleet.Survey(ctx)
	if err != nil {
		h.log.ErrorContext(ctx, "sweep planning failed: will be retried", "error", err)
		return nil, fmt.Errorf("plan sweeps: %w", err)
	}
	targets := survey.Targets
	var sweeps []trigger.Sweep
	for _, t := range targets {
		var groups []string
		if h.cfg.ShardGroups != nil {
			if groups, err = h.cfg.ShardGroups(ctx, t); err != nil {
				h.log.WarnContext(ctx, "groups of target unknown: one sweep of all", "account", t.Account, "region", t.Region, "error", err)
				groups = nil
			}
		}
		route := trigger.FlattenRoute(survey.Routes[t])
		if len(groups) <= h.cfg.ShardSize {
			sweeps = append(sweeps, trigger.Sweep{Account: t.Account, Region: t.Region, Run: run, Route: route})
			continue
		}
		for shard := range slices.Chunk(groups, h.cfg.ShardSize) {
			sweeps = append(sweeps, trigger.Sweep{Account: t.Account, Region: t.Region, Groups: shard, Run: run, Route: route})
		}
	}
	bodies := make([]string, len(sweeps))
	for i, sw := range sweeps {
		bodies[i] = sw.Body()
	}
	if err := h.cfg.Queue.Send(ctx, bodies); err != nil {
		h.log.ErrorContext(ctx, "sweep messages not sent: will be retried", "messages", len(bodies), "error", err)
		return nil, fmt.Errorf("send %d sweep messages: %w", len(bodies), err)
	}
	h.log.InfoContext(ctx, "sweeps planned", "targets", len(targets), "messages", len(bodies))
	return report.Response{Kind: string(trigger.KindSchedule), Sweeps: sweepDocs(sweeps), Offboarded: h.reportOffboarded(ctx, survey.Offboarded)}, nil
}

// reportOffboarded reports, once per schedule, the targets left alone
// because their account is no longer a target account: one warning each
// and one embedded metric line (OffboardedTargets, the count).
func (h *core) reportOffboarded(ctx context.Context, ts []rules.Target) []report.SweepDoc {
	if len(ts) == 0 {
		return nil
	}
	var out []report.SweepDoc
	for _, t := range ts {
		h.log.WarnContext(ctx, "target offboarded: its account is no longer in TARGET_ACCOUNTS; its ledger records are kept and not swept (sgrules offboard --account ACCOUNT --revoke or --forget)",
			"account", t.Account, "region", t.Region)
		out = append(out, report.SweepDoc{Account: t.Account, Region: t.Region})
	}
	if _, err := h.cfg.Metrics.Write(report.OffboardedEMF(time.Now(), len(ts))); err != nil {
		h.log.WarnContext(ctx, "offboarded metric not written", "error", err)
	}
	return out
}

// sweeps runs the sweep messages of an SQS batch, one target each; a
// message whose sweep failed retryably is a batch item failure (SQS
// delivers it again, then to the dead-letter queue). Undecodable
// messages are poison: logged and dropped.
func (h *Drift) sweeps(ctx context.Context, msgs []trigger.Message) events.SQSEventResponse {
	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	for _, m := range msgs {
		log := h.log.With("messageId", m.ID)
		switch {
		case m.Err != nil:
			log.ErrorContext(ctx, "dropping undecodable SQS message", "error", m.Err)
			continue
		case m.Sweep == nil:
			log.ErrorContext(ctx, "dropping SQS message that is not a sweep")
			continue
		case ctx.Err() != nil:
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.ID})
			continue
		}
		only := []rules.Target{{Account: m.Sweep.Account, Region: m.Sweep.Region}} // empty fields: the hub's
		req := reconcile.Request{All: true, Groups: m.Sweep.Groups, Reason: "sweep", Route: trigger.ExpandRoute(m.Sweep.Route)}
		if m.Sweep.Run != "" && h.cfg.Budget != nil {
			req.Budget = h.cfg.Budget(m.Sweep.Run)
		}
		if _, err := h.run(ctx, trigger.KindSweep, req, only); err != nil {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.ID})
		}
	}
	return resp
}

// sweepDocs is the response's view of the sweep messages sent.
func sweepDocs(sweeps []trigger.Sweep) []report.SweepDoc {
	out := make([]report.SweepDoc, len(sweeps))
	for i, s := range sweeps {
		out[i] = report.SweepDoc{Account: s.Account, Region: s.Region, Groups: s.Groups, Run: s.Run}
	}
	return out
}
