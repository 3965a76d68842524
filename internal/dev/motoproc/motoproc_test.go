package motoproc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func start(t *testing.T, patches []Patch) *Process {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := startProcess(ctx, patches)
	if errors.Is(err, ErrNotInstalled) && os.Getenv("CI") == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

func TestStartProcessEnvAndStop(t *testing.T) {
	p := start(t, []Patch{Atomic})
	env := strings.Join(p.Env(), "\n")
	for _, want := range []string{"AWS_ENDPOINT_URL=" + p.URL, "AWS_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true"} {
		if !strings.Contains(env, want) {
			t.Errorf("Env lacks %q", want)
		}
	}
	if err := p.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	dir := p.pydir
	p.Stop()
	if err := p.Reset(context.Background()); err == nil {
		t.Error("Reset succeeded after Stop")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("patch directory %s left after Stop (%v)", dir, err)
	}
}

func TestPatchThatDoesNotApplyFailsStart(t *testing.T) {
	if _, err := exec.LookPath(Binary); err != nil && os.Getenv("CI") == "" {
		t.Skip(ErrNotInstalled)
	}
	silent := Patch{Module: "silent_patch", Source: []byte("pass\n"), Applied: "silent patch: applied"}
	_, err := startProcess(context.Background(), []Patch{Atomic, silent})
	if !errors.Is(err, errPatch) || !strings.Contains(err.Error(), "silent_patch") {
		t.Fatalf("start with a patch that reports nothing: err = %v, want errPatch naming silent_patch", err)
	}
	failing := Patch{Module: "failing_patch", Source: []byte("import sys, os\nif os.path.basename(sys.argv[0]) == 'moto_server':\n    sys.stderr.write('failing: cannot patch\\n')\n    sys.exit(3)\n"), Applied: "never"}
	_, err = startProcess(context.Background(), []Patch{failing})
	if !errors.Is(err, errPatch) {
		t.Fatalf("start with a patch that exits: err = %v, want errPatch", err)
	}
}

func TestPythonPath(t *testing.T) {
	got := pythonPath([]string{"A=1", "PYTHONPATH=/x:/y", "B=2"}, "/p")
	if want := "A=1 B=2 PYTHONPATH=/p:/x:/y"; strings.Join(got, " ") != want {
		t.Errorf("pythonPath = %q, want %q", got, want)
	}
	got = pythonPath([]string{"A=1"}, "/p")
	if want := "A=1 PYTHONPATH=/p"; strings.Join(got, " ") != want {
		t.Errorf("pythonPath = %q, want %q", got, want)
	}
}

// TestDynamoDBTransactionsAreAtomic runs, concurrently, transactions that
// increment a counter on the condition that it still holds the value read
// (and log the increment), and transactions that always fail (and so roll
// back). With atomic transactions, the counter equals the number of
// successful increments and each of them left its log item. Stock moto
// loses increments: two transactions pass the same condition, or a failed
// one's rollback restores a table copy taken before another committed.
func TestDynamoDBTransactionsAreAtomic(t *testing.T) {
	p := start(t, []Patch{Atomic})
	ctx := context.Background()
	db := dynamodb.NewFromConfig(p.Config())
	table := aws.String("atomic")
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            table,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	n := func(v int) types.AttributeValue { return &types.AttributeValueMemberN{Value: strconv.Itoa(v)} }
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: table, Item: map[string]types.AttributeValue{"pk": s("counter"), "v": n(0)}}); err != nil {
		t.Fatal(err)
	}
	const workers, rounds = 6, 25
	var wins atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers)
	for w := range workers {
		wg.Add(2)
		go func() { // increments
			defer wg.Done()
			for r := range rounds {
				got, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: table, Key: map[string]types.AttributeValue{"pk": s("counter")}, ConsistentRead: aws.Bool(true)})
				if err != nil {
					errs <- err
					return
				}
				v, _ := strconv.Atoi(got.Item["v"].(*types.AttributeValueMemberN).Value)
				_, err = db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
					{Update: &types.Update{TableName: table, Key: map[string]types.AttributeValue{"pk": s("counter")},
						UpdateExpression: aws.String("SET v = :next"), ConditionExpression: aws.String("v = :v"),
						ExpressionAttributeValues: map[string]types.AttributeValue{":v": n(v), ":next": n(v + 1)}}},
					{Put: &types.Put{TableName: table, Item: map[string]types.AttributeValue{"pk": s(fmt.Sprintf("log#%d#%d", w, r))}}},
				}})
				var canceled *types.TransactionCanceledException
				switch {
				case err == nil:
					wins.Add(1)
				case errors.As(err, &canceled):
				default:
					errs <- err
					return
				}
			}
		}()
		go func() { // rollbacks
			defer wg.Done()
			for r := range rounds {
				_, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
					{Put: &types.Put{TableName: table, Item: map[string]types.AttributeValue{"pk": s(fmt.Sprintf("doomed#%d#%d", w, r))}}},
					{ConditionCheck: &types.ConditionCheck{TableName: table, Key: map[string]types.AttributeValue{"pk": s("absent")},
						ConditionExpression: aws.String("attribute_exists(pk)")}},
				}})
				var canceled *types.TransactionCanceledException
				if !errors.As(err, &canceled) {
					errs <- fmt.Errorf("doomed transaction: err = %v, want TransactionCanceledException", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: table, Key: map[string]types.AttributeValue{"pk": s("counter")}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := strconv.Atoi(got.Item["v"].(*types.AttributeValueMemberN).Value)
	scan, err := db.Scan(ctx, &dynamodb.ScanInput{TableName: table, Select: types.SelectCount})
	if err != nil {
		t.Fatal(err)
	}
	if w := int(wins.Load()); v != w || int(scan.Count) != w+1 {
		t.Errorf("after %d successful increments: counter = %d, items = %d (want %d and %d)", w, v, scan.Count, w, w+1)
	}
	if wins.Load() == 0 {
		t.Error("no increment succeeded")
	}
}

// A TransactWriteItems sent again with the same ClientRequestToken (as the
// SDK retries one whose response was lost) succeeds without running twice,
// as DynamoDB guarantees; a new token runs and fails its condition.
func TestDynamoDBTransactionsAreIdempotent(t *testing.T) {
	p := start(t, []Patch{Atomic})
	ctx := context.Background()
	db := dynamodb.NewFromConfig(p.Config())
	table := aws.String("idempotent")
	if _, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            table,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	}); err != nil {
		t.Fatal(err)
	}
	put := func(token string) error {
		_, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{ClientRequestToken: aws.String(token),
			TransactItems: []types.TransactWriteItem{{Put: &types.Put{TableName: table,
				Item:                map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "once"}},
				ConditionExpression: aws.String("attribute_not_exists(pk)")}}}})
		return err
	}
	if err := put("token-1"); err != nil {
		t.Fatal(err)
	}
	if err := put("token-1"); err != nil {
		t.Errorf("the same request again (a retry) failed: %v", err)
	}
	var cancelled *types.TransactionCanceledException
	if err := put("token-2"); !errors.As(err, &cancelled) {
		t.Errorf("a new request with the item there: %v, want TransactionCanceledException", err)
	}
}
