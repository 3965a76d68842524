package ddbledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
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

// Key prefixes and sort keys of the item shapes.
const (
	prefixSource = "source#"
	prefixGroup  = "group#"
	prefixPerm   = "perm#"
	prefixLease  = "lease#"
	prefixTarget = "target#"
	skSource     = "source"
	skLease      = "lease"
)

// Ledger implements reconcile.Ledger on one DynamoDB table, for one
// target (New: the home target; For: any other).
type Ledger struct {
	api   API
	table string
	home  rules.Target
	// scope prefixes every pk of this ledger's target: "" for the home
	// target, "target#ACCOUNT#REGION#" for the others.
	scope string
	log   *slog.Logger
	// now is the clock leases expire by (time.Now; tests set their own).
	now func() time.Time
}

// Option configures a Ledger.
type Option func(*Ledger)

// WithLogger sets the logger of what the ledger reports on its own: items
// it cannot decode and skips, leases held past their TTL (each as a
// warning carrying an embedded metric: UndecodableItems, StaleLeases).
func WithLogger(log *slog.Logger) Option { return func(l *Ledger) { l.log = log } }

// WithHome names the home target: the hub's own account and region, whose
// items have no target prefix (a ledger written before targets existed is
// the home target's as it is). ListAllSources files the home scope's
// records under it, and For(home) is the home ledger.
func WithHome(t rules.Target) Option { return func(l *Ledger) { l.home = t } }

// New returns the home target's ledger on table.
func New(api API, table string, opts ...Option) *Ledger {
	l := &Ledger{api: api, table: table, log: slog.New(slog.DiscardHandler), now: time.Now}
	for _, o := range opts {
		o(l)
	}
	return l
}

// For returns the ledger of target t, in the same table: the home target
// (t resolved against the home target equals it; the zero target always)
// has today's keys; any other target's items have every pk prefixed with
// "target#ACCOUNT#REGION#" (sources, group permissions, leases), so two
// targets never read or write each other's items. t should be resolved
// (Target.Resolve) when the home target has been given.
func (l *Ledger) For(t rules.Target) reconcile.Ledger {
	c := *l
	c.scope = ""
	if r := t.Resolve(l.home); !t.IsZero() && r != l.home {
		c.scope = scopeOf(r)
	}
	return &c
}

func scopeOf(t rules.Target) string {
	return prefixTarget + t.Account + "#" + t.Region + "#"
}

// targetOf parses the target of a scoped pk ("target#A#R#rest"), returning
// the scope and the rest.
func targetOf(pk string) (rules.Target, string, bool) {
	rest, ok := strings.CutPrefix(pk, prefixTarget)
	if !ok {
		return rules.Target{}, "", false
	}
	parts := strings.SplitN(rest, "#", 3)
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return rules.Target{}, "", false
	}
	return rules.Target{Account: parts[0], Region: parts[1]}, parts[2], true
}

func (l *Ledger) sourcePK(key string) string { return l.scope + prefixSource + key }
func (l *Ledger) groupPK(id string) string   { return l.scope + prefixGroup + id }
func (l *Ledger) leasePK(id string) string   { return l.scope + prefixLease + id }

// ListAllSources reads the source records of every target with one Scan
// (and its pages): the home scope's under the home target (WithHome), every
// other under its own; each list sorted by key. Targets without records are
// absent.
func (l *Ledger) ListAllSources(ctx context.Context) (map[rules.Target][]reconcile.SourceRecord, error) {
	out := map[rules.Target][]reconcile.SourceRecord{}
	in := &dynamodb.ScanInput{
		TableName:        aws.String(l.table),
		FilterExpression: aws.String("sk = :sk AND (begins_with(pk, :src) OR begins_with(pk, :tgt))"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":sk":  &types.AttributeValueMemberS{Value: skSource},
			":src": &types.AttributeValueMemberS{Value: prefixSource},
			":tgt": &types.AttributeValueMemberS{Value: prefixTarget},
		},
		ConsistentRead: aws.Bool(true),
	}
	err := l.scanPages(ctx, in, func(item map[string]types.AttributeValue) error {
		t, scope := l.home, ""
		if tt, rest, ok := targetOf(getS(item, "pk")); ok {
			if !strings.HasPrefix(rest, prefixSource) {
				return nil
			}
			t, scope = tt, scopeOf(tt)
		}
		rec, err := decodeSource(item, scope)
		if err != nil {
			l.skipUndecodable(item, err)
			if rec = salvageSource(item, scope); rec.Key == "" {
				return nil
			}
		}
		out[t] = append(out[t], rec)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list sources of every target: %w", err)
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

func itemKey(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: pk},
		"sk": &types.AttributeValueMemberS{Value: sk},
	}
}

// GetSource reads one source record (strongly consistent).
func (l *Ledger) GetSource(ctx context.Context, key string) (reconcile.SourceRecord, bool, error) {
	out, err := l.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(l.table),
		Key:            itemKey(l.sourcePK(key), skSource),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return reconcile.SourceRecord{}, false, fmt.Errorf("get source %s: %w", key, err)
	}
	if out.Item == nil {
		return reconcile.SourceRecord{}, false, nil
	}
	rec, err := decodeSource(out.Item, l.scope)
	if err != nil {
		l.skipUndecodable(out.Item, err)
		if rec = salvageSource(out.Item, l.scope); rec.Key == "" {
			return reconcile.SourceRecord{}, false, fmt.Errorf("get source %s: %w", key, err)
		}
	}
	return rec, true, nil
}

