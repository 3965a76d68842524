package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"

	"github.com/sgrules/sgrules/internal/adapters/expirysched"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Expiry (docs/expiry.md): the functions keep one EventBridge Scheduler
// schedule per target at its earliest deadline, invoking the drift
// function as the scheduler's role.
const (
	ExpiryGroup = "sgrules-demo-expiry"
	expiryRole  = "arn:aws:iam::123456789012:role/sgrules-demo-expiry"
	driftARN    = "arn:aws:lambda:" + Region + ":123456789012:function:sgrules-demo-drift"
	// expiryLead is how far ahead of its upload the temporary rule
	// expires: enough for the steps between (drift, attribution, usage),
	// short enough for the demo.
	expiryLead = 20 * time.Second
)

// expiryEnv is the functions' environment for the expiry schedules.
func expiryEnv() []string {
	return []string{"EXPIRY_ROLE_ARN=" + expiryRole, "EXPIRY_TARGET_ARN=" + driftARN, "EXPIRY_SCHEDULE_GROUP=" + ExpiryGroup}
}

func createScheduleGroup(ctx context.Context, c clients) error {
	if _, err := c.sched.CreateScheduleGroup(ctx, &scheduler.CreateScheduleGroupInput{Name: aws.String(ExpiryGroup)}); err != nil {
		return fmt.Errorf("create schedule group %s: %w", ExpiryGroup, err)
	}
	return nil
}

// temporary is the demo's temporary rule: SSH to admin for an incident.
type temporary struct {
	file     example
	deadline time.Time
	key      rules.Key
	schedule *scheduler.GetScheduleOutput
}

func temporaryFile(deadline time.Time) example {
	return example{Name: "incident-4711.yaml", Body: []byte(`# Break glass: SSH for incident 4711, removed by sgrules at the deadline.
rules:
  ssh-alice:
    securityGroup: {tags: {Name: admin}}
    type: ingress
    protocol: tcp
    fromPort: 22
    toPort: 22
    cidrBlocks: [198.51.100.7/32]
    description: incident 4711 (alice)
    expiresAt: ` + rules.FormatExpiresAt(deadline) + "\n")}
}

// uploadTemporary uploads a file whose rule expires expiryLead from now,
// delivers its event to the reconcile function and shows the rule (with
// its sgrules:expires-at tag) and the schedule the function set.
func (d *run) uploadTemporary(ctx context.Context, fn *function) (*temporary, error) {
	deadline := time.Now().Add(expiryLead).Truncate(time.Second).UTC()
	tmp := &temporary{file: temporaryFile(deadline), deadline: deadline}
	d.step("Uploading %s: SSH to admin from 198.51.100.7/32 for an incident, expiresAt: %s (in %s)", tmp.file.Name,
		rules.FormatExpiresAt(deadline), expiryLead)
	if err := upload(ctx, d.c, []example{tmp.file}); err != nil {
		return nil, err
	}
	if err := deliverQuiet(ctx, d, fn); err != nil {
		return nil, err
	}
	rows, err := snapshot(ctx, d.c, d.groups)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(rows, func(r row) bool { return r.Owner == tmp.file.Name })
	if i < 0 {
		if !time.Now().Before(deadline) {
			return nil, fmt.Errorf("the machine took more than %s to apply %s: its rule expired first (never authorized)", expiryLead, tmp.file.Name)
		}
		return nil, fmt.Errorf("the temporary rule of %s is not in EC2", tmp.file.Name)
	}
	tmp.key = rows[i].Key
	tags, err := ruleTags(ctx, d.c, rows[i].RuleID)
	if err != nil {
		return nil, err
	}
	if tags[reconcile.TagExpiresAt] != rules.FormatExpiresAt(deadline) {
		return nil, fmt.Errorf("rule %s carries %s=%q, want %s", rows[i].RuleID, reconcile.TagExpiresAt, tags[reconcile.TagExpiresAt], rules.FormatExpiresAt(deadline))
	}
	d.info("created %s, tagged %s=%s", describeRule(rows[i], d.names), reconcile.TagExpiresAt, tags[reconcile.TagExpiresAt])
	out, err := d.c.sched.GetSchedule(ctx, &scheduler.GetScheduleInput{GroupName: aws.String(ExpiryGroup),
		Name: aws.String(expirysched.Name("123456789012", Region))})
	if err != nil {
		return nil, fmt.Errorf("the reconcile function kept no expiry schedule: %w", err)
	}
	if out.Target == nil || aws.ToString(out.ScheduleExpression) != expirysched.Expression(deadline) {
		return nil, fmt.Errorf("expiry schedule %s, want %s", aws.ToString(out.ScheduleExpression), expirysched.Expression(deadline))
	}
	tmp.schedule = out
	d.info("the function set EventBridge Scheduler schedule %s/%s: %s (the deadline's minute, UTC), invoking %s with %s",
		ExpiryGroup, aws.ToString(out.Name), aws.ToString(out.ScheduleExpression), aws.ToString(out.Target.Arn), aws.ToString(out.Target.Input))
	return tmp, nil
}

