package main

import (
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schedtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/adapters/expirysched"
	"github.com/sgrules/sgrules/internal/config"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/internal/testutil/rie"
	"github.com/sgrules/sgrules/pkg/rules"
)

// The expiry end-to-end test (issue 26, "Done when"): the real reconcile
// and drift bootstraps under the emulator, against moto's EC2, S3,
// DynamoDB and EventBridge Scheduler, with the template's environment.
// The functions read the real clock (there is no clock override in them,
// on purpose: a knob that moves time would be a way around every
// deadline), so the test waits once for a deadline 60 s ahead.

const (
	expiryDriftARN = "arn:aws:lambda:us-east-1:123456789012:function:sgrules-drift"
	expiryRoleARN  = "arn:aws:iam::123456789012:role/sgrules-expiry"
	expiryGroup    = "sgrules-expiry"
)

// tempRule is a file of one SSH rule on the group web of its target
// (header: its account and region), expiring at deadline.
func tempRule(header, name string, deadline time.Time) string {
	return header + "rules:\n  " + name + ":\n    securityGroup: {tags: {Name: web}}\n    type: ingress\n    protocol: tcp\n" +
		"    fromPort: 22\n    toPort: 22\n    cidrBlocks: [198.51.100.7/32]\n    description: " + name + "\n" +
		"    expiresAt: " + rules.FormatExpiresAt(deadline) + "\n"
}

// s3Put is the S3 notification of a Put of key, as S3 sends it.
func s3Put(key string) []byte {
	ev := map[string]any{"Records": []any{map[string]any{
		"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
		"s3": map[string]any{"bucket": map[string]any{"name": bucket}, "object": map[string]any{"key": url.QueryEscape(key)}},
	}}}
	b, _ := json.Marshal(ev)
	return b
}

// hasSSH tells whether a target's group web has an ingress rule on port 22
// from 198.51.100.7/32 (the temporary rules').
func (w *fleetWorld) hasSSH(tg rules.Target) bool {
	return slices.ContainsFunc(w.rules(tg), func(l string) bool { return strings.Contains(l, "|ingress|tcp|22|22|cidr4:198.51.100.7/32 ") })
}

