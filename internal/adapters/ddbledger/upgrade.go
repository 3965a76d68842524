package ddbledger

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sgrules/sgrules/pkg/rules"
)

// The layout of the table is recorded in one item, outside every target:
//
//	layout  pk = "meta#layout" sk = "meta"
//	        layout (N): 2 once the table has the partitioned layout;
//	        holder (S), expiresAt (N, unix ms): the upgrade in progress
//
// A table written before (layout 1, no layout item) keeps each item of a
// target under its own partition key ("source#<key>", "group#<sg>",
// "lease#<sg>", "intent#<sg>", each prefixed "target#ACCOUNT#REGION#"
// outside the home target), which only a Scan can list. The first use of
// a ledger by this version upgrades the table in place (Upgrade); every
// method waits for it.
const (
	pkLayout      = "meta#layout"
	currentLayout = 2

	legacyTarget = "target#"
	legacySource = "source#"
	legacyGroup  = "group#"
	legacyLease  = "lease#"
	legacyIntent = "intent#"
	// Traffic counters, in the layout they were first written in.
	legacyUsage   = "usage#"
	legacyDay     = "day#"
	legacyFlowObj = "flowobj#"
	legacyHistory = "history#"

	// upgradeLeaseTTL is how long an upgrader holds the table without
	// renewing (it renews after every page).
	upgradeLeaseTTL = 2 * time.Minute
	// defaultUpgradeWait is how long a run waits for another process's
	// upgrade before failing (retryably).
	defaultUpgradeWait = 5 * time.Minute
	// upgradePage is the most items moved between two renewals of the
	// upgrade lease.
	upgradePage = 500
	// upgradeParallelism bounds the items moved at once.
	upgradeParallelism = 8
	// upgradePasses bounds the passes over the table: a pass that finds
	// items written the old way behind it is followed by another.
	upgradePasses = 5
)

// ErrUpgradeInProgress: another process is upgrading the table; retry
// later.
var ErrUpgradeInProgress = errors.New("the ledger table is being upgraded by another run")

// WithUpgradeWait sets how long a run waits for another process's upgrade
// of the table before failing with ErrUpgradeInProgress (default 5
// minutes).
func WithUpgradeWait(d time.Duration) Option { return func(l *Ledger) { l.shared.upgradeWait = d } }

// WithoutUpgrade makes a ledger that may not upgrade the table (a role
// without Scan, UpdateItem and DeleteItem: the flow-log function) fail
// with ErrNotUpgraded instead, until a run of the reconcile or drift
// function has upgraded it.
func WithoutUpgrade() Option { return func(l *Ledger) { l.shared.noUpgrade = true } }

// ErrNotUpgraded: the table has the earlier layout and this ledger may not
// upgrade it (WithoutUpgrade); retry once a reconcile or drift run has.
var ErrNotUpgraded = errors.New("the ledger table has not been upgraded to the current layout yet (the reconcile or drift function upgrades it on its next run)")

// ready returns once the table has the current layout, upgrading it
// (Upgrade) on the first use; checked once per process.
func (l *Ledger) ready(ctx context.Context) error {
	l.shared.mu.Lock()
	r := l.shared.ready
	l.shared.mu.Unlock()
	if r {
		return nil
	}
	l.shared.upgrading.Lock()
	defer l.shared.upgrading.Unlock()
	l.shared.mu.Lock()
	r = l.shared.ready
	l.shared.mu.Unlock()
	if r {
		return nil
	}
	if l.shared.noUpgrade {
		layout, err := l.layout(ctx)
		if err != nil {
			return err
		}
		if layout < currentLayout {
			return fmt.Errorf("ledger table %s: %w", l.table, ErrNotUpgraded)
		}
		l.markReady()
		return nil
	}
	if _, err := l.Upgrade(ctx); err != nil {
		return err
	}
	return nil
}

// UpgradeResult tells what Upgrade did.
type UpgradeResult struct {
	// Already: the table had the current layout, or had nothing written
	// the old way while another process held the upgrade lease.
	Already bool
	// Moved counts the items moved to the new layout, Passes the passes
	// over the table.
	Moved, Passes int
}

