package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/config"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
	"github.com/sgrules/sgrules/internal/testutil/rie"
	"github.com/sgrules/sgrules/pkg/rules"
)

// TestMoveIntoAnInvalidTargetThroughTheLambda: the real bootstrap under
// the emulator, as a hub with one target account (moto keeps accounts
// apart by an assumed role's credentials). A file applied in the hub is
// moved to the target account still naming the hub's group, which does
// not exist there: the hub keeps its rule and reports the move pending;
// once the file names the target's group, the rule is created there and
// revoked in the hub.
func TestMoveIntoAnInvalidTargetThroughTheLambda(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const bucket, table, target, key = "rules-bucket", "ledger", "111122223333", "rules/mv.yaml"
	srv := motoserver.Start(t)
	hub := srv.Config(t)
	ctx := context.Background()
	motoserver.CreateBucket(t, hub, bucket, true)
	motoserver.CreateTable(t, hub, table)
	homeWeb := motoserver.CreateGroup(t, hub, motoserver.CreateVPC(t, hub), "web-sg", nil)
	tcfg := motoserver.AsAccount(t, hub, target, config.DefaultTargetRole)
	targetWeb := motoserver.CreateGroup(t, tcfg, motoserver.CreateVPC(t, tcfg), "web-sg", nil)
	id, err := sts.NewFromConfig(hub).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	home := rules.Target{Account: aws.ToString(id.Account), Region: hub.Region}

	put := func(header, group string) {
		t.Helper()
		body := header + fmt.Sprintf("rules:\n  ssh:\n    securityGroup: %s\n    type: ingress\n    protocol: tcp\n    fromPort: 22\n    toPort: 22\n    cidrBlocks: [10.0.0.0/8]\n", group)
		if _, err := s3.NewFromConfig(hub, awsconfig.S3Options).PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	count := func(cfg aws.Config, group string) int {
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
	fn := rie.Start(t, rie.Build(t, "./functions/reconcile"), append(srv.Env(),
		"STATE_TABLE="+table, "RULES_BUCKET="+bucket, "RULES_PREFIX=rules/", "MAX_REVOKE=50",
		"TARGET_ACCOUNTS="+target, "TARGET_ROLE="+config.DefaultTargetRole, "AWS_LAMBDA_LOG_FORMAT=JSON"))
	invoke := func() report.Response {
		t.Helper()
		raw := fn.Invoke(t, badS3Event(bucket, key))
		var resp report.Response
		if strings.Contains(string(raw), "errorMessage") || json.Unmarshal(raw, &resp) != nil {
			t.Fatalf("invocation: %s", raw)
		}
		return resp
	}
	status := func(resp report.Response) string {
		var out []string
		for _, s := range resp.Sources {
			out = append(out, s.Status)
		}
		return strings.Join(out, ",")
	}

	put("", homeWeb)
	if resp := invoke(); status(resp) != "applied" || count(hub, homeWeb) != 1 {
		t.Fatalf("first upload: %+v; %d rules in the hub", resp, count(hub, homeWeb))
	}

	put(`account: "`+target+`"`+"\n", homeWeb)
	resp := invoke()
	if count(hub, homeWeb) != 1 || count(tcfg, targetWeb) != 0 {
		t.Errorf("move into a target without the group: %d rules in the hub, %d in the target; want 1, 0", count(hub, homeWeb), count(tcfg, targetWeb))
	}
	var pending *report.SourceDoc
	for i, s := range resp.Sources {
		if s.Status == string(reconcile.StatusPending) {
			pending = &resp.Sources[i]
		}
	}
	if status(resp) != "pending,invalid" || pending == nil ||
		!strings.HasPrefix(pending.Message, "pending move to "+target+"/"+hub.Region+": invalid there: "+key+":4:20: ssh: security group "+homeWeb+" does not exist") {
		b, _ := json.Marshal(resp)
		t.Errorf("response %s, want the hub's pending (naming why) then the target's invalid", b)
	}
	rec, ok, err := ddbledger.New(dynamodb.NewFromConfig(hub), table, ddbledger.WithHome(home)).For(home).GetSource(ctx, key)
	if err != nil || !ok || rec.Status != reconcile.StatusPending || len(rec.Permissions) != 1 {
		t.Errorf("hub's record: %+v %v %v, want pending keeping one permission", rec, ok, err)
	}

	put(`account: "`+target+`"`+"\n", targetWeb)
	if resp := invoke(); status(resp) != "deleted,applied" || count(hub, homeWeb) != 0 || count(tcfg, targetWeb) != 1 {
		b, _ := json.Marshal(resp)
		t.Errorf("fixed: %s; %d rules in the hub, %d in the target; want 0, 1", b, count(hub, homeWeb), count(tcfg, targetWeb))
	}
}
