// Package legacyledger turns a ledger table into the layout written by
// sgrules before the partitioned layout (layout 1), item for item, so
// tests can check the upgrade (ddbledger.Upgrade) on a table in today's
// exact shapes: the attributes are the ledger's own encoding, which did
// not change; only the keys move.
//
// Layout 1: the home target's items unprefixed, every other target's pk
// prefixed "target#ACCOUNT#REGION#":
//
//	source      pk = "source#<key>"  sk = "source"
//	permission  pk = "group#<sg-id>" sk = "perm#<Key.String()>"
//	lease       pk = "lease#<sg-id>" sk = "lease"
//	intent      pk = "intent#<sg-id>" sk = "<Key.String()>"
//
// and neither the layout item nor the target registry.
package legacyledger

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// API is what Rewrite needs of the DynamoDB client.
type API interface {
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

// Rewrite moves every item of table to its layout-1 key and deletes the
// layout item and the target registry; it returns the items moved.
func Rewrite(ctx context.Context, api API, table string) (int, error) {
	var items []map[string]types.AttributeValue
	p := dynamodb.NewScanPaginator(api, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return 0, fmt.Errorf("scan %s: %w", table, err)
		}
		items = append(items, page.Items...)
	}
	n := 0
	for _, item := range items {
		pk, sk := s(item, "pk"), s(item, "sk")
		if pk == "meta#layout" || pk == "meta#targets" {
			if err := del(ctx, api, table, pk, sk); err != nil {
				return n, err
			}
			continue
		}
		opk, osk, ok := Key(pk, sk)
		if !ok {
			continue
		}
		old := make(map[string]types.AttributeValue, len(item))
		for k, v := range item {
			old[k] = v
		}
		old["pk"] = &types.AttributeValueMemberS{Value: opk}
		old["sk"] = &types.AttributeValueMemberS{Value: osk}
		if _, err := api.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: old}); err != nil {
			return n, fmt.Errorf("put %s %s: %w", opk, osk, err)
		}
		if err := del(ctx, api, table, pk, sk); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Key returns the layout-1 key of the item (pk, sk) of the current layout;
// false for items outside every target.
func Key(pk, sk string) (string, string, bool) {
	scope := ""
	switch {
	case pk == "t#home":
	case strings.HasPrefix(pk, "t#"):
		scope = "target#" + strings.TrimPrefix(pk, "t#") + "#"
	default:
		return "", "", false
	}
	kind, id, ok := strings.Cut(sk, "#")
	if !ok {
		return "", "", false
	}
	group, _, _ := strings.Cut(id, "|")
	switch kind {
	case "source":
		return scope + "source#" + id, "source", true
	case "perm":
		return scope + "group#" + group, sk, true
	case "lease":
		return scope + "lease#" + id, "lease", true
	case "intent":
		return scope + "intent#" + group, id, true
	}
	return "", "", false
}

func del(ctx context.Context, api API, table, pk, sk string) error {
	_, err := api.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table), Key: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}}})
	if err != nil {
		return fmt.Errorf("delete %s %s: %w", pk, sk, err)
	}
	return nil
}

func s(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}
