package handler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/pkg/rules"
)

const topic = "arn:aws:sns:eu-west-1:123456789012:sgrules-alerts"

type fakeSNS struct {
	in  []*sns.PublishInput
	err error
}

func (f *fakeSNS) Publish(_ context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	f.in = append(f.in, in)
	if f.err != nil {
		return nil, f.err
	}
	return &sns.PublishOutput{MessageId: aws.String("m-1")}, nil
}

// drifted is a result with one deleted rule re-authorized.
func drifted(req reconcile.Request) reconcile.Result {
	k := rules.Key{GroupID: "sg-0123456789abcdef0", Direction: rules.Ingress, Protocol: rules.ProtoTCP, FromPort: 443, ToPort: 443,
		Peer: rules.Peer{Kind: rules.PeerCIDR4, Value: "0.0.0.0/0"}}
	return reconcile.Result{
		Executed: !req.DryRun,
		Drift: reconcile.DriftReport{GroupsChecked: 4, Unmanaged: 1, Paused: []string{"sg-paused"}, Drifted: []reconcile.Action{
			{Kind: reconcile.ActAuthorize, Key: k, Description: "HTTPS", Reason: "drift: rule deleted or changed outside sgrules", Cause: reconcile.CauseDriftDeleted},
		}},
	}
}

// logLines returns the log records with message msg.
func logLines(t *testing.T, logs *bytes.Buffer, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func TestDriftReportAndMetrics(t *testing.T) {
	metrics := &bytes.Buffer{}
	h, eng, logs := newTest(t, true, Config{Metrics: metrics})
	eng.res = drifted
	out, err := h.Handle(context.Background(), sample(t, "drift", "schedule.json"))
	if err != nil {
		t.Fatal(err)
	}
	resp := out.(report.Response)
	if resp.Drift == nil || resp.Drift.Detected != 1 || resp.Drift.Reverted != 1 || resp.Drift.Unmanaged != 1 {
		t.Errorf("response drift = %+v", resp.Drift)
	}

	reports := logLines(t, logs, "drift report")
	if len(reports) != 1 {
		t.Fatalf("%d drift report lines, want 1:\n%s", len(reports), logs)
	}
	r := reports[0]["report"].(map[string]any)
	if r["groupsChecked"] != 4.0 || r["driftDetected"] != 1.0 || r["driftReverted"] != 1.0 || r["unmanagedRules"] != 1.0 ||
		reports[0]["level"] != "WARN" {
		t.Errorf("report line = %v", reports[0])
	}
	change := r["drifted"].([]any)[0].(map[string]any)
	if change["before"] != "missing" || change["after"] != `tcp 443 from 0.0.0.0/0 "HTTPS"` || change["kind"] != "deleted" {
		t.Errorf("change = %v", change)
	}

	var emf map[string]any
	if strings.Count(metrics.String(), "\n") != 1 {
		t.Fatalf("want one EMF line: %q", metrics)
	}
	if err := json.Unmarshal(metrics.Bytes(), &emf); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{"DriftDetected": 1, "DriftReverted": 1, "UnmanagedRules": 1, "ReconcileErrors": 0} {
		if emf[name] != want {
			t.Errorf("EMF %s = %v, want %v", name, emf[name], want)
		}
	}
	if _, ok := emf["_aws"]; !ok {
		t.Errorf("EMF without _aws: %s", metrics)
	}
}

// A failed run writes a report with ReconcileErrors=1 and is still
// returned, so Lambda retries it.
func TestDriftReportOfFailedRun(t *testing.T) {
	metrics := &bytes.Buffer{}
	alerts := &fakeSNS{}
	h, eng, logs := newTest(t, true, Config{Metrics: metrics, Alerts: alerts, AlertTopicARN: topic})
	eng.fail = func(reconcile.Request) error { return errors.New("read ledger: throttled") }
	if _, err := h.Handle(context.Background(), sample(t, "drift", "schedule.json")); err == nil {
		t.Fatal("a failed run succeeded")
	}
	reports := logLines(t, logs, "drift report")
	if len(reports) != 1 || reports[0]["report"].(map[string]any)["reconcileErrors"] != 1.0 || reports[0]["level"] != "ERROR" {
		t.Errorf("report lines = %v", reports)
	}
	if !strings.Contains(metrics.String(), `"ReconcileErrors":1`) {
		t.Errorf("EMF = %s", metrics)
	}
	if len(alerts.in) != 0 {
		t.Errorf("alert on a failed run: %v", alerts.in)
	}
}

func TestDriftAlerts(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		dryRun  bool
		clean   bool
		topic   string
		err     error
		publish bool
	}{
		{name: "reverted drift", file: "schedule.json", topic: topic, publish: true},
		{name: "no drift", file: "schedule.json", topic: topic, clean: true},
		{name: "no topic", file: "schedule.json"},
		{name: "report mode sweep: the alarm covers it", file: "schedule.json", topic: topic, dryRun: true},
		{name: "report mode, CloudTrail event", file: "cloudtrail-modify-rules.json", topic: topic, dryRun: true, publish: true},
		{name: "SNS fails: the run succeeds", file: "cloudtrail-modify-rules.json", topic: topic, err: errors.New("AuthorizationError"), publish: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			alerts := &fakeSNS{err: tc.err}
			h, eng, logs := newTest(t, true, Config{DryRun: tc.dryRun, Alerts: alerts, AlertTopicARN: tc.topic})
			eng.res = drifted
			if tc.clean {
				eng.res = nil
			}
			if _, err := h.Handle(context.Background(), sample(t, "drift", tc.file)); err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if got := len(alerts.in) == 1; got != tc.publish || len(alerts.in) > 1 {
				t.Fatalf("published %d alerts, want publish=%v", len(alerts.in), tc.publish)
			}
			if !tc.publish {
				return
			}
			in := alerts.in[0]
			if aws.ToString(in.TopicArn) != topic || !strings.Contains(aws.ToString(in.Subject), "1 security group rule changed") ||
				!strings.Contains(aws.ToString(in.Message), `deleted tcp 443 from 0.0.0.0/0 "HTTPS"`) {
				t.Errorf("published %s / %s", aws.ToString(in.Subject), aws.ToString(in.Message))
			}
			if tc.err != nil && len(logLines(t, logs, "drift alert not published")) != 1 {
				t.Errorf("SNS failure not logged:\n%s", logs)
			}
		})
	}
}