// deliverQuiet delivers the queued S3 events to fn, printing one line.
func deliverQuiet(ctx context.Context, d *run, fn *function) error {
	err := deliver(ctx, d.c, d.queueURL, d.queueARN, fn, func(n int, b batchResult) {
		d.info("%s", describeBatch(n, b))
	})
	d.functionLogs(fn)
	return err
}

// fireSchedule waits for the deadline and invokes the drift function with
// the schedule's input, as EventBridge Scheduler does (it fires within the
// minute its expression names; the demo does not wait for the minute),
// then checks the rule is gone and no schedule is left.
func (d *run) fireSchedule(ctx context.Context, fn *function, tmp *temporary) error {
	d.step("At %s the temporary rule expires: the demo invokes the drift function with the schedule's input, as EventBridge Scheduler does within the minute %s names",
		rules.FormatExpiresAt(tmp.deadline), aws.ToString(tmp.schedule.ScheduleExpression))
	if wait := time.Until(tmp.deadline); wait > 0 {
		d.info("waiting %s for the deadline", wait.Round(100*time.Millisecond))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	// Scheduler deletes a one-time schedule after it ran
	// (ActionAfterCompletion DELETE).
	if _, err := d.c.sched.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{GroupName: aws.String(ExpiryGroup), Name: tmp.schedule.Name}); err != nil {
		return fmt.Errorf("delete the schedule that ran: %w", err)
	}
	body, err := fn.invoke(ctx, []byte(aws.ToString(tmp.schedule.Target.Input)))
	d.functionLogs(fn)
	if err != nil {
		return err
	}
	revokedAt := time.Now()
	var resp struct {
		Error   string `json:"error"`
		Targets []struct {
			Account string `json:"account"`
			Region  string `json:"region"`
		} `json:"targets"`
	}
	if err := json.Unmarshal(body, &resp); err != nil || resp.Error != "" {
		return fmt.Errorf("drift function answered %s (%v)", body, err)
	}
	rows, err := snapshot(ctx, d.c, d.groups)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(rows, func(r row) bool { return r.Key == tmp.key }) {
		return fmt.Errorf("the expired rule %s is still in EC2", tmp.key)
	}
	swept := "no target"
	if len(resp.Targets) == 1 {
		swept = "account " + resp.Targets[0].Account + ", " + resp.Targets[0].Region + " alone"
	}
	d.info("the drift function swept %s and revoked %s, %s after its deadline (expired at %s)",
		swept, describeRule(row{Group: d.names[tmp.key.GroupID], Key: tmp.key}, d.names), revokedAt.Sub(tmp.deadline).Round(100*time.Millisecond), rules.FormatExpiresAt(tmp.deadline))
	if _, err := d.c.sched.GetSchedule(ctx, &scheduler.GetScheduleInput{GroupName: aws.String(ExpiryGroup), Name: tmp.schedule.Name}); err == nil {
		return fmt.Errorf("a schedule is left after the last deadline")
	}
	d.info("no deadline is left in the target: no schedule either; the file stays, its expired rule only draws a warning")
	return nil
}

// ruleTags returns the tags of the EC2 rule id.
func ruleTags(ctx context.Context, c clients, id string) (map[string]string, error) {
	out, err := c.ec2.DescribeSecurityGroupRules(ctx, &ec2.DescribeSecurityGroupRulesInput{SecurityGroupRuleIds: []string{id}})
	if err != nil {
		return nil, fmt.Errorf("describe rule %s: %w", id, err)
	}
	tags := map[string]string{}
	for _, r := range out.SecurityGroupRules {
		for _, t := range r.Tags {
			tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	}
	return tags, nil
}
