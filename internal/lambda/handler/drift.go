package handler

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/sgrules/sgrules/internal/lambda/trigger"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Drift is the drift function's handler: scheduled sweeps (planned as one
// sweep message per target with a Queue), the sweep messages, a target's
// expiry schedule, and CloudTrail security group API calls. Every run
// writes a drift report per target (reportDrift).
type Drift struct{ core }

// NewDrift returns the handler of the drift function: scheduled sweeps and
// CloudTrail security group API calls. (Like every run, they leave the
// drift of groups tagged sgrules:pause-until alone.)
func NewDrift(cfg Config) (*Drift, error) {
	c, err := newCore(cfg, "drift", trigger.KindSchedule, trigger.KindAPICall, trigger.KindSweep, trigger.KindExpiry)
	if err != nil {
		return nil, err
	}
	return &Drift{c}, nil
}

// Handle handles one invocation; use it with lambda.Start.
func (h *Drift) Handle(ctx context.Context, raw json.RawMessage) (any, error) {
	ev, err := h.decode(ctx, raw)
	if err != nil {
		return nil, err
	}
	switch ev.Kind {
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
	}
	return nil, fmt.Errorf("%s function: unhandled %s event", h.name, ev.Kind)
}

// run reconciles one request and reports its drift: a terminal error is
// logged and returned in the response, any other error is returned for
// Lambda to retry.
func (h *Drift) run(ctx context.Context, kind trigger.Kind, req reconcile.Request, only []rules.Target) (any, error) {
	return h.runBy(ctx, kind, req, only, nil)
}

// runBy is run for a request caused by a CloudTrail event: the drift
// report attributes the drift of the groups it named to by.
func (h *Drift) runBy(ctx context.Context, kind trigger.Kind, req reconcile.Request, only []rules.Target, by *report.Actor) (any, error) {
	req.DryRun = req.DryRun || h.cfg.DryRun
	res, err := h.reconcile(ctx, req, only)
	resp := h.response(ctx, kind, req, res, err)
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
	return h.respond(resp, err)
}

