// Command drift is the scheduled Lambda function that reverts (or, in
// report mode, only reports) changes made to managed security group rules
// outside sgrules. It runs on a schedule and on CloudTrail security group
// API calls; calls made by sgrules' own roles are ignored. The logic is in
// internal/handler; this file only wires it up.
//
// Environment: as the reconcile function, plus DRIFT_MODE (report or
// revert, default revert) and SGRULES_ROLE_ARNS (comma-separated role ARNs
// whose API calls are sgrules' own).
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

	"github.com/sgrules/sgrules/internal/awsconfig"
	"github.com/sgrules/sgrules/internal/ddbledger"
	"github.com/sgrules/sgrules/internal/ec2sg"
	"github.com/sgrules/sgrules/internal/handler"
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
		Source:    s3source.New(s3.NewFromConfig(cfg, awsconfig.S3Options), bucket, prefix),
		Groups:    ec2sg.New(ec2.NewFromConfig(cfg)),
		Ledger:    ddbledger.New(dynamodb.NewFromConfig(cfg), table),
		MaxRevoke: maxRevoke,
		Logger:    logger,
	})
	if err != nil {
		return nil, err
	}
	return handler.NewDrift(handler.Config{
		Engine:      engine,
		Logger:      logger,
		Bucket:      bucket,
		Prefix:      prefix,
		DryRun:      mode == handler.DriftReport,
		IgnoreRoles: handler.List(os.Getenv("SGRULES_ROLE_ARNS")),
		// DriftCount (the DriftDetected metric the template alarms on) is
		// left to the engine owner: it needs Result fields beyond Sources.
	})
}
