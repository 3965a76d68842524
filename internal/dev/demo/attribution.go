package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Attribution (issue 26): a CloudTrail event names who changed a group,
// and the drift function's revert says so.
const (
	AlertTopic = "sgrules-demo-alerts"
	alertQueue = "sgrules-demo-alerts"
	// The person of the demo's CloudTrail event.
	alicePrincipal = "assumed-role/Admin/alice"
	aliceIP        = "203.0.113.9"
)

// createAlerts creates the drift function's alert topic (ALERT_TOPIC_ARN)
// and a queue subscribed to it, where the demo reads the messages.
func createAlerts(ctx context.Context, c clients) (topicARN, queueURL string, err error) {
	topic, err := c.sns.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(AlertTopic)})
	if err != nil {
		return "", "", fmt.Errorf("create topic %s: %w", AlertTopic, err)
	}
	q, err := c.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(alertQueue)})
	if err != nil {
		return "", "", fmt.Errorf("create queue %s: %w", alertQueue, err)
	}
	if _, err := c.sns.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"),
		Endpoint:   aws.String("arn:aws:sqs:" + Region + ":123456789012:" + alertQueue),
		Attributes: map[string]string{"RawMessageDelivery": "true"}}); err != nil {
		return "", "", fmt.Errorf("subscribe %s to %s: %w", alertQueue, AlertTopic, err)
	}
	return aws.ToString(topic.TopicArn), aws.ToString(q.QueueUrl), nil
}

// alertMessages receives (and deletes) the alert messages delivered so far.
func alertMessages(ctx context.Context, c clients, queueURL string) ([]string, error) {
	var msgs []string
	for {
		out, err := c.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10})
		if err != nil {
			return nil, fmt.Errorf("receive from %s: %w", alertQueue, err)
		}
		if len(out.Messages) == 0 {
			return msgs, nil
		}
		for _, m := range out.Messages {
			msgs = append(msgs, aws.ToString(m.Body))
			if _, err := c.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				return nil, fmt.Errorf("delete from %s: %w", alertQueue, err)
			}
		}
	}
}

// cloudTrailEvent is the EventBridge event of a RevokeSecurityGroupIngress
// call by alice (an assumed role session of Admin), as CloudTrail
// delivers it.
func cloudTrailEvent(group, ruleID string, at time.Time) []byte {
	ev := map[string]any{
		"version": "0", "id": fmt.Sprintf("sgrules-demo-ct-%d", at.UnixNano()), "detail-type": "AWS API Call via CloudTrail",
		"source": "aws.ec2", "account": "123456789012", "time": at.UTC().Format(time.RFC3339), "region": Region, "resources": []string{},
		"detail": map[string]any{
			"eventVersion": "1.09",
			"userIdentity": map[string]any{
				"type": "AssumedRole", "principalId": "AROA3EXAMPLEADMINROLE:alice",
				"arn":       "arn:aws:sts::123456789012:" + alicePrincipal,
				"accountId": "123456789012",
				"sessionContext": map[string]any{"sessionIssuer": map[string]any{
					"type": "Role", "principalId": "AROA3EXAMPLEADMINROLE", "arn": "arn:aws:iam::123456789012:role/Admin",
					"accountId": "123456789012", "userName": "Admin"}},
			},
			"eventTime":       at.UTC().Format(time.RFC3339),
			"eventSource":     "ec2.amazonaws.com",
			"eventName":       "RevokeSecurityGroupIngress",
			"awsRegion":       Region,
			"sourceIPAddress": aliceIP,
			"userAgent":       "aws-cli/2.22.0 md/command#ec2.revoke-security-group-ingress",
			"requestParameters": map[string]any{
				"groupId":              group,
				"securityGroupRuleIds": map[string]any{"items": []any{map[string]any{"securityGroupRuleId": ruleID}}},
			},
			"eventType": "AwsApiCall", "managementEvent": true, "recipientAccountId": "123456789012",
		},
	}
	b, _ := json.Marshal(ev)
	return b
}

// showAttribution has alice delete a managed rule (by hand, as in the
// console), sends the drift function the CloudTrail event of her call,
// and shows the revert naming her in the report and in the alert.
func (d *run) showAttribution(ctx context.Context, fn *function, alertsURL string) error {
	rows, err := snapshot(ctx, d.c, d.groups)
	if err != nil {
		return err
	}
	victim, ok := pickRule(rows, "web", func(r row) bool { return r.Key.Direction == rules.Ingress && r.Key.FromPort == 443 })
	if !ok {
		return fmt.Errorf("no managed rule to delete as alice")
	}
	if _, err := alertMessages(ctx, d.c, alertsURL); err != nil { // the earlier sweeps' alerts
		return err
	}
	d.step("Attribution: alice (%s) deletes %s; CloudTrail's event of her call reaches the drift function", alicePrincipal, describeRule(victim, d.names))
	if _, err := d.c.ec2.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{
		GroupId: aws.String(victim.Key.GroupID), SecurityGroupRuleIds: []string{victim.RuleID}}); err != nil {
		return fmt.Errorf("revoke %s by hand: %w", victim.RuleID, err)
	}
	body, err := fn.invoke(ctx, cloudTrailEvent(victim.Key.GroupID, victim.RuleID, time.Now()))
	d.functionLogs(fn)
	if err != nil {
		return err
	}
	var resp struct {
		Drift   *report.Report `json:"drift"`
		Targets []struct {
			Drift *report.Report `json:"drift"`
		} `json:"targets"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return fmt.Errorf("drift function answered %s: %w", body, err)
	}
	// One report per target (the response's drift when it ran in one).
	reps := []*report.Report{resp.Drift}
	if len(resp.Targets) > 0 {
		reps = reps[:0]
	}
	for _, t := range resp.Targets {
		reps = append(reps, t.Drift)
	}
	var by *report.Actor
	for _, r := range reps {
		if r == nil {
			continue
		}
		for _, c := range r.Drifted {
			if c.Reverted && c.By != nil && c.By.Principal == alicePrincipal {
				by = c.By
				d.info("report: %s %s %s %s, reverted; by %s (%s at %s, from %s), found by %s", c.Kind, d.names[c.Group], c.Direction, c.Rule,
					by.Principal, by.EventName, by.EventTime.Format(time.RFC3339), by.SourceIP, r.FoundBy)
			}
		}
	}
	if by == nil {
		return fmt.Errorf("the drift function did not attribute the revert to %s: %s", alicePrincipal, body)
	}
	after, err := snapshot(ctx, d.c, d.groups)
	if err != nil {
		return err
	}
	if !containsKey(after, victim.Key, victim.Description) {
		return fmt.Errorf("%s was not put back", describeRule(victim, d.names))
	}
	msgs, err := alertMessages(ctx, d.c, alertsURL)
	if err != nil {
		return err
	}
	found := false
	for _, m := range msgs {
		for _, l := range strings.Split(m, "\n") {
			if strings.Contains(l, alicePrincipal) {
				d.info("SNS %s: %s", AlertTopic, strings.TrimSpace(l))
				found = true
			}
		}
	}
	if !found {
		return fmt.Errorf("no alert names %s (%d messages)", alicePrincipal, len(msgs))
	}
	return nil
}

func containsKey(rows []row, k rules.Key, description string) bool {
	for _, r := range rows {
		if r.Key == k && r.Description == description {
			return true
		}
	}
	return false
}
