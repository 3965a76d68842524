package handler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/sgrules/sgrules/internal/lambda/trigger"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/pkg/rules"
)

const (
	bucket   = "sgrules-rules-123456789012-eu-west-1"
	ownRole  = "arn:aws:iam::123456789012:role/sgrules-drift-eu-west-1"
	otherBkt = "someone-elses-bucket"
)

// fakeEngine records requests; fail decides the error for a request.
type fakeEngine struct {
	reqs []reconcile.Request
	fail func(reconcile.Request) error
	res  func(reconcile.Request) reconcile.Result
}

func (f *fakeEngine) Reconcile(_ context.Context, req reconcile.Request) (reconcile.Result, error) {
	f.reqs = append(f.reqs, req)
	var res reconcile.Result
	if f.res != nil {
		res = f.res(req)
	} else {
		for _, k := range req.Keys {
			res.Sources = append(res.Sources, reconcile.SourceResult{Key: k, Status: reconcile.StatusApplied})
		}
	}
	if f.fail != nil {
		if err := f.fail(req); err != nil {
			return reconcile.Result{}, err
		}
	}
	return res, nil
}

func sample(t *testing.T, function, name string) json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "functions", function, "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testHandler is either function's handler.
type testHandler interface {
	Handle(ctx context.Context, raw json.RawMessage) (any, error)
	handled() []trigger.Kind
}

func (h *core) handled() []trigger.Kind { return h.kinds }

func newTest(t *testing.T, drift bool, cfg Config) (testHandler, *fakeEngine, *bytes.Buffer) {
	t.Helper()
	eng := &fakeEngine{}
	logs := &bytes.Buffer{}
	cfg.Engine = eng
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	if cfg.Prefix == "" {
		cfg.Prefix = "rules/"
	}
	if cfg.Bucket == "" {
		cfg.Bucket = bucket
	}
	if cfg.Metrics == nil {
		cfg.Metrics = &bytes.Buffer{}
	}
	var h testHandler
	var err error
	if drift {
		h, err = NewDrift(cfg)
	} else {
		h, err = NewReconcile(cfg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return h, eng, logs
}

func TestReconcileEvents(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		cfg     Config
		want    []reconcile.Request
		ignored string
	}{
		{
			name: "s3 put", file: "s3-put.json",
			want: []reconcile.Request{{Keys: []string{"rules/team a/web=prod.yaml"}, Reason: "ObjectCreated:Put"}},
		},
		{
			name: "s3 deletes: non-rule file skipped", file: "s3-delete-multi.json",
			want: []reconcile.Request{{Keys: []string{"rules/db.yml"}, Reason: "ObjectRemoved:DeleteMarkerCreated"}},
		},
		{
			name: "eventbridge created", file: "eventbridge-s3-created.json",
			want: []reconcile.Request{{Keys: []string{"rules/team a/web+1.yaml"}, Reason: "Object Created:PutObject"}},
		},
		{
			name: "other prefix: nothing to do", file: "s3-put.json", cfg: Config{Prefix: "other/"},
			ignored: "no rule files",
		},
		{
			name: "other bucket: nothing to do", file: "eventbridge-s3-deleted.json", cfg: Config{Bucket: otherBkt},
			ignored: "no rule files",
		},
		{
			name: "s3 test event", file: "s3-test-event.json",
			ignored: "s3:TestEvent",
		},
		{
			name: "policy put: a full sweep re-checks every file", file: "s3-put-policy.json", cfg: Config{PolicyKey: "policy/sgrules.yaml"},
			want: []reconcile.Request{{All: true, Reason: "policy:ObjectCreated:Put"}},
		},
		{
			name: "policy key not configured: not a rule file", file: "s3-put-policy.json",
			ignored: "no rule files",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, eng, _ := newTest(t, false, tc.cfg)
			out, err := h.Handle(context.Background(), sample(t, "reconcile", tc.file))
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if !reflect.DeepEqual(eng.reqs, tc.want) {
				t.Errorf("requests = %+v, want %+v", eng.reqs, tc.want)
			}
			resp, ok := out.(report.Response)
			if !ok {
				t.Fatalf("response %T, want Response", out)
			}
			if resp.Ignored != tc.ignored {
				t.Errorf("Ignored = %q, want %q", resp.Ignored, tc.ignored)
			}
			if tc.want != nil && (len(resp.Sources) != len(tc.want[0].Keys) || resp.Request == nil) {
				t.Errorf("response = %+v", resp)
			}
		})
	}
}

