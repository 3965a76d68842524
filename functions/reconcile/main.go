package main

import (
	"context"
	"log"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/config"
	"github.com/sgrules/sgrules/internal/fleetrt"
	"github.com/sgrules/sgrules/internal/lambda/handler"
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

func setup(ctx context.Context, logger *slog.Logger) (*handler.Reconcile, error) {
	c, err := config.Reconcile.Load(os.Getenv)
	if err != nil {
		return nil, err
	}
	cfg, err := awsconfig.Load(ctx)
	if err != nil {
		return nil, err
	}
	fleet, err := fleetrt.New(ctx, c, cfg, fleetrt.EngineOptions{Logger: logger, SessionName: "sgrules-reconcile"})
	if err != nil {
		return nil, err
	}
	expiry, err := fleet.Expiry()
	if err != nil {
		return nil, err
	}
	// CloudFormation custom resources are the hub's own: the home engine.
	return handler.NewReconcile(handler.Config{Fleet: fleet, Engine: fleet.HomeEngine(), Logger: logger, Bucket: c.Bucket, Prefix: c.Prefix,
		PolicyKey: c.PolicyKey, Expiry: expiry})
}
