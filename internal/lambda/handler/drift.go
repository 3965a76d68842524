package handler

import (
	"context"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/sgrules/sgrules/internal/lambda/trigger"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Publisher sends drift alerts; *sns.Client satisfies it.
type Publisher interface {
	Publish(ctx context.Context, in *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error)
}

var _ Publisher = (*sns.Client)(nil)

// alertTimeout bounds publishing an alert, so a slow SNS cannot eat the
// sweep's time.
const alertTimeout = 10 * time.Second

// reportDrift writes the drift report of each target of a run: one JSON
// log line and one embedded metric format line on Metrics per target
// (with its Account and Region), and, when drift was found, one alert
// grouped by target (see shouldAlert). It never fails the run. The
// reports of a CloudTrail event name its caller, by, in the changes of the
// groups it named; those of a schedule (its sweep messages, a target's
// expiry schedule) say "found by schedule". A run of one target, only
// (a CloudTrail event's account and region, a sweep message's), that ran
// nothing there (no rule file or ledger record in it) still reports, naming
// that target.
func (h *Handler) reportDrift(ctx context.Context, kind trigger.Kind, req reconcile.Request, only []rules.Target, res reconcile.FleetResult, err error, by *report.Actor) []report.Report {
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
			rep.Detected = h.cfg.DriftCount(t.Result)
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
func (h *Handler) shouldAlert(kind trigger.Kind, req reconcile.Request, found bool) bool {
	if h.cfg.Alerts == nil || h.cfg.AlertTopicARN == "" || !found {
		return false
	}
	return !(req.DryRun && (kind == trigger.KindSchedule || kind == trigger.KindSweep))
}

func (h *Handler) alert(ctx context.Context, reps []report.Report, detected int) {
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
func (h *Handler) lateAlert(ctx context.Context, reps []report.Report) {
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
