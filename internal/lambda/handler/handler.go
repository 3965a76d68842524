package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-lambda-go/events"

	"github.com/sgrules/sgrules/internal/adapters/s3source"
	"github.com/sgrules/sgrules/internal/lambda/cfnresource"
	"github.com/sgrules/sgrules/internal/lambda/trigger"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Engine is what the handler needs of *reconcile.Engine.
type Engine interface {
	Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error)
}

var _ Engine = (*reconcile.Engine)(nil)

// Config configures a Handler.
type Config struct {
	// Fleet reconciles rule files in their targets (S3 and SQS object
	// events, sweeps, CloudTrail events). Nil: Engine alone, as one target.
	Fleet Fleet
	// Engine is the home target's engine: CloudFormation custom resources
	// (and every event when Fleet is nil).
	Engine Engine
	Logger *slog.Logger
	// Bucket is the rules bucket; object events from another bucket are
	// ignored. Empty accepts any bucket.
	Bucket string
	// Prefix is the rules prefix ("rules/"); object keys outside it, or not
	// ending in .yaml, .yml or .json, are ignored (s3source.IsRuleKey, the
	// filter of the source's List). Keys are passed to the engine whole, as
	// s3source names objects.
	Prefix string
	// PolicyKey is the key of the guardrail policy in Bucket: an object
	// event for it runs a full sweep, which checks every rule file against
	// the new policy. Empty: no policy key.
	PolicyKey string
	// DryRun plans without changing anything (drift report mode).
	DryRun bool
	// IgnoreRoles are sgrules' own role ARNs (config.Config.OwnRoleARNs:
	// the functions' roles and the target role in each target account):
	// CloudTrail events whose session issuer
	// (userIdentity.sessionContext.sessionIssuer.arn) is exactly one of
	// them are ignored. Nothing else makes a call sgrules' own: not a role's
	// name, not a session name.
	IgnoreRoles []string
	// DriftCount, if set, turns on the drift report of every run (drift
	// function: report.Count): one "drift report" JSON log line, and
	// the metrics DriftDetected (this count), DriftReverted, UnmanagedRules
	// and ReconcileErrors in namespace sgrules, as one embedded metric
	// format line on Metrics.
	DriftCount func(reconcile.Result) int
	// Scope, if set, is the Scope of every drift report: which groups the
	// deployment may change (report.ScopeEveryGroup with no
	// MANAGED_GROUP_TAG).
	Scope string
	// Metrics receives embedded metric format lines (default os.Stdout).
	Metrics io.Writer
	// Alerts, with AlertTopicARN, receives a short summary when a drift run
	// found drift (an *sns.Client; ALERT_TOPIC_ARN). A failed publish is
	// logged; it never fails the run.
	Alerts        Publisher
	AlertTopicARN string
	// Queue, in the drift function, makes a scheduled event the planner:
	// one sweep message per target (per shard of ShardSize groups of a
	// target ShardGroups lists more of) instead of one sweep of all.
	Queue       Queue
	ShardGroups func(ctx context.Context, t rules.Target) ([]string, error)
	ShardSize   int
	// Budget, if set, returns the revoke budget of a schedule's run (by
	// its event id), shared by every sweep message it planned
	// (fleetrt.Fleet.Budget): MAX_REVOKE bounds the whole schedule.
	Budget func(run string) reconcile.RevokeBudget
	// Expiry, when set, keeps the expiry schedule of every target a run
	// (not a dry run) reconciled without error (fleetrt.Fleet.Expiry;
	// EXPIRY_ROLE_ARN). A failure is logged; it never fails the run:
	// the sweeps revoke what expires anyway.
	Expiry func(ctx context.Context, targets []rules.Target) error
}

// Handler handles the invocations of one function.
type Handler struct {
	cfg   Config
	fleet Fleet
	log   *slog.Logger
	kinds []trigger.Kind
	name  string
}

// NewReconcile returns the handler of the reconcile function: S3
// notifications (direct, through SQS or EventBridge), S3 test events,
// scheduled sweeps, and CloudFormation custom resource requests.
func NewReconcile(cfg Config) (*Handler, error) {
	return newHandler(cfg, "reconcile", trigger.KindObjects, trigger.KindSQS, trigger.KindS3Test,
		trigger.KindSchedule, trigger.KindCloudFormation)
}

