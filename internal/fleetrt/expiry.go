package fleetrt

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"

	"github.com/sgrules/sgrules/internal/adapters/expirysched"
	"github.com/sgrules/sgrules/internal/config"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Expiry returns what keeps the expiry schedules of targets after a run
// (handler.Config.Expiry): each target's one EventBridge Scheduler
// schedule, in the hub's account and region, at the earliest deadline its
// ledger records hold. Nil when EXPIRY_ROLE_ARN is not set.
//
// The schedules invoke EXPIRY_TARGET_ARN; left empty (the drift function,
// which the template cannot name in its own environment), the function
// invoked, its ARN without a qualifier, so that the drift function moves
// a target's schedule to the next deadline after the sweep it ran.
func (f *Fleet) Expiry() (func(ctx context.Context, targets []rules.Target) error, error) {
	if f.c.ExpiryRoleARN == "" {
		return nil, nil
	}
	api := scheduler.NewFromConfig(f.cfg)
	return func(ctx context.Context, targets []rules.Target) error {
		target := f.c.ExpiryTargetARN
		if target == "" {
			if lc, ok := lambdacontext.FromContext(ctx); ok {
				target = unqualified(lc.InvokedFunctionArn)
			}
		}
		if target == "" {
			return errors.New("expiry schedules: " + config.EnvExpiryTarget + " is not set and the invoked function is unknown")
		}
		s, err := expirysched.New(api, expirysched.Config{Group: f.c.ExpiryGroup, TargetARN: target, RoleARN: f.c.ExpiryRoleARN})
		if err != nil {
			return err
		}
		if err := f.init(ctx); err != nil {
			return err
		}
		return reconcile.KeepExpiry(ctx, f.ledger, s, targets, time.Now())
	}, nil
}

// unqualified is a Lambda function ARN without its version or alias
// (arn:aws:lambda:REGION:ACCOUNT:function:NAME).
func unqualified(arn string) string {
	if parts := strings.Split(arn, ":"); len(parts) > 7 {
		return strings.Join(parts[:7], ":")
	}
	return arn
}
