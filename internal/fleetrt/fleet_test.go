package fleetrt

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/config"
	"github.com/sgrules/sgrules/internal/lambda/handler"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/internal/testutil/faultproxy"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
	"github.com/sgrules/sgrules/pkg/rules"
)

const (
	acctB = "111122223333"
	acctC = "444455556666"
)

// world is a hub in moto's default account and three more targets:
// account B in two regions and account C. moto keeps accounts apart by
// the credentials of an assumed role and regions by the endpoint's region.
type world struct {
	t     *testing.T
	hub   aws.Config // through the fault proxy
	proxy *faultproxy.Proxy
	home  rules.Target
	cfgs  map[rules.Target]aws.Config
	web   map[rules.Target]string // a group "web" in each target
}

func newWorld(t *testing.T) *world {
	srv := motoserver.Shared(t)
	srv.Reset(t)
	direct := srv.Config(t)
	proxy := faultproxy.Start(t, *direct.BaseEndpoint, 1)
	hub := direct.Copy()
	hub.BaseEndpoint = aws.String(proxy.URL)
	motoserver.CreateTable(t, hub, "ledger")
	motoserver.CreateBucket(t, hub, "rules", false)
	w := &world{t: t, hub: hub, proxy: proxy, cfgs: map[rules.Target]aws.Config{}, web: map[rules.Target]string{}}
	id, err := sts.NewFromConfig(direct).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	w.home = rules.Target{Account: aws.ToString(id.Account), Region: direct.Region}
	for _, tg := range []rules.Target{w.home, {Account: acctB, Region: "us-east-1"}, {Account: acctB, Region: "eu-west-1"}, {Account: acctC, Region: "us-east-1"}} {
		cfg := direct.Copy()
		cfg.Region = tg.Region
		if tg.Account != w.home.Account {
			out, err := sts.NewFromConfig(direct).AssumeRole(context.Background(), &sts.AssumeRoleInput{
				RoleArn: aws.String("arn:aws:iam::" + tg.Account + ":role/sgrules-target"), RoleSessionName: aws.String("test")})
			if err != nil {
				t.Fatal(err)
			}
			c := out.Credentials
			cfg.Credentials = credentials.NewStaticCredentialsProvider(*c.AccessKeyId, *c.SecretAccessKey, *c.SessionToken)
		}
		w.cfgs[tg] = cfg
		w.web[tg] = motoserver.CreateGroup(t, cfg, motoserver.CreateVPC(t, cfg), "web", nil)
	}
	return w
}

func (w *world) target(account, region string) rules.Target {
	return rules.Target{Account: account, Region: region}.Resolve(w.home)
}

func (w *world) put(key, header string, tg rules.Target, port int, desc string) {
	w.t.Helper()
	body := header + fmt.Sprintf("rules:\n  r:\n    securityGroup: %s\n    type: ingress\n    protocol: tcp\n    fromPort: %d\n    toPort: %d\n    cidrBlocks: [10.0.0.0/8]\n    description: %s\n",
		w.web[tg], port, port, desc)
	if _, err := s3.NewFromConfig(w.hub, awsconfig.S3Options).PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String("rules"), Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) remove(key string) {
	w.t.Helper()
	if _, err := s3.NewFromConfig(w.hub, awsconfig.S3Options).DeleteObject(context.Background(), &s3.DeleteObjectInput{
		Bucket: aws.String("rules"), Key: aws.String(key)}); err != nil {
		w.t.Fatal(err)
	}
}

// ingress renders a target's ingress rules of group web as "PORT DESC".
func (w *world) ingress(tg rules.Target) string {
	w.t.Helper()
	return w.ingressOf(tg, w.web[tg])
}

// ingressOf renders the ingress rules of a group of a target as "PORT DESC".
func (w *world) ingressOf(tg rules.Target, group string) string {
	w.t.Helper()
	out, err := ec2.NewFromConfig(w.cfgs[tg]).DescribeSecurityGroupRules(context.Background(), &ec2.DescribeSecurityGroupRulesInput{
		Filters: []ec2types.Filter{{Name: aws.String("group-id"), Values: []string{group}}}})
	if err != nil {
		w.t.Fatal(err)
	}
	var got []string
	for _, r := range out.SecurityGroupRules {
		if !aws.ToBool(r.IsEgress) {
			got = append(got, fmt.Sprintf("%d %s", aws.ToInt32(r.FromPort), aws.ToString(r.Description)))
		}
	}
	slices.Sort(got)
	return strings.Join(got, ",")
}

