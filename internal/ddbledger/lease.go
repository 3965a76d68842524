package ddbledger

import (
	"context"
	"errors"
	"fmt"
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
// false when another holder has any of them (nothing is taken then).
func (l *Ledger) tryLeases(ctx context.Context, groupIDs []string, holder string, ttl time.Duration) (bool, error) {
	now := l.now()
	exp := now.Add(ttl)
	items := make([]types.TransactWriteItem, len(groupIDs))
	for i, id := range groupIDs {
		items[i] = types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(l.table),
			Item: map[string]types.AttributeValue{
				"pk":        &types.AttributeValueMemberS{Value: prefixLease + id},
				"sk":        &types.AttributeValueMemberS{Value: skLease},
				"holder":    &types.AttributeValueMemberS{Value: holder},
				"expiresAt": number(exp.UnixMilli()),
				// DynamoDB deletes expired items within days; expiresAt
				// is what counts, ttl only keeps the table clean.
				"ttl": number(exp.Unix() + 1),
			},
			ConditionExpression: aws.String("attribute_not_exists(pk) OR expiresAt < :now OR holder = :me"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":now": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)},
				":me":  &types.AttributeValueMemberS{Value: holder},
			},
		}}
	}
	_, err := l.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if err == nil {
		return true, nil
	}
	if errors.Is(mapTransactError(err), reconcile.ErrConflict) {
		return false, nil // a lease is held (or another transaction raced us)
	}
	return false, err
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
				TableName: aws.String(l.table), Key: itemKey(prefixLease+id, skLease),
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
				TableName: aws.String(l.table), Key: itemKey(prefixLease+id, skLease),
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