func TestReconcileErrors(t *testing.T) {
	retryable := fmt.Errorf("describe rules: %w", errors.New("ThrottlingException"))
	terminal := &rules.ValidationError{Diagnostics: rules.Diagnostics{{File: "web.yaml", Line: 3, Col: 5, Severity: rules.SeverityError, Msg: "bad port"}}}
	tests := []struct {
		name      string
		err       error
		wantErr   bool
		wantInRes string
	}{
		{"retryable error is returned", retryable, true, ""},
		{"validation error is logged, not retried", fmt.Errorf("reconcile: %w", terminal), false, "bad port"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, eng, logs := newTest(t, false, Config{})
			eng.fail = func(reconcile.Request) error { return tc.err }
			out, err := h.Handle(context.Background(), sample(t, "reconcile", "s3-put.json"))
			if (err != nil) != tc.wantErr {
				t.Fatalf("Handle error = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr {
				if !errors.Is(err, tc.err) {
					t.Errorf("error %v does not wrap %v", err, tc.err)
				}
				if !strings.Contains(logs.String(), "will be retried") {
					t.Errorf("logs:\n%s", logs)
				}
				return
			}
			if resp := out.(report.Response); !strings.Contains(resp.Error, tc.wantInRes) {
				t.Errorf("Response.Error = %q, want it to contain %q", resp.Error, tc.wantInRes)
			}
			if !strings.Contains(logs.String(), "terminal, not retried") {
				t.Errorf("logs:\n%s", logs)
			}
		})
	}
}

func TestInvalidSourcesAreLogged(t *testing.T) {
	h, eng, logs := newTest(t, false, Config{})
	eng.res = func(req reconcile.Request) reconcile.Result {
		return reconcile.Result{Sources: []reconcile.SourceResult{{
			Key: req.Keys[0], Status: reconcile.StatusInvalid,
			Diagnostics: rules.Diagnostics{{File: req.Keys[0], Line: 7, Col: 3, Rule: "web", Severity: rules.SeverityError, Msg: "fromPort > toPort"}},
		}}}
	}
	if _, err := h.Handle(context.Background(), sample(t, "reconcile", "s3-put.json")); err != nil {
		t.Fatalf("an invalid source must not fail the invocation: %v", err)
	}
	for _, want := range []string{`"msg":"invalid rule source"`, `rules/team a/web=prod.yaml:7:3: web: fromPort > toPort`, `"invalid":1`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
}

func TestSQSBatch(t *testing.T) {
	h, eng, logs := newTest(t, false, Config{})
	// The third message (SNS-wrapped deletes) fails retryably.
	eng.fail = func(req reconcile.Request) error {
		if slices.Contains(req.Keys, "rules/db.yml") {
			return errors.New("ledger: ProvisionedThroughputExceededException")
		}
		return nil
	}
	out, err := h.Handle(context.Background(), sample(t, "reconcile", "sqs-batch.json"))
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	want := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: "c80e8021-a70a-42c7-a470-796e1186f753"}}}
	if !reflect.DeepEqual(out, want) {
		t.Errorf("response = %+v, want %+v", out, want)
	}
	// One run for the whole batch first; it fails (it includes
	// rules/db.yml), so the batch is retried message by message.
	wantReqs := []reconcile.Request{
		{Keys: []string{"rules/db.yml", "rules/team a/web+1.yaml", "rules/team a/web=prod.yaml"},
			Reason: "Object Created:PutObject,ObjectCreated:Put,ObjectRemoved:DeleteMarkerCreated"},
		{Keys: []string{"rules/team a/web=prod.yaml"}, Reason: "ObjectCreated:Put"},
		{Keys: []string{"rules/db.yml"}, Reason: "ObjectRemoved:DeleteMarkerCreated"},
		{Keys: []string{"rules/team a/web+1.yaml"}, Reason: "Object Created:PutObject"},
	}
	if !reflect.DeepEqual(eng.reqs, wantReqs) {
		t.Errorf("requests = %+v, want %+v", eng.reqs, wantReqs)
	}
	// The two poison messages are logged and dropped.
	if n := strings.Count(logs.String(), "dropping undecodable SQS message"); n != 2 {
		t.Errorf("%d poison messages logged, want 2:\n%s", n, logs)
	}
	// The response marshals as Lambda expects.
	b, _ := json.Marshal(out)
	if string(b) != `{"batchItemFailures":[{"itemIdentifier":"c80e8021-a70a-42c7-a470-796e1186f753"}]}` {
		t.Errorf("JSON = %s", b)
	}
}