// NewDrift returns the handler of the drift function: scheduled sweeps and
// CloudTrail security group API calls. (Like every run, they leave the
// drift of groups tagged sgrules:pause-until alone.)
func NewDrift(cfg Config) (*Handler, error) {
	return newHandler(cfg, "drift", trigger.KindSchedule, trigger.KindAPICall, trigger.KindSweep, trigger.KindExpiry)
}

func newHandler(cfg Config, name string, kinds ...trigger.Kind) (*Handler, error) {
	if cfg.Engine == nil && cfg.Fleet == nil {
		return nil, errors.New("handler: Engine or Fleet is required")
	}
	if cfg.ShardSize <= 0 {
		cfg.ShardSize = DefaultShardSize
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = os.Stdout
	}
	fleet := cfg.Fleet
	if cfg.Engine != nil {
		cfg.Engine = holderEngine{cfg.Engine}
		if fleet == nil {
			fleet = engineFleet{cfg.Engine}
		}
	}
	return &Handler{cfg: cfg, fleet: holderFleet{fleet}, log: log, kinds: kinds, name: name}, nil
}

// Handle handles one invocation; use it with lambda.Start.
func (h *Handler) Handle(ctx context.Context, raw json.RawMessage) (any, error) {
	ev, err := trigger.Decode(raw)
	if err != nil {
		h.log.ErrorContext(ctx, "undecodable event", "function", h.name, "error", err)
		return nil, err
	}
	if !slices.Contains(h.kinds, ev.Kind) {
		err := fmt.Errorf("%s function: unexpected %s event", h.name, ev.Kind)
		h.log.ErrorContext(ctx, "unexpected event", "function", h.name, "kind", ev.Kind)
		return nil, err
	}
	switch ev.Kind {
	case trigger.KindS3Test:
		h.log.InfoContext(ctx, "s3 test event ignored")
		return report.Response{Kind: string(ev.Kind), Ignored: "s3:TestEvent"}, nil
	case trigger.KindObjects:
		if pr := h.policyReason(ev.Objects); pr != "" {
			return h.run(ctx, ev.Kind, reconcile.Request{All: true, Reason: pr}, nil)
		}
		keys, reason := h.sourceKeys(ctx, ev.Objects)
		if len(keys) == 0 {
			return report.Response{Kind: string(ev.Kind), Ignored: "no rule files"}, nil
		}
		return h.run(ctx, ev.Kind, reconcile.Request{Keys: keys, Reason: reason}, nil)
	case trigger.KindSQS:
		return h.batch(ctx, ev.Messages), nil
	case trigger.KindSweep:
		return h.sweeps(ctx, ev.Messages), nil
	case trigger.KindExpiry:
		// A target's expiry schedule: a sweep of that target, of its own
		// records (unplanned); an error is returned for the scheduler to
		// retry.
		only := []rules.Target{{Account: ev.Sweep.Account, Region: ev.Sweep.Region}}
		return h.run(ctx, ev.Kind, reconcile.Request{All: true, Groups: ev.Sweep.Groups, Reason: "expiry", Route: unplanned()}, only)
	case trigger.KindSchedule:
		if h.cfg.Queue != nil {
			return h.plan(ctx, ev.Schedule)
		}
		return h.run(ctx, ev.Kind, reconcile.Request{All: true, Reason: "schedule"}, nil)
	case trigger.KindAPICall:
		return h.apiCall(ctx, ev.APICall)
	case trigger.KindCloudFormation:
		return h.cloudFormation(ctx, ev.CloudFormation)
	}
	return nil, fmt.Errorf("%s function: unhandled %s event", h.name, ev.Kind)
}

// cloudFormation handles a Custom::SecurityGroupRule request: package
// cfnresource applies it and always answers CloudFormation at the
// ResponseURL; an error means the answer could not be delivered (Lambda
// retries the invocation, which is idempotent).
func (h *Handler) cloudFormation(ctx context.Context, ev *cfn.Event) (any, error) {
	if h.cfg.Engine == nil {
		return nil, errors.New("handler: CloudFormation request, but no home engine")
	}
	return cfnresource.Options{Logger: h.log}.Handle(ctx, *ev, h.cfg.Engine)
}

