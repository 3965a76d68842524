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

// Config configures a handler (NewReconcile, NewDrift). A field says which
// function reads it; the other ignores it.
type Config struct {
	// Fleet reconciles rule files in their targets (S3 and SQS object
	// events, sweeps, CloudTrail events). Nil: Engine alone, as one target.
	Fleet Fleet
	// Engine is the home target's engine: CloudFormation custom resources
	// (reconcile; and every event of either function when Fleet is nil).
	Engine Engine
	Logger *slog.Logger
	// Bucket is the rules bucket (reconcile); object events from another
	// bucket are ignored. Empty accepts any bucket.
	Bucket string
	// Prefix is the rules prefix ("rules/"); object keys outside it, or not
	// ending in .yaml, .yml or .json, are ignored (s3source.IsRuleKey, the
	// filter of the source's List). Keys are passed to the engine whole, as
	// s3source names objects.
	Prefix string
	// PolicyKey is the key of the guardrail policy in Bucket (reconcile):
	// an object event for it runs a full sweep, which checks every rule file
	// against the new policy. Empty: no policy key.
	PolicyKey string
	// DryRun plans without changing anything (drift: DRIFT_MODE=report).
	DryRun bool
	// IgnoreRoles (drift) are sgrules' own role ARNs (config.Config.OwnRoleARNs:
	// the functions' roles and the target role in each target account):
	// CloudTrail events whose session issuer
	// (userIdentity.sessionContext.sessionIssuer.arn) is exactly one of
	// them are ignored. Nothing else makes a call sgrules' own: not a role's
	// name, not a session name.
	IgnoreRoles []string
	// Scope, if set, is the Scope of every drift report (drift): which
	// groups the deployment may change (report.ScopeEveryGroup with no
	// MANAGED_GROUP_TAG).
	Scope string
	// Metrics receives embedded metric format lines (default os.Stdout).
	Metrics io.Writer
	// Alerts, with AlertTopicARN (drift), receives a short summary when a
	// drift run found drift (an *sns.Client; ALERT_TOPIC_ARN). A failed publish is
	// logged; it never fails the run.
	Alerts        Publisher
	AlertTopicARN string
	// Queue (drift) makes a scheduled event the planner:
	// one sweep message per target (per shard of ShardSize groups of a
	// target ShardGroups lists more of) instead of one sweep of all.
	Queue       Queue
	ShardGroups func(ctx context.Context, t rules.Target) ([]string, error)
	ShardSize   int
	// Budget (drift), if set, returns the revoke budget of a schedule's run (by
	// its event id), shared by every sweep message it planned
	// (fleetrt.Fleet.Budget): MAX_REVOKE bounds the whole schedule.
	Budget func(run string) reconcile.RevokeBudget
	// Expiry, when set, keeps the expiry schedule of every target a run
	// (not a dry run) reconciled without error (fleetrt.Fleet.Expiry;
	// EXPIRY_ROLE_ARN). A failure is logged; it never fails the run:
	// the sweeps revoke what expires anyway.
	Expiry func(ctx context.Context, targets []rules.Target) error
}

// core is what the two functions' handlers share: the configuration, the
// fleet (each request naming the invocation as its lease holder), the log,
// and the function's name and the event kinds it handles.
type core struct {
	cfg   Config
	fleet Fleet
	log   *slog.Logger
	kinds []trigger.Kind
	name  string
}

// Reconcile is the reconcile function's handler: rule files changed (S3
// notifications, direct, through SQS or EventBridge), scheduled sweeps,
// and CloudFormation custom resource requests. Its responses list the
// changes refused (report.FleetRefusals).
type Reconcile struct{ core }

// NewReconcile returns the handler of the reconcile function: S3
// notifications (direct, through SQS or EventBridge), S3 test events,
// scheduled sweeps, and CloudFormation custom resource requests.
func NewReconcile(cfg Config) (*Reconcile, error) {
	c, err := newCore(cfg, "reconcile", trigger.KindObjects, trigger.KindSQS, trigger.KindS3Test,
		trigger.KindSchedule, trigger.KindCloudFormation)
	if err != nil {
		return nil, err
	}
	return &Reconcile{c}, nil
}

