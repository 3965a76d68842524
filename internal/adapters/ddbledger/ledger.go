package ddbledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/strutil"
	"github.com/sgrules/sgrules/pkg/rules"
)

// API is the part of the DynamoDB client the ledger uses; *dynamodb.Client
// satisfies it.
type API interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
}

var _ API = (*dynamodb.Client)(nil)

var _ reconcile.Ledger = (*Ledger)(nil)

// MaxTransactItems is the DynamoDB limit of items per TransactWriteItems.
const MaxTransactItems = 100

// queryParallelism bounds concurrent Query calls in GroupPermissions.
const queryParallelism = 8

// Ledger implements reconcile.Ledger on one DynamoDB table, for one
// target (New: the home target; For: any other).
type Ledger struct {
	api   API
	table string
	home  rules.Target
	// part is the partition key of this ledger's target (keys.go):
	// partitionHome for the home target, "t#ACCOUNT#REGION" for the others.
	part string
	log  *slog.Logger
	// now is the clock leases expire by (time.Now; tests set their own).
	now func() time.Time
	// shared is the state every ledger of the table built from one New
	// shares: the layout check (upgrade.go).
	shared *shared
}

// shared is per table and process.
type shared struct {
	mu sync.Mutex
	// ready: the table holds the current layout (checked once).
	ready bool
	// upgrading serialises this process's upgrade (upgrade.go).
	upgrading sync.Mutex
	// upgradeWait bounds the wait for another process's upgrade.
	upgradeWait time.Duration
	// noUpgrade: this process may not upgrade the table (WithoutUpgrade).
	noUpgrade bool
}

// Option configures a Ledger.
type Option func(*Ledger)

// WithLogger sets the logger of what the ledger reports on its own: items
// it cannot decode and skips, leases held past their TTL (each as a
// warning carrying an embedded metric: UndecodableItems, StaleLeases).
func WithLogger(log *slog.Logger) Option { return func(l *Ledger) { l.log = log } }

// WithHome names the home target: the hub's own account and region, whose
// items are in partitionHome. ListAllSources files the home partition's
// records under it, and For(home) is the home ledger.
func WithHome(t rules.Target) Option { return func(l *Ledger) { l.home = t } }

// New returns the home target's ledger on table.
func New(api API, table string, opts ...Option) *Ledger {
	l := &Ledger{api: api, table: table, part: partitionHome, log: slog.New(slog.DiscardHandler), now: time.Now,
		shared: &shared{upgradeWait: defaultUpgradeWait}}
	for _, o := range opts {
		o(l)
	}
	return l
}

// For returns the ledger of target t, in the same table: the home target
// (t resolved against the home target equals it; the zero target always)
// is partitionHome; any other target is the partition "t#ACCOUNT#REGION",
// so two targets never read or write each other's items. t should be
// resolved (Target.Resolve) when the home target has been given.
func (l *Ledger) For(t rules.Target) reconcile.Ledger {
	c := *l
	c.part = partitionHome
	if r := t.Resolve(l.home); !t.IsZero() && r != l.home {
		c.part = partitionOf(r)
	}
	return &c
}

// ListAllSources reads the source records of every target: the target
// registry (one Query), then each registered target's sources (one Query
// each, paged); the home partition's under the home target (WithHome),
// every other under its own; each list sorted by key. Targets without
// records are absent.
func (l *Ledger) ListAllSources(ctx context.Context) (map[rules.Target][]reconcile.SourceRecord, error) {
	if err := l.ready(ctx); err != nil {
		return nil, err
	}
	parts, err := l.registeredTargets(ctx)
	if err != nil {
		return nil, fmt.Errorf("list sources of every target: %w", err)
	}
	out := map[rules.Target][]reconcile.SourceRecord{}
	for part, t := range parts {
		c := *l
		c.part = part
		recs, err := c.ListSources(ctx)
		if err != nil {
			return nil, fmt.Errorf("list sources of every target: %w", err)
		}
		if part == partitionHome {
			t = l.home
		}
		if len(recs) > 0 {
			out[t] = append(out[t], recs...)
		}
	}
	for _, recs := range out {
		sort.Slice(recs, func(i, j int) bool { return recs[i].Key < recs[j].Key })
	}
	return out, nil
}

// emfMetric is the CloudWatchMetrics member of an embedded metric format
// line with one count metric in the sgrules namespace.
func emfMetric(name string) []map[string]any {
	return []map[string]any{{"Namespace": "sgrules", "Dimensions": [][]string{{}},
		"Metrics": []map[string]string{{"Name": name, "Unit": "Count"}}}}
}

