package demo

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// The demo's second target: a member account, in a second region. moto
// keeps accounts apart by the credentials of an assumed role, as AWS does:
// the functions reach it through the role TargetRole there, as deployed
// hubs do (TARGET_ACCOUNTS).
const (
	TargetAccount = "111122223333"
	TargetRegion  = "eu-west-1"
	TargetRole    = "sgrules-target"
)

// target is the demo's second target: the rule file that names it, its
// clients (the target account's credentials; the hub's ledger), and its
// groups.
type target struct {
	t      rules.Target
	file   example
	c      clients
	groups map[string]string // Name tag → id
	names  map[string]string // id → Name tag
}

// targetFile names the second target with the top-level account and
// region fields; its groups resolve there (the same Name tags as in the
// home account are other groups).
var targetFile = example{Name: "partner-account.yaml", Body: []byte(`# The partner team's groups, in their own account and region: the hub
# assumes the role sgrules-target there.
account: "` + TargetAccount + `"
region: ` + TargetRegion + `
rules:
  https-from-internet:
    securityGroup: {tags: {Name: web}}
    type: ingress
    protocol: tcp
    fromPort: 443
    toPort: 443
    cidrBlocks: [0.0.0.0/0]
    description: HTTPS from the internet
  app-from-web:
    securityGroup: {tags: {Name: app}}
    type: ingress
    protocol: tcp
    fromPort: 8080
    toPort: 8080
    sourceSecurityGroups: [{tags: {Name: web}}]
    description: app port from the web tier
  cache-from-app:
    securityGroup: {tags: {Name: cache}}
    type: ingress
    protocol: tcp
    fromPort: 6379
    toPort: 6379
    sourceSecurityGroups: [{tags: {Name: app}}]
    description: Redis from the app tier
`)}

// targetDescription is the description the demo gives a target's rule by
// hand.
const targetDescription = "changed by hand in the partner account"

// targetClients are clients on the target account (credentials of its
// role, as moto's AssumeRole returns them) in TargetRegion, and on the
// hub's ledger (scoped to the target).
func targetClients(ctx context.Context, endpoint string, hub clients) (clients, error) {
	cfg := clientConfig(endpoint, Region, credentials.NewStaticCredentialsProvider("test", "test", ""))
	out, err := sts.NewFromConfig(cfg).AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn:         aws.String("arn:aws:iam::" + TargetAccount + ":role/" + TargetRole),
		RoleSessionName: aws.String("sgrules-demo-setup"),
	})
	if err != nil {
		return clients{}, fmt.Errorf("assume role %s in account %s: %w", TargetRole, TargetAccount, err)
	}
	k := out.Credentials
	c := newClientsOn(clientConfig(endpoint, TargetRegion,
		credentials.NewStaticCredentialsProvider(aws.ToString(k.AccessKeyId), aws.ToString(k.SecretAccessKey), aws.ToString(k.SessionToken))))
	c.ddb = hub.ddb // the ledger is the hub's
	c.scope = rules.Target{Account: TargetAccount, Region: TargetRegion}
	c.account = TargetAccount
	return c, nil
}

// createTarget creates the second target's VPC and groups with its
// account's credentials.
func (d *run) createTarget(ctx context.Context) error {
	f, diags := rules.Parse(targetFile.Name, targetFile.Body)
	if diags.HasErrors() {
		return fmt.Errorf("demo file %s is invalid: %w", targetFile.Name, diags.Err())
	}
	tg := &target{t: f.Target, file: targetFile}
	tg.file.File = f
	names, err := groupNames([]example{tg.file})
	if err != nil {
		return err
	}
	d.step("Creating a second target: account %s in region %s, with the credentials of its role %s: a VPC and groups %s",
		TargetAccount, TargetRegion, TargetRole, strings.Join(names, ", "))
	if tg.c, err = targetClients(ctx, d.moto.URL, d.c); err != nil {
		return err
	}
	vpc, groups, err := createGroups(ctx, tg.c, names)
	if err != nil {
		return fmt.Errorf("account %s, %s: %w", TargetAccount, TargetRegion, err)
	}
	tg.groups, tg.names = groups, map[string]string{}
	for name, id := range groups {
		tg.names[id] = name
	}
	d.info("VPC %s; web-sg = %s there, another group than the home account's web-sg (%s)", vpc, groups["web"], orDash(d.groups["web"]))
	d.target = tg
	return nil
}

// title names the target in a step.
func (tg *target) title() string {
	return fmt.Sprintf("account %s, region %s", tg.t.Account, tg.t.Region)
}

// showTargetRules prints and checks the target's rules.
func (d *run) showTargetRules(ctx context.Context, title string) ([]row, error) {
	tg := d.target
	rows, err := snapshot(ctx, tg.c, tg.groups)
	if err != nil {
		return nil, err
	}
	d.step("%s in %s (%d rules in %d groups)", title, tg.title(), len(rows), len(tg.groups))
	printRules(d.out, rows, tg.names, "    ")
	return rows, nil
}

// targetDrift is the manual change in the target account.
type targetDrift struct {
	Deleted row
	Edited  row
}

// simulateTargetDrift deletes one managed rule of the target and edits
// the description of another, with the target account's credentials.
func (d *run) simulateTargetDrift(ctx context.Context, rows []row) (targetDrift, error) {
	tg := d.target
	var dr targetDrift
	var ok bool
	if dr.Deleted, ok = pickRule(rows, "web", func(r row) bool { return r.Key.Direction == rules.Ingress }); !ok {
		return dr, errors.New("no managed ingress rule to delete in " + tg.title())
	}
	if dr.Edited, ok = pickRule(rows, "cache", func(r row) bool { return r.Key.Direction == rules.Ingress && r.Key != dr.Deleted.Key }); !ok {
		return dr, errors.New("no managed ingress rule to edit in " + tg.title())
	}
	d.info("in %s:", tg.title())
	d.info("deleting a managed rule:   %s", describeRule(dr.Deleted, tg.names))
	d.info("editing a description:     %s, description now %q", describeRule(dr.Edited, tg.names), targetDescription)
	del := dr.Deleted
	if _, err := tg.c.ec2.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{
		GroupId: aws.String(del.Key.GroupID), SecurityGroupRuleIds: []string{del.RuleID},
	}); err != nil {
		return dr, fmt.Errorf("revoke %s by hand in %s: %w", del.RuleID, tg.title(), err)
	}
	ed := dr.Edited
	if err := ec2sg.New(tg.c.ec2, ec2sg.WithAccount(TargetAccount)).ModifyRules(ctx, ed.Key.GroupID, []reconcile.RuleUpdate{
		{RuleID: ed.RuleID, Key: ed.Key, Description: targetDescription},
	}); err != nil {
		return dr, fmt.Errorf("edit the description of %s by hand in %s: %w", ed.RuleID, tg.title(), err)
	}
	return dr, nil
}
