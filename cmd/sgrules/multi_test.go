package main

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/sgrules/sgrules/internal/testutil/motoserver"
)

// The CLI in a second account, the real way: moto's AssumeRole gives
// credentials that see only that account.
func TestCLIInATargetAccount(t *testing.T) {
	w := newCLIWorld(t)
	ctx := context.Background()
	const acct = "111122223333"
	out, err := sts.NewFromConfig(w.cfg).AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn: aws.String("arn:aws:iam::" + acct + ":role/sgrules-target"), RoleSessionName: aws.String("test")})
	if err != nil {
		t.Fatal(err)
	}
	tcfg := w.cfg.Copy()
	tcfg.Region = "eu-west-1"
	c := out.Credentials
	tcfg.Credentials = credentials.NewStaticCredentialsProvider(*c.AccessKeyId, *c.SecretAccessKey, *c.SessionToken)
	tec2 := ec2.NewFromConfig(tcfg)
	tweb := motoserver.CreateGroup(t, tcfg, motoserver.CreateVPC(t, tcfg), "web", map[string]string{"Name": "team-web"})
	home := w.group("web")

	w.write("home.yaml", "rules:\n  ssh:\n    securityGroup: "+home+"\n    type: ingress\n    protocol: tcp\n    fromPort: 22\n    toPort: 22\n    cidrBlocks: [10.0.0.0/8]\n")
	w.write("team.yaml", "account: \""+acct+"\"\nregion: eu-west-1\nrules:\n  https:\n    securityGroup: "+tweb+"\n    type: ingress\n    protocol: tcp\n    fromPort: 443\n    toPort: 443\n    cidrBlocks: [10.0.0.0/8]\n    description: HTTPS\n")

	// Without the account listed, the file is invalid and nothing reaches it.
	w.expect(exitFail, []string{"team.yaml"}, "apply", w.dir)
	w.expect(0, []string{"== account " + acct + " / region eu-west-1 =="}, "apply", "--target-accounts", acct, w.dir)
	teamRules := func() []string {
		r, err := tec2.DescribeSecurityGroupRules(ctx, &ec2.DescribeSecurityGroupRulesInput{
			Filters: []ec2types.Filter{{Name: aws.String("group-id"), Values: []string{tweb}}}})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, x := range r.SecurityGroupRules {
			if !aws.ToBool(x.IsEgress) {
				out = append(out, aws.ToString(x.SecurityGroupRuleId)+" "+aws.ToString(x.Description))
			}
		}
		return out
	}
	got := teamRules()
	if len(got) != 1 || !strings.HasSuffix(got[0], " HTTPS") {
		t.Fatalf("team group rules = %v", got)
	}
	// Drift in the target account, reverted by drift --revert narrowed to it.
	if _, err := tec2.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: &tweb,
		SecurityGroupRuleIds: []string{strings.Fields(got[0])[0]}}); err != nil {
		t.Fatal(err)
	}
	w.expect(exitDrift, []string{"tcp 443"}, "drift", "--target-accounts", acct, "--account", acct, w.dir)
	w.expect(0, nil, "drift", "--revert", "--target-accounts", acct, "--account", acct, "--region", "eu-west-1", w.dir)
	if got := teamRules(); len(got) != 1 {
		t.Errorf("after drift --revert: %v", got)
	}
	w.expect(0, []string{"No changes"}, "plan", "--target-accounts", acct, w.dir)

	// import --account --region reads the target's group and says where it is.
	imported := w.expect(0, []string{"account: \"" + acct + "\"", "region: eu-west-1", "team-web-ingress-tcp-443"},
		"import", "--account", acct, "--region", "eu-west-1", tweb)
	_ = imported
}