// run reconciles one request: a terminal error is logged and returned in
// the response, any other error is returned for Lambda to retry.
func (h *Handler) run(ctx context.Context, kind trigger.Kind, req reconcile.Request, only []rules.Target) (any, error) {
	return h.runBy(ctx, kind, req, only, nil)
}

// runBy is run for a request caused by a CloudTrail event: the drift
// report attributes the drift of the groups it named to by.
func (h *Handler) runBy(ctx context.Context, kind trigger.Kind, req reconcile.Request, only []rules.Target, by *report.Actor) (any, error) {
	req.DryRun = req.DryRun || h.cfg.DryRun
	res, err := h.reconcile(ctx, req, only)
	resp := report.Response{Kind: string(kind), Request: report.NewRequestDoc(req), Sources: report.NewSourceDocs(res.Sources()), Targets: report.NewTargetDocs(res)}
	if kind == trigger.KindSchedule && err == nil {
		resp.Offboarded = h.reportOffboarded(ctx, res.Offboarded)
	}
	if h.cfg.DriftCount == nil {
		resp.Refused = report.FleetRefusals(res)
	}
	if h.cfg.DriftCount != nil {
		reps := h.reportDrift(ctx, kind, req, only, res, err, by)
		if len(reps) == 1 {
			resp.Drift = &reps[0]
		}
		for i := range resp.Targets {
			for j := range reps {
				if reps[j].Account == resp.Targets[i].Account && reps[j].Region == resp.Targets[i].Region {
					resp.Targets[i].Drift = &reps[j]
				}
			}
		}
	}
	if err != nil {
		if !IsTerminal(err) {
			return nil, err
		}
		resp.Error = err.Error()
	}
	return resp, nil
}

// reconcile calls the fleet, stamps DryRun, and logs the outcome. The
// error is the fleet's, or the targets' joined (each names its account
// and region); the other targets' results are in the FleetResult.
func (h *Handler) reconcile(ctx context.Context, req reconcile.Request, only []rules.Target) (reconcile.FleetResult, error) {
	req.DryRun = req.DryRun || h.cfg.DryRun
	res, err := h.fleet.Reconcile(ctx, req, only)
	h.keepExpiry(ctx, req, res)
	if err == nil {
		err = res.Err()
	}
	for _, t := range res.Targets {
		if t.Err == nil {
			h.logSources(ctx, t.Target, t.Result.Sources)
		}
	}
	if err != nil {
		if IsTerminal(err) {
			h.log.ErrorContext(ctx, "reconcile failed: terminal, not retried",
				"reason", req.Reason, "keys", req.Keys, "all", req.All, "error", err)
		} else {
			h.log.ErrorContext(ctx, "reconcile failed: will be retried",
				"reason", req.Reason, "keys", req.Keys, "all", req.All, "error", err)
		}
		return res, err
	}
	policyInvalid := false
	for _, t := range res.Targets {
		policyInvalid = policyInvalid || t.Result.Policy.Invalid != nil
	}
	if policyInvalid && h.cfg.DriftCount == nil {
		// The drift function's report carries the metric; here it is a
		// line of its own.
		if _, werr := h.cfg.Metrics.Write(report.PolicyInvalidEMF(time.Now())); werr != nil {
			h.log.WarnContext(ctx, "policy metric not written", "error", werr)
		}
	}
	return res, nil
}

