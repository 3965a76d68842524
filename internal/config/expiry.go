package config

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/scheduler"

	"github.com/sgrules/sgrules/internal/adapters/expirysched"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Expiry returns what keeps the expiry schedules of targets after a run
// (handler.Config.Expiry): each target's one EventBridge Scheduler
// schedule, in the hub's account and region, at the earliest deadline its
// ledger records hold. Nil when EXPIRY_TARGET_ARN is not set.
func (f *Fleet) Expiry() (func(ctx context.Context, targets []rules.Target) error, error) {
	if f.c.ExpiryTargetARN == "" {
		return nil, nil
	}
	s, err := expirysched.New(scheduler.NewFromConfig(f.cfg), expirysched.Config{
		Group: f.c.ExpiryGroup, TargetARN: f.c.ExpiryTargetARN, RoleARN: f.c.ExpiryRoleARN})
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, targets []rules.Target) error {
		if err := f.init(ctx); err != nil {
			return err
		}
		return reconcile.KeepExpiry(ctx, f.ledger, s, targets, time.Now())
	}, nil
}