func sqsEvent(t *testing.T, bodies map[string]string) json.RawMessage {
	t.Helper()
	var ev events.SQSEvent
	for _, id := range slices.Sorted(maps.Keys(bodies)) {
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: id, EventSource: "aws:sqs", Body: bodies[id]})
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func s3Body(key string) string {
	return `{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"` + bucket + `"},"object":{"key":"` + key + `"}}}]}`
}

// A batch is one run, so a file renamed (deleted under one key, created
// under another) is planned as one change, make before break; a key named
// by several messages is read once.
func TestSQSBatchIsOneRun(t *testing.T) {
	h, eng, _ := newTest(t, false, Config{})
	out, err := h.Handle(context.Background(), sqsEvent(t, map[string]string{
		"m1": s3Body("rules/a.yaml"),
		"m2": s3Body("rules/a.yaml"),
		"m3": s3Body("rules/b.yaml"),
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got := out.(events.SQSEventResponse).BatchItemFailures; len(got) != 0 {
		t.Errorf("failures = %v", got)
	}
	if len(eng.reqs) != 1 || !slices.Equal(eng.reqs[0].Keys, []string{"rules/a.yaml", "rules/b.yaml"}) {
		t.Errorf("requests = %+v, want one run of rules/a.yaml and rules/b.yaml", eng.reqs)
	}
}

func TestSQSBatchOutOfTime(t *testing.T) {
	h, eng, _ := newTest(t, false, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	eng.fail = func(reconcile.Request) error { cancel(); return ctx.Err() }
	out, err := h.Handle(ctx, sqsEvent(t, map[string]string{"m1": s3Body("rules/a.yaml"), "m2": s3Body("rules/b.yaml")}))
	if err != nil {
		t.Fatal(err)
	}
	want := []events.SQSBatchItemFailure{{ItemIdentifier: "m1"}, {ItemIdentifier: "m2"}}
	if got := out.(events.SQSEventResponse).BatchItemFailures; !reflect.DeepEqual(got, want) {
		t.Errorf("failures = %v, want %v", got, want)
	}
	if len(eng.reqs) != 1 {
		t.Errorf("%d engine calls after the deadline, want 1 (the one that ran out of time)", len(eng.reqs))
	}
}

func TestCloudFormation(t *testing.T) {
	h, eng, _ := newTest(t, false, Config{})
	eng.res = func(req reconcile.Request) reconcile.Result {
		var res reconcile.Result
		for k := range req.Inline {
			res.Sources = append(res.Sources, reconcile.SourceResult{Key: k, Status: reconcile.StatusApplied, RuleIDs: []string{"sgr-0123456789abcdef0"}})
		}
		return res
	}
	var got cfn.Response
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			t.Error(err)
		}
	}))
	defer srv.Close()
	var ev map[string]any
	if err := json.Unmarshal(sample(t, "reconcile", "cfn-create.json"), &ev); err != nil {
		t.Fatal(err)
	}
	ev["ResponseURL"] = srv.URL
	ev["ResourceProperties"] = map[string]any{"securityGroup": "sg-0123456789abcdef0", "type": "ingress",
		"protocol": "tcp", "fromPort": "443", "toPort": "443", "cidrBlocks": []any{"10.0.0.0/8"}}
	raw, _ := json.Marshal(ev)
	if _, err := h.Handle(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
	if got.Status != cfn.StatusSuccess || got.PhysicalResourceID != "cfn/app/WebIngress" || got.Data["RuleId"] != "sgr-0123456789abcdef0" {
		t.Errorf("response %+v", got)
	}
	if len(eng.reqs) != 1 || eng.reqs[0].Inline["cfn/app/WebIngress"].File == nil {
		t.Errorf("engine requests %+v, want one inline cfn/app/WebIngress", eng.reqs)
	}
}

func TestDriftEvents(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		cfg     Config
		want    []reconcile.Request
		ignored string
	}{
		{
			name: "schedule sweeps everything", file: "schedule.json",
			want: []reconcile.Request{{All: true, Reason: "schedule"}},
		},
		{
			name: "report mode is a dry run", file: "schedule.json", cfg: Config{DryRun: true},
			want: []reconcile.Request{{All: true, Reason: "schedule", DryRun: true}},
		},
		{
			name: "authorize by someone: sweep the group", file: "cloudtrail-authorize-ingress.json", cfg: Config{IgnoreRoles: []string{ownRole}},
			want: []reconcile.Request{{All: true, Groups: []string{"sg-0123456789abcdef0"}, Reason: "cloudtrail:AuthorizeSecurityGroupIngress"}},
		},
		{
			name: "modify rules", file: "cloudtrail-modify-rules.json", cfg: Config{DryRun: true},
			want: []reconcile.Request{{All: true, Groups: []string{"sg-0fedcba9876543210"}, Reason: "cloudtrail:ModifySecurityGroupRules", DryRun: true}},
		},
		{
			name: "own role's call is ignored", file: "cloudtrail-revoke-own-role.json", cfg: Config{IgnoreRoles: []string{"arn:aws:iam::123456789012:role/other", ownRole}},
			ignored: "own call by " + ownRole,
		},
		{
			name: "own role unknown: its call is swept", file: "cloudtrail-revoke-own-role.json",
			want: []reconcile.Request{{All: true, Groups: []string{"sg-0fedcba9876543210"}, Reason: "cloudtrail:RevokeSecurityGroupIngress"}},
		},
		{
			name: "failed call is ignored", file: "cloudtrail-authorize-failed-default-vpc.json",
			ignored: "failed call: Client.InvalidPermission.Duplicate",
		},
		{
			name: "group named, not identified: sweep all", file: "cloudtrail-update-descriptions-by-name.json",
			want: []reconcile.Request{{All: true, Groups: []string{}, Reason: "cloudtrail:UpdateSecurityGroupRuleDescriptionsIngress"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, eng, _ := newTest(t, true, tc.cfg)
			out, err := h.Handle(context.Background(), sample(t, "drift", tc.file))
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			// A CloudTrail event's request carries its caller (the history
			// names it), compared apart,
			var reqs []reconcile.Request
			for _, r := range eng.reqs {
				if strings.HasPrefix(r.Reason, "cloudtrail:") && (r.Caller == nil || r.Caller.Principal == "" || r.Caller.EventName == "" ||
					!slices.Equal(r.Caller.Groups, r.Groups)) {
					t.Errorf("request %+v: caller %+v", r, r.Caller)
				}
				// and the route of an unplanned sweep (its target's records
				// only: TestUnplannedSweepsReadOnlyTheirTarget).
				if strings.HasPrefix(r.Reason, "cloudtrail:") && (r.Route == nil || len(r.Route.Read)+len(r.Route.Moves) != 0) {
					t.Errorf("request %+v: route %+v", r, r.Route)
				}
				r.Caller, r.Route = nil, nil
				reqs = append(reqs, r)
			}
			if !reflect.DeepEqual(reqs, tc.want) {
				t.Errorf("requests = %+v, want %+v", reqs, tc.want)
			}
			if got := out.(report.Response).Ignored; got != tc.ignored {
				t.Errorf("Ignored = %q, want %q", got, tc.ignored)
			}
		})
	}
}

func TestWrongFunction(t *testing.T) {
	drift, eng, _ := newTest(t, true, Config{})
	if _, err := drift.Handle(context.Background(), sample(t, "reconcile", "s3-put.json")); err == nil || !strings.Contains(err.Error(), "drift function: unexpected objects event") {
		t.Errorf("drift handler on an S3 event: %v", err)
	}
	rec, _, _ := newTest(t, false, Config{})
	if _, err := rec.Handle(context.Background(), sample(t, "drift", "cloudtrail-modify-rules.json")); err == nil || !strings.Contains(err.Error(), "reconcile function: unexpected api-call event") {
		t.Errorf("reconcile handler on a CloudTrail event: %v", err)
	}
	if _, err := rec.Handle(context.Background(), json.RawMessage(`{"hello":1}`)); err == nil || !strings.Contains(err.Error(), `"hello"`) {
		t.Errorf("unknown event: %v", err)
	}
	if len(eng.reqs) != 0 {
		t.Errorf("engine called: %+v", eng.reqs)
	}
}

func TestNewRequiresEngine(t *testing.T) {
	if _, err := NewReconcile(Config{}); err == nil {
		t.Error("NewReconcile without an engine succeeded")
	}
}

// Every request names its Lambda invocation as the lease holder (the
// wrapped engine serves CloudFormation requests too); outside Lambda it names
// none (the engine's holder is used).
func TestRequestHolder(t *testing.T) {
	h, eng, _ := newTest(t, false, Config{})
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-1"})
	if _, err := h.Handle(ctx, sample(t, "reconcile", "s3-put.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Handle(context.Background(), sample(t, "reconcile", "s3-put.json")); err != nil {
		t.Fatal(err)
	}
	if len(eng.reqs) != 2 || eng.reqs[0].Holder != "lambda:req-1" || eng.reqs[1].Holder != "" {
		t.Errorf("requests = %+v, want holder lambda:req-1, then none", eng.reqs)
	}
}

func TestIsTerminal(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{errors.New("throttled"), false},
		{fmt.Errorf("x: %w", &rules.ValidationError{}), true},
		{context.DeadlineExceeded, false},
	} {
		if got := IsTerminal(tc.err); got != tc.want {
			t.Errorf("IsTerminal(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// Every kind the decoder knows is handled by one of the two functions.
func TestEveryKindHasAFunction(t *testing.T) {
	r, _, _ := newTest(t, false, Config{})
	d, _, _ := newTest(t, true, Config{})
	for _, k := range triggerKinds(t) {
		if !slices.Contains(r.handled(), k) && !slices.Contains(d.handled(), k) {
			t.Errorf("no function handles %s events", k)
		}
	}
}

// A broken policy is logged by the engine; the reconcile function writes
// the PolicyInvalid metric (the template's alarm) and succeeds.
func TestInvalidPolicyWritesMetric(t *testing.T) {
	metrics := &bytes.Buffer{}
	h, eng, _ := newTest(t, false, Config{Metrics: metrics, PolicyKey: "policy/sgrules.yaml"})
	eng.res = func(req reconcile.Request) reconcile.Result {
		return reconcile.Result{Policy: reconcile.PolicyReport{Invalid: &reconcile.PolicyError{Key: "policy/sgrules.yaml"}}}
	}
	if _, err := h.Handle(context.Background(), sample(t, "reconcile", "s3-put-policy.json")); err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := json.Unmarshal(metrics.Bytes(), &values); err != nil || values["PolicyInvalid"] != 1.0 {
		t.Fatalf("metrics %q: %v", metrics, err)
	}
}

// A batch naming the policy key is one full sweep (it re-checks every
// file, those of the batch included); a retryable failure fails every
// message.
func TestSQSBatchWithPolicyIsOneSweep(t *testing.T) {
	h, eng, _ := newTest(t, false, Config{PolicyKey: "policy/sgrules.yaml"})
	body := map[string]string{"m1": s3Body("rules/a.yaml"), "m2": s3Body("policy/sgrules.yaml")}
	out, err := h.Handle(context.Background(), sqsEvent(t, body))
	if err != nil {
		t.Fatal(err)
	}
	if got := out.(events.SQSEventResponse).BatchItemFailures; len(got) != 0 {
		t.Errorf("failures = %v", got)
	}
	if want := []reconcile.Request{{All: true, Reason: "policy:ObjectCreated:Put"}}; !reflect.DeepEqual(eng.reqs, want) {
		t.Errorf("requests = %+v, want %+v", eng.reqs, want)
	}
	eng.reqs = nil
	eng.fail = func(reconcile.Request) error { return errors.New("read policy: SlowDown") }
	out, _ = h.Handle(context.Background(), sqsEvent(t, body))
	if got := out.(events.SQSEventResponse).BatchItemFailures; len(got) != 2 || len(eng.reqs) != 1 {
		t.Errorf("failures = %v after %d runs, want both messages after one", got, len(eng.reqs))
	}
}

// Each function has its own handler, switched by no setting of the
// other's: the reconcile handler runs a schedule itself and writes no
// drift report though its Config names a sweep queue; the drift handler
// reports the drift of every run with no setting asking for it.
func TestEachFunctionItsOwnHandler(t *testing.T) {
	q := &fakeQueue{}
	rec, eng, logs := newTest(t, false, Config{Queue: q})
	out, err := rec.Handle(context.Background(), sample(t, "drift", "schedule.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(q.bodies) != 0 || len(eng.reqs) != 1 || eng.reqs[0].Reason != "schedule" || !eng.reqs[0].All {
		t.Errorf("reconcile handler on a schedule: sent %v, ran %+v; want one sweep of all, nothing sent", q.bodies, eng.reqs)
	}
	if resp := out.(report.Response); resp.Drift != nil || strings.Contains(logs.String(), "drift report") {
		t.Errorf("reconcile handler wrote a drift report: %+v\n%s", resp.Drift, logs)
	}
	drift, _, logs := newTest(t, true, Config{})
	out, err = drift.Handle(context.Background(), sample(t, "drift", "schedule.json"))
	if err != nil {
		t.Fatal(err)
	}
	if resp := out.(report.Response); resp.Drift == nil || !strings.Contains(logs.String(), `"msg":"drift report"`) {
		t.Errorf("drift handler wrote no drift report: %+v\n%s", resp, logs)
	}
}
