package ddbledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The deployment's identity: one item per table, outside every target's
// scope, pk = "meta#deployment", sk = "meta"; id (S), table (S), createdAt
// (S, RFC 3339).
const (
	pkDeployment = "meta#deployment"
	skMeta       = "meta"
)

// DeploymentID returns the identity stored in the table; when there is
// none, it stores proposed on condition that none is (so concurrent first
// runs agree) and returns what is stored then. With proposed empty it only
// reads ("" when none is stored).
func (l *Ledger) DeploymentID(ctx context.Context, proposed string) (string, error) {
	id, err := l.readDeploymentID(ctx)
	if err != nil || id != "" || proposed == "" {
		return id, err
	}
	item := itemKey(pkDeployment, skMeta)
	item["id"] = &types.AttributeValueMemberS{Value: proposed}
	item["table"] = &types.AttributeValueMemberS{Value: l.table}
	item["createdAt"] = &types.AttributeValueMemberS{Value: l.now().UTC().Format(time.RFC3339)}
	_, err = l.api.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(l.table), Item: item,
		ConditionExpression: aws.String("attribute_not_exists(pk)")})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &ccf):
		// Another first run stored one first: use it.
	case err != nil:
		return "", fmt.Errorf("store the deployment identity: %w", err)
	default:
		return proposed, nil
	}
	id, err = l.readDeploymentID(ctx)
	if err == nil && id == "" {
		err = errors.New("the deployment identity item exists without an id")
	}
	return id, err
}

func (l *Ledger) readDeploymentID(ctx context.Context) (string, error) {
	out, err := l.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(l.table),
		Key: itemKey(pkDeployment, skMeta), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return "", fmt.Errorf("read the deployment identity: %w", err)
	}
	return getS(out.Item, "id"), nil
}
