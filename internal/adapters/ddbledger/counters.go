package ddbledger

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/strutil"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Traffic counters: what the flow-log function (functions/flowlogs) adds
// per rule and per day, and what the CLI and the engine read over a
// window. Two item shapes, in the target's partition like every other
// item (keys.go):
//
//	usage   sk = "usage#<sg-id>|<YYYY-MM-DD>"
//	        r (M: Key.String() → M{id S, f N, b N, a N, fs N, ls N, p S}:
//	          rule id, flows, bytes, ambiguous flows, first and last seen
//	          (unix s), the peer of the last flow),
//	        ver (N), ttl (N, unix s: the day + CounterRetention)
//	object  sk = "flowobj#<bucket>/<key>#etag#<etag>#<i>/<n>"
//	        at (S, RFC 3339), ttl (N, unix s: at + MarkerRetention)
//
// The day is the log object's (its …/YYYY/MM/DD/ folder); first and last
// seen are the records' own times.
//
// # Idempotence
//
// One object's counters are written in transactions of at most
// MaxTransactItems-1 group-day items plus the object's marker for that
// part (i of n, groups in id order; nearly always one part): the marker is
// put on condition that it does not exist, each counter item on its
// version (read, merged, written back). A transaction is atomic: the
// object's part is counted and marked, or neither. A redelivered message
// finds the marker and adds nothing; a crash between parts (more than 99
// groups credited by one object) leaves the later parts to the redelivery.
// A lost race on a counter item (two objects of the same group and day at
// once) is read and merged again. The markers expire after
// MarkerRetention, longer than SQS keeps a message.
//
// The one inexact case: an object crediting more than 99 groups, cut
// between parts, whose redelivery sees another set of managed rules (a
// rule added or removed meanwhile) splits its groups at other places; a
// group moving from a written part to an unwritten one is counted twice,
// one moving the other way not at all.

const (
	// CounterRetention is how long a day's counters are kept (TTL).
	CounterRetention = 400 * 24 * time.Hour
	// MarkerRetention is how long an object's marker is kept: longer
	// than SQS keeps a message (at most 14 days).
	MarkerRetention = 15 * 24 * time.Hour
	// counterAttempts bounds the read-merge-write rounds of one part.
	counterAttempts = 20
	dayLayout       = "2006-01-02"
)

// RuleCounter is what traffic adds up to for one rule: over one object
// (Add) or a window (Read).
type RuleCounter struct {
	Key    rules.Key
	RuleID string
	// Flows and Bytes as flowlog.Usage counts them; AmbiguousFlows is the
	// part of Flows whose initiator was not known.
	Flows, Bytes, AmbiguousFlows int64
	// First and Last seen (zero: unknown).
	First, Last time.Time
	// LastPeer is the peer of the flow seen last.
	LastPeer netip.Addr
}

// merge adds o to c: sums, the earliest first, the latest last and its
// peer. The rule id is o's when c has none.
func (c *RuleCounter) merge(o RuleCounter) {
	if c.RuleID == "" {
		c.RuleID = o.RuleID
	}
	c.Flows += o.Flows
	c.Bytes += o.Bytes
	c.AmbiguousFlows += o.AmbiguousFlows
	if !o.First.IsZero() && (c.First.IsZero() || o.First.Before(c.First)) {
		c.First = o.First
	}
	if o.LastPeer.IsValid() && (!c.LastPeer.IsValid() || !o.Last.Before(c.Last)) {
		c.LastPeer = o.LastPeer
	}
	if o.Last.After(c.Last) {
		c.Last = o.Last
	}
}

// ObjectID names one log object's content: a redelivery of the same
// object (same ETag) is not counted again.
type ObjectID struct {
	Bucket, Key, ETag string
}

// Counters reads and writes the traffic counters of one target.
type Counters struct {
	l *Ledger
}

// CountersFor returns the counters of target t (its partition as For
// gives it).
func (l *Ledger) CountersFor(t rules.Target) *Counters {
	return &Counters{l: l.For(t).(*Ledger)}
}

// usageID is the id (after kindUsage) of a group's counters of one day
// ("" for the group's prefix).
func usageID(group string, day string) string { return group + keySep + day }

func objectID(o ObjectID, sk string) string { return o.Bucket + "/" + o.Key + "#" + sk }