// skipUndecodable reports an item that cannot be decoded; the caller goes
// on without it, so one bad item cannot stop every sweep.
func (l *Ledger) skipUndecodable(item map[string]types.AttributeValue, err error) {
	l.log.Warn("ledger item skipped: it cannot be decoded", "pk", getS(item, "pk"), "sk", getS(item, "sk"), "error", err.Error(),
		slog.Group("_aws", "Timestamp", time.Now().UnixMilli(), "CloudWatchMetrics", emfMetric("UndecodableItems")), "UndecodableItems", 1)
}

// GetSource reads one source record (strongly consistent).
func (l *Ledger) GetSource(ctx context.Context, key string) (reconcile.SourceRecord, bool, error) {
	if err := l.ready(ctx); err != nil {
		return reconcile.SourceRecord{}, false, err
	}
	out, err := l.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(l.table),
		Key:            l.key(kindSource, key),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return reconcile.SourceRecord{}, false, fmt.Errorf("get source %s: %w", key, err)
	}
	if out.Item == nil {
		return reconcile.SourceRecord{}, false, nil
	}
	rec, err := decodeSource(out.Item)
	if err != nil {
		l.skipUndecodable(out.Item, err)
		if rec = salvageSource(out.Item); rec.Key == "" {
			return reconcile.SourceRecord{}, false, fmt.Errorf("get source %s: %w", key, err)
		}
	}
	return rec, true, nil
}

