package ddbledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TableAPI is the part of the DynamoDB client CreateTable uses.
type TableAPI interface {
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	DescribeTimeToLive(ctx context.Context, in *dynamodb.DescribeTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error)
	UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
	UpdateContinuousBackups(ctx context.Context, in *dynamodb.UpdateContinuousBackupsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateContinuousBackupsOutput, error)
}

var _ TableAPI = (*dynamodb.Client)(nil)

// TTLAttribute is the attribute DynamoDB expires items on (leases).
const TTLAttribute = "ttl"

// TableInput is the definition of the ledger table: pk (S) hash key, sk
// (S) range key, on-demand, encrypted with the AWS managed KMS key. It is
// the LedgerTable of template.yaml (the template test compares them);
// CreateTable adds TTL on TTLAttribute and point-in-time recovery, as the
// template does.
func TableInput(name string) *dynamodb.CreateTableInput {
	return &dynamodb.CreateTableInput{
		TableName: aws.String(name),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("sk"), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("sk"), KeyType: types.KeyTypeRange},
		},
		BillingMode:      types.BillingModePayPerRequest,
		SSESpecification: &types.SSESpecification{Enabled: aws.Bool(true), SSEType: types.SSETypeKms},
	}
}

// CreateTable creates the ledger table (TableInput), waits until it is
// active (up to 5 minutes), enables TTL on TTLAttribute and point-in-time
// recovery. It is idempotent: an existing table with the ledger's keys is
// only waited for and completed; one with other keys is an error.
// Deployments normally create the table with SAM; this is for the CLI
// (sgrules init), tests and demos.
func CreateTable(ctx context.Context, api TableAPI, name string) error {
	in := TableInput(name)
	_, err := api.CreateTable(ctx, in)
	var inUse *types.ResourceInUseException
	switch {
	case errors.As(err, &inUse):
		d, err := api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil {
			return fmt.Errorf("create table %s: %w", name, err)
		}
		if err := checkKeys(d.Table, in); err != nil {
			return fmt.Errorf("table %s exists but is not a ledger table: %w", name, err)
		}
	case err != nil:
		return fmt.Errorf("create table %s: %w", name, err)
	}
	w := dynamodb.NewTableExistsWaiter(api, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = time.Second
		o.MaxDelay = 10 * time.Second
	})
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 5*time.Minute); err != nil {
		return fmt.Errorf("create table %s: wait until active: %w", name, err)
	}
	if err := enableTTL(ctx, api, name); err != nil {
		return fmt.Errorf("create table %s: enable ttl: %w", name, err)
	}
	_, err = api.UpdateContinuousBackups(ctx, &dynamodb.UpdateContinuousBackupsInput{
		TableName:                        aws.String(name),
		PointInTimeRecoverySpecification: &types.PointInTimeRecoverySpecification{PointInTimeRecoveryEnabled: aws.Bool(true)},
	})
	if err != nil {
		return fmt.Errorf("create table %s: enable point-in-time recovery: %w", name, err)
	}
	return nil
}

func enableTTL(ctx context.Context, api TableAPI, name string) error {
	ttl, err := api.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
	if err != nil {
		return err
	}
	if d := ttl.TimeToLiveDescription; d != nil && (d.TimeToLiveStatus == types.TimeToLiveStatusEnabled || d.TimeToLiveStatus == types.TimeToLiveStatusEnabling) {
		return nil
	}
	_, err = api.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               aws.String(name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(TTLAttribute), Enabled: aws.Bool(true)},
	})
	return err
}

// checkKeys compares a table's key schema and key attribute types with
// want's.
func checkKeys(got *types.TableDescription, want *dynamodb.CreateTableInput) error {
	if got == nil {
		return errors.New("no table description")
	}
	have, need := keyText(got.KeySchema, got.AttributeDefinitions), keyText(want.KeySchema, want.AttributeDefinitions)
	if have != need {
		return fmt.Errorf("its key is %s; the ledger needs %s (choose another table name, or delete that table)", have, need)
	}
	return nil
}

// keyText renders a key schema as "pk (S, HASH), sk (S, RANGE)" (DynamoDB
// lists the hash key first).
func keyText(schema []types.KeySchemaElement, attrs []types.AttributeDefinition) string {
	var parts []string
	for _, k := range schema {
		typ := "?"
		for _, a := range attrs {
			if aws.ToString(a.AttributeName) == aws.ToString(k.AttributeName) {
				typ = string(a.AttributeType)
			}
		}
		parts = append(parts, fmt.Sprintf("%s (%s, %s)", aws.ToString(k.AttributeName), typ, k.KeyType))
	}
	if len(parts) == 0 {
		return "empty"
	}
	return strings.Join(parts, ", ")
}
