package ddbledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sgrules/sgrules/internal/reconcile"
)

// Revoke budgets of runs (reconcile.RevokeBudget) that span invocations:
// the shards and messages of one scheduled sweep. One item per run:
//
//	budget  pk = "meta#budget#<run id>" sk = "budget"
//	        c_<claimant> (N): each claimant's claim, v (N): version,
//	        ttl (N, unix s): a day after the last claim
//
// A claim reads the item and writes it back on condition of its version,
// so concurrent claims are served one at a time, first come first served.

const (
	prefixBudget  = "meta#budget#"
	skBudget      = "budget"
	budgetClaim   = "c_"
	budgetTTL     = 24 * time.Hour
	budgetRetries = 8
)

var _ reconcile.RevokeBudget = (*budget)(nil)

type budget struct {
	l   *Ledger
	run string
}

// Budget returns the revoke budget of the run named run (a schedule's
// event id), kept in the table for a day.
func (l *Ledger) Budget(run string) reconcile.RevokeBudget { return &budget{l: l, run: run} }

// Claim implements reconcile.RevokeBudget.
func (b *budget) Claim(ctx context.Context, claimant string, n, limit int) (bool, int, error) {
	key := itemKey(prefixBudget+b.run, skBudget)
	attr := budgetClaim + claimant
	for range budgetRetries {
		out, err := b.l.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(b.l.table), Key: key, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return false, 0, fmt.Errorf("read revoke budget of run %s: %w", b.run, err)
		}
		spent, mine := 0, -1
		for name := range out.Item {
			if !strings.HasPrefix(name, budgetClaim) {
				continue
			}
			v, err := getN(out.Item, name)
			if err != nil {
				return false, 0, fmt.Errorf("read revoke budget of run %s: %w", b.run, err)
			}
			if name == attr {
				mine = int(v)
			} else {
				spent += int(v)
			}
		}
		if n > 0 && spent+n > limit {
			return false, spent, nil
		}
		if mine == n {
			return true, spent, nil
		}
		ver, err := getN(out.Item, "v")
		if err != nil {
			return false, 0, fmt.Errorf("read revoke budget of run %s: %w", b.run, err)
		}
		in := &dynamodb.UpdateItemInput{
			TableName:                aws.String(b.l.table),
			Key:                      key,
			UpdateExpression:         aws.String("SET #c = :n, v = :nv, #ttl = :ttl"),
			ExpressionAttributeNames: map[string]string{"#c": attr, "#ttl": "ttl"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":n": number(int64(n)), ":nv": number(ver + 1),
				":ttl": &types.AttributeValueMemberN{Value: strconv.FormatInt(b.l.now().Add(budgetTTL).Unix(), 10)},
			},
		}
		if out.Item == nil {
			in.ConditionExpression = aws.String("attribute_not_exists(pk)")
		} else {
			in.ConditionExpression = aws.String("v = :v")
			in.ExpressionAttributeValues[":v"] = number(ver)
		}
		_, err = b.l.api.UpdateItem(ctx, in)
		var ccf *types.ConditionalCheckFailedException
		switch {
		case err == nil:
			return true, spent, nil
		case errors.As(err, &ccf):
			continue // another claim came first: read again
		default:
			return false, 0, fmt.Errorf("claim revoke budget of run %s: %w", b.run, err)
		}
	}
	return false, 0, fmt.Errorf("claim revoke budget of run %s: %w", b.run, reconcile.ErrConflict)
}
