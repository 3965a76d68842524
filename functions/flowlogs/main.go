package main

import (
	"context"
	"log"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/config"
	"github.com/sgrules/sgrules/internal/lambda/flowlogs"
)

func main() {
	logger := lambdacontext.NewLogger()
	c, err := config.Flowlogs.Load(os.Getenv)
	if err == nil {
		var cfg aws.Config
		if cfg, err = awsconfig.Load(context.Background()); err == nil {
			role := strings.TrimPrefix(c.TargetRole, "/")
			if role == "" {
				role = config.DefaultTargetRole
			}
			o := flowlogs.Options{Table: c.Table, TargetAccounts: c.TargetAccounts, TargetRole: role, TargetExternalID: c.TargetExternalID}
			lambda.Start(flowlogs.Setup(o, cfg, logger).Handle)
			return
		}
	}
	logger.Error("flow-log function cannot start", "error", err)
	log.Fatal(err)
}