// TestExpiryE2E: a file with a rule expiring in 60 s is applied by the
// reconcile function, which keeps a one-time schedule for the rule's
// target at the deadline, invoking the drift function with that target's
// sweep; after the deadline the drift function, invoked with exactly the
// schedule's Target.Input, revokes the rule (and that target's only) and
// deletes the schedule, no deadline being left there. Another target's
// temporary rule, whose schedule was deleted underneath, is revoked by the
// next scheduled sweep. A rule already expired in a new file is never
// authorized: the file is applied without it, with a warning.
func TestExpiryE2E(t *testing.T) {
	w := newFleetWorld(t)
	ctx := t.Context()
	sch := scheduler.NewFromConfig(w.hub)
	if _, err := sch.CreateScheduleGroup(ctx, &scheduler.CreateScheduleGroupInput{Name: aws.String(expiryGroup)}); err != nil {
		t.Fatal(err)
	}
	common := []string{"STATE_TABLE=" + table, "RULES_BUCKET=" + bucket, "RULES_PREFIX=rules/",
		"TARGET_ACCOUNTS=" + targetAccount, "TARGET_ROLE=" + config.DefaultTargetRole,
		"EXPIRY_ROLE_ARN=" + expiryRoleARN, "EXPIRY_SCHEDULE_GROUP=" + expiryGroup, "AWS_LAMBDA_LOG_FORMAT=JSON"}
	// As template.yaml sets them: the reconcile function names the drift
	// function; the drift function, which cannot name itself, schedules
	// the function invoked. No SWEEP_QUEUE_URL: a scheduled event sweeps
	// every target in its own invocation.
	rec := rie.Start(t, rie.Build(t, "./functions/reconcile"), append(w.srv.Env(), append(common, "EXPIRY_TARGET_ARN="+expiryDriftARN)...))
	drift := rie.Start(t, rie.Build(t, "./functions/drift"), append(w.srv.Env(), append(common, "DRIFT_MODE=revert",
		"SGRULES_ROLE_ARNS="+otherRole+","+driftRole)...))
	schedule := func(tg rules.Target) (*scheduler.GetScheduleOutput, bool) {
		t.Helper()
		out, err := sch.GetSchedule(ctx, &scheduler.GetScheduleInput{GroupName: aws.String(expiryGroup), Name: aws.String(expirysched.Name(tg.Account, tg.Region))})
		var nf *schedtypes.ResourceNotFoundException
		if errors.As(err, &nf) {
			return nil, false
		}
		if err != nil {
			t.Fatal(err)
		}
		return out, true
	}
	reconcileKey := func(key, body string) report.Response {
		t.Helper()
		if _, err := s3.NewFromConfig(w.hub, awsconfig.S3Options).PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
		out := rec.Invoke(t, s3Put(key))
		var resp report.Response
		if err := json.Unmarshal(out, &resp); err != nil || resp.Error != "" || strings.Contains(string(out), "errorMessage") {
			t.Fatalf("reconcile %s: %s (%v)\n%s", key, out, err, rec.Logs())
		}
		return resp
	}
	invokeDrift := func(payload []byte) report.Response {
		t.Helper()
		out := drift.Invoke(t, payload)
		var resp report.Response
		if err := json.Unmarshal(out, &resp); err != nil || resp.Error != "" || strings.Contains(string(out), "errorMessage") {
			t.Fatalf("drift: %s (%v)\n%s", out, err, drift.Logs())
		}
		return resp
	}

	// A rule already expired in a new file (the home target) is never
	// authorized: the file is applied without it, with a warning.
	resp := reconcileKey("rules/late.yaml", tempRule("", "late", time.Now().Add(-time.Minute).Truncate(time.Second)))
	if len(resp.Sources) != 1 || resp.Sources[0].Status != "applied" || len(resp.Sources[0].RuleIDs) != 0 ||
		!strings.Contains(strings.Join(resp.Sources[0].Diagnostics.Strings(), "\n"), "warning: late: expiresAt: expired at") {
		raw, _ := json.Marshal(resp.Sources)
		t.Errorf("a file whose rule has expired: %s, want applied without it, with an expiry warning", raw)
	}
	if w.hasSSH(w.home) {
		t.Errorf("home: the expired rule was authorized: %v", w.rules(w.home))
	}
	if _, ok := schedule(w.home); ok {
		t.Errorf("home: an expiry schedule for an expired rule")
	}

	// Two temporary rules expiring in 60 s, in the target account's two
	// regions: each target gets its schedule at the deadline's minute.
	deadline := time.Now().Add(60 * time.Second).Truncate(time.Second)
	reconcileKey("rules/tmp-b.yaml", tempRule(`account: "`+targetAccount+`"`+"\n", "tmp-b", deadline))
	reconcileKey("rules/tmp-b-eu.yaml", tempRule(`account: "`+targetAccount+`"`+"\nregion: "+targetRegion+"\n", "tmp-b-eu", deadline))
	if time.Now().After(deadline) {
		t.Fatalf("applying two files took more than 60 s: the test cannot see the rules before their deadline")
	}
	for _, tg := range []rules.Target{w.b, w.bEU} {
		if !w.hasSSH(tg) {
			t.Fatalf("%s: the temporary rule was not authorized: %v", tg, w.rules(tg))
		}
	}
	s, ok := schedule(w.b)
	if !ok {
		t.Fatalf("%s: no expiry schedule after the file was applied", w.b)
	}
	if got, want := aws.ToString(s.ScheduleExpression), expirysched.Expression(deadline); got != want {
		t.Errorf("%s: schedule %s, want %s (deadline %s)", w.b, got, want, deadline.UTC())
	}
	if s.Target == nil || aws.ToString(s.Target.Arn) != expiryDriftARN || aws.ToString(s.Target.RoleArn) != expiryRoleARN ||
		s.ActionAfterCompletion != schedtypes.ActionAfterCompletionDelete {
		t.Fatalf("%s: schedule %+v, want the drift function as %s, deleted after it ran", w.b, s.Target, expiryRoleARN)
	}
	if _, ok := schedule(w.bEU); !ok {
		t.Fatalf("%s: no expiry schedule after the file was applied", w.bEU)
	}

	// eu-west-1's schedule is lost (deleted underneath); B's runs at the
	// deadline (and Scheduler deletes it, ActionAfterCompletion).
	for _, tg := range []rules.Target{w.b, w.bEU} {
		if _, err := sch.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{GroupName: aws.String(expiryGroup),
			Name: aws.String(expirysched.Name(tg.Account, tg.Region))}); err != nil {
			t.Fatal(err)
		}
	}
	for d := time.Until(deadline); d > 0; d = time.Until(deadline) {
		time.Sleep(d)
	}
	resp = invokeDrift([]byte(aws.ToString(s.Target.Input)))
	if len(resp.Targets) != 1 || resp.Targets[0].Account != w.b.Account || resp.Targets[0].Region != w.b.Region {
		raw, _ := json.Marshal(resp.Targets)
		t.Errorf("the schedule's input swept %s, want %s alone", raw, w.b)
	}
	if w.hasSSH(w.b) {
		t.Errorf("%s: the expired rule is alive after the schedule's sweep: %v", w.b, w.rules(w.b))
	}
	if want := []string{"https", "ssh"}; !slices.Equal(descriptions(w.rules(w.b), "b"), want) {
		t.Errorf("%s: permanent rules after the sweep %v, want %v", w.b, w.rules(w.b), want)
	}
	if _, ok := schedule(w.b); ok {
		t.Errorf("%s: a schedule is left with no deadline to come", w.b)
	}
	if !w.hasSSH(w.bEU) {
		t.Errorf("%s: revoked by another target's schedule", w.bEU)
	}

	// The lost schedule costs one sweep interval: the scheduled sweep
	// revokes the rule whose schedule was deleted.
	payload, err := os.ReadFile("testdata/schedule.json")
	if err != nil {
		t.Fatal(err)
	}
	invokeDrift(payload)
	for tg := range w.targets {
		if w.hasSSH(tg) {
			t.Errorf("%s: an expired rule is alive after the scheduled sweep: %v", tg, w.rules(tg))
		}
	}
	if _, ok := schedule(w.bEU); ok {
		t.Errorf("%s: a schedule is left with no deadline to come", w.bEU)
	}
}

// descriptions returns the names of the permanent rules of fleetRules
// (descriptions "HTTPS what", "SSH what") among lines, sorted.
func descriptions(lines []string, what string) []string {
	var out []string
	for _, l := range lines {
		for _, name := range []string{"https", "ssh"} {
			if strings.HasSuffix(l, " "+strings.ToUpper(name)+" "+what) {
				out = append(out, name)
			}
		}
	}
	slices.Sort(out)
	return out
}