func (h *Handler) logSources(ctx context.Context, t rules.Target, srcs []reconcile.SourceResult) {
	counts := map[reconcile.Status]int{}
	for _, s := range srcs {
		counts[s.Status]++
		switch s.Status {
		case reconcile.StatusInvalid:
			h.log.WarnContext(ctx, "invalid rule source", "key", s.Key,
				"diagnostics", append(s.Diagnostics.Strings(), s.Recorded...), "message", s.Message)
		case reconcile.StatusHeld:
			msg := s.Message
			if s.Guard != nil {
				msg += "; if this is intended, raise the stack's MaxRevoke parameter (MAX_REVOKE) and upload the file again"
			}
			h.log.WarnContext(ctx, "rule source held", "key", s.Key, "message", msg)
		case reconcile.StatusPending:
			h.log.WarnContext(ctx, "rule source move pending: its rules are kept here", "key", s.Key, "message", s.Message)
		}
	}
	attrs := []any{"sources", len(srcs)}
	if !t.IsZero() {
		attrs = append(attrs, "account", t.Account, "region", t.Region)
	}
	for _, st := range slices.Sorted(maps.Keys(counts)) {
		attrs = append(attrs, string(st), counts[st])
	}
	h.log.InfoContext(ctx, "reconciled", attrs...)
}

// sourceKeys filters object events to rule files of the rules bucket and
// returns their keys (unique, in event order) and a reason naming
// the event(s).
func (h *Handler) sourceKeys(ctx context.Context, objs []trigger.Object) (keys []string, reason string) {
	var names []string
	for _, o := range objs {
		if h.cfg.Bucket != "" && o.Bucket != h.cfg.Bucket {
			h.log.WarnContext(ctx, "object event from another bucket ignored", "bucket", o.Bucket, "key", o.Key)
			continue
		}
		key := o.Key
		if !s3source.IsRuleKey(key, h.cfg.Prefix) {
			h.log.InfoContext(ctx, "not a rule file, ignored", "key", key, "prefix", h.cfg.Prefix)
			continue
		}
		if !slices.Contains(keys, key) {
			keys = append(keys, key)
		}
		if !slices.Contains(names, o.EventName) {
			names = append(names, o.EventName)
		}
	}
	return keys, strings.Join(names, ",")
}

// policyReason names the event when objs include the policy key ("" when
// none does).
func (h *Handler) policyReason(objs []trigger.Object) string {
	if h.cfg.PolicyKey == "" {
		return ""
	}
	for _, o := range objs {
		if o.Key == h.cfg.PolicyKey && (h.cfg.Bucket == "" || o.Bucket == h.cfg.Bucket) {
			return "policy:" + o.EventName
		}
	}
	return ""
}

// batch reconciles an SQS batch: first as one run of all its keys; if that
// fails retryably, message by message, so that a retryable failure fails
// only its message. Undecodable bodies are poison: they can
// never succeed, so they are logged and dropped, not retried (a redrive
// policy would only move them to a dead-letter queue later). A key already
// reconciled in this batch is not reconciled again (the engine reads the
// current object, whichever event named it).
func (h *Handler) batch(ctx context.Context, msgs []trigger.Message) events.SQSEventResponse {
	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	// First, every key of the batch in one run: a file renamed (deleted
	// under one key, created under another) is then planned as one change,
	// make before break. Only if that run fails is the batch retried
	// message by message, so one failing message fails only itself.
	var all []string
	var reasons []string
	n := 0
	var policyMsgs []trigger.Message
	for _, m := range msgs {
		if m.Err != nil || m.Test || len(m.Objects) == 0 {
			continue
		}
		if h.policyReason(m.Objects) != "" {
			policyMsgs = append(policyMsgs, m)
		}
		keys, reason := h.sourceKeys(ctx, m.Objects)
		if len(keys) > 0 {
			n++
			all = append(all, keys...)
			reasons = append(reasons, reason)
		}
	}
	if len(policyMsgs) > 0 {
		// The policy changed: one full sweep covers every key of the batch.
		_, err := h.reconcile(ctx, reconcile.Request{All: true, Reason: h.policyReason(policyMsgs[0].Objects)}, nil)
		if err != nil && !IsTerminal(err) {
			for _, m := range msgs {
				if m.Err == nil && !m.Test {
					resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.ID})
				}
			}
		}
		return resp
	}
	if n > 1 {
		slices.Sort(all)
		all = slices.Compact(all)
		slices.Sort(reasons)
		_, err := h.reconcile(ctx, reconcile.Request{Keys: all, Reason: strings.Join(slices.Compact(reasons), ",")}, nil)
		if err == nil || IsTerminal(err) {
			for _, m := range msgs {
				if m.Err != nil {
					h.log.With("messageId", m.ID).ErrorContext(ctx, "dropping undecodable SQS message", "error", m.Err)
				}
			}
			return resp
		}
		h.log.WarnContext(ctx, "batch run failed; retrying message by message", "error", err)
	}
	done := map[string]bool{}
	for _, m := range msgs {
		log := h.log.With("messageId", m.ID)
		switch {
		case m.Err != nil:
			log.ErrorContext(ctx, "dropping undecodable SQS message", "error", m.Err)
			continue
		case m.Test:
			log.InfoContext(ctx, "s3 test event ignored")
			continue
		case ctx.Err() != nil:
			// Out of time: leave the rest for the next delivery.
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.ID})
			continue
		}
		keys, reason := h.sourceKeys(ctx, m.Objects)
		keys = slices.DeleteFunc(keys, func(k string) bool { return done[k] })
		if len(keys) == 0 {
			continue
		}
		_, err := h.reconcile(ctx, reconcile.Request{Keys: keys, Reason: reason}, nil)
		if err != nil && !IsTerminal(err) {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.ID})
			continue
		}
		for _, k := range keys {
			done[k] = true
		}
	}
	return resp
}

