package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/config"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
	"github.com/sgrules/sgrules/internal/testutil/rie"
	"github.com/sgrules/sgrules/pkg/rules"
)

// TestTenantAccountsThroughTheLambda: the real bootstrap under the
// emulator, a hub with one target account. A tenant restricted to the
// target account: its file naming the target is applied there; its file
// naming no account applies to the hub's account, and is invalid, with
// nothing written in the hub, although the group there is tagged as the
// tenant's.
func TestTenantAccountsThroughTheLambda(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const bucket, table, target = "rules-bucket", "ledger", "111122223333"
	const inTarget, inHub = "rules/team-a/target.yaml", "rules/team-a/hub.yaml"
	srv := motoserver.Start(t)
	hub := srv.Config(t)
	ctx := context.Background()
	motoserver.CreateBucket(t, hub, bucket, true)
	motoserver.CreateTable(t, hub, table)
	tcfg := motoserver.AsAccount(t, hub, target, config.DefaultTargetRole)
	teamA := map[string]string{"team": "a"}
	targetDB := motoserver.CreateGroup(t, tcfg, motoserver.CreateVPC(t, tcfg), "db-sg", teamA)
	hubDB := motoserver.CreateGroup(t, hub, motoserver.CreateVPC(t, hub), "db-sg", teamA)
	id, err := sts.NewFromConfig(hub).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	home := aws.ToString(id.Account)
	rule := func(group string) string {
		return "rules:\n  pg:\n    securityGroup: " + group + "\n    type: ingress\n    protocol: tcp\n    fromPort: 5432\n    toPort: 5432\n    cidrBlocks: [10.0.0.0/8]\n"
	}
	s3c := s3.NewFromConfig(hub, awsconfig.S3Options)
	for k, body := range map[string]string{
		"policy/sgrules.yaml": "tenants:\n  - prefix: team-a/\n    groups: {tags: {team: a}}\n    accounts: [\"" + target + "\"]\n",
		inTarget:              "account: \"" + target + "\"\n" + rule(targetDB),
		inHub:                 rule(hubDB),
	} {
		if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: strings.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	fn := rie.Start(t, rie.Build(t, "./functions/reconcile"), append(srv.Env(),
		"STATE_TABLE="+table, "RULES_BUCKET="+bucket, "RULES_PREFIX=rules/", "MAX_REVOKE=50",
		"TARGET_ACCOUNTS="+target, "TARGET_ROLE="+config.DefaultTargetRole, "AWS_LAMBDA_LOG_FORMAT=JSON"))
	raw := fn.Invoke(t, badS3Event(bucket, inTarget, inHub))
	var resp report.Response
	if strings.Contains(string(raw), "errorMessage") || json.Unmarshal(raw, &resp) != nil {
		t.Fatalf("invocation: %s", raw)
	}
	want := inHub + ":1:1: violates policy tenant team-a/: account " + home + " is not an account of the tenant (" + target + ")"
	byKey := map[string]report.SourceDoc{}
	for _, s := range resp.Sources {
		byKey[s.Key] = s
	}
	if s := byKey[inHub]; s.Status != "invalid" || len(s.Diagnostics) != 1 || s.Diagnostics[0].String() != want {
		t.Errorf("%s: %s %q\nwant invalid: %s", inHub, s.Status, s.Diagnostics.Strings(), want)
	}
	if s := byKey[inTarget]; s.Status != "applied" {
		t.Errorf("%s: %s %q", inTarget, s.Status, s.Diagnostics.Strings())
	}
	ingress := func(cfg aws.Config, group string) int {
		t.Helper()
		rs, err := ec2sg.New(ec2.NewFromConfig(cfg)).DescribeRules(ctx, []string{group})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range rs {
			if r.Key.Direction == rules.Ingress {
				n++
			}
		}
		return n
	}
	if n := ingress(hub, hubDB); n != 0 {
		t.Errorf("%d rules written in the hub's account, want none", n)
	}
	if n := ingress(tcfg, targetDB); n != 1 {
		t.Errorf("%d rules in the target's account, want 1", n)
	}
}