// Upgrade brings a table written by an earlier version to the current
// layout, in place, and records the layout; it is idempotent and
// resumable. Under an upgrade lease (one process at a time; another
// waits, or fails with ErrUpgradeInProgress after WithUpgradeWait, unless
// it finds nothing written the old way: recordIfNothingToMove), it
// scans the table once and moves each item of the old layout: a put of
// the same attributes under the new key, conditional on no newer version
// being there (ver, or a lease's expiresAt), then a delete of the old
// item conditional on it being unchanged (a change since the read is
// moved again). Versions are kept, so conditional writes go on where they
// were. A pass that met items written the old way behind it (a run of the
// earlier version still finishing) is followed by another; the layout is
// recorded once a pass finds none. A crash at any point leaves every item
// in the old place, the new one, or both with the same version: the next
// Upgrade moves what is left. Nothing else reads the new layout before
// the layout item says so.
func (l *Ledger) Upgrade(ctx context.Context) (UpgradeResult, error) {
	var res UpgradeResult
	layout, err := l.layout(ctx)
	if err != nil {
		return res, err
	}
	if layout >= currentLayout {
		l.markReady()
		return UpgradeResult{Already: true}, nil
	}
	// A table holding no item but the layout's (brand new, or one whose
	// upgrader found nothing to move and died before recording the
	// layout) has nothing to move: its layout is recorded at once, with
	// no lease to take, and none to wait for.
	if done, already, err := l.recordIfEmpty(ctx); err != nil || done {
		if done {
			l.markReady()
		}
		return UpgradeResult{Already: already}, err
	}
	holder := newHolder()
	deadline := time.Now().Add(l.shared.upgradeWait)
	backoff := leaseBackoffMin
	scanned := false
	for {
		ok, layout, who, err := l.takeUpgradeLease(ctx, holder)
		if err != nil {
			return res, err
		}
		if layout >= currentLayout {
			l.markReady()
			return UpgradeResult{Already: true}, nil
		}
		if ok {
			break
		}
		if !scanned {
			// Held by another: a table with nothing written the old way
			// (its holder moved everything, or died with nothing to move:
			// a table whose items were all deleted, the layout's too,
			// written since by processes that had read the layout) is
			// recorded at once rather than after the lease expires.
			scanned = true
			if done, err := l.recordIfNothingToMove(ctx); err != nil || done {
				if done {
					l.markReady()
				}
				return UpgradeResult{Already: done}, err
			}
		}
		if !time.Now().Before(deadline) {
			return res, fmt.Errorf("upgrade ledger table %s: %w (holder %s); retry later", l.table, ErrUpgradeInProgress, who)
		}
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("upgrade ledger table %s: %w", l.table, ctx.Err())
		case <-time.After(min(backoff/2+rand.N(backoff/2+1), time.Until(deadline))):
		}
		backoff = min(2*backoff, leaseBackoffMax)
	}
	for res.Passes < upgradePasses {
		res.Passes++
		n, err := l.upgradePass(ctx, holder)
		res.Moved += n
		if err != nil {
			return res, fmt.Errorf("upgrade ledger table %s: pass %d: %w", l.table, res.Passes, err)
		}
		if n == 0 {
			break
		}
	}
	// The last pass must find nothing left (a pass after moving items
	// checks that no old item appeared behind it).
	if res.Passes == upgradePasses && res.Moved > 0 {
		if n, err := l.upgradePass(ctx, holder); err != nil || n > 0 {
			return res, fmt.Errorf("upgrade ledger table %s: items still written the old way after %d passes (is an earlier version still running?): %w",
				l.table, upgradePasses, errors.Join(err, ErrUpgradeInProgress))
		}
	}
	_, err = l.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(l.table),
		Key:                 itemKey(pkLayout, skMeta),
		UpdateExpression:    aws.String("SET layout = :l, upgradedAt = :at REMOVE holder, expiresAt"),
		ConditionExpression: aws.String("holder = :me"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":l": number(currentLayout), ":me": &types.AttributeValueMemberS{Value: holder},
			":at": &types.AttributeValueMemberS{Value: l.now().UTC().Format(time.RFC3339)},
		},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		// The lease is gone: the table was found with nothing to move
		// and its layout recorded by another run (recordIfEmpty,
		// recordIfNothingToMove) meanwhile.
		if v, lerr := l.layout(ctx); lerr == nil && v >= currentLayout {
			err = nil
		}
	}
	if err != nil {
		return res, fmt.Errorf("upgrade ledger table %s: record the layout: %w", l.table, err)
	}
	l.markReady()
	if res.Moved > 0 {
		l.log.Info("ledger table upgraded to the partitioned layout", "table", l.table, "moved", res.Moved, "passes", res.Passes)
	}
	return res, nil
}

