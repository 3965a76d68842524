package fleetrt

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/config"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// RULES_PREFIX=/ is the whole bucket, as documented: both functions
// start, every rule file of the bucket is applied, and the policy object
// (in the same bucket) is the policy, not a rule file.
func TestRulesPrefixWholeBucket(t *testing.T) {
	for _, f := range config.Functions {
		if !slices.Contains(f.Vars, config.EnvRulesPrefix) {
			continue // the flow-log function reads no rule file
		}
		c, err := f.Load(func(k string) string {
			return map[string]string{config.EnvStateTable: "ledger", config.EnvRulesBucket: "rules", config.EnvRulesPrefix: "/"}[k]
		})
		if err != nil || c.Prefix != "" || c.PolicyKey != config.DefaultPolicyKey {
			t.Fatalf("%s function with RULES_PREFIX=/: %+v, %v", f.Name, c, err)
		}
	}
	w := newWorld(t)
	ctx := context.Background()
	w.put("rules/ssh.yaml", "", w.home, 22, "ssh")
	w.put("top.yaml", "", w.home, 443, "top")
	if _, err := s3.NewFromConfig(w.hub, awsconfig.S3Options).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("rules"), Key: aws.String(config.DefaultPolicyKey),
		Body: strings.NewReader("deny:\n  - id: no-telnet\n    type: ingress\n    protocol: tcp\n    ports: 23\n    cidrs: [0.0.0.0/0]\n")}); err != nil {
		t.Fatal(err)
	}
	c, err := config.Reconcile.Load(func(k string) string {
		return map[string]string{config.EnvStateTable: "ledger", config.EnvRulesBucket: "rules", config.EnvRulesPrefix: "/"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	fl, err := New(ctx, c, w.hub, EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := fl.Reconcile(ctx, reconcile.Request{All: true}, nil)
	if err != nil || res.Err() != nil {
		t.Fatal(err, res.Err())
	}
	var keys []string
	for _, s := range res.Sources() {
		keys = append(keys, s.Key+" "+string(s.Status))
	}
	if strings.Join(keys, ",") != "rules/ssh.yaml applied,top.yaml applied" {
		t.Errorf("sources %v, want the two rule files applied and the policy not among them", keys)
	}
	if res.Targets[0].Result.Policy.Invalid != nil {
		t.Errorf("policy invalid: %v", res.Targets[0].Result.Policy.Invalid)
	}
	w.expect(map[rules.Target]string{w.home: "22 ssh,443 top"})
}
