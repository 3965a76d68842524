package reconcile_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/adapters/s3source"
	"github.com/sgrules/sgrules/internal/dev/apicount"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
	"github.com/sgrules/sgrules/internal/testutil/motoworld"
	"github.com/sgrules/sgrules/pkg/rules"
)

// orgRegions are the targets of the organisation tests: the test
// account in each region (a target is an account and a region).
var orgRegions = []string{"us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2", "eu-west-3",
	"eu-central-1", "ap-southeast-1", "ap-northeast-1"}

const orgRulesPerTarget = 20

// sweepReads is what the sweep of one target read of the ledger.
type sweepReads struct {
	// items are the DynamoDB items read (ScannedCount of its Queries and
	// Scans, items its GetItems found), scans its Scans.
	items, scans int
	// queries counts its Query calls (first pages) by partition and
	// sort key prefix.
	queries map[string]int
}

// plannedRoute is the route of a target's sweep message (the planner's);
// ownRecords the route of a sweep no planner routed (a CloudTrail
// event's, an expiry schedule's: handler).
func plannedRoute(s reconcile.Survey, tg rules.Target) *reconcile.TargetRoute { return s.Routes[tg] }
func ownRecords(reconcile.Survey, rules.Target) *reconcile.TargetRoute {
	return &reconcile.TargetRoute{}
}

// sweepItemsRead builds n targets, each with one file of
// orgRulesPerTarget rules in its own groups, applies them all, then runs
// the schedule's planner (Survey) and a sweep of the first target with
// the route route gives, and returns what that sweep read.
func sweepItemsRead(t *testing.T, n int, route func(reconcile.Survey, rules.Target) *reconcile.TargetRoute) sweepReads {
	t.Helper()
	ctx := context.Background()
	srv := motoserver.Shared(t)
	srv.Reset(t)
	cfg := srv.Config(t)
	srv.World(t, cfg, motoworld.Spec{Bucket: "org-rules", Table: "ledger"})
	home := rules.Target{Account: "123456789012", Region: cfg.Region}
	s3c := s3.NewFromConfig(cfg, awsconfig.S3Options)
	ec2s := map[rules.Target]*ec2.Client{}
	var targets []rules.Target
	for i, region := range orgRegions[:n] {
		rc := cfg.Copy()
		rc.Region = region
		names := []string{fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)}
		w, err := motoworld.Build(ctx, rc, motoworld.Spec{Groups: names})
		if err != nil {
			t.Fatal(err)
		}
		tg := rules.Target{Account: home.Account, Region: region}
		targets = append(targets, tg)
		ec2s[tg] = ec2.NewFromConfig(rc)
		var b strings.Builder
		fmt.Fprintf(&b, "region: %s\nrules:\n", region)
		for r := range orgRulesPerTarget {
			fmt.Fprintf(&b, "  r%d:\n    securityGroup: %s\n    type: ingress\n    protocol: tcp\n    fromPort: %d\n    toPort: %d\n    cidrBlocks: [10.0.0.0/8]\n",
				r, w.IDs[r%2], 1000+r, 1000+r)
		}
		key := "rules/" + region + ".yaml"
		if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: strPtr("org-rules"), Key: &key, Body: strings.NewReader(b.String())}); err != nil {
			t.Fatal(err)
		}
	}
	counted, read, queries := cfg.Copy(), &apicount.Items{}, &queryCounter{}
	read.Attach(&counted)
	queries.attach(&counted)
	fleet := func(ddb *dynamodb.Client) *reconcile.Fleet {
		fl, err := reconcile.NewFleet(reconcile.FleetConfig{Home: home, Source: s3source.New(s3c, "org-rules", "rules/"),
			Ledger: ddbledger.New(ddb, "ledger", ddbledger.WithHome(home)),
			Engine: func(_ context.Context, tg rules.Target, src reconcile.Source, led reconcile.Ledger) (*reconcile.Engine, error) {
				return reconcile.New(reconcile.Config{Source: src, Groups: ec2sg.New(ec2s[tg]), Ledger: led, LedgerID: "ledger",
					Target: tg, Home: home, Holder: "org-test"})
			}})
		if err != nil {
			t.Fatal(err)
		}
		return fl
	}
	setup := fleet(dynamodb.NewFromConfig(cfg))
	res, err := setup.Reconcile(ctx, reconcile.Request{All: true, Reason: "set-up"}, nil)
	if err != nil || res.Err() != nil || len(res.Targets) != n {
		t.Fatalf("set-up: %d targets, %v, %v", len(res.Targets), err, res.Err())
	}
	for _, s := range res.Sources() {
		if s.Status != reconcile.StatusApplied {
			t.Fatalf("set-up: %s %s %s", s.Key, s.Status, s.Message)
		}
	}
	// The planner (its own invocation), then the first target's message
	// in a cold invocation: what it reads is counted.
	survey, err := setup.Survey(ctx)
	if err != nil || len(survey.Targets) != n {
		t.Fatalf("survey: %+v, %v", survey, err)
	}
	sweep := fleet(dynamodb.NewFromConfig(counted))
	tg := targets[0]
	res, err = sweep.Reconcile(ctx, reconcile.Request{All: true, Reason: "sweep", Route: route(survey, tg)}, []rules.Target{tg})
	if err != nil || res.Err() != nil || len(res.Targets) != 1 || len(res.Targets[0].Result.Plan.Actions) != 0 {
		t.Fatalf("sweep of %s: %+v, %v", tg, res, err)
	}
	if got := res.Targets[0].Result.Sources; len(got) != 1 || got[0].Status != reconcile.StatusApplied {
		t.Fatalf("sweep of %s judged %+v, want its one file applied", tg, got)
	}
	return sweepReads{items: read.Read(), scans: read.Scans(), queries: queries.snapshot()}
}