// recordIfEmpty records the current layout when the table holds no item
// but the layout item (one Scan of at most two items); done when the
// table has the current layout now, already when another run recorded
// it. The layout is recorded whoever holds the upgrade lease: with
// nothing in the table, no upgrader has anything to move (one that is
// moving items leaves them in the table, old or new).
func (l *Ledger) recordIfEmpty(ctx context.Context) (done, already bool, err error) {
	out, err := l.api.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(l.table), ConsistentRead: aws.Bool(true), Limit: aws.Int32(2)})
	if err != nil {
		return false, false, fmt.Errorf("upgrade ledger table %s: scan: %w", l.table, err)
	}
	if len(out.LastEvaluatedKey) > 0 && len(out.Items) > 1 {
		return false, false, nil
	}
	for _, item := range out.Items {
		if getS(item, "pk") != pkLayout {
			return false, false, nil
		}
	}
	return l.recordLayout(ctx)
}

// recordIfNothingToMove records the current layout when no item of the
// table is written the old way (a consistent Scan, stopped at the first
// such item); done when the table has the current layout now. Like
// recordIfEmpty, it records whoever holds the upgrade lease: an upgrader
// puts an item's new version before it deletes the old one, so an item
// it has not finished moving is found in its old place. (An earlier
// version still writing the old way behind the Scan is no more caught by
// an upgrader's last pass.)
func (l *Ledger) recordIfNothingToMove(ctx context.Context) (bool, error) {
	in := &dynamodb.ScanInput{TableName: aws.String(l.table), ConsistentRead: aws.Bool(true),
		ProjectionExpression: aws.String("pk, sk"), Limit: aws.Int32(upgradePage)}
	for {
		out, err := l.api.Scan(ctx, in)
		if err != nil {
			return false, fmt.Errorf("upgrade ledger table %s: scan: %w", l.table, err)
		}
		for _, item := range out.Items {
			if _, _, old := legacyKey(getS(item, "pk"), getS(item, "sk")); old {
				return false, nil
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	done, _, err := l.recordLayout(ctx)
	return done, err
}

// recordLayout records the current layout and drops any upgrade lease;
// already when another run recorded it.
func (l *Ledger) recordLayout(ctx context.Context) (done, already bool, err error) {
	_, err = l.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(l.table),
		Key:                 itemKey(pkLayout, skMeta),
		UpdateExpression:    aws.String("SET layout = :l, upgradedAt = :at REMOVE holder, expiresAt"),
		ConditionExpression: aws.String("attribute_not_exists(layout) OR layout < :l"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":l": number(currentLayout), ":at": &types.AttributeValueMemberS{Value: l.now().UTC().Format(time.RFC3339)},
		},
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return true, false, nil
	case errors.As(err, &ccf):
		return true, true, nil // recorded by another run
	default:
		return false, false, fmt.Errorf("upgrade ledger table %s: record the layout: %w", l.table, err)
	}
}

func (l *Ledger) markReady() {
	l.shared.mu.Lock()
	l.shared.ready = true
	l.shared.mu.Unlock()
}

func newHolder() string {
	var b [8]byte
	_, _ = crand.Read(b[:])
	return "upgrade-" + hex.EncodeToString(b[:])
}

// layout reads the recorded layout (1 when none is).
func (l *Ledger) layout(ctx context.Context) (int64, error) {
	out, err := l.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(l.table),
		Key: itemKey(pkLayout, skMeta), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return 0, fmt.Errorf("read the ledger layout: %w", err)
	}
	v, err := getN(out.Item, "layout")
	if err != nil {
		return 0, fmt.Errorf("read the ledger layout: %w", err)
	}
	return max(v, 1), nil
}

// takeUpgradeLease takes (or renews) the upgrade lease; false, with the
// holder in the way, when another holds it; the layout when it is already
// the current one.
func (l *Ledger) takeUpgradeLease(ctx context.Context, holder string) (bool, int64, string, error) {
	now := l.now()
	_, err := l.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:        aws.String(l.table),
		Key:              itemKey(pkLayout, skMeta),
		UpdateExpression: aws.String("SET holder = :me, expiresAt = :exp"),
		ConditionExpression: aws.String("(attribute_not_exists(layout) OR layout < :l) AND " +
			"(attribute_not_exists(holder) OR holder = :me OR expiresAt < :now)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":me": &types.AttributeValueMemberS{Value: holder}, ":l": number(currentLayout),
			":exp": number(now.Add(upgradeLeaseTTL).UnixMilli()), ":now": number(now.UnixMilli()),
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return true, 1, "", nil
	case errors.As(err, &ccf):
		v, _ := getN(ccf.Item, "layout")
		if ccf.Item == nil {
			// moto may not return the item: read it.
			if v, err = l.layout(ctx); err != nil {
				return false, 0, "", err
			}
		}
		return false, v, getS(ccf.Item, "holder"), nil
	default:
		return false, 0, "", fmt.Errorf("take the ledger upgrade lease: %w", err)
	}
}

// upgradePass scans the table once and moves every item of the old
// layout, renewing the upgrade lease after each page; it returns how many
// it moved.
func (l *Ledger) upgradePass(ctx context.Context, holder string) (int, error) {
	in := &dynamodb.ScanInput{TableName: aws.String(l.table), ConsistentRead: aws.Bool(true), Limit: aws.Int32(upgradePage)}
	moved := 0
	registered := map[string]bool{}
	for {
		out, err := l.api.Scan(ctx, in)
		if err != nil {
			return moved, fmt.Errorf("scan: %w", err)
		}
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			errs []error
			sem  = make(chan struct{}, upgradeParallelism)
		)
		for _, item := range out.Items {
			part, sk, ok := legacyKey(getS(item, "pk"), getS(item, "sk"))
			if !ok {
				continue
			}
			if strings.HasPrefix(sk, kindSource) && !registered[part] {
				if err := putTarget(ctx, l.api, l.table, part); err != nil {
					return moved, err
				}
				registered[part] = true
			}
			moved++
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				if err := l.moveItem(ctx, item, part, sk); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return moved, err
		}
		ok, layout, who, err := l.takeUpgradeLease(ctx, holder)
		if err != nil {
			return moved, err
		}
		if !ok && layout >= currentLayout {
			return moved, nil // recorded by another run (recordIfEmpty, recordIfNothingToMove)
		}
		if !ok {
			return moved, fmt.Errorf("the upgrade lease was taken over by %s: %w", who, ErrUpgradeInProgress)
		}
		if len(out.LastEvaluatedKey) == 0 {
			return moved, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// legacyKey maps the key of an item of the old layout to its partition
// and sort key in the new one; false for every other item (the new
// layout's, meta items, items the ledger never wrote).
func legacyKey(pk, sk string) (string, string, bool) {
	part := partitionHome
	if rest, ok := strings.CutPrefix(pk, legacyTarget); ok {
		parts := strings.SplitN(rest, "#", 3)
		if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
			return "", "", false
		}
		part, pk = partitionOf(rules.Target{Account: parts[0], Region: parts[1]}), parts[2]
	}
	switch {
	case strings.HasPrefix(pk, legacySource) && sk == skSourceLegacy && len(pk) > len(legacySource):
		return part, kindSource + pk[len(legacySource):], true
	case strings.HasPrefix(pk, legacyGroup) && strings.HasPrefix(sk, kindPerm):
		return part, sk, true
	case strings.HasPrefix(pk, legacyLease) && sk == skLeaseLegacy && len(pk) > len(legacyLease):
		return part, kindLease + pk[len(legacyLease):], true
	case strings.HasPrefix(pk, legacyIntent) && sk != "":
		return part, kindIntent + sk, true
	case strings.HasPrefix(pk, legacyUsage) && strings.HasPrefix(sk, legacyDay) && len(pk) > len(legacyUsage):
		return part, kindUsage + usageID(pk[len(legacyUsage):], sk[len(legacyDay):]), true
	case strings.HasPrefix(pk, legacyHistory) && sk != "" && len(pk) > len(legacyHistory):
		return part, kindHistory + pk[len(legacyHistory):] + keySep + sk, true
	case strings.HasPrefix(pk, legacyFlowObj) && sk != "" && len(pk) > len(legacyFlowObj):
		return part, kindFlowObj + pk[len(legacyFlowObj):] + "#" + sk, true
	}
	return "", "", false
}

// Sort keys of the old layout.
const (
	skSourceLegacy = "source"
	skLeaseLegacy  = "lease"
)

// moveItem puts item under (part, sk) unless a newer version is there,
// then deletes the old item if it is unchanged; if it changed, it is read
// and moved again.
func (l *Ledger) moveItem(ctx context.Context, item map[string]types.AttributeValue, part, sk string) error {
	oldKey := itemKey(getS(item, "pk"), getS(item, "sk"))
	for range 5 {
		if item == nil {
			return nil // deleted meanwhile
		}
		moved := make(map[string]types.AttributeValue, len(item))
		for k, v := range item {
			moved[k] = v
		}
		moved["pk"] = &types.AttributeValueMemberS{Value: part}
		moved["sk"] = &types.AttributeValueMemberS{Value: sk}
		c := moveConditions(item)
		_, err := l.api.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(l.table), Item: moved,
			ConditionExpression: c.put, ExpressionAttributeValues: c.putVals})
		var ccf *types.ConditionalCheckFailedException
		if err != nil && !errors.As(err, &ccf) {
			return fmt.Errorf("move %s %s: %w", getS(item, "pk"), getS(item, "sk"), err)
		}
		// A newer version there (ccf) wins: the old item is dropped.
		_, err = l.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(l.table), Key: oldKey,
			ConditionExpression: c.del, ExpressionAttributeValues: c.delVals, ExpressionAttributeNames: c.delNames})
		if err == nil {
			return nil
		}
		if !errors.As(err, &ccf) {
			return fmt.Errorf("move %s %s: delete the old item: %w", getS(item, "pk"), getS(item, "sk"), err)
		}
		out, err := l.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(l.table), Key: oldKey, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return fmt.Errorf("move %s %s: read it again: %w", getS(item, "pk"), getS(item, "sk"), err)
		}
		item = out.Item
	}
	return fmt.Errorf("move %s %s: it keeps changing: %w", getS(oldKey, "pk"), getS(oldKey, "sk"), ErrUpgradeInProgress)
}

