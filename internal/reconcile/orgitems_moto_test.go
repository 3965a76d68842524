package reconcile_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"

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

// sweepItemsRead builds n targets, each with one file of
// orgRulesPerTarget rules in its own groups, applies them all, then runs
// the schedule's planner (Survey) and the sweep message of the first
// target, and returns the DynamoDB items that sweep read (ScannedCount
// of its Queries and Scans, items its GetItems found) and its Scans.
func sweepItemsRead(t *testing.T, n int) (items, scans int) {
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
	counted, read := cfg.Copy(), &apicount.Items{}
	read.Attach(&counted)
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
	res, err = sweep.Reconcile(ctx, reconcile.Request{All: true, Reason: "sweep", Route: survey.Routes[tg]}, []rules.Target{tg})
	if err != nil || res.Err() != nil || len(res.Targets) != 1 || len(res.Targets[0].Result.Plan.Actions) != 0 {
		t.Fatalf("sweep of %s: %+v, %v", tg, res, err)
	}
	return read.Read(), read.Scans()
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
		items, scans := sweepItemsRead(t, n)
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