// A CloudTrail event by assumed-role/Admin/alice that deleted a managed
// rule: the response, the report line and the alert name her, the call,
// its time, source IP and user agent.
func TestDriftAttributedToCloudTrailCaller(t *testing.T) {
	alerts := &fakeSNS{}
	h, eng, logs := newTest(t, true, Config{Alerts: alerts, AlertTopicARN: topic})
	eng.res = drifted
	out, err := h.Handle(context.Background(), sample(t, "drift", "cloudtrail-revoke-ingress-alice.json"))
	if err != nil {
		t.Fatal(err)
	}
	resp := out.(report.Response)
	if resp.Drift == nil || resp.Drift.FoundBy != report.FoundByCloudTrail || len(resp.Drift.Drifted) != 1 {
		t.Fatalf("response drift = %+v", resp.Drift)
	}
	by := resp.Drift.Drifted[0].By
	if by == nil || by.Principal != "assumed-role/Admin/alice" || by.ARN != "arn:aws:sts::123456789012:assumed-role/Admin/alice" ||
		by.EventName != "RevokeSecurityGroupIngress" || by.EventTime.Format("2006-01-02T15:04:05Z07:00") != "2026-03-02T11:20:44Z" ||
		by.SourceIP != "203.0.113.9" || !strings.HasPrefix(by.UserAgent, "aws-cli/2.22.0 ") {
		t.Errorf("by = %+v", by)
	}
	js, _ := json.Marshal(resp)
	if !strings.Contains(string(js), `"by":{"principal":"assumed-role/Admin/alice"`) {
		t.Errorf("response JSON: %s", js)
	}

	reports := logLines(t, logs, "drift report")
	if len(reports) != 1 || reports[0]["principal"] != "assumed-role/Admin/alice" || reports[0]["foundBy"] != "cloudtrail" ||
		reports[0]["sourceIp"] != "203.0.113.9" || reports[0]["eventName"] != "RevokeSecurityGroupIngress" {
		t.Fatalf("report lines = %v", reports)
	}
	change := reports[0]["report"].(map[string]any)["drifted"].([]any)[0].(map[string]any)
	if b, _ := change["by"].(map[string]any); b["principal"] != "assumed-role/Admin/alice" {
		t.Errorf("report line change = %v", change)
	}

	if len(alerts.in) != 1 {
		t.Fatalf("%d alerts", len(alerts.in))
	}
	subject, msg := aws.ToString(alerts.in[0].Subject), aws.ToString(alerts.in[0].Message)
	if subject != "sgrules: 1 security group rule changed outside sgrules by alice (reverted)" ||
		!strings.Contains(msg, "assumed-role/Admin/alice (RevokeSecurityGroupIngress at 2026-03-02T11:20:44Z, from 203.0.113.9, aws-cli/2.22.0): 1 rule reverted in sg-0123456789abcdef0\n"+
			`- sg-0123456789abcdef0 ingress: deleted tcp 443 from 0.0.0.0/0 "HTTPS"`) {
		t.Errorf("alert %q:\n%s", subject, msg)
	}
}

// A scheduled sweep (the drift schedule, or a target's expiry schedule)
// names nobody: its report and alert say "found by schedule".
func TestDriftFoundBySchedule(t *testing.T) {
	for name, payload := range map[string]json.RawMessage{
		"drift schedule":  sample(t, "drift", "schedule.json"),
		"expiry schedule": json.RawMessage(`{"sweep":{}}`),
	} {
		t.Run(name, func(t *testing.T) { testFoundBySchedule(t, payload) })
	}
}

func testFoundBySchedule(t *testing.T, payload json.RawMessage) {
	alerts := &fakeSNS{}
	h, eng, logs := newTest(t, true, Config{Alerts: alerts, AlertTopicARN: topic})
	eng.res = drifted
	out, err := h.Handle(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	if d := out.(report.Response).Drift; d == nil || d.FoundBy != report.FoundBySchedule || d.Drifted[0].By != nil {
		t.Errorf("response drift = %+v", d)
	}
	if reports := logLines(t, logs, "drift report"); len(reports) != 1 || reports[0]["foundBy"] != "schedule" || reports[0]["principal"] != nil {
		t.Errorf("report lines = %v", reports)
	}
	if len(alerts.in) != 1 || !strings.Contains(aws.ToString(alerts.in[0].Message), "Found by schedule: 1 rule reverted in sg-0123456789abcdef0\n") {
		t.Errorf("alerts = %v", alerts.in)
	}
}
