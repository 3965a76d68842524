// Command reconcile is the Lambda function that applies rule files: S3
// object events (direct, SQS or EventBridge) reconcile the files they name;
// it also serves CloudFormation Custom::SecurityGroupRule requests. The
// logic is in internal/handler; this file only wires it up.
//
// Environment: STATE_TABLE and RULES_BUCKET (required), RULES_PREFIX
// (default rules/), MAX_REVOKE (default 50, negative for no limit).
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
	"github.com/sgrules/sgrules/internal/ratelimit"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/s3source"
)

func main() {
	logger := lambdacontext.NewLogger()
	h, err := setup(context.Background(), logger)
	if err != nil {
		logger.Error("reconcile function cannot start", "error", err)
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
	return handler.NewReconcile(handler.Config{
		Engine: engine,
		Logger: logger,
		Bucket: bucket,
		Prefix: prefix,
	})
}
