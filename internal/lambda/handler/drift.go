package handler

import (
	"context"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/sgrules/sgrules/internal/lambda/driftreport"
	"github.com/sgrules/sgrules/internal/lambda/trigger"
	"github.com/sgrules/sgrules/internal/reconcile"
)

// Publisher sends drift alerts; *sns.Client satisfies it.
type Publisher interface {
	Publish(ctx context.Context, in *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error)
}

var _ Publisher = (*sns.Client)(nil)

// alertTimeout bounds publishing an alert, so a slow SNS cannot eat the
// sweep's time.
const alertTimeout = 10 * time.Second

// reportDrift writes the drift report of one run: one JSON log line, one
// embedded metric format line on Metrics, and, when drift was found, an
// alert (see shouldAlert). It never fails the run.
func (h *Handler) reportDrift(ctx context.Context, kind trigger.Kind, req reconcile.Request, res reconcile.Result, err error) *driftreport.Report {
	rep := driftreport.Build(res).WithError(err)
	if err == nil {
		rep.Detected = h.cfg.DriftCount(res)
	}
	level := slog.LevelInfo
	switch {
	case rep.Errors > 0:
		level = slog.LevelError
	case rep.Detected > 0, len(rep.Violations) > 0, rep.PolicyInvalid != "":
		level = slog.LevelWarn
	}
	h.log.Log(ctx, level, "drift report", "reason", req.Reason, "dryRun", req.DryRun, "report", rep)
	if _, werr := h.cfg.Metrics.Write(rep.EMF(time.Now())); werr != nil {
		h.log.WarnContext(ctx, "drift metrics not written", "error", werr)
	}
	if h.shouldAlert(kind, req, rep) {
		h.alert(ctx, rep)
	}
	return &rep
}

// shouldAlert: drift or policy violations were found (or the policy is
// invalid) and an alert topic is configured. A
// scheduled sweep in report mode does not alert: it would repeat the same
// alert every DriftSchedule until someone fixes the drift; the
// DriftDetected alarm (which notifies once, when it enters ALARM) covers it.
func (h *Handler) shouldAlert(kind trigger.Kind, req reconcile.Request, rep driftreport.Report) bool {
	if h.cfg.Alerts == nil || h.cfg.AlertTopicARN == "" || (rep.Detected == 0 && len(rep.Violations) == 0 && rep.PolicyInvalid == "") {
		return false
	}
	return !(req.DryRun && kind == trigger.KindSchedule)
}

func (h *Handler) alert(ctx context.Context, rep driftreport.Report) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), alertTimeout)
	defer cancel()
	_, err := h.cfg.Alerts.Publish(ctx, &sns.PublishInput{
		TopicArn: aws.String(h.cfg.AlertTopicARN),
		Subject:  aws.String(rep.Subject()),
		Message:  aws.String(rep.Summary()),
	})
	if err != nil {
		h.log.WarnContext(ctx, "drift alert not published", "topic", h.cfg.AlertTopicARN, "error", err)
		return
	}
	h.log.InfoContext(ctx, "drift alert published", "topic", h.cfg.AlertTopicARN, "drifted", rep.Detected)
}