// Add adds one object's counters to the day's, once per object: it
// returns false when every part of the object was already counted (a
// redelivery, or nothing had flows). Counters with no flows are left out.
func (c *Counters) Add(ctx context.Context, obj ObjectID, day time.Time, counts []RuleCounter) (bool, error) {
	byGroup := map[string][]RuleCounter{}
	for _, rc := range counts {
		if rc.Flows > 0 {
			byGroup[rc.Key.GroupID] = append(byGroup[rc.Key.GroupID], rc)
		}
	}
	groups := make([]string, 0, len(byGroup))
	for g := range byGroup {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	if len(groups) == 0 {
		return false, nil // nothing to count: no write
	}
	per := MaxTransactItems - 1
	parts := max(1, (len(groups)+per-1)/per)
	added := false
	for i := range parts {
		chunk := groups[min(i*per, len(groups)):min((i+1)*per, len(groups))]
		sk := fmt.Sprintf("etag#%s#%d/%d", obj.ETag, i+1, parts)
		ok, err := c.addPart(ctx, obj, sk, day, chunk, byGroup)
		if err != nil {
			return added, fmt.Errorf("add traffic counters of s3://%s/%s (part %d of %d): %w", obj.Bucket, obj.Key, i+1, parts, err)
		}
		added = added || ok
	}
	return added, nil
}

// addPart writes one part: the marker and the merged counter items, in
// one transaction, retried on a lost race; false when the marker exists.
func (c *Counters) addPart(ctx context.Context, obj ObjectID, sk string, day time.Time, groups []string, byGroup map[string][]RuleCounter) (bool, error) {
	now := c.l.now().UTC()
	if err := c.l.ready(ctx); err != nil {
		return false, err
	}
	marker := c.l.key(kindFlowObj, objectID(obj, sk))
	putS(marker, "at", now.Format(time.RFC3339))
	marker["ttl"] = number(now.Add(MarkerRetention).Unix())
	dayID := usageID("", day.UTC().Format(dayLayout))
	ttl := day.UTC().Add(CounterRetention).Unix()
	for attempt := 0; ; attempt++ {
		done, err := c.marked(ctx, marker)
		if err != nil || done {
			return false, err
		}
		items := []types.TransactWriteItem{{Put: &types.Put{TableName: aws.String(c.l.table), Item: marker,
			ConditionExpression: aws.String("attribute_not_exists(pk)")}}}
		for _, g := range groups {
			key := c.l.key(kindUsage, g+dayID)
			cur, ver, err := c.readDay(ctx, key)
			if err != nil {
				return false, err
			}
			for _, rc := range byGroup[g] {
				k := rc.Key.String()
				m := cur[k]
				m.Key = rc.Key
				m.merge(rc)
				cur[k] = m
			}
			item := key
			item["r"] = encodeCounters(cur)
			item["ttl"] = number(ttl)
			items = append(items, c.l.put(item, ver))
		}
		_, err = c.l.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		if err == nil {
			return true, nil
		}
		if err = mapTransactError(err); !errors.Is(err, reconcile.ErrConflict) || attempt+1 >= counterAttempts {
			return false, err
		}
		// The marker exists (another delivery won) or a counter item moved:
		// look again.
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(time.Duration(10+rand.IntN(40)<<attempt) * time.Millisecond):
		}
	}
}

// marked reports whether the marker item exists.
func (c *Counters) marked(ctx context.Context, marker map[string]types.AttributeValue) (bool, error) {
	out, err := c.l.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(c.l.table),
		Key: itemKey(getS(marker, "pk"), getS(marker, "sk")), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return false, fmt.Errorf("read object marker: %w", err)
	}
	return out.Item != nil, nil
}

// readDay reads one group-day item (consistent): its counters by key and
// its version.
func (c *Counters) readDay(ctx context.Context, key map[string]types.AttributeValue) (map[string]RuleCounter, int64, error) {
	pk, sk := getS(key, "pk"), getS(key, "sk")
	out, err := c.l.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(c.l.table), Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, 0, fmt.Errorf("read counters %s %s: %w", pk, sk, err)
	}
	if out.Item == nil {
		return map[string]RuleCounter{}, 0, nil
	}
	ver, err := getN(out.Item, "ver")
	if err != nil {
		return nil, 0, fmt.Errorf("counters %s %s: %w", pk, sk, err)
	}
	cur, err := decodeCounters(out.Item)
	if err != nil {
		// Salvaged as the ledger salvages any item it cannot decode: the
		// day starts again from this object (the lost counts are a
		// warning, never a stop).
		c.l.skipUndecodable(out.Item, err)
		return map[string]RuleCounter{}, ver, nil
	}
	return cur, ver, nil
}

