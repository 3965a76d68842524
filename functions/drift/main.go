// Command drift is the scheduled Lambda function that reverts (or, in
// report mode, only reports) changes made to managed security group rules
// outside sgrules. It runs on a schedule and on CloudTrail security group
// API calls; calls made by sgrules' own roles are ignored. The logic is in
// internal/handler; this file only wires it up.
//
// Environment: as the reconcile function, plus DRIFT_MODE (report or
// revert, default revert), SGRULES_ROLE_ARNS (comma-separated role ARNs
// whose API calls are sgrules' own) and ALERT_TOPIC_ARN (optional SNS topic
// receiving a summary when drift is found). Each run logs one drift report
// line and writes the drift metrics as an embedded metric format line on
// stdout (internal/driftreport).
package main

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/sgrules/sgrules/internal/awsconfig"
	"github.com/sgrules/sgrules/internal/ddbledger"
	"github.com/sgrules/sgrules/internal/driftreport"
	"github.com/sgrules/sgrules/internal/ec2sg"
	"github.com/sgrules/sgrules/internal/handler"
	"github.com/sgrules/sgrules/internal/ratelimit"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/s3source"
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

func setup(ctx context.Context, logger *slog.Logger) (*handler.Handler, error) {
	table, bucket := os.Getenv("STATE_TABLE"), os.Getenv("RULES_BUCKET")
	if table == "" || bucket == "" {
		return nil, fmt.Errorf("STATE_TABLE and RULES_BUCKET must be set")
	}
	prefix := handler.Prefix(os.Getenv("RULES_PREFIX"))
	maxRevoke, err := handler.MaxRevoke(os.Getenv("MAX_REVOKE"))
	if err != nil {
		return nil, err
	}
	mode, err := handler.ParseDriftMode(os.Getenv("DRIFT_MODE"))
	if err != nil {
		return nil, err
	}
	cfg, err := awsconfig.Load(ctx)
	if err != nil {
		return nil, err
	}
	engine, err := handler.PerInvocation(reconcile.Config{
		Source: s3source.New(s3.NewFromConfig(cfg, awsconfig.S3Options), bucket, prefix),
		// One set of EC2-shaped token buckets per execution environment,
		// shared by warm invocations.
		Groups:    ratelimit.New(ec2sg.New(ec2.NewFromConfig(cfg)), ratelimit.Defaults()),
		Ledger:    ddbledger.New(dynamodb.NewFromConfig(cfg), table),
		LedgerID:  table,
		MaxRevoke: maxRevoke,
		Logger:    logger,
	})
	if err != nil {
		return nil, err
	}
	hcfg := handler.Config{
		Engine:      engine,
		Logger:      logger,
		Bucket:      bucket,
		Prefix:      prefix,
		DryRun:      mode == handler.DriftReport,
		IgnoreRoles: handler.List(os.Getenv("SGRULES_ROLE_ARNS")),
		DriftCount:  driftreport.Count,
		Metrics:     os.Stdout,
	}
	if topic := os.Getenv("ALERT_TOPIC_ARN"); topic != "" {
		hcfg.Alerts, hcfg.AlertTopicARN = sns.NewFromConfig(cfg), topic
	}
	return handler.NewDrift(hcfg)
}