func newCore(cfg Config, name string, kinds ...trigger.Kind) (core, error) {
	if cfg.Engine == nil && cfg.Fleet == nil {
		return core{}, errors.New("handler: Engine or Fleet is required")
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
	return core{cfg: cfg, fleet: holderFleet{fleet}, log: log, kinds: kinds, name: name}, nil
}

// decode decodes an invocation's event and refuses a kind the function
// does not handle.
func (h *core) decode(ctx context.Context, raw json.RawMessage) (trigger.Event, error) {
	ev, err := trigger.Decode(raw)
	if err != nil {
		h.log.ErrorContext(ctx, "undecodable event", "function", h.name, "error", err)
		return trigger.Event{}, err
	}
	if !slices.Contains(h.kinds, ev.Kind) {
		err := fmt.Errorf("%s function: unexpected %s event", h.name, ev.Kind)
		h.log.ErrorContext(ctx, "unexpected event", "function", h.name, "kind", ev.Kind)
		return trigger.Event{}, err
	}
	return ev, nil
}

// Handle handles one invocation; use it with lambda.Start.
func (h *Reconcile) Handle(ctx context.Context, raw json.RawMessage) (any, error) {
	ev, err := h.decode(ctx, raw)
	if err != nil {
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
	case trigger.KindSchedule:
		return h.run(ctx, ev.Kind, reconcile.Request{All: true, Reason: "schedule"}, nil)
	case trigger.KindCloudFormation:
		return h.cloudFormation(ctx, ev.CloudFormation)
	}
	return nil, fmt.Errorf("%s function: unhandled %s event", h.name, ev.Kind)
}

// cloudFormation handles a Custom::SecurityGroupRule request: package
// cfnresource applies it and always answers CloudFormation at the
// ResponseURL; an error means the answer could not be delivered (Lambda
// retries the invocation, which is idempotent).
func (h *Reconcile) cloudFormation(ctx context.Context, ev *cfn.Event) (any, error) {
	if h.cfg.Engine == nil {
		return nil, errors.New("handler: CloudFormation request, but no home engine")
	}
	return cfnresource.Options{Logger: h.log}.Handle(ctx, *ev, h.cfg.Engine)
}

// run reconciles one request: a terminal error is logged and returned in
// the response, any other error is returned for Lambda to retry.
func (h *Reconcile) run(ctx context.Context, kind trigger.Kind, req reconcile.Request, only []rules.Target) (any, error) {
	req.DryRun = req.DryRun || h.cfg.DryRun
	res, err := h.reconcile(ctx, req, only)
	resp := h.response(ctx, kind, req, res, err)
	resp.Refused = report.FleetRefusals(res)
	return h.respond(resp, err)
}

// response is the response both functions give to a run: the request,
// the sources and targets of its result, and, for a scheduled sweep of
// every target, the offboarded ones.
func (h *core) response(ctx context.Context, kind trigger.Kind, req reconcile.Request, res reconcile.FleetResult, err error) report.Response {
	resp := report.Response{Kind: string(kind), Request: report.NewRequestDoc(req), Sources: report.NewSourceDocs(res.Sources()), Targets: report.NewTargetDocs(res)}
	if kind == trigger.KindSchedule && err == nil {
		resp.Offboarded = h.reportOffboarded(ctx, res.Offboarded)
	}
	return resp
}

// respond returns resp, carrying err when it is terminal; any other err is
// returned for Lambda to retry.
func (h *core) respond(resp report.Response, err error) (any, error) {
	if err != nil {
		if !IsTerminal(err) {
			return nil, err
		}
		resp.Error = err.Error()
	}
	return resp, nil
}

// reconcile is the core's reconcile, and an embedded metric line of its
// own when a target's policy is invalid (the drift function's report
// carries that metric).
func (h *Reconcile) reconcile(ctx context.Context, req reconcile.Request, only []rules.Target) (reconcile.FleetResult, error) {
	res, err := h.core.reconcile(ctx, req, only)
	if err != nil {
		return res, err
	}
	policyInvalid := false
	for _, t := range res.Targets {
		policyInvalid = policyInvalid || t.Result.Policy.Invalid != nil
	}
	if policyInvalid {
		if _, werr := h.cfg.Metrics.Write(report.PolicyInvalidEMF(time.Now())); werr != nil {
			h.log.WarnContext(ctx, "policy metric not written", "error", werr)
		}
	}
	return res, nil
}

// reconcile calls the fleet, stamps DryRun, and logs the outcome. The
// error is the fleet's, or the targets' joined (each names its account
// and region); the other targets' results are in the FleetResult.
func (h *core) reconcile(ctx context.Context, req reconcile.Request, only []rules.Target) (reconcile.FleetResult, error) {
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
	return res, nil
}

func (h *core) logSources(ctx context.Context, t rules.Target, srcs []reconcile.SourceResult) {
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
func (h *Reconcile) sourceKeys(ctx context.Context, objs []trigger.Object) (keys []string, reason string) {
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
func (h *Reconcile) policyReason(objs []trigger.Object) string {
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
func (h *Reconcile) batch(ctx context.Context, msgs []trigger.Message) events.SQSEventResponse {
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

// IsTerminal reports whether retrying err cannot help: invalid input
// (*rules.ValidationError). The engine reports invalid rule files in the
// result, not as an error, and every error it returns (AWS, ledger,
// deadline) may succeed on a retry.
func IsTerminal(err error) bool {
	var ve *rules.ValidationError
	return errors.As(err, &ve)
}
