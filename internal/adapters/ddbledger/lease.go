package ddbledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/strutil"
)

// Backoff between attempts to take a held lease: jittered, doubling from
// leaseBackoffMin up to leaseBackoffMax.
const (
	leaseBackoffMin = 50 * time.Millisecond
	leaseBackoffMax = time.Second
)

// MaxLeaseTTL is the longest lease any holder may take. A lease expiring
// later than now + MaxLeaseTTL + leaseClockSkew was not written by an
// honest holder (a clock far ahead, a hand edit): it is treated as expired,
// so it cannot block its group for ever, and reported.
const (
	MaxLeaseTTL    = 15 * time.Minute
	leaseClockSkew = time.Minute
)

// Lock takes a lease on every group for ttl, all of them in one
// conditional transaction (per MaxTransactItems groups, in sorted order), so
// a run either holds every lease of a chunk or none and two invocations
// cannot deadlock. A lease held by another holder makes the transaction
// fail; it is retried with jittered backoff until wait has elapsed, then
// the leases already taken are released and the error wraps
// reconcile.ErrLeaseHeld. A lease whose expiresAt has passed is taken over
// (its holder crashed), and a lease already held by holder is renewed.
// unlock deletes the leases still held by holder; one that expired and was
// taken by someone else is left alone.
func (l *Ledger) Lock(ctx context.Context, groupIDs []string, holder string, ttl, wait time.Duration) (func(context.Context) error, error) {
	if holder == "" {
		return nil, errors.New("lock groups: empty holder")
	}
	if ttl <= 0 || ttl > MaxLeaseTTL {
		return nil, fmt.Errorf("lock groups: lease TTL %s is not within (0, %s]", ttl, MaxLeaseTTL)
	}
	if err := l.ready(ctx); err != nil {
		return nil, err
	}
	ids := strutil.SortedUnique(groupIDs)
	deadline := time.Now().Add(wait)
	var taken []string
	unlock := func(ctx context.Context) error { return l.release(ctx, taken, holder) }
	fail := func(err error) (func(context.Context) error, error) {
		// Release even when ctx is done; a leftover lease would only
		// expire after ttl.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if rerr := unlock(rctx); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return nil, err
	}
	for len(taken) < len(ids) {
		chunk := ids[len(taken):min(len(ids), len(taken)+MaxTransactItems)]
		backoff := leaseBackoffMin
		for {
			ok, err := l.tryLeases(ctx, chunk, holder, ttl)
			if err != nil {
				return fail(fmt.Errorf("lock %d groups from %s: %w", len(chunk), chunk[0], err))
			}
			if ok {
				taken = append(taken, chunk...)
				break
			}
			if !time.Now().Before(deadline) {
				return fail(fmt.Errorf("lock %d groups from %s after %s: %w", len(chunk), chunk[0], wait, reconcile.ErrLeaseHeld))
			}
			sleep := backoff/2 + rand.N(backoff/2+1)
			sleep = min(sleep, time.Until(deadline))
			select {
			case <-ctx.Done():
				return fail(fmt.Errorf("lock groups: %w", ctx.Err()))
			case <-time.After(sleep):
			}
			backoff = min(2*backoff, leaseBackoffMax)
		}
	}
	return unlock, nil
}

// tryLeases takes or renews the leases of every group in one transaction;
// false when another holder has any of them (nothing is taken then). A
// refused transaction returns the leases in the way: if one of them
// expires later than any holder may set (see MaxLeaseTTL), it is reported
// and a second transaction takes it over.
func (l *Ledger) tryLeases(ctx context.Context, groupIDs []string, holder string, ttl time.Duration) (bool, error) {
	now := l.now()
	ok, stale, err := l.transactLeases(ctx, groupIDs, holder, now, ttl, false)
	if ok || err != nil || len(stale) == 0 {
		return ok, err
	}
	for _, s := range stale {
		exp, _ := getN(s, "expiresAt")
		l.log.Warn("group lease held past its TTL: taking it over",
			"pk", getS(s, "pk"), "sk", getS(s, "sk"), "holder", getS(s, "holder"), "expiresAt", time.UnixMilli(exp).UTC().Format(time.RFC3339),
			slog.Group("_aws", "Timestamp", now.UnixMilli(), "CloudWatchMetrics", emfMetric("StaleLeases")), "StaleLeases", 1)
	}
	ok, _, err = l.transactLeases(ctx, groupIDs, holder, now, ttl, true)
	return ok, err
}

