package ddbledger

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// The history of every rule (reconcile.HistoryLog): one item per event,
//
//	history     in the target's partition (keys.go),
//	            sk = "history#<sg-id>|<id>", id = "h#<time, UTC, fixed
//	            width>#<seq>#<Key.String()>" (HistoryEvent.ID)
//	            kind, rkey (Key.String()), ruleId, desc, owners (L of S
//	            "FILE#RULE"), file, versionId, commit, expiresAt, change,
//	            before, reason, by (M), late (BOOL), at (S, RFC 3339),
//	            ttl (N, unix s: at + HistoryTTL)
//
// so the history of a group is one Query, newest first. Bounded: at most
// MaxHistoryPerRule events per rule (older ones are deleted by the write
// that adds newer ones), and none older than HistoryTTL (DynamoDB's TTL).
// A write is one Query per group it touches and BatchWriteItem calls of
// 25 items, never a call per rule; a refused write repeated by every
// sweep is recorded once, until something else happens to the rule.

// MaxHistoryPerRule bounds the events kept per rule.
const MaxHistoryPerRule = 50

// HistoryTTL is how long an event is kept at most.
const HistoryTTL = 365 * 24 * time.Hour

const (
	prefixEvent = "h#"
	// maxBatchWrite is the DynamoDB limit of items per BatchWriteItem.
	maxBatchWrite = 25
	// eventTime is the sort key's time format: fixed width, so that sort
	// keys order by time.
	eventTime = "2006-01-02T15:04:05.000000000Z"
)

var _ reconcile.HistoryLog = (*Ledger)(nil)

// historyKey is the key of the event id of a group's rule.
func (l *Ledger) historyKey(group, id string) map[string]types.AttributeValue {
	return l.key(kindHistory, group+keySep+id)
}

// historyPrefix is the sort key prefix of a group's events.
func historyPrefix(group string) string { return kindHistory + group + keySep + prefixEvent }

// RecordHistory writes events: for each group, one Query of its stored
// events (keys only) to keep MaxHistoryPerRule per rule, then the puts and
// deletes in BatchWriteItem calls. An event with an ID replaces that one.
func (l *Ledger) RecordHistory(ctx context.Context, events []reconcile.HistoryEvent) error {
	if err := l.ready(ctx); err != nil {
		return err
	}
	byGroup := map[string][]reconcile.HistoryEvent{}
	for _, ev := range events {
		byGroup[ev.Key.GroupID] = append(byGroup[ev.Key.GroupID], ev)
	}
	var writes []types.WriteRequest
	now := l.now()
	for _, g := range sortedGroups(byGroup) {
		stored, err := l.historyKeys(ctx, g)
		if err != nil {
			return err
		}
		perRule := map[string][]storedEvent{} // newest first
		for _, s := range stored {
			perRule[s.rkey] = append(perRule[s.rkey], s)
		}
		seq := 0
		for _, ev := range byGroup[g] {
			rk := ev.Key.String()
			sk := ev.ID
			if sk == "" {
				if last := perRule[rk]; ev.Kind == reconcile.HistRefused && len(last) > 0 &&
					last[0].kind == string(ev.Kind) && last[0].reason == ev.Reason {
					continue // refused again, as every sweep does
				}
				seq++
				sk = fmt.Sprintf("%s%s#%04d#%s", prefixEvent, ev.At.UTC().Format(eventTime), seq, rk)
				perRule[rk] = append([]storedEvent{{sk: sk, rkey: rk, kind: string(ev.Kind), reason: ev.Reason}}, perRule[rk]...)
			}
			writes = append(writes, types.WriteRequest{PutRequest: &types.PutRequest{Item: encodeEvent(l.historyKey(g, sk), ev, now)}})
		}
		for _, rk := range sortedGroups(perRule) {
			evs := perRule[rk]
			sort.Slice(evs, func(i, j int) bool { return evs[i].sk > evs[j].sk })
			for _, old := range evs[min(len(evs), MaxHistoryPerRule):] {
				writes = append(writes, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: l.historyKey(g, old.sk)}})
			}
		}
	}
	return l.batchWrite(ctx, writes)
}

// storedEvent is what RecordHistory reads of a stored event.
type storedEvent struct{ sk, rkey, kind, reason string }

