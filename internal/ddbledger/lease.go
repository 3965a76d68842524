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
)

// Backoff between attempts to take a held lease: jittered, doubling from
// leaseBackoffMin up to leaseBackoffMax.
const (
	leaseBackoffMin = 50 * time.Millisecond
	leaseBackoffMax = time.Second
)

// Lock takes a lease on every group, in sorted order (so two invocations
// never deadlock), for ttl. A lease held by another holder is retried with
// jittered backoff until wait has elapsed; then the leases already taken
// are released and the error wraps reconcile.ErrLeaseHeld. A lease whose
// expiresAt has passed is taken over (its holder crashed), and a lease
// already held by holder is renewed. unlock deletes the leases still held
// by holder; one that expired and was taken by someone else is left alone.
func (l *Ledger) Lock(ctx context.Context, groupIDs []string, holder string, ttl, wait time.Duration) (func(context.Context) error, error) {
	if holder == "" {
		return nil, errors.New("lock groups: empty holder")
	}
	ids := sortedUnique(groupIDs)
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
	for _, id := range ids {
		backoff := leaseBackoffMin
		for {
			ok, err := l.tryLease(ctx, id, holder, ttl)
			if err != nil {
				return fail(fmt.Errorf("lock group %s: %w", id, err))
			}
			if ok {
				taken = append(taken, id)
				break
			}
			if !time.Now().Before(deadline) {
				return fail(fmt.Errorf("lock group %s after %s: %w", id, wait, reconcile.ErrLeaseHeld))
			}
			sleep := backoff/2 + rand.N(backoff/2+1)
			sleep = min(sleep, time.Until(deadline))
			select {
			case <-ctx.Done():
				return fail(fmt.Errorf("lock group %s: %w", id, ctx.Err()))
			case <-time.After(sleep):
			}
			backoff = min(2*backoff, leaseBackoffMax)
		}
	}
	return unlock, nil
}

// tryLease takes or renews one lease; false when another holder has it.
func (l *Ledger) tryLease(ctx context.Context, groupID, holder string, ttl time.Duration) (bool, error) {
	now := time.Now()
	exp := now.Add(ttl)
	_, err := l.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(l.table),
		Item: map[string]types.AttributeValue{
			"pk":        &types.AttributeValueMemberS{Value: prefixLease + groupID},
			"sk":        &types.AttributeValueMemberS{Value: skLease},
			"holder":    &types.AttributeValueMemberS{Value: holder},
			"expiresAt": number(exp.UnixMilli()),
			// DynamoDB deletes expired items within days; expiresAt is
			// what counts, ttl only keeps the table clean.
			"ttl": number(exp.Unix() + 1),
		},
		ConditionExpression: aws.String("attribute_not_exists(pk) OR expiresAt < :now OR holder = :me"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":now": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)},
			":me":  &types.AttributeValueMemberS{Value: holder},
		},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return false, nil
	}
	return err == nil, err
}

func (l *Ledger) release(ctx context.Context, groupIDs []string, holder string) error {
	var errs []error
	for _, id := range groupIDs {
		_, err := l.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName:                 aws.String(l.table),
			Key:                       itemKey(prefixLease+id, skLease),
			ConditionExpression:       aws.String("holder = :me"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":me": &types.AttributeValueMemberS{Value: holder}},
		})
		var ccf *types.ConditionalCheckFailedException
		if err != nil && !errors.As(err, &ccf) {
			errs = append(errs, fmt.Errorf("unlock group %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}