// Read returns the counters of the groups' rules over the days from..to
// (UTC dates, both included: a window is widened to whole days), one per
// rule with traffic, summed over the days, sorted by key (a group named
// twice is read once). An item that
// cannot be decoded is skipped and reported.
func (c *Counters) Read(ctx context.Context, groupIDs []string, from, to time.Time) ([]RuleCounter, error) {
	if err := c.l.ready(ctx); err != nil {
		return nil, err
	}
	total := map[string]RuleCounter{}
	for _, g := range strutil.SortedUnique(groupIDs) {
		in := &dynamodb.QueryInput{TableName: aws.String(c.l.table),
			KeyConditionExpression: aws.String("pk = :pk AND sk BETWEEN :lo AND :hi"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pk": &types.AttributeValueMemberS{Value: c.l.part},
				":lo": &types.AttributeValueMemberS{Value: kindUsage + usageID(g, from.UTC().Format(dayLayout))},
				":hi": &types.AttributeValueMemberS{Value: kindUsage + usageID(g, to.UTC().Format(dayLayout))},
			},
			ConsistentRead: aws.Bool(true)}
		for {
			out, err := c.l.api.Query(ctx, in)
			if err != nil {
				return nil, fmt.Errorf("read traffic counters of %s: %w", g, err)
			}
			for _, item := range out.Items {
				day, err := decodeCounters(item)
				if err != nil {
					c.l.skipUndecodable(item, err)
					continue
				}
				for k, rc := range day {
					t := total[k]
					t.Key = rc.Key
					t.merge(rc)
					total[k] = t
				}
			}
			if len(out.LastEvaluatedKey) == 0 {
				break
			}
			in.ExclusiveStartKey = out.LastEvaluatedKey
		}
	}
	res := make([]RuleCounter, 0, len(total))
	for _, rc := range total {
		res = append(res, rc)
	}
	sort.Slice(res, func(i, j int) bool { return res[i].Key.Less(res[j].Key) })
	return res, nil
}

func encodeCounters(m map[string]RuleCounter) types.AttributeValue {
	out := make(map[string]types.AttributeValue, len(m))
	for k, rc := range m {
		v := map[string]types.AttributeValue{"f": number(rc.Flows), "b": number(rc.Bytes)}
		putS(v, "id", rc.RuleID)
		if rc.AmbiguousFlows != 0 {
			v["a"] = number(rc.AmbiguousFlows)
		}
		if !rc.First.IsZero() {
			v["fs"] = number(rc.First.Unix())
		}
		if !rc.Last.IsZero() {
			v["ls"] = number(rc.Last.Unix())
		}
		if rc.LastPeer.IsValid() {
			putS(v, "p", rc.LastPeer.String())
		}
		out[k] = &types.AttributeValueMemberM{Value: v}
	}
	return &types.AttributeValueMemberM{Value: out}
}

func decodeCounters(item map[string]types.AttributeValue) (map[string]RuleCounter, error) {
	out := map[string]RuleCounter{}
	r, ok := item["r"].(*types.AttributeValueMemberM)
	if !ok {
		return nil, errors.New("counters: no map r")
	}
	for k, v := range r.Value {
		m, ok := v.(*types.AttributeValueMemberM)
		if !ok {
			return nil, fmt.Errorf("counters %s: not a map", k)
		}
		key, err := rules.ParseKey(k)
		if err != nil {
			return nil, fmt.Errorf("counters: %w", err)
		}
		rc := RuleCounter{Key: key, RuleID: getS(m.Value, "id")}
		var n [4]int64
		for i, name := range []string{"f", "b", "a", "fs"} {
			if n[i], err = getN(m.Value, name); err != nil {
				return nil, fmt.Errorf("counters %s: %w", k, err)
			}
		}
		ls, err := getN(m.Value, "ls")
		if err != nil {
			return nil, fmt.Errorf("counters %s: %w", k, err)
		}
		rc.Flows, rc.Bytes, rc.AmbiguousFlows = n[0], n[1], n[2]
		if n[3] != 0 {
			rc.First = time.Unix(n[3], 0).UTC()
		}
		if ls != 0 {
			rc.Last = time.Unix(ls, 0).UTC()
		}
		if p := getS(m.Value, "p"); p != "" {
			if rc.LastPeer, err = netip.ParseAddr(p); err != nil {
				return nil, fmt.Errorf("counters %s: peer: %w", k, err)
			}
		}
		out[k] = rc
	}
	return out, nil
}