// historyKeys reads the sort key, rule, kind and reason of every stored
// event of a group, newest first.
func (l *Ledger) historyKeys(ctx context.Context, group string) ([]storedEvent, error) {
	var out []storedEvent
	in := &dynamodb.QueryInput{
		TableName:              aws.String(l.table),
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :h)"),
		ProjectionExpression:   aws.String("sk, rkey, kind, reason"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": &types.AttributeValueMemberS{Value: l.part},
			":h":  &types.AttributeValueMemberS{Value: historyPrefix(group)},
		},
		ScanIndexForward: aws.Bool(false),
		ConsistentRead:   aws.Bool(true),
	}
	for {
		page, err := l.api.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("query history of %s: %w", group, err)
		}
		for _, item := range page.Items {
			out = append(out, storedEvent{sk: eventID(getS(item, "sk")), rkey: getS(item, "rkey"), kind: getS(item, "kind"), reason: getS(item, "reason")})
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// batchWrite runs writes in BatchWriteItem calls of maxBatchWrite,
// retrying unprocessed items a few times.
func (l *Ledger) batchWrite(ctx context.Context, writes []types.WriteRequest) error {
	for start := 0; start < len(writes); start += maxBatchWrite {
		pending := writes[start:min(start+maxBatchWrite, len(writes))]
		for try := 0; len(pending) > 0; try++ {
			if try == 5 {
				return fmt.Errorf("write history: %d items left unprocessed", len(pending))
			}
			if try > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(time.Duration(50<<try) * time.Millisecond):
				}
			}
			out, err := l.api.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
				RequestItems: map[string][]types.WriteRequest{l.table: pending},
			})
			if err != nil {
				return fmt.Errorf("write history: %w", err)
			}
			pending = out.UnprocessedItems[l.table]
		}
	}
	return nil
}

// GroupHistory returns the events of a group's rules, newest first.
func (l *Ledger) GroupHistory(ctx context.Context, group string) ([]reconcile.HistoryEvent, error) {
	if err := l.ready(ctx); err != nil {
		return nil, err
	}
	in := &dynamodb.QueryInput{
		TableName:              aws.String(l.table),
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :h)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": &types.AttributeValueMemberS{Value: l.part},
			":h":  &types.AttributeValueMemberS{Value: historyPrefix(group)},
		},
		ScanIndexForward: aws.Bool(false),
		ConsistentRead:   aws.Bool(true),
	}
	out, err := l.queryEvents(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("query history of %s: %w", group, err)
	}
	return out, nil
}

// RuleHistory returns the history of the rules that had EC2 id ruleID:
// every event of their keys (a rule deleted and created again has a new
// id), newest first. It reads the history items of this target (one
// Query, filtered) for the id, then queries their groups.
func (l *Ledger) RuleHistory(ctx context.Context, ruleID string) ([]reconcile.HistoryEvent, error) {
	hits, err := l.scanHistory(ctx, "ruleId = :v", ruleID)
	if err != nil {
		return nil, err
	}
	keys := map[string]bool{}
	groups := map[string]bool{}
	for _, ev := range hits {
		keys[ev.Key.String()] = true
		groups[ev.Key.GroupID] = true
	}
	var out []reconcile.HistoryEvent
	for _, g := range sortedGroups(groups) {
		evs, err := l.GroupHistory(ctx, g)
		if err != nil {
			return nil, err
		}
		for _, ev := range evs {
			if keys[ev.Key.String()] {
				out = append(out, ev)
			}
		}
	}
	sortEvents(out)
	return out, nil
}

// OwnerHistory returns the events of the rules an owner ("FILE#RULE")
// declared, newest first (one Query of this target's history items,
// filtered).
func (l *Ledger) OwnerHistory(ctx context.Context, owner rules.Owner) ([]reconcile.HistoryEvent, error) {
	return l.scanHistory(ctx, "contains(owners, :v)", owner.String())
}

func (l *Ledger) scanHistory(ctx context.Context, filter, value string) ([]reconcile.HistoryEvent, error) {
	if err := l.ready(ctx); err != nil {
		return nil, err
	}
	in := &dynamodb.QueryInput{
		TableName:              aws.String(l.table),
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :h)"),
		FilterExpression:       aws.String(filter),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": &types.AttributeValueMemberS{Value: l.part},
			":h":  &types.AttributeValueMemberS{Value: kindHistory},
			":v":  &types.AttributeValueMemberS{Value: value},
		},
		ConsistentRead: aws.Bool(true),
	}
	out, err := l.queryEvents(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("read history for %s: %w", value, err)
	}
	return out, nil
}