func (w *world) ruleID(tg rules.Target) string {
	out, err := ec2.NewFromConfig(w.cfgs[tg]).DescribeSecurityGroupRules(context.Background(), &ec2.DescribeSecurityGroupRulesInput{
		Filters: []ec2types.Filter{{Name: aws.String("group-id"), Values: []string{w.web[tg]}}}})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, r := range out.SecurityGroupRules {
		if !aws.ToBool(r.IsEgress) {
			return aws.ToString(r.SecurityGroupRuleId)
		}
	}
	w.t.Fatal("no ingress rule")
	return ""
}

func (w *world) fleet() *Fleet { return w.fleetOf(acctB, acctC) }

// fleetOf is the hub with these TARGET_ACCOUNTS.
func (w *world) fleetOf(accounts ...string) *Fleet {
	w.t.Helper()
	fl, err := New(context.Background(), config.Config{Table: "ledger", Bucket: "rules", Prefix: "rules/", MaxRevoke: 50,
		TargetAccounts: accounts, TargetRole: config.DefaultTargetRole}, w.hub, EngineOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	return fl
}

func (w *world) expect(want map[rules.Target]string) {
	w.t.Helper()
	for tg, rs := range want {
		if got := w.ingress(tg); got != rs {
			w.t.Errorf("%s: ingress %q, want %q", tg, got, rs)
		}
	}
}

func TestFleetOnMoto(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	home, b1, b2, c := w.home, w.target(acctB, ""), w.target(acctB, "eu-west-1"), w.target(acctC, "")
	w.put("rules/home.yaml", "", home, 22, "home")
	w.put("rules/b1.yaml", `account: "111122223333"`+"\n", b1, 80, "b1")
	w.put("rules/b2.yaml", "account: 111122223333\nregion: eu-west-1\n", b2, 443, "b2")
	w.put("rules/c.yaml", `account: "444455556666"`+"\n", c, 5432, "c")
	w.put("rules/outside.yaml", `account: "999999999999"`+"\n", home, 3306, "outside")

	assumes := 0
	w.proxy.Before(func(call faultproxy.Call) {
		if call.Service == faultproxy.STS && call.Action == "AssumeRole" {
			assumes++
		}
	})
	fl := w.fleet()
	res, err := fl.Reconcile(ctx, reconcile.Request{All: true}, nil)
	if err != nil || res.Err() != nil {
		t.Fatal(err, res.Err())
	}
	w.expect(map[rules.Target]string{home: "22 home", b1: "80 b1", b2: "443 b2", c: "5432 c"})
	if assumes != 2 {
		t.Errorf("%d AssumeRole calls, want one per account (2)", assumes)
	}
	var outside *reconcile.SourceResult
	for _, s := range res.Sources() {
		if s.Key == "rules/outside.yaml" {
			outside = &s
		}
	}
	if outside == nil || outside.Status != reconcile.StatusInvalid || !strings.HasPrefix(outside.Diagnostics.Strings()[0], "rules/outside.yaml:1:10: ") {
		t.Errorf("outside.yaml = %+v, want invalid with a located error", outside)
	}

	// Removing a file revokes only in its target.
	w.remove("rules/b1.yaml")
	if res, err := fl.Reconcile(ctx, reconcile.Request{Keys: []string{"rules/b1.yaml"}}, nil); err != nil || res.Err() != nil {
		t.Fatal(err, res.Err())
	}
	w.expect(map[rules.Target]string{home: "22 home", b1: "", b2: "443 b2", c: "5432 c"})

	// A file that moves from B/eu-west-1 to C is revoked there and applied here.
	w.put("rules/b2.yaml", `account: "444455556666"`+"\n", c, 443, "moved")
	if res, err := fl.Reconcile(ctx, reconcile.Request{Keys: []string{"rules/b2.yaml"}}, nil); err != nil || res.Err() != nil {
		t.Fatal(err, res.Err())
	}
	w.expect(map[rules.Target]string{b2: "", c: "443 moved,5432 c"})

	// Drift in a target account: a rule deleted by hand, a description edited.
	ec2c := ec2.NewFromConfig(w.cfgs[c])
	if _, err := ec2c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(w.web[c]),
		IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(5432), ToPort: aws.Int32(5432),
			IpRanges: []ec2types.IpRange{{CidrIp: aws.String("10.0.0.0/8"), Description: aws.String("c")}}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ec2c.UpdateSecurityGroupRuleDescriptionsIngress(ctx, &ec2.UpdateSecurityGroupRuleDescriptionsIngressInput{GroupId: aws.String(w.web[c]),
		IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443),
			IpRanges: []ec2types.IpRange{{CidrIp: aws.String("10.0.0.0/8"), Description: aws.String("by hand")}}}}}); err != nil {
		t.Fatal(err)
	}
	// A CloudTrail-shaped event from account C sweeps only that target
	// (drift function handler on the real fleet).
	h, err := handler.NewDrift(handler.Config{Fleet: fl, Metrics: &strings.Builder{}})
	if err != nil {
		t.Fatal(err)
	}
	ev := `{"version":"0","id":"e1","detail-type":"AWS API Call via CloudTrail","source":"aws.ec2","account":"` + acctC + `","region":"us-east-1",
	"detail":{"eventID":"x","eventName":"RevokeSecurityGroupIngress","awsRegion":"us-east-1","userIdentity":{"arn":"arn:aws:sts::` + acctC + `:assumed-role/admin/alice"},
	"requestParameters":{"groupId":"` + w.web[c] + `"}}}`
	out, err := h.Handle(ctx, json.RawMessage(ev))
	if err != nil {
		t.Fatal(err)
	}
	resp := out.(report.Response)
	if len(resp.Targets) != 1 || resp.Targets[0].Account != acctC || resp.Drift == nil || resp.Drift.Detected != 2 || resp.Drift.Reverted != 2 {
		b, _ := json.Marshal(resp)
		t.Errorf("CloudTrail sweep = %s, want target C only, 2 drifted and reverted", b)
	}
	w.expect(map[rules.Target]string{c: "443 moved,5432 c"})

	// A target whose role cannot be assumed fails alone (a new execution
	// environment: no cached credentials).
	w.proxy.Set(faultproxy.Faults{Deny: func(call faultproxy.Call) bool {
		return call.Service == faultproxy.STS && call.Action == "AssumeRole" && strings.Contains(call.Params.Get("RoleArn"), acctC)
	}})
	w.put("rules/home.yaml", "", home, 2222, "home")
	w.put("rules/c.yaml", `account: "444455556666"`+"\n", c, 6543, "c")
	w.put("rules/b1.yaml", `account: "111122223333"`+"\n", b1, 8080, "b1")
	res, err = w.fleet().Reconcile(ctx, reconcile.Request{All: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ferr := res.Err()
	if ferr == nil || !strings.Contains(ferr.Error(), "account 444455556666 region us-east-1:") || !strings.Contains(ferr.Error(), "AccessDenied") {
		t.Fatalf("fleet error = %v, want target C's AccessDenied", ferr)
	}
	w.expect(map[rules.Target]string{home: "2222 home", b1: "8080 b1", c: "443 moved,5432 c"})
	_ = w.ruleID
}

// An upgrade in place: a ledger written by the single-account engine is
// the home target's; the fleet's sweep makes the same EC2 calls as the
// engine's (no write) and changes nothing.
func TestUpgradeInPlaceMakesNoExtraEC2Call(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.put("rules/a.yaml", "", w.home, 22, "a")
	w.put("rules/b.yaml", "", w.home, 443, "b")
	c := config.Config{Table: "ledger", Bucket: "rules", Prefix: "rules/", MaxRevoke: 50}
	eng, _, err := NewEngine(c, w.hub, EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Reconcile(ctx, reconcile.Request{All: true}); err != nil {
		t.Fatal(err)
	}
	count := func(run func()) (calls, writes int) {
		w.proxy.Before(func(call faultproxy.Call) {
			if call.Service == faultproxy.EC2 {
				calls++
				if call.Mutating {
					writes++
				}
			}
		})
		run()
		w.proxy.Before(nil)
		return calls, writes
	}
	before, _ := count(func() {
		if _, err := eng.Reconcile(ctx, reconcile.Request{All: true}); err != nil {
			t.Fatal(err)
		}
	})
	fl := w.fleetOf() // an upgrade in place sets no TARGET_ACCOUNTS
	after, writes := count(func() {
		res, err := fl.Reconcile(ctx, reconcile.Request{All: true}, nil)
		if err != nil || res.Err() != nil || len(res.Targets) != 1 || len(res.Targets[0].Result.Plan.Actions) != 0 {
			t.Fatalf("fleet sweep: %+v, %v", res, err)
		}
	})
	if after != before || writes != 0 {
		t.Errorf("fleet sweep: %d EC2 calls (%d writes), engine sweep %d", after, writes, before)
	}
	t.Logf("home-only sweep: %d EC2 calls with the engine, %d with the fleet", before, after)
}
