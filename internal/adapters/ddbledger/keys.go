package ddbledger

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sgrules/sgrules/pkg/rules"
)

// The layout (see the package doc): every item of one target is in one
// partition, pk = partitionOf(target) (partitionHome for the home target),
// and its sort key names its kind first: "<kind>#<id>". One target's items
// of one kind are therefore one Query (begins_with(sk, kind)), and one
// group's permissions or intents one Query on kind + group id + keySep.
// A new per-target kind gets a kind constant here and builds its keys
// with Ledger.key and reads them with Ledger.queryKind, nothing else.
const (
	prefixPartition = "t#"
	partitionHome   = prefixPartition + "home"

	kindSource = "source#"
	kindPerm   = "perm#"
	kindLease  = "lease#"
	kindIntent = "intent#"
	// Traffic counters (counters.go): a group's day, an object's marker.
	kindUsage   = "usage#"
	kindFlowObj = "flowobj#"
	// A rule's history (history.go): "history#<sg-id>|<event id>".
	kindHistory = "history#"

	// keySep ends the group id in rules.Key.String(), so "perm#sg-1|"
	// never matches the permissions of sg-12.
	keySep = "|"

	// pkTargets is the target registry: one item per target partition
	// that ever held a source record, sk = the partition; account (S) and
	// region (S) for the targets other than home.
	pkTargets = "meta#targets"
)

// partitionOf is the partition of a target other than home:
// "t#ACCOUNT#REGION".
func partitionOf(t rules.Target) string {
	return prefixPartition + t.Account + "#" + t.Region
}

// key is the key of this target's item of kind (one of the kind
// constants) and id: every per-target item is built with it.
func (l *Ledger) key(kind, id string) map[string]types.AttributeValue {
	return itemKey(l.part, kind+id)
}

func itemKey(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: pk},
		"sk": &types.AttributeValueMemberS{Value: sk},
	}
}

// queryKind calls fn for every item of this target whose sort key begins
// with prefix (a kind, or a kind and more), over all pages of one
// strongly consistent Query.
func (l *Ledger) queryKind(ctx context.Context, prefix string, fn func(map[string]types.AttributeValue) error) error {
	return l.queryPages(ctx, l.part, prefix, fn)
}

func (l *Ledger) queryPages(ctx context.Context, pk, prefix string, fn func(map[string]types.AttributeValue) error) error {
	in := &dynamodb.QueryInput{
		TableName:              aws.String(l.table),
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :p)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": &types.AttributeValueMemberS{Value: pk},
			":p":  &types.AttributeValueMemberS{Value: prefix},
		},
		ConsistentRead: aws.Bool(true),
	}
	if prefix == "" {
		in.KeyConditionExpression = aws.String("pk = :pk")
		delete(in.ExpressionAttributeValues, ":p")
	}
	for {
		out, err := l.api.Query(ctx, in)
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

// putTarget writes the registry item of partition part (idempotent).
func putTarget(ctx context.Context, api API, table, part string) error {
	item := itemKey(pkTargets, part)
	if t, ok := targetOfPartition(part); ok {
		item["account"] = &types.AttributeValueMemberS{Value: t.Account}
		item["region"] = &types.AttributeValueMemberS{Value: t.Region}
	}
	if _, err := api.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		return fmt.Errorf("register target %s: %w", part, err)
	}
	return nil
}

// targetOfPartition parses "t#ACCOUNT#REGION"; false for home and others.
func targetOfPartition(part string) (rules.Target, bool) {
	rest, ok := strings.CutPrefix(part, prefixPartition)
	if !ok || part == partitionHome {
		return rules.Target{}, false
	}
	a, r, ok := strings.Cut(rest, "#")
	if !ok || a == "" || r == "" || strings.Contains(r, "#") {
		return rules.Target{}, false
	}
	return rules.Target{Account: a, Region: r}, true
}

// registeredTargets reads the registry: partition -> target (the zero
// target for home).
func (l *Ledger) registeredTargets(ctx context.Context) (map[string]rules.Target, error) {
	out := map[string]rules.Target{}
	err := l.queryPages(ctx, pkTargets, "", func(item map[string]types.AttributeValue) error {
		part := getS(item, "sk")
		if part == partitionHome {
			out[part] = rules.Target{}
			return nil
		}
		t, ok := targetOfPartition(part)
		if !ok {
			l.skipUndecodable(item, fmt.Errorf("target registry: %q is not a partition", part))
			return nil
		}
		out[part] = t
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the target registry: %w", err)
	}
	return out, nil
}