// queryEvents runs in over every page and returns the events it finds,
// newest first (undecodable items are skipped and reported).
func (l *Ledger) queryEvents(ctx context.Context, in *dynamodb.QueryInput) ([]reconcile.HistoryEvent, error) {
	var out []reconcile.HistoryEvent
	for {
		page, err := l.api.Query(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, item := range page.Items {
			ev, err := decodeEvent(item)
			if err != nil {
				l.skipUndecodable(item, err)
				continue
			}
			out = append(out, ev)
		}
		if len(page.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
	sortEvents(out)
	return out, nil
}

// eventID is the event id of a history sort key ("history#<sg>|<id>").
func eventID(sk string) string {
	if rest, ok := strings.CutPrefix(sk, kindHistory); ok {
		if _, id, ok := strings.Cut(rest, keySep); ok {
			return id
		}
	}
	return sk
}

// sortEvents orders events newest first (their ids are time-ordered sort
// keys; a batch's later events come first).
func sortEvents(evs []reconcile.HistoryEvent) {
	sort.SliceStable(evs, func(i, j int) bool {
		if !evs[i].At.Equal(evs[j].At) {
			return evs[i].At.After(evs[j].At)
		}
		return evs[i].ID > evs[j].ID
	})
}

func sortedGroups[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func encodeEvent(key map[string]types.AttributeValue, ev reconcile.HistoryEvent, now time.Time) map[string]types.AttributeValue {
	item := key
	set := func(name, v string) {
		if v != "" {
			item[name] = &types.AttributeValueMemberS{Value: v}
		}
	}
	setTime := func(name string, t time.Time) {
		if !t.IsZero() {
			item[name] = &types.AttributeValueMemberS{Value: t.UTC().Format(time.RFC3339Nano)}
		}
	}
	set("kind", string(ev.Kind))
	set("rkey", ev.Key.String())
	set("ruleId", ev.RuleID)
	set("desc", ev.Description)
	set("file", ev.File)
	set("versionId", ev.VersionID)
	set("commit", ev.Commit)
	set("change", ev.Change)
	set("before", ev.Before)
	set("reason", ev.Reason)
	setTime("at", ev.At)
	setTime("expiresAt", ev.ExpiresAt)
	if len(ev.Owners) > 0 {
		var owners []types.AttributeValue
		for _, o := range ev.Owners {
			owners = append(owners, &types.AttributeValueMemberS{Value: o.String()})
		}
		item["owners"] = &types.AttributeValueMemberL{Value: owners}
	}
	if c := ev.By; c != nil {
		by := map[string]types.AttributeValue{}
		for name, v := range map[string]string{"principal": c.Principal, "arn": c.ARN, "eventName": c.EventName, "eventId": c.EventID,
			"sourceIp": c.SourceIP, "userAgent": c.UserAgent} {
			if v != "" {
				by[name] = &types.AttributeValueMemberS{Value: v}
			}
		}
		if !c.EventTime.IsZero() {
			by["eventTime"] = &types.AttributeValueMemberS{Value: c.EventTime.UTC().Format(time.RFC3339Nano)}
		}
		item["by"] = &types.AttributeValueMemberM{Value: by}
	}
	if ev.LateBy {
		item["late"] = &types.AttributeValueMemberBOOL{Value: true}
	}
	at := ev.At
	if at.IsZero() {
		at = now
	}
	item[TTLAttribute] = &types.AttributeValueMemberN{Value: strconv.FormatInt(at.Add(HistoryTTL).Unix(), 10)}
	return item
}

func decodeEvent(item map[string]types.AttributeValue) (reconcile.HistoryEvent, error) {
	ev := reconcile.HistoryEvent{ID: eventID(getS(item, "sk")), Kind: reconcile.HistoryKind(getS(item, "kind")),
		RuleID: getS(item, "ruleId"), Description: getS(item, "desc"), File: getS(item, "file"), VersionID: getS(item, "versionId"),
		Commit: getS(item, "commit"), Change: getS(item, "change"), Before: getS(item, "before"), Reason: getS(item, "reason")}
	k, err := rules.ParseKey(getS(item, "rkey"))
	if err != nil {
		return ev, err
	}
	ev.Key = k
	parseTime := func(s string) (time.Time, error) {
		if s == "" {
			return time.Time{}, nil
		}
		return time.Parse(time.RFC3339Nano, s)
	}
	if ev.At, err = parseTime(getS(item, "at")); err != nil {
		return ev, fmt.Errorf("at: %w", err)
	}
	if ev.ExpiresAt, err = parseTime(getS(item, "expiresAt")); err != nil {
		return ev, fmt.Errorf("expiresAt: %w", err)
	}
	if l, ok := item["owners"].(*types.AttributeValueMemberL); ok {
		for _, v := range l.Value {
			if s, ok := v.(*types.AttributeValueMemberS); ok {
				ev.Owners = append(ev.Owners, rules.ParseOwner(s.Value))
			}
		}
	}
	if m, ok := item["by"].(*types.AttributeValueMemberM); ok {
		c := &reconcile.Caller{Principal: getS(m.Value, "principal"), ARN: getS(m.Value, "arn"), EventName: getS(m.Value, "eventName"),
			EventID: getS(m.Value, "eventId"), SourceIP: getS(m.Value, "sourceIp"), UserAgent: getS(m.Value, "userAgent")}
		if c.EventTime, err = parseTime(getS(m.Value, "eventTime")); err != nil {
			return ev, fmt.Errorf("by.eventTime: %w", err)
		}
		if c.Principal == "" {
			return ev, errors.New("by without a principal")
		}
		ev.By = c
	}
	if b, ok := item["late"].(*types.AttributeValueMemberBOOL); ok {
		ev.LateBy = b.Value
	}
	if !strings.HasPrefix(ev.ID, prefixEvent) || ev.Kind == "" {
		return ev, fmt.Errorf("not a history event: sk %q, kind %q", ev.ID, ev.Kind)
	}
	return ev, nil
}
