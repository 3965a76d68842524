package fleetrt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schedtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/adapters/expirysched"
	"github.com/sgrules/sgrules/internal/config"
	"github.com/sgrules/sgrules/internal/lambda/handler"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/pkg/rules"
)

// On time: the reconcile function keeps one EventBridge Scheduler
// schedule per target at its earliest deadline; it moves when the file's
// deadline moves and goes when the file goes. Its payload makes the drift
// function sweep exactly that target.
func TestReconcileKeepsTheTargetsExpirySchedule(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	b := w.target(acctB, "")
	const (
		key       = "rules/tmp.yaml"
		driftARN  = "arn:aws:lambda:us-east-1:123456789012:function:sgrules-drift"
		schedRole = "arn:aws:iam::123456789012:role/sgrules-expiry"
	)
	sch := scheduler.NewFromConfig(w.hub)
	if _, err := sch.CreateScheduleGroup(ctx, &scheduler.CreateScheduleGroupInput{Name: aws.String("sgrules")}); err != nil {
		t.Fatal(err)
	}
	fl, err := New(ctx, config.Config{Table: "ledger", Bucket: "rules", Prefix: "rules/", MaxRevoke: 50, TargetAccounts: []string{acctB},
		TargetRole: config.DefaultTargetRole, ExpiryTargetARN: driftARN, ExpiryRoleARN: schedRole}, w.hub, EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	expiry, err := fl.Expiry()
	if err != nil || expiry == nil {
		t.Fatalf("Expiry() = %v, %v", expiry != nil, err)
	}
	h, err := handler.NewReconcile(handler.Config{Fleet: fl, Engine: fl.HomeEngine(), Bucket: "rules", Prefix: "rules/",
		Metrics: &strings.Builder{}, Expiry: expiry})
	if err != nil {
		t.Fatal(err)
	}
	put := func(deadline time.Time) {
		t.Helper()
		body := fmt.Sprintf("account: %q\nrules:\n  tmp:\n    securityGroup: %s\n    type: ingress\n    protocol: tcp\n    fromPort: 22\n    toPort: 22\n"+
			"    cidrBlocks: [198.51.100.7/32]\n    description: tmp\n    expiresAt: %s\n", acctB, w.web[b], rules.FormatExpiresAt(deadline))
		if _, err := s3.NewFromConfig(w.hub, awsconfig.S3Options).PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String("rules"), Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	notify := func(event string) {
		t.Helper()
		ev := `{"Records":[{"eventSource":"aws:s3","eventName":"` + event + `","s3":{"bucket":{"name":"rules"},"object":{"key":"` + key + `"}}}]}`
		out, err := h.Handle(ctx, json.RawMessage(ev))
		if err != nil {
			t.Fatal(err)
		}
		if resp := out.(report.Response); resp.Error != "" {
			t.Fatalf("reconcile: %s", resp.Error)
		}
	}
	schedule := func() (*scheduler.GetScheduleOutput, bool) {
		t.Helper()
		out, err := sch.GetSchedule(ctx, &scheduler.GetScheduleInput{GroupName: aws.String("sgrules"), Name: aws.String(expirysched.Name(b.Account, b.Region))})
		var nf *schedtypes.ResourceNotFoundException
		if errors.As(err, &nf) {
			return nil, false
		}
		if err != nil {
			t.Fatal(err)
		}
		return out, true
	}

	// A rule expiring soon: in 5 min, not 60 s, so that it has not
	// expired yet when the drift function sweeps below, however loaded
	// the machine running the test is.
	first := time.Now().Add(5 * time.Minute).Truncate(time.Second)
	put(first)
	notify("ObjectCreated:Put")
	if got := w.ingress(b); got != "22 tmp" {
		t.Fatalf("B: ingress %q, want the rule", got)
	}
	s, ok := schedule()
	if !ok {
		t.Fatal("no expiry schedule for B after the file was applied")
	}
	if e := aws.ToString(s.ScheduleExpression); e != expirysched.Expression(first) {
		t.Errorf("schedule %s, want %s (deadline %s)", e, expirysched.Expression(first), first.UTC())
	}
	if aws.ToString(s.Target.Arn) != driftARN || aws.ToString(s.Target.RoleArn) != schedRole || s.ActionAfterCompletion != schedtypes.ActionAfterCompletionDelete {
		t.Errorf("schedule target %s role %s after completion %s", aws.ToString(s.Target.Arn), aws.ToString(s.Target.RoleArn), s.ActionAfterCompletion)
	}
	if _, ok := func() (*scheduler.GetScheduleOutput, bool) {
		out, err := sch.GetSchedule(ctx, &scheduler.GetScheduleInput{GroupName: aws.String("sgrules"), Name: aws.String(expirysched.Name(w.home.Account, w.home.Region))})
		return out, err == nil
	}(); ok {
		t.Error("a schedule for the home target, which has no deadline")
	}

	// The schedule fires (and deletes itself): what it sends makes the
	// drift function sweep B alone, and put B's schedule back at its
	// next deadline (this one, not passed yet), naming itself, the
	// function invoked (EXPIRY_TARGET_ARN empty), without the qualifier.
	if _, err := sch.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{GroupName: aws.String("sgrules"), Name: s.Name}); err != nil {
		t.Fatal(err)
	}
	dfl, err := New(ctx, config.Config{Table: "ledger", Bucket: "rules", Prefix: "rules/", MaxRevoke: 50, TargetAccounts: []string{acctB},
		TargetRole: config.DefaultTargetRole, ExpiryRoleARN: schedRole}, w.hub, EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dexpiry, err := dfl.Expiry()
	if err != nil || dexpiry == nil {
		t.Fatalf("drift Expiry() = %v, %v", dexpiry != nil, err)
	}
	dh, err := handler.NewDrift(handler.Config{Fleet: dfl, Metrics: &strings.Builder{}, Expiry: dexpiry})
	if err != nil {
		t.Fatal(err)
	}
	lctx := lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: "r1", InvokedFunctionArn: driftARN + ":live"})
	out, err := dh.Handle(lctx, json.RawMessage(aws.ToString(s.Target.Input)))
	if err != nil {
		t.Fatal(err)
	}
	if resp := out.(report.Response); len(resp.Targets) != 1 || resp.Targets[0].Account != b.Account || resp.Targets[0].Region != b.Region || resp.Error != "" {
		raw, _ := json.Marshal(resp)
		t.Errorf("the schedule's payload ran %s, want a sweep of %s alone", raw, b)
	}
	if s, ok := schedule(); !ok {
		t.Error("the drift function's sweep did not put the schedule back")
	} else if e, arn := aws.ToString(s.ScheduleExpression), aws.ToString(s.Target.Arn); e != expirysched.Expression(first) || arn != driftARN {
		t.Errorf("after the drift sweep: schedule %s invoking %s, want %s invoking %s", e, arn, expirysched.Expression(first), driftARN)
	}

	// The deadline moves later: so does the schedule.
	later := time.Now().Add(2 * time.Hour).Truncate(time.Second)
	put(later)
	notify("ObjectCreated:Put")
	if s, ok := schedule(); !ok {
		t.Error("no schedule after the deadline moved")
	} else if e := aws.ToString(s.ScheduleExpression); e != expirysched.Expression(later) {
		t.Errorf("after the deadline moved: schedule %s, want %s", e, expirysched.Expression(later))
	}

	// The file goes: so do its rule and the schedule.
	w.remove(key)
	notify("ObjectRemoved:Delete")
	if got := w.ingress(b); got != "" {
		t.Errorf("B: ingress %q after the file was removed", got)
	}
	if _, ok := schedule(); ok {
		t.Error("the expiry schedule is left after the file was removed")
	}
}

func TestUnqualified(t *testing.T) {
	for in, want := range map[string]string{
		"arn:aws:lambda:eu-west-1:123456789012:function:drift":         "arn:aws:lambda:eu-west-1:123456789012:function:drift",
		"arn:aws:lambda:eu-west-1:123456789012:function:drift:live":    "arn:aws:lambda:eu-west-1:123456789012:function:drift",
		"arn:aws:lambda:eu-west-1:123456789012:function:drift:$LATEST": "arn:aws:lambda:eu-west-1:123456789012:function:drift",
		"": "",
	} {
		if got := unqualified(in); got != want {
			t.Errorf("unqualified(%q) = %q, want %q", in, got, want)
		}
	}
}