// queryCounter counts DynamoDB Query calls (first pages) by partition
// and sort key prefix.
type queryCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *queryCounter) attach(cfg *aws.Config) {
	cfg.APIOptions = append(cfg.APIOptions, func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("test/queries",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if q, ok := in.Parameters.(*dynamodb.QueryInput); ok && q.ExclusiveStartKey == nil {
					key := ""
					for _, v := range []string{":pk", ":p"} {
						if s, ok := q.ExpressionAttributeValues[v].(*ddbtypes.AttributeValueMemberS); ok {
							key += s.Value + " "
						}
					}
					c.mu.Lock()
					if c.n == nil {
						c.n = map[string]int{}
					}
					c.n[aws.ToString(q.IndexName)+" "+aws.ToString(q.KeyConditionExpression)+" "+key]++
					c.mu.Unlock()
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	})
}

func (c *queryCounter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}

func strPtr(s string) *string { return &s }

// TestTargetSweepReadsItsOwnItems: the sweep message of one target reads
// about its own ledger items (its source record, its permissions, the
// deployment and layout items), the same at 2 and 10 targets, and scans
// nothing.
func TestTargetSweepReadsItsOwnItems(t *testing.T) {
	own := 1 + orgRulesPerTarget // its source record and permissions
	got := map[int]int{}
	for _, n := range []int{2, 10} {
		r := sweepItemsRead(t, n, plannedRoute)
		items, scans := r.items, r.scans
		t.Logf("%d targets: the first target's sweep read %d DynamoDB items (%d of its own), %d scans", n, items, own, scans)
		if scans != 0 {
			t.Errorf("%d targets: %d Scans", n, scans)
		}
		if items > own+5 {
			t.Errorf("%d targets: %d items read, want about the %d the target owns", n, items, own)
		}
		got[n] = items
	}
	if got[10] > got[2] {
		t.Errorf("items read by one target's sweep grow with the targets: %d at 2, %d at 10", got[2], got[10])
	}
}

// TestTargetSweepQueriesEachRecordKindOnce: the sweep message of one
// target reads each kind of its ledger items once: its source records are
// read routing its files and handed to its engine, not queried again.
func TestTargetSweepQueriesEachRecordKindOnce(t *testing.T) {
	r := sweepItemsRead(t, 2, plannedRoute)
	for q, n := range r.queries {
		if n > 1 {
			t.Errorf("%d Queries of %s", n, q)
		}
	}
	if t.Failed() {
		t.Logf("queries: %v", r.queries)
	}
}

// TestUnplannedTargetSweepReadsItsOwnItems: a sweep of one target that no
// planner routed (a CloudTrail event's, an expiry schedule's: the handler
// gives it a route naming nothing) reads its own ledger items, the same
// at 2 and 10 targets, and no other target's.
func TestUnplannedTargetSweepReadsItsOwnItems(t *testing.T) {
	own := 1 + orgRulesPerTarget
	got := map[int]int{}
	for _, n := range []int{2, 10} {
		r := sweepItemsRead(t, n, ownRecords)
		t.Logf("%d targets: the first target's sweep read %d DynamoDB items (%d of its own), %d scans", n, r.items, own, r.scans)
		if r.scans != 0 || r.items > own+5 {
			t.Errorf("%d targets: %d items read, %d Scans; want about the %d the target owns, no Scan", n, r.items, r.scans, own)
		}
		got[n] = r.items
	}
	if got[10] > got[2] {
		t.Errorf("items read by one target's sweep grow with the targets: %d at 2, %d at 10", got[2], got[10])
	}
}