// apiCall sweeps the groups a CloudTrail event names, unless sgrules made
// the call itself or the call failed (it changed nothing).
func (h *Handler) apiCall(ctx context.Context, c *trigger.APICall) (any, error) {
	log := h.log.With("eventName", c.EventName, "eventId", c.EventID, "caller", c.CallerARN, "groups", c.GroupIDs)
	if c.IssuerARN != "" && slices.Contains(h.cfg.IgnoreRoles, c.IssuerARN) {
		log.InfoContext(ctx, "own API call ignored", "issuer", c.IssuerARN)
		return report.Response{Kind: string(trigger.KindAPICall), Ignored: "own call by " + c.IssuerARN}, nil
	}
	if c.ErrorCode != "" {
		log.InfoContext(ctx, "failed API call ignored", "errorCode", c.ErrorCode)
		return report.Response{Kind: string(trigger.KindAPICall), Ignored: "failed call: " + c.ErrorCode}, nil
	}
	by := actor(c)
	req := reconcile.Request{All: true, Groups: c.GroupIDs, Reason: "cloudtrail:" + c.EventName, Route: unplanned(),
		Caller: &reconcile.Caller{Principal: by.Principal, ARN: by.ARN, EventName: by.EventName, EventID: by.EventID,
			EventTime: by.EventTime, SourceIP: by.SourceIP, UserAgent: by.UserAgent, Groups: by.Groups}}
	if len(c.GroupIDs) == 0 {
		log.WarnContext(ctx, "API call names no group id: sweeping every group")
	}
	// The call's account and region: only that target is swept (group
	// ids are unique only within one).
	only := []rules.Target{{Account: c.Account, Region: c.Region}}
	return h.runBy(ctx, trigger.KindAPICall, req, only, by)
}

// unplanned is the route of a sweep of one target that no planner
// routed (a CloudTrail event's, an expiry schedule's): it names nothing,
// so the sweep reads that target's records only, never every target's
// (reconcile.Request.Route). A file its records do not hold is routed by
// its own S3 event or the next schedule.
func unplanned() *reconcile.TargetRoute { return &reconcile.TargetRoute{} }

// actor is the caller of a CloudTrail event as the drift report names it.
func actor(c *trigger.APICall) *report.Actor {
	return &report.Actor{
		Principal: report.Principal(c.CallerARN, c.IdentityType, c.InvokedBy), ARN: c.CallerARN,
		EventName: c.EventName, EventID: c.EventID, EventTime: c.Time, SourceIP: c.SourceIP, UserAgent: c.UserAgent,
		Groups: c.GroupIDs,
	}
}

// IsTerminal reports whether retrying err cannot help: invalid input
// (*rules.ValidationError). The engine reports invalid rule files in the
// result, not as an error, and every error it returns (AWS, ledger,
// deadline) may succeed on a retry.
func IsTerminal(err error) bool {
	var ve *rules.ValidationError
	return errors.As(err, &ve)
}