// apiCall sweeps the groups a CloudTrail event names, unless sgrules made
// the call itself or the call failed (it changed nothing).
func (h *Drift) apiCall(ctx context.Context, c *trigger.APICall) (any, error) {
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

// Publisher sends drift alerts; *sns.Client satisfies it.
type Publisher interface {
	Publish(ctx context.Context, in *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error)
}

var _ Publisher = (*sns.Client)(nil)

// alertTimeout bounds publishing an alert, so a slow SNS cannot eat the
// sweep's time.
const alertTimeout = 10 * time.Second

// reportDrift writes the drift report of each target of a run: one JSON
// log line ("drift report") and one embedded metric format line on Metrics
// per target (with its Account and Region: DriftDetected, report.Count of
// its result, DriftReverted, UnmanagedRules and ReconcileErrors in
// namespace sgrules), and, when drift was found, one alert
// grouped by target (see shouldAlert). It never fails the run. The
// reports of a CloudTrail event name its caller, by, in the changes of the
// groups it named; those of a schedule (its sweep messages, a target's
// expiry schedule) say "found by schedule". A run of one target, only
// (a CloudTrail event's account and region, a sweep message's), that ran
// nothing there (no rule file or ledger record in it) still reports, naming
// that target.
func (h *Drift) reportDrift(ctx context.Context, kind trigger.Kind, req reconcile.Request, only []rules.Target, res reconcile.FleetResult, err error, by *report.Actor) []report.Report {
	foundBy := ""
	switch {
	case kind == trigger.KindAPICall:
		foundBy = report.FoundByCloudTrail
	case kind == trigger.KindSchedule || kind == trigger.KindSweep || kind == trigger.KindExpiry:
		foundBy = report.FoundBySchedule
	}
	var reps []report.Report
	for _, t := range res.Targets {
		rep := report.Build(t.Result).WithError(t.Err)
		if t.Err == nil {
			rep.Detected = report.Count(t.Result)
		}
		rep.Account, rep.Region = t.Target.Account, t.Target.Region
		rep = rep.Attribute(foundBy, by)
		if len(t.Result.Attributed) > 0 {
			rep.AttributedLate = report.History(t.Result.Attributed)
		}
		reps = append(reps, rep)
	}
	if len(reps) == 0 {
		// Nothing ran: the fleet failed before any target, or no target had
		// anything to do.
		rep := report.Build(reconcile.Result{}).WithError(err)
		if len(only) == 1 {
			rep.Account, rep.Region = only[0].Account, only[0].Region
		}
		reps = append(reps, rep.Attribute(foundBy, by))
	}
	detected, alertable := 0, false
	for i := range reps {
		reps[i].Scope = h.cfg.Scope
	}
	for _, rep := range reps {
		level := slog.LevelInfo
		found := rep.Detected > 0 || len(rep.Violations) > 0 || rep.PolicyInvalid != "" || len(rep.Refused) > 0
		switch {
		case rep.Errors > 0:
			level = slog.LevelError
		case found:
			level = slog.LevelWarn
		}
		alertable = alertable || found
		attrs := []any{"reason", req.Reason, "dryRun", req.DryRun, "report", rep}
		if rep.Account != "" {
			attrs = append(attrs, "account", rep.Account, "region", rep.Region)
		}
		if rep.FoundBy != "" {
			attrs = append(attrs, "foundBy", rep.FoundBy)
		}
		if by != nil {
			attrs = append(attrs, "principal", by.Principal, "eventName", by.EventName, "eventTime", by.EventTime,
				"sourceIp", by.SourceIP, "userAgent", by.UserAgent)
		}
		h.log.Log(ctx, level, "drift report", attrs...)
		if _, werr := h.cfg.Metrics.Write(rep.EMF(time.Now())); werr != nil {
			h.log.WarnContext(ctx, "drift metrics not written", "error", werr)
		}
		detected += rep.Detected
	}
	if h.shouldAlert(kind, req, alertable) {
		h.alert(ctx, reps, detected)
	}
	h.lateAlert(ctx, reps)
	return reps
}

// shouldAlert: drift or policy violations were found (or the policy is
// invalid) and an alert topic is configured. A
// scheduled sweep in report mode does not alert: it would repeat the same
// alert every DriftSchedule until someone fixes the drift; the
// DriftDetected alarm (which notifies once, when it enters ALARM) covers it.
func (h *Drift) shouldAlert(kind trigger.Kind, req reconcile.Request, found bool) bool {
	if h.cfg.Alerts == nil || h.cfg.AlertTopicARN == "" || !found {
		return false
	}
	return !(req.DryRun && (kind == trigger.KindSchedule || kind == trigger.KindSweep))
}

func (h *Drift) alert(ctx context.Context, reps []report.Report, detected int) {
	subject, message := report.Grouped(reps)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), alertTimeout)
	defer cancel()
	_, err := h.cfg.Alerts.Publish(ctx, &sns.PublishInput{
		TopicArn: aws.String(h.cfg.AlertTopicARN),
		Subject:  aws.String(subject),
		Message:  aws.String(message),
	})
	if err != nil {
		h.log.WarnContext(ctx, "drift alert not published", "topic", h.cfg.AlertTopicARN, "error", err)
		return
	}
	h.log.InfoContext(ctx, "drift alert published", "topic", h.cfg.AlertTopicARN, "drifted", detected)
}

// lateAlert logs, and publishes to the alert topic, the drift a
// CloudTrail event named after an earlier run (a scheduled sweep) had
// reverted it: the follow-up of that run's "found by schedule" alert. A
// failed publish is logged.
func (h *Drift) lateAlert(ctx context.Context, reps []report.Report) {
	subject, message, ok := report.LateAlert(reps)
	if !ok {
		return
	}
	for _, rep := range reps {
		for _, e := range rep.AttributedLate {
			h.log.InfoContext(ctx, "drift attributed late", "principal", e.By.Principal, "eventName", e.By.EventName,
				"eventTime", e.By.EventTime, "group", e.Group, "direction", e.Direction, "rule", e.Rule, "change", e.Change,
				"revertedAt", e.At, "account", rep.Account, "region", rep.Region)
		}
	}
	if h.cfg.Alerts == nil || h.cfg.AlertTopicARN == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), alertTimeout)
	defer cancel()
	if _, err := h.cfg.Alerts.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(h.cfg.AlertTopicARN),
		Subject: aws.String(truncateSubject(subject)), Message: aws.String(message)}); err != nil {
		h.log.WarnContext(ctx, "drift attribution alert not published", "topic", h.cfg.AlertTopicARN, "error", err)
	}
}

// truncateSubject keeps an SNS subject within its 100-character limit.
func truncateSubject(s string) string {
	if len(s) <= 100 {
		return s
	}
	return s[:97] + "..."
}