// ListSources reads every source record of the target (one Query, paged),
// sorted by key.
func (l *Ledger) ListSources(ctx context.Context) ([]reconcile.SourceRecord, error) {
	if err := l.ready(ctx); err != nil {
		return nil, err
	}
	var recs []reconcile.SourceRecord
	err := l.queryKind(ctx, kindSource, func(item map[string]types.AttributeValue) error {
		rec, err := decodeSource(item)
		if err != nil {
			// Keep what identifies the record (key, version) so the next
			// write of the source replaces it; what it owned is unknown,
			// so it is read and applied again.
			l.skipUndecodable(item, err)
			rec = salvageSource(item)
			if rec.Key == "" {
				return nil
			}
		}
		recs = append(recs, rec)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list sources: %w", err)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Key < recs[j].Key })
	return recs, nil
}

// GroupPermissions returns the owned permissions of the given groups, one
// strongly consistent Query per group (a few in parallel), sorted by key.
func (l *Ledger) GroupPermissions(ctx context.Context, groupIDs []string) ([]reconcile.OwnedPermission, error) {
	if err := l.ready(ctx); err != nil {
		return nil, err
	}
	ids := strutil.SortedUnique(groupIDs)
	results := make([][]reconcile.OwnedPermission, len(ids))
	errs := make([]error, len(ids))
	sem := make(chan struct{}, queryParallelism)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i], errs[i] = l.queryGroup(ctx, id)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var all []reconcile.OwnedPermission
	for _, r := range results {
		all = append(all, r...)
	}
	sortOwned(all)
	return all, nil
}

func (l *Ledger) queryGroup(ctx context.Context, groupID string) ([]reconcile.OwnedPermission, error) {
	var perms []reconcile.OwnedPermission
	err := l.queryKind(ctx, kindPerm+groupID+keySep, func(item map[string]types.AttributeValue) error {
		p, err := decodePermission(item)
		if err != nil {
			l.skipUndecodable(item, err)
			return nil
		}
		perms = append(perms, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("query permissions of %s: %w", groupID, err)
	}
	return perms, nil
}

// AllPermissions reads every owned permission of the target (one Query,
// paged), sorted by key.
func (l *Ledger) AllPermissions(ctx context.Context) ([]reconcile.OwnedPermission, error) {
	if err := l.ready(ctx); err != nil {
		return nil, err
	}
	var perms []reconcile.OwnedPermission
	err := l.queryKind(ctx, kindPerm, func(item map[string]types.AttributeValue) error {
		p, err := decodePermission(item)
		if err != nil {
			// Unknown ownership reads as unmanaged: never revoked for it.
			l.skipUndecodable(item, err)
			return nil
		}
		perms = append(perms, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list permissions: %w", err)
	}
	sortOwned(perms)
	return perms, nil
}

// Write applies c in transactions of at most MaxTransactItems items (see
// the package doc for order and atomicity). An item may appear only once
// per commit.
func (l *Ledger) Write(ctx context.Context, c reconcile.Commit) error {
	if err := l.ready(ctx); err != nil {
		return err
	}
	if slices.ContainsFunc(c.Sources, func(s reconcile.SourceRecord) bool { return s.Version == 0 }) {
		// A first record of a source: the target must be registered
		// before it (ListAllSources).
		if err := putTarget(ctx, l.api, l.table, l.part); err != nil {
			return fmt.Errorf("write ledger: %w", err)
		}
	}
	var items []types.TransactWriteItem
	seen := make(map[[2]string]bool)
	add := func(sk string, item types.TransactWriteItem) error {
		k := [2]string{l.part, sk}
		if seen[k] {
			return fmt.Errorf("write ledger: item %s %s appears twice in one commit", l.part, sk)
		}
		seen[k] = true
		items = append(items, item)
		return nil
	}
	for _, s := range c.Sources {
		item, err := encodeSource(l.key(kindSource, s.Key), s)
		if err != nil {
			return fmt.Errorf("write ledger: %w", err)
		}
		if err := add(kindSource+s.Key, l.put(item, s.Version)); err != nil {
			return err
		}
	}
	for _, p := range c.Put {
		item, err := encodePermission(l.key(kindPerm, p.Key.String()), p)
		if err != nil {
			return fmt.Errorf("write ledger: %w", err)
		}
		if err := add(permSK(p.Key), l.put(item, p.Version)); err != nil {
			return err
		}
	}
	for _, p := range c.Delete {
		if err := add(permSK(p.Key), l.del(l.key(kindPerm, p.Key.String()), p.Version)); err != nil {
			return err
		}
	}
	for _, s := range c.DeleteSources {
		if err := add(kindSource+s.Key, l.del(l.key(kindSource, s.Key), s.Version)); err != nil {
			return err
		}
	}
	for start := 0; start < len(items); start += MaxTransactItems {
		end := min(start+MaxTransactItems, len(items))
		_, err := l.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items[start:end]})
		if err != nil {
			return fmt.Errorf("write ledger items %d-%d of %d: %w", start+1, end, len(items), mapTransactError(err))
		}
	}
	return nil
}

// put writes item with ver = version+1, conditional on the item being at
// version (see versionCondition).
func (l *Ledger) put(item map[string]types.AttributeValue, version int64) types.TransactWriteItem {
	item["ver"] = number(version + 1)
	cond, vals := versionCondition(version)
	return types.TransactWriteItem{Put: &types.Put{TableName: aws.String(l.table), Item: item,
		ConditionExpression: cond, ExpressionAttributeValues: vals}}
}

// del deletes an item conditional on it being at version (see
// versionCondition), so a stale caller cannot delete what someone else just
// wrote.
func (l *Ledger) del(key map[string]types.AttributeValue, version int64) types.TransactWriteItem {
	cond, vals := versionCondition(version)
	return types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(l.table), Key: key,
		ConditionExpression: cond, ExpressionAttributeValues: vals}}
}

// versionCondition is the condition of writing over an item read at
// version. Version 0 means the item was never written by the ledger: it is
// absent, or it has no numeric ver (an item written by hand or by an older
// tool, read as undecodable and salvaged), and may be replaced; every item
// the ledger writes has a numeric ver of at least 1, so a record someone
// else has just written is never overwritten.
func versionCondition(version int64) (*string, map[string]types.AttributeValue) {
	if version == 0 {
		return aws.String("attribute_not_exists(ver) OR NOT attribute_type(ver, :n)"),
			map[string]types.AttributeValue{":n": &types.AttributeValueMemberS{Value: "N"}}
	}
	return aws.String("ver = :v"), map[string]types.AttributeValue{":v": number(version)}
}

// mapTransactError wraps reconcile.ErrConflict when a transaction was
// cancelled because a condition failed or another transaction touched the
// same item.
func mapTransactError(err error) error {
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		for _, r := range tce.CancellationReasons {
			switch aws.ToString(r.Code) {
			case "ConditionalCheckFailed", "TransactionConflict":
				return fmt.Errorf("%w: %w", reconcile.ErrConflict, err)
			}
		}
	}
	var tc *types.TransactionConflictException
	if errors.As(err, &tc) {
		return fmt.Errorf("%w: %w", reconcile.ErrConflict, err)
	}
	return err
}

func number(n int64) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func permSK(k rules.Key) string { return kindPerm + k.String() }

func sortOwned(ps []reconcile.OwnedPermission) {
	sort.Slice(ps, func(i, j int) bool { return ps[i].Key.Less(ps[j].Key) })
}