// moveConds are the conditions of moving one item.
type moveConds struct {
	put, del         *string
	putVals, delVals map[string]types.AttributeValue
	delNames         map[string]string
}

// moveConditions: the put of a moved item may replace only an older
// version of it (ver; a lease's expiresAt; an item with neither, only
// nothing); the delete of the old item requires it unchanged.
func moveConditions(item map[string]types.AttributeValue) moveConds {
	if v, ok := item["ver"].(*types.AttributeValueMemberN); ok {
		if _, err := strconv.ParseInt(v.Value, 10, 64); err == nil {
			return moveConds{
				put:     aws.String("attribute_not_exists(pk) OR NOT attribute_type(ver, :n) OR ver <= :v"),
				putVals: map[string]types.AttributeValue{":v": v, ":n": &types.AttributeValueMemberS{Value: "N"}},
				del:     aws.String("ver = :v"), delVals: map[string]types.AttributeValue{":v": v},
			}
		}
	}
	if e, ok := item["expiresAt"].(*types.AttributeValueMemberN); ok {
		h, _ := item["holder"].(*types.AttributeValueMemberS)
		if h == nil {
			h = &types.AttributeValueMemberS{}
		}
		return moveConds{
			put: aws.String("attribute_not_exists(pk) OR expiresAt <= :e"), putVals: map[string]types.AttributeValue{":e": e},
			del: aws.String("expiresAt = :e AND holder = :h"), delVals: map[string]types.AttributeValue{":e": e, ":h": h},
		}
	}
	if at, ok := item["at"].(*types.AttributeValueMemberS); ok {
		return moveConds{del: aws.String("#at = :at"), delVals: map[string]types.AttributeValue{":at": at},
			delNames: map[string]string{"#at": "at"}}
	}
	return moveConds{put: aws.String("attribute_not_exists(pk)")}
}
