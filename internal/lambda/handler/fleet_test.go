package handler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sgrules/sgrules/internal/lambda/trigger"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/pkg/rules"
)

var (
	hubHome = rules.Target{Account: "123456789012", Region: "us-east-1"}
	tgtB    = rules.Target{Account: "111122223333", Region: "eu-west-1"}
	tgtC    = rules.Target{Account: "444455556666", Region: "us-east-1"}
)

// fakeFleet records runs; fail names targets that fail.
type fakeFleet struct {
	mu   sync.Mutex
	runs []string // "REASON groups ONLY"
	fail map[rules.Target]error
	// offboarded are reported by Survey.
	offboarded []rules.Target
	// routes are Survey's; got are the routes of the runs, by target.
	routes map[rules.Target]*reconcile.TargetRoute
	got    map[rules.Target]*reconcile.TargetRoute
}

func (f *fakeFleet) Reconcile(_ context.Context, req reconcile.Request, only []rules.Target) (reconcile.FleetResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	targets := only
	if len(targets) == 0 {
		targets = []rules.Target{hubHome, tgtB, tgtC}
	}
	var names []string
	var res reconcile.FleetResult
	for _, t := range targets {
		names = append(names, t.String())
		tr := reconcile.TargetResult{Target: t}
		if err := f.fail[t]; err != nil {
			tr.Err = &reconcile.TargetError{Target: t, Err: err}
		} else {
			tr.Result = drifted(req)
		}
		res.Targets = append(res.Targets, tr)
	}
	f.runs = append(f.runs, req.Reason+" "+strings.Join(req.Groups, ",")+" "+strings.Join(names, ","))
	if req.Route != nil && len(only) == 1 {
		if f.got == nil {
			f.got = map[rules.Target]*reconcile.TargetRoute{}
		}
		f.got[only[0]] = req.Route
	}
	return res, nil
}

func (f *fakeFleet) Survey(context.Context) (reconcile.Survey, error) {
	return reconcile.Survey{Targets: []rules.Target{hubHome, tgtB, tgtC}, Offboarded: f.offboarded, Routes: f.routes}, nil
}

type fakeQueue struct{ bodies []string }

func (q *fakeQueue) Send(_ context.Context, bodies []string) error {
	q.bodies = append(q.bodies, bodies...)
	return nil
}

