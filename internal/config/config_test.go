package config

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
)

func TestMain(m *testing.M) { motoserver.Main(m) }

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestLoad(t *testing.T) {
	full := map[string]string{"STATE_TABLE": "t", "RULES_BUCKET": "b", "RULES_PREFIX": "r", "MAX_REVOKE": "-1",
		"DRIFT_MODE": "Report", "SGRULES_ROLE_ARNS": "arn:a, arn:b", "ALERT_TOPIC_ARN": "arn:sns", "SGRULES_BUCKET": "cli-b"}
	c, err := Drift.Load(env(full))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Table: "t", Bucket: "b", Prefix: "r/", MaxRevoke: -1, PolicyKey: DefaultPolicyKey, DriftMode: DriftReport,
		RoleARNs: []string{"arn:a", "arn:b"}, AlertTopicARN: "arn:sns"}
	if !equal(c, want) {
		t.Errorf("Drift.Load = %+v, want %+v", c, want)
	}
	if c, err := Reconcile.Load(env(full)); err != nil || c.DriftMode != "" || c.RoleARNs != nil || c.Prefix != "r/" {
		t.Errorf("Reconcile.Load = %+v, %v: reads only its own variables", c, err)
	}
	if c, err := CLI.Load(env(full)); err != nil || c.Bucket != "cli-b" || c.Prefix != "r/" || c.MaxRevoke != -1 {
		t.Errorf("CLI.Load = %+v, %v", c, err)
	}
	if c, err := CLI.Load(env(nil)); err != nil || c.Prefix != "rules/" || c.MaxRevoke != reconcile.DefaultMaxRevoke {
		t.Errorf("CLI.Load of nothing = %+v, %v: want the defaults", c, err)
	}

	for _, tc := range []struct {
		name string
		f    Function
		env  map[string]string
		want string
	}{
		{"missing", Reconcile, map[string]string{"STATE_TABLE": "t"}, "STATE_TABLE and RULES_BUCKET must be set"},
		{"zero", Reconcile, map[string]string{"STATE_TABLE": "t", "RULES_BUCKET": "b", "MAX_REVOKE": "0"}, `MAX_REVOKE "0": must not be 0`},
		{"zero in the CLI too", CLI, map[string]string{"MAX_REVOKE": "0"}, `MAX_REVOKE "0": must not be 0`},
		{"policy under the rules", Reconcile, map[string]string{"STATE_TABLE": "t", "RULES_BUCKET": "b", "POLICY_KEY": "rules/policy.yaml"},
			`POLICY_KEY "rules/policy.yaml": want an object key outside RULES_PREFIX "rules/"`},
		{"pause cap", Drift, map[string]string{"STATE_TABLE": "t", "RULES_BUCKET": "b", "PAUSE_UNTIL_MAX": "forever"},
			`PAUSE_UNTIL_MAX "forever": want a positive duration`},
		{"both wrong", Drift, map[string]string{"STATE_TABLE": "t", "RULES_BUCKET": "b", "MAX_REVOKE": "x", "DRIFT_MODE": "fix"},
			`MAX_REVOKE "x": not an integer` + "\n" + `DRIFT_MODE "fix": want report or revert`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.f.Load(env(tc.env)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load: %v, want %q", err, tc.want)
			}
		})
	}
}

func equal(a, b Config) bool {
	return a.Table == b.Table && a.Bucket == b.Bucket && a.Prefix == b.Prefix && a.MaxRevoke == b.MaxRevoke && a.PolicyKey == b.PolicyKey &&
		a.DriftMode == b.DriftMode && slices.Equal(a.RoleARNs, b.RoleARNs) && a.AlertTopicARN == b.AlertTopicARN
}

// Load reads exactly the variables its Function lists: what the template
// test checks against template.yaml is what the code reads.
func TestLoadReadsItsVars(t *testing.T) {
	for _, f := range append(slices.Clone(Functions), CLI) {
		var read []string
		_, _ = f.Load(func(k string) string { read = append(read, k); return "" })
		if !slices.Equal(read, f.Vars) {
			t.Errorf("%s: Load reads %v, Vars lists %v", f.Name, read, f.Vars)
		}
	}
}

// The engine takes the lease holder from the request when it names one:
// a group leased by "lambda:req-1" is changed by a request of that holder
// (an engine holder would wait for the lease and fail).
func TestEngineUsesRequestHolder(t *testing.T) {
	srv := motoserver.Shared(t)
	srv.Reset(t)
	cfg := srv.Config(t)
	motoserver.CreateTable(t, cfg, "ledger")
	motoserver.CreateBucket(t, cfg, "rules", false)
	vpc := motoserver.CreateVPC(t, cfg)
	web := motoserver.CreateGroup(t, cfg, vpc, "web", nil)
	ctx := context.Background()
	if _, err := s3.NewFromConfig(cfg, awsconfig.S3Options).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("rules"), Key: aws.String("rules/web.yaml"),
		Body: strings.NewReader("rules:\n  ssh:\n    securityGroup: " + web + "\n    type: ingress\n    protocol: tcp\n    fromPort: 22\n    toPort: 22\n    cidrBlocks: [10.0.0.0/8]\n")}); err != nil {
		t.Fatal(err)
	}
	ledger := ddbledger.New(dynamodb.NewFromConfig(cfg), "ledger")
	unlock, err := ledger.Lock(ctx, []string{web}, "lambda:req-1", ddbledger.MaxLeaseTTL, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock(ctx)
	eng, _, err := Config{Table: "ledger", Bucket: "rules", Prefix: "rules/", MaxRevoke: 50}.NewEngine(cfg, EngineOptions{Holder: "someone-else"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	res, err := eng.Reconcile(ctx, reconcile.Request{All: true, Holder: "lambda:req-1", Reason: "test"})
	if err != nil {
		t.Fatalf("Reconcile under the request's own lease: %v", err)
	}
	if !res.Executed || len(res.Plan.Actions) != 1 {
		t.Errorf("result = executed %v, actions %+v", res.Executed, res.Plan.Actions)
	}
}