// transactLeases runs one lease transaction; when a condition fails it
// returns the leases that expire past now + MaxLeaseTTL (+ skew). With
// capped, such leases count as expired.
func (l *Ledger) transactLeases(ctx context.Context, groupIDs []string, holder string, now time.Time, ttl time.Duration, capped bool) (bool, []map[string]types.AttributeValue, error) {
	maxExp := now.Add(MaxLeaseTTL + leaseClockSkew).UnixMilli()
	exp := now.Add(ttl)
	cond := "attribute_not_exists(pk) OR expiresAt < :now OR holder = :me"
	vals := map[string]types.AttributeValue{
		":now": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)},
		":me":  &types.AttributeValueMemberS{Value: holder},
	}
	if capped {
		cond += " OR expiresAt > :max"
		vals[":max"] = number(maxExp)
	}
	items := make([]types.TransactWriteItem, len(groupIDs))
	for i, id := range groupIDs {
		items[i] = types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(l.table),
			Item: map[string]types.AttributeValue{
				"pk":        &types.AttributeValueMemberS{Value: l.part},
				"sk":        &types.AttributeValueMemberS{Value: kindLease + id},
				"holder":    &types.AttributeValueMemberS{Value: holder},
				"expiresAt": number(exp.UnixMilli()),
				// DynamoDB deletes expired items within days; expiresAt
				// is what counts, ttl only keeps the table clean.
				"ttl": number(exp.Unix() + 1),
			},
			ConditionExpression:                 aws.String(cond),
			ExpressionAttributeValues:           vals,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}}
	}
	_, err := l.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if err == nil {
		return true, nil, nil
	}
	if !errors.Is(mapTransactError(err), reconcile.ErrConflict) {
		return false, nil, err
	}
	// A lease is held (or another transaction raced us).
	var stale []map[string]types.AttributeValue
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		for _, r := range tce.CancellationReasons {
			if exp, err := getN(r.Item, "expiresAt"); err == nil && exp > maxExp {
				stale = append(stale, r.Item)
			}
		}
	}
	return false, stale, nil
}

// release deletes the holder's leases: one transaction per chunk; if a
// lease in it has meanwhile been taken over (the condition fails), each
// lease is deleted on its own so the others are still released.
func (l *Ledger) release(ctx context.Context, groupIDs []string, holder string) error {
	var errs []error
	me := map[string]types.AttributeValue{":me": &types.AttributeValueMemberS{Value: holder}}
	for start := 0; start < len(groupIDs); start += MaxTransactItems {
		chunk := groupIDs[start:min(len(groupIDs), start+MaxTransactItems)]
		items := make([]types.TransactWriteItem, len(chunk))
		for i, id := range chunk {
			items[i] = types.TransactWriteItem{Delete: &types.Delete{
				TableName: aws.String(l.table), Key: l.key(kindLease, id),
				ConditionExpression: aws.String("holder = :me"), ExpressionAttributeValues: me,
			}}
		}
		_, err := l.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		if err == nil {
			continue
		}
		if !errors.Is(mapTransactError(err), reconcile.ErrConflict) {
			errs = append(errs, fmt.Errorf("unlock %d groups from %s: %w", len(chunk), chunk[0], err))
			continue
		}
		for _, id := range chunk {
			_, err := l.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{
				TableName: aws.String(l.table), Key: l.key(kindLease, id),
				ConditionExpression: aws.String("holder = :me"), ExpressionAttributeValues: me,
			})
			var ccf *types.ConditionalCheckFailedException
			if err != nil && !errors.As(err, &ccf) {
				errs = append(errs, fmt.Errorf("unlock group %s: %w", id, err))
			}
		}
	}
	return errors.Join(errs...)
}