// ListSources scans every source record, sorted by key.
func (l *Ledger) ListSources(ctx context.Context) ([]reconcile.SourceRecord, error) {
	var recs []reconcile.SourceRecord
	err := l.scan(ctx, l.scope+prefixSource, func(item map[string]types.AttributeValue) error {
		rec, err := decodeSource(item, l.scope)
		if err != nil {
			// Keep what identifies the record (key, version) so the next
			// write of the source replaces it; what it owned is unknown,
			// so it is read and applied again.
			l.skipUndecodable(item, err)
			rec = salvageSource(item, l.scope)
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
	in := &dynamodb.QueryInput{
		TableName:              aws.String(l.table),
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :perm)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":   &types.AttributeValueMemberS{Value: l.groupPK(groupID)},
			":perm": &types.AttributeValueMemberS{Value: prefixPerm},
		},
		ConsistentRead: aws.Bool(true),
	}
	for {
		out, err := l.api.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("query permissions of %s: %w", groupID, err)
		}
		for _, item := range out.Items {
			p, err := decodePermission(item)
			if err != nil {
				l.skipUndecodable(item, err)
				continue
			}
			perms = append(perms, p)
		}
		if len(out.LastEvaluatedKey) == 0 {
			return perms, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// AllPermissions scans every owned permission, sorted by key.
func (l *Ledger) AllPermissions(ctx context.Context) ([]reconcile.OwnedPermission, error) {
	var perms []reconcile.OwnedPermission
	err := l.scan(ctx, l.scope+prefixGroup, func(item map[string]types.AttributeValue) error {
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

// scan calls fn for every item whose pk begins with prefix, over all pages.
func (l *Ledger) scan(ctx context.Context, prefix string, fn func(map[string]types.AttributeValue) error) error {
	return l.scanPages(ctx, &dynamodb.ScanInput{
		TableName:                 aws.String(l.table),
		FilterExpression:          aws.String("begins_with(pk, :p)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: prefix}},
		ConsistentRead:            aws.Bool(true),
	}, fn)
}

// scanPages runs a Scan over all pages, calling fn for every item.
func (l *Ledger) scanPages(ctx context.Context, in *dynamodb.ScanInput, fn func(map[string]types.AttributeValue) error) error {
	for {
		out, err := l.api.Scan(ctx, in)
		if err != nil {
			return err
		}
		for _, item := range out.Items {
			if err := fn(item); err != nil {
				return err
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// Write applies c in transactions of at most MaxTransactItems items (see
// the package doc for order and atomicity). An item may appear only once
// per commit.
func (l *Ledger) Write(ctx context.Context, c reconcile.Commit) error {
	var items []types.TransactWriteItem
	seen := make(map[[2]string]bool)
	add := func(pk, sk string, item types.TransactWriteItem) error {
		k := [2]string{pk, sk}
		if seen[k] {
			return fmt.Errorf("write ledger: item %s %s appears twice in one commit", pk, sk)
		}
		seen[k] = true
		items = append(items, item)
		return nil
	}
	for _, s := range c.Sources {
		item, err := encodeSource(l.sourcePK(s.Key), s)
		if err != nil {
			return fmt.Errorf("write ledger: %w", err)
		}
		if err := add(l.sourcePK(s.Key), skSource, l.put(item, s.Version)); err != nil {
			return err
		}
	}
	for _, p := range c.Put {
		item, err := encodePermission(l.groupPK(p.Key.GroupID), p)
		if err != nil {
			return fmt.Errorf("write ledger: %w", err)
		}
		if err := add(l.groupPK(p.Key.GroupID), permSK(p.Key), l.put(item, p.Version)); err != nil {
			return err
		}
	}
	for _, p := range c.Delete {
		pk := l.groupPK(p.Key.GroupID)
		if err := add(pk, permSK(p.Key), l.del(pk, permSK(p.Key), p.Version)); err != nil {
			return err
		}
	}
	for _, s := range c.DeleteSources {
		if err := add(l.sourcePK(s.Key), skSource, l.del(l.sourcePK(s.Key), skSource, s.Version)); err != nil {
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
func (l *Ledger) del(pk, sk string, version int64) types.TransactWriteItem {
	cond, vals := versionCondition(version)
	return types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(l.table), Key: itemKey(pk, sk),
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

func permSK(k rules.Key) string { return prefixPerm + k.String() }

func sortOwned(ps []reconcile.OwnedPermission) {
	sort.Slice(ps, func(i, j int) bool { return ps[i].Key.Less(ps[j].Key) })
}