func newFleetDrift(t *testing.T, cfg Config) (*Drift, *fakeFleet, *bytes.Buffer) {
	t.Helper()
	fl := &fakeFleet{fail: map[rules.Target]error{}}
	metrics := &bytes.Buffer{}
	cfg.Fleet, cfg.Metrics = fl, metrics
	cfg.Logger = slog.New(slog.DiscardHandler)
	h, err := NewDrift(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h, fl, metrics
}

// The schedule plans: one sweep message per target, a larger target in
// shards; nothing is swept in the planner's invocation.
func TestSchedulePlansSweepsPerTarget(t *testing.T) {
	q := &fakeQueue{}
	groups := []string{"sg-a", "sg-b", "sg-c"}
	h, fl, _ := newFleetDrift(t, Config{Queue: q, ShardSize: 2, ShardGroups: func(_ context.Context, tg rules.Target) ([]string, error) {
		if tg == tgtC {
			return groups, nil
		}
		return nil, nil
	}})
	if _, err := h.Handle(context.Background(), sample(t, "drift", "schedule.json")); err != nil {
		t.Fatal(err)
	}
	// Each names the schedule's run (its event id): they share its revoke budget.
	const run = `"run":"53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa"`
	want := []string{
		`{"sweep":{"account":"123456789012","region":"us-east-1",` + run + `}}`,
		`{"sweep":{"account":"111122223333","region":"eu-west-1",` + run + `}}`,
		`{"sweep":{"account":"444455556666","region":"us-east-1","groups":["sg-a","sg-b"],` + run + `}}`,
		`{"sweep":{"account":"444455556666","region":"us-east-1","groups":["sg-c"],` + run + `}}`,
	}
	if strings.Join(q.bodies, "\n") != strings.Join(want, "\n") {
		t.Errorf("sent\n%s\nwant\n%s", strings.Join(q.bodies, "\n"), strings.Join(want, "\n"))
	}
	if len(fl.runs) != 0 {
		t.Errorf("planner swept: %v", fl.runs)
	}
}

// Each sweep message sweeps its target only; a failing target fails its
// message alone; undecodable messages are dropped.
func TestSweepMessagesSweepTheirTarget(t *testing.T) {
	alerts := &fakeSNS{}
	h, fl, metrics := newFleetDrift(t, Config{Alerts: alerts, AlertTopicARN: "arn:aws:sns:us-east-1:123456789012:t"})
	fl.fail[tgtC] = errors.New("assume role: AccessDenied")
	out, err := h.Handle(context.Background(), sample(t, "drift", "sqs-sweep.json"))
	if err != nil {
		t.Fatal(err)
	}
	resp := out.(events.SQSEventResponse)
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "5e0f3a52-1b1c-4a4e-9f57-3f7a2b6c9d02" {
		t.Errorf("failures = %+v, want the 444455556666 message", resp.BatchItemFailures)
	}
	if want := "sweep  111122223333/eu-west-1|sweep sg-0123456789abcdef0 444455556666/us-east-1"; strings.Join(fl.runs, "|") != want {
		t.Errorf("runs = %q, want %q", fl.runs, want)
	}
	// EMF per target with Account and Region (and the dimensionless set of the alarms).
	lines := strings.Split(strings.TrimSpace(metrics.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("EMF lines: %q", lines)
	}
	var emf struct {
		AWS struct {
			CloudWatchMetrics []struct{ Dimensions [][]string }
		} `json:"_aws"`
		Account, Region string
		ReconcileErrors int
	}
	if err := json.Unmarshal([]byte(lines[1]), &emf); err != nil {
		t.Fatal(err)
	}
	if emf.Account != tgtC.Account || emf.Region != tgtC.Region || emf.ReconcileErrors != 1 ||
		len(emf.AWS.CloudWatchMetrics[0].Dimensions) != 2 || strings.Join(emf.AWS.CloudWatchMetrics[0].Dimensions[1], ",") != "Account,Region" {
		t.Errorf("EMF = %s", lines[1])
	}
}

// CloudTrail events from a target account sweep that target and group;
// the target role's own sessions are ignored.
func TestAPICallSweepsItsTarget(t *testing.T) {
	h, fl, _ := newFleetDrift(t, Config{IgnoreRoles: []string{"arn:aws:iam::111122223333:role/sgrules-target"}})
	ev := func(account, issuer string) json.RawMessage {
		return json.RawMessage(`{"version":"0","id":"e1","detail-type":"AWS API Call via CloudTrail","source":"aws.ec2","account":"` + account + `",
		"region":"eu-west-1","detail":{"eventID":"x","eventName":"RevokeSecurityGroupIngress","awsRegion":"eu-west-1",
		"userIdentity":{"arn":"arn:aws:sts::` + account + `:assumed-role/` + issuer + `/s","sessionContext":{"sessionIssuer":{"arn":"arn:aws:iam::` + account + `:role/` + issuer + `"}}},
		"requestParameters":{"groupId":"sg-0123456789abcdef0"}}}`)
	}
	if _, err := h.Handle(context.Background(), ev("111122223333", "admin")); err != nil {
		t.Fatal(err)
	}
	out, err := h.Handle(context.Background(), ev("111122223333", "sgrules-target"))
	if err != nil {
		t.Fatal(err)
	}
	if r := out.(report.Response); !strings.Contains(r.Ignored, "own call") {
		t.Errorf("target role's call: %+v", r)
	}
	if want := "cloudtrail:RevokeSecurityGroupIngress sg-0123456789abcdef0 111122223333/eu-west-1"; strings.Join(fl.runs, "|") != want {
		t.Errorf("runs = %q, want %q", fl.runs, want)
	}
}

// The SNS summary of a run over several targets is grouped by target.
func TestAlertGroupedByTarget(t *testing.T) {
	alerts := &fakeSNS{}
	h, _, _ := newFleetDrift(t, Config{Alerts: alerts, AlertTopicARN: "arn:aws:sns:us-east-1:123456789012:t"})
	if _, err := h.Handle(context.Background(), sample(t, "drift", "schedule.json")); err != nil {
		t.Fatal(err)
	}
	if len(alerts.in) != 1 {
		t.Fatalf("%d alerts, want 1", len(alerts.in))
	}
	in := alerts.in[0]
	if s := *in.Subject; !strings.Contains(s, "3 security group rules changed outside sgrules in 3 targets") {
		t.Errorf("subject %q", s)
	}
	for _, tg := range []rules.Target{hubHome, tgtB, tgtC} {
		if !strings.Contains(*in.Message, "== account "+tg.Account+", region "+tg.Region+" ==") {
			t.Errorf("message lacks %v:\n%s", tg, *in.Message)
		}
	}
}

var _ = trigger.KindSweep

// emptyFleet runs nothing: no rule file or ledger record is in any target.
type emptyFleet struct{ fakeFleet }

func (*emptyFleet) Reconcile(context.Context, reconcile.Request, []rules.Target) (reconcile.FleetResult, error) {
	return reconcile.FleetResult{}, nil
}

// A CloudTrail event for a target with no rule files (the fleet runs no
// target) still gets a drift report, and the report, its log line and the
// response name the event's account and region.
func TestAPICallReportNamesTargetWithoutFiles(t *testing.T) {
	logs := &bytes.Buffer{}
	h, err := NewDrift(Config{Fleet: &emptyFleet{}, Metrics: &bytes.Buffer{},
		Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ev := json.RawMessage(`{"version":"0","id":"e1","detail-type":"AWS API Call via CloudTrail","source":"aws.ec2","account":"111122223333",
		"region":"eu-west-1","detail":{"eventID":"x","eventName":"RevokeSecurityGroupIngress","awsRegion":"eu-west-1",
		"userIdentity":{"arn":"arn:aws:sts::111122223333:assumed-role/admin/s","sessionContext":{"sessionIssuer":{"arn":"arn:aws:iam::111122223333:role/admin"}}},
		"requestParameters":{"groupId":"sg-0123456789abcdef0"}}}`)
	out, err := h.Handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	d := out.(report.Response).Drift
	if d == nil || d.Account != tgtB.Account || d.Region != tgtB.Region {
		t.Fatalf("drift report = %+v, want account %s region %s", d, tgtB.Account, tgtB.Region)
	}
	lines := logLines(t, logs, "drift report")
	if len(lines) != 1 || lines[0]["account"] != tgtB.Account || lines[0]["region"] != tgtB.Region {
		t.Errorf("drift report log lines = %v", lines)
	}
}

// Config.Scope is on the report of every target, and on the log lines.
func TestScopeOnEveryReport(t *testing.T) {
	logs := &bytes.Buffer{}
	h, err := NewDrift(Config{Fleet: &fakeFleet{}, Metrics: &bytes.Buffer{},
		Logger: slog.New(slog.NewJSONHandler(logs, nil)), Scope: report.ScopeEveryGroup})
	if err != nil {
		t.Fatal(err)
	}
	out, err := h.Handle(context.Background(), sample(t, "drift", "schedule.json"))
	if err != nil {
		t.Fatal(err)
	}
	ts := out.(report.Response).Targets
	if len(ts) != 3 {
		t.Fatalf("targets %+v", ts)
	}
	for _, d := range ts {
		if d.Drift == nil || d.Drift.Scope != report.ScopeEveryGroup {
			t.Errorf("target %s/%s: report %+v", d.Account, d.Region, d.Drift)
		}
	}
	lines := logLines(t, logs, "drift report")
	if len(lines) != 3 {
		t.Fatalf("%d drift report lines, want 3", len(lines))
	}
	for _, l := range lines {
		if rep, _ := l["report"].(map[string]any); rep["scope"] != report.ScopeEveryGroup {
			t.Errorf("log line %v", l)
		}
	}
}

// The planner routes once per schedule: each message carries its
// target's route, and the sweep of the message hands it to the Fleet (so
// it reads only its target's ledger); a route too large for a message is
// left out (that sweep routes itself).
func TestSweepMessagesCarryTheirRoute(t *testing.T) {
	q := &fakeQueue{}
	h, fl, _ := newFleetDrift(t, Config{Queue: q})
	big := &reconcile.TargetRoute{}
	for i := range 2000 {
		big.Read = append(big.Read, fmt.Sprintf("rules/file-%04d.yaml", i))
	}
	fl.routes = map[rules.Target]*reconcile.TargetRoute{
		hubHome: {},
		tgtB:    {Read: []string{"rules/new.yaml"}, Moves: map[string]rules.Target{"rules/x.yaml": tgtC}},
		tgtC:    big,
	}
	if _, err := h.Handle(context.Background(), sample(t, "drift", "schedule.json")); err != nil {
		t.Fatal(err)
	}
	if len(q.bodies) != 3 || !strings.Contains(q.bodies[1], `"route":{"read":["rules/new.yaml"],"moves":[{"key":"rules/x.yaml","account":"444455556666","region":"us-east-1"}]}`) ||
		!strings.Contains(q.bodies[0], `"route":{}`) || strings.Contains(q.bodies[2], `"route"`) {
		t.Fatalf("sent\n%s", strings.Join(q.bodies, "\n"))
	}
	var recs []events.SQSMessage
	for i, b := range q.bodies {
		recs = append(recs, events.SQSMessage{MessageId: fmt.Sprint(i), Body: b, EventSource: "aws:sqs",
			EventSourceARN: "arn:aws:sqs:us-east-1:123456789012:sgrules-sweeps"})
	}
	ev, err := json.Marshal(events.SQSEvent{Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if r := fl.got[tgtB]; r == nil || !reflect.DeepEqual(*r, *fl.routes[tgtB]) {
		t.Errorf("route of %s = %+v, want %+v", tgtB, r, fl.routes[tgtB])
	}
	if r := fl.got[hubHome]; r == nil || len(r.Read)+len(r.Moves) != 0 {
		t.Errorf("route of %s = %+v, want an empty one", hubHome, r)
	}
	if r := fl.got[tgtC]; r != nil {
		t.Errorf("route of %s = %+v, want none (too large)", tgtC, r)
	}
}

// A sweep of one target that no planner routed, a CloudTrail event's or
// an expiry schedule's, reads only that target's records: the Fleet is
// given a route that names nothing (reconcile.Request.Route), not none
// (which routes every file of every target, reading every target's
// records).
func TestUnplannedSweepsReadOnlyTheirTarget(t *testing.T) {
	for name, ev := range map[string]json.RawMessage{
		"cloudtrail": json.RawMessage(`{"version":"0","id":"e1","detail-type":"AWS API Call via CloudTrail","source":"aws.ec2","account":"111122223333",
		"region":"eu-west-1","detail":{"eventID":"x","eventName":"RevokeSecurityGroupIngress","awsRegion":"eu-west-1",
		"userIdentity":{"arn":"arn:aws:sts::111122223333:assumed-role/admin/s","sessionContext":{"sessionIssuer":{"arn":"arn:aws:iam::111122223333:role/admin"}}},
		"requestParameters":{"groupId":"sg-0123456789abcdef0"}}}`),
		"expiry": json.RawMessage(`{"sweep":{"account":"111122223333","region":"eu-west-1"}}`),
	} {
		t.Run(name, func(t *testing.T) {
			h, fl, _ := newFleetDrift(t, Config{})
			if _, err := h.Handle(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
			tg := rules.Target{Account: "111122223333", Region: "eu-west-1"}
			if len(fl.runs) != 1 {
				t.Fatalf("runs = %q, want one sweep of %s", fl.runs, tg)
			}
			r, ok := fl.got[tg]
			if !ok || r == nil {
				t.Fatalf("the sweep of %s had no route (it would read every target's records): runs %q", tg, fl.runs)
			}
			if len(r.Read) != 0 || len(r.Moves) != 0 {
				t.Errorf("route %+v, want one naming nothing", r)
			}
		})
	}
}
