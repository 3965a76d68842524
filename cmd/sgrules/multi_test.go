package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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

// plan and apply --policy decide a tenant's accounts: a team's file naming
// a target account outside the tenant's is invalid at its account field
// and nothing is written there; its file for the hub is applied.
func TestCLITenantAccounts(t *testing.T) {
	w := newCLIWorld(t)
	ctx := context.Background()
	const acct = "111122223333"
	out, err := sts.NewFromConfig(w.cfg).AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn: aws.String("arn:aws:iam::" + acct + ":role/sgrules-target"), RoleSessionName: aws.String("test")})
	if err != nil {
		t.Fatal(err)
	}
	tcfg := w.cfg.Copy()
	c := out.Credentials
	tcfg.Credentials = credentials.NewStaticCredentialsProvider(*c.AccessKeyId, *c.SecretAccessKey, *c.SessionToken)
	teamA := map[string]string{"team": "a"}
	tdb := motoserver.CreateGroup(t, tcfg, motoserver.CreateVPC(t, tcfg), "db", teamA)
	hdb := motoserver.CreateGroup(t, w.cfg, w.vpc, "team-a-db", teamA)
	id, err := sts.NewFromConfig(w.cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	policyPath := t.TempDir() + "/policy.yaml"
	if err := os.WriteFile(policyPath, []byte("tenants:\n  - prefix: team-a/\n    groups: {tags: {team: a}}\n    accounts: [\""+aws.ToString(id.Account)+"\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(w.dir, "team-a"), 0o755); err != nil {
		t.Fatal(err)
	}
	rule := "rules:\n  pg:\n    securityGroup: %s\n    type: ingress\n    protocol: tcp\n    fromPort: 5432\n    toPort: 5432\n    cidrBlocks: [10.0.0.0/8]\n"
	w.write("team-a/hub.yaml", fmt.Sprintf(rule, hdb))
	w.write("team-a/other.yaml", "account: \""+acct+"\"\n"+fmt.Sprintf(rule, tdb))
	located := "team-a/other.yaml:1:10: violates policy tenant team-a/: account " + acct + " is not an account of the tenant (" + aws.ToString(id.Account) + ")"
	for _, cmd := range []string{"plan", "apply"} {
		out := w.expect(exitFail, []string{located}, cmd, "--policy", policyPath, "--target-accounts", acct, w.dir)
		if strings.Contains(out, "needs the account") {
			t.Errorf("%s: the account is not decided:\n%s", cmd, out)
		}
	}
	r, err := ec2.NewFromConfig(tcfg).DescribeSecurityGroupRules(ctx, &ec2.DescribeSecurityGroupRulesInput{
		Filters: []ec2types.Filter{{Name: aws.String("group-id"), Values: []string{tdb}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range r.SecurityGroupRules {
		if !aws.ToBool(x.IsEgress) {
			t.Errorf("written in account %s: %s", acct, aws.ToString(x.SecurityGroupRuleId))
		}
	}
	r, err = ec2.NewFromConfig(w.cfg).DescribeSecurityGroupRules(ctx, &ec2.DescribeSecurityGroupRulesInput{
		Filters: []ec2types.Filter{{Name: aws.String("group-id"), Values: []string{hdb}}}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, x := range r.SecurityGroupRules {
		if !aws.ToBool(x.IsEgress) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d rules in the hub's team-a group, want 1 (hub.yaml applied)", n)
	}
}
