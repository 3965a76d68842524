package ddbledger

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/strutil"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Intent items (see the package doc): in the target's partition, sk =
// "intent#<Key.String()>", at (S, RFC 3339), ttl (N): DynamoDB expires an
// intent nothing cleared after IntentTTL.

// IntentTTL is how long an intent that no sweep cleared is kept.
const IntentTTL = 30 * 24 * time.Hour

// RecordIntents writes intents in TransactWriteItems calls of at most
// MaxTransactItems unconditional puts (an intent of the same key is
// overwritten).
func (l *Ledger) RecordIntents(ctx context.Context, intents []reconcile.Intent) error {
	if err := l.ready(ctx); err != nil {
		return err
	}
	seen := map[rules.Key]bool{}
	var items []types.TransactWriteItem
	for _, it := range intents {
		if seen[it.Key] {
			continue
		}
		seen[it.Key] = true
		item := l.key(kindIntent, it.Key.String())
		item["at"] = &types.AttributeValueMemberS{Value: it.At.UTC().Format(time.RFC3339Nano)}
		item[TTLAttribute] = number(it.At.Add(IntentTTL).Unix())
		items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: aws.String(l.table), Item: item}})
	}
	if err := l.transact(ctx, items); err != nil {
		return fmt.Errorf("record %d intents: %w", len(items), err)
	}
	return nil
}

// ClearIntents deletes the intents of keys (absent ones are no error).
func (l *Ledger) ClearIntents(ctx context.Context, keys []rules.Key) error {
	if err := l.ready(ctx); err != nil {
		return err
	}
	seen := map[rules.Key]bool{}
	var items []types.TransactWriteItem
	for _, k := range keys {
		if seen[k] {
			continue
		}
		seen[k] = true
		items = append(items, types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(l.table),
			Key: l.key(kindIntent, k.String())}})
	}
	if err := l.transact(ctx, items); err != nil {
		return fmt.Errorf("clear %d intents: %w", len(items), err)
	}
	return nil
}

func (l *Ledger) transact(ctx context.Context, items []types.TransactWriteItem) error {
	for start := 0; start < len(items); start += MaxTransactItems {
		end := min(start+MaxTransactItems, len(items))
		if _, err := l.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items[start:end]}); err != nil {
			return mapTransactError(err)
		}
	}
	return nil
}

// Intents returns the intents of groupIDs (one Query per group, a few in
// parallel), or with nil every intent of this target (one Query); sorted by
// key. An item that cannot be decoded is reported and skipped: it proves
// nothing.
func (l *Ledger) Intents(ctx context.Context, groupIDs []string) ([]reconcile.Intent, error) {
	if err := l.ready(ctx); err != nil {
		return nil, err
	}
	var (
		mu  sync.Mutex
		out []reconcile.Intent
	)
	add := func(item map[string]types.AttributeValue) error {
		it, err := decodeIntent(item)
		if err != nil {
			l.skipUndecodable(item, err)
			return nil
		}
		mu.Lock()
		out = append(out, it)
		mu.Unlock()
		return nil
	}
	if groupIDs == nil {
		if err := l.queryKind(ctx, kindIntent, add); err != nil {
			return nil, fmt.Errorf("list intents: %w", err)
		}
	} else {
		ids := strutil.SortedUnique(groupIDs)
		errs := make([]error, len(ids))
		sem := make(chan struct{}, queryParallelism)
		var wg sync.WaitGroup
		for i, id := range ids {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				if err := l.queryKind(ctx, kindIntent+id+keySep, add); err != nil {
					errs[i] = fmt.Errorf("query intents of %s: %w", id, err)
				}
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.Less(out[j].Key) })
	return out, nil
}

func decodeIntent(item map[string]types.AttributeValue) (reconcile.Intent, error) {
	rest, ok := strings.CutPrefix(getS(item, "sk"), kindIntent)
	if !ok {
		return reconcile.Intent{}, fmt.Errorf("decode intent: sk %q is not an intent", getS(item, "sk"))
	}
	k, err := rules.ParseKey(rest)
	if err != nil {
		return reconcile.Intent{}, fmt.Errorf("decode intent: %w", err)
	}
	it := reconcile.Intent{Key: k}
	if at := getS(item, "at"); at != "" {
		if it.At, err = time.Parse(time.RFC3339Nano, at); err != nil {
			return reconcile.Intent{}, fmt.Errorf("decode intent %s: at: %w", k, err)
		}
	}
	return it, nil
}
