package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sgrules/sgrules/pkg/rules"
)

// On time: besides the sweeps (which fail closed), the reconcile function
// keeps one wake-up per target at the earliest deadline its ledger
// records hold, which runs the drift function's sweep of that target
// (internal/adapters/expirysched: an EventBridge Scheduler one-time
// schedule). A lost or late wake-up only delays the revocation to the
// next sweep.

// ExpiryScheduler keeps the one wake-up of a target.
type ExpiryScheduler interface {
	// Keep makes the wake-up of the target (account and region, both
	// set) fire at at, or removes it when at is zero. Idempotent.
	Keep(ctx context.Context, account, region string, at time.Time) error
}

// NextDeadline is the earliest deadline after now of the permissions the
// records declare (zero when none has one).
func NextDeadline(recs []SourceRecord, now time.Time) time.Time {
	var next time.Time
	for _, r := range recs {
		for _, p := range r.Permissions {
			if p.ExpiresAt.IsZero() || rules.ExpiredAt(p.ExpiresAt, now) {
				continue
			}
			if next.IsZero() || p.ExpiresAt.Before(next) {
				next = p.ExpiresAt
			}
		}
	}
	return next
}

// KeepExpiry sets the wake-up of each target to the earliest deadline
// after now that its ledger records hold (removing it when none does).
// Every target is tried; the error joins the failures, each naming its
// target.
func KeepExpiry(ctx context.Context, led TargetLedger, s ExpiryScheduler, targets []rules.Target, now time.Time) error {
	var errs []error
	for _, t := range targets {
		recs, err := led.For(t).ListSources(ctx)
		if err == nil {
			err = s.Keep(ctx, t.Account, t.Region, NextDeadline(recs, now))
		}
		if err != nil {
			errs = append(errs, &TargetError{Target: t, Err: fmt.Errorf("keep expiry schedule: %w", err)})
		}
	}
	return errors.Join(errs...)
}
