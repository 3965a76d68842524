package main

import (
	"context"
	"log"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/adapters/sqsqueue"
	"github.com/sgrules/sgrules/internal/config"
	"github.com/sgrules/sgrules/internal/fleetrt"
	"github.com/sgrules/sgrules/internal/lambda/handler"
	"github.com/sgrules/sgrules/internal/report"
)

func main() {
	logger := lambdacontext.NewLogger()
	h, err := setup(context.Background(), logger)
	if err != nil {
		logger.Error("drift function cannot start", "error", err)
		log.Fatal(err)
	}
	lambda.Start(h.Handle)
}

func setup(ctx context.Context, logger *slog.Logger) (*handler.Drift, error) {
	c, err := config.Drift.Load(os.Getenv)
	if err != nil {
		return nil, err
	}
	cfg, err := awsconfig.Load(ctx)
	if err != nil {
		return nil, err
	}
	fleet, err := fleetrt.New(ctx, c, cfg, fleetrt.EngineOptions{Logger: logger, SessionName: "sgrules-drift"})
	if err != nil {
		return nil, err
	}
	hcfg := handler.Config{
		Fleet:       fleet,
		ShardGroups: fleet.ShardGroups,
		Budget:      fleet.Budget,
		Logger:      logger,
		DryRun:      c.DriftMode == config.DriftReport,
		IgnoreRoles: c.OwnRoleARNs(),
		Metrics:     os.Stdout,
	}
	if c.ManagedGroupTag == "" {
		// Every report says the functions may change any group.
		hcfg.Scope = report.ScopeEveryGroup
	}
	// After a sweep (the expiry schedule's among them), the target's
	// schedule moves to its next deadline, or comes back if it was lost.
	if hcfg.Expiry, err = fleet.Expiry(); err != nil {
		return nil, err
	}
	if c.SweepQueueURL != "" {
		hcfg.Queue = sqsqueue.New(sqs.NewFromConfig(cfg), c.SweepQueueURL)
	}
	if c.AlertTopicARN != "" {
		hcfg.Alerts, hcfg.AlertTopicARN = sns.NewFromConfig(cfg), c.AlertTopicARN
	}
	return handler.NewDrift(hcfg)
}
