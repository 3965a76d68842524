package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
	"github.com/sgrules/sgrules/pkg/rules"
)

// An account taken out of the target accounts: sweeps go on without it
// (its records are kept, never swept, and it is reported), and offboard
// either revokes what the ledger proves sgrules made there and forgets it,
// or only forgets it.
func TestCLIOffboardAccount(t *testing.T) {
	w := newCLIWorld(t)
	t.Setenv("TARGET_ACCOUNTS", "")
	ctx := context.Background()
	const acct = "111122223333"
	out, err := sts.NewFromConfig(w.cfg).AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn: aws.String("arn:aws:iam::" + acct + ":role/sgrules-target"), RoleSessionName: aws.String("test")})
	if err != nil {
		t.Fatal(err)
	}
	c := out.Credentials
	groups := map[string]string{}
	ec2s := map[string]*ec2.Client{}
	for _, region := range []string{"eu-west-1", "us-east-1"} {
		cfg := w.cfg.Copy()
		cfg.Region = region
		cfg.Credentials = credentials.NewStaticCredentialsProvider(*c.AccessKeyId, *c.SecretAccessKey, *c.SessionToken)
		ec2s[region] = ec2.NewFromConfig(cfg)
		groups[region] = motoserver.CreateGroup(t, cfg, motoserver.CreateVPC(t, cfg), "web", nil)
		w.write(region+".yaml", "account: \""+acct+"\"\nregion: "+region+"\nrules:\n  https:\n    securityGroup: "+groups[region]+
			"\n    type: ingress\n    protocol: tcp\n    fromPort: 443\n    toPort: 443\n    cidrBlocks: [10.0.0.0/8]\n    description: HTTPS\n")
		// A rule no file declares: never sgrules' to revoke.
		if _, err := ec2s[region].AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(groups[region]),
			IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(8080), ToPort: aws.Int32(8080),
				IpRanges: []ec2types.IpRange{{CidrIp: aws.String("192.0.2.0/24"), Description: aws.String("by hand")}}}}}); err != nil {
			t.Fatal(err)
		}
	}
	home := w.group("web")
	w.write("home.yaml", "rules:\n  ssh:\n    securityGroup: "+home+"\n    type: ingress\n    protocol: tcp\n    fromPort: 22\n    toPort: 22\n    cidrBlocks: [10.0.0.0/8]\n")
	w.expect(0, nil, "apply", "--target-accounts", acct, w.dir)
	ingress := func(region string) []string {
		r, err := ec2s[region].DescribeSecurityGroupRules(ctx, &ec2.DescribeSecurityGroupRulesInput{
			Filters: []ec2types.Filter{{Name: aws.String("group-id"), Values: []string{groups[region]}}}})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, x := range r.SecurityGroupRules {
			if !aws.ToBool(x.IsEgress) {
				out = append(out, aws.ToString(x.Description))
			}
		}
		slices.Sort(out)
		return out
	}
	records := func() map[rules.Target]int {
		all, err := ddbledger.New(dynamodb.NewFromConfig(w.cfg), "ledger").ListAllSources(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n := map[rules.Target]int{}
		for tg, recs := range all {
			if tg.Account == acct {
				n[tg] = len(recs)
			}
		}
		return n
	}
	eu, us := rules.Target{Account: acct, Region: "eu-west-1"}, rules.Target{Account: acct, Region: "us-east-1"}

	// The account leaves the target accounts (and its files the bucket).
	for _, region := range []string{"eu-west-1", "us-east-1"} {
		w.remove(region + ".yaml")
	}
	for _, cmd := range [][]string{{"drift"}, {"drift", "--revert"}, {"plan"}, {"apply"}} {
		_, stdout, stderr := runCmd(t, append(cmd, w.dir)...)
		if strings.Contains(stdout+stderr, "not a target account") || !strings.Contains(stderr, "account "+acct+" region eu-west-1: offboarded") {
			t.Errorf("sgrules %s with an offboarded account:\nstdout:\n%s\nstderr:\n%s", cmd, stdout, stderr)
		}
	}
	for _, region := range []string{"eu-west-1", "us-east-1"} {
		if got := ingress(region); strings.Join(got, ",") != "HTTPS,by hand" {
			t.Fatalf("%s after sweeps without the account: %v (an offboarded target is never swept)", region, got)
		}
	}
	if got := records(); got[eu] != 1 || got[us] != 1 {
		t.Fatalf("records after sweeps without the account: %v, want kept", got)
	}

	// Still a target account: refused.
	w.expectErr(exitUsage, "still a target account", "offboard", "--account", acct, "--forget", "--target-accounts", acct)
	w.expectErr(exitUsage, "--revoke or --forget", "offboard", "--account", acct)

	// --revoke in one region: the rule the ledger proves is revoked, the
	// hand-made one stays, the records go.
	w.expect(0, []string{"account " + acct + " region eu-west-1: 1 rule revoked, 1 record forgotten"},
		"offboard", "--account", acct, "--region", "eu-west-1", "--revoke")
	if got := ingress("eu-west-1"); strings.Join(got, ",") != "by hand" {
		t.Errorf("eu-west-1 after offboard --revoke: %v, want only the hand-made rule", got)
	}
	// --forget in the other: the rules stay, the records go.
	w.expect(0, []string{"account " + acct + " region us-east-1: 1 record forgotten"}, "offboard", "--account", acct, "--forget")
	if got := ingress("us-east-1"); strings.Join(got, ",") != "HTTPS,by hand" {
		t.Errorf("us-east-1 after offboard --forget: %v, want every rule kept", got)
	}
	if got := records(); len(got) != 0 {
		t.Errorf("records after offboard: %v, want none", got)
	}
	_, _, stderr := runCmd(t, "drift", w.dir)
	if strings.Contains(stderr, "offboarded") {
		t.Errorf("drift after offboard still reports the account:\n%s", stderr)
	}
}

func (w *cliWorld) remove(name string) {
	w.t.Helper()
	if err := os.Remove(filepath.Join(w.dir, name)); err != nil {
		w.t.Fatal(err)
	}
}

// expectErr runs the CLI, wanting exit code and stderr containing want.
func (w *cliWorld) expectErr(code int, want string, args ...string) {
	w.t.Helper()
	got, out, errs := runCmd(w.t, args...)
	if got != code || !strings.Contains(errs, want) {
		w.t.Errorf("sgrules %s: exit %d, want %d with %q\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), got, code, want, out, errs)
	}
}
