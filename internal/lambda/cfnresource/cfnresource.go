package cfnresource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/cfn"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// ResourceType is the CloudFormation type this package implements.
const ResourceType = "Custom::SecurityGroupRule"

// Engine is what the handler needs of *reconcile.Engine.
type Engine interface {
	Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error)
}

var _ Engine = (*reconcile.Engine)(nil)

// Options tune Handle. The zero value is the production configuration.
type Options struct {
	Logger *slog.Logger
	// Client sends the response (default: a client without an overall
	// timeout; every attempt has its own).
	Client *http.Client
	// Reserve is the time kept back before the context deadline to answer
	// CloudFormation when the work has not finished (default: a tenth of the
	// time left, at least 5 s and at most 30 s, never more than half).
	Reserve time.Duration
	// Attempts bounds the PUTs of the response (default 5); Backoff is the
	// wait before the second attempt, doubled each time (default 500 ms).
	Attempts int
	Backoff  time.Duration
	// BeforeReconcile, if set, runs just before the engine: a fault hook for
	// tests (it may panic or block).
	BeforeReconcile func()
	// Now is the clock the time left before the deadline is measured with
	// (default time.Now); tests inject one.
	Now func() time.Time
}

// faultHook is installed only by builds with the faultinject tag (see
// faultinject.go); it is nil in production builds.
var faultHook func()

// Handle answers one custom resource request with the default Options.
func Handle(ctx context.Context, ev cfn.Event, eng Engine) (*cfn.Response, error) {
	return Options{}.Handle(ctx, ev, eng)
}

// Handle applies the request and answers CloudFormation. It returns the
// response it sent (the invocation's result) and an error only when the
// response could not be delivered, so that Lambda retries the invocation
// (every request type is idempotent).
func (o Options) Handle(ctx context.Context, ev cfn.Event, eng Engine) (resp *cfn.Response, err error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	key, keyErr := SourceKey(ev.StackID, ev.LogicalResourceID)
	log = log.With("requestType", ev.RequestType, "requestId", ev.RequestID,
		"logicalResourceId", ev.LogicalResourceID, "source", key)

	resp = cfn.NewResponse(&ev)
	resp.PhysicalResourceID = physicalID(ev, key)

	// Last line of defence: whatever panics below, CloudFormation is answered.
	defer func() {
		if p := recover(); p != nil {
			log.ErrorContext(ctx, "custom resource handler panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			resp.Status, resp.Reason, resp.Data = cfn.StatusFailed, panicReason(p), nil
			err = o.send(ctx, log, ev.ResponseURL, resp)
		}
	}()

	var out outcome
	if keyErr != nil {
		out = outcome{status: cfn.StatusFailed, reason: keyErr.Error()}
		if ev.RequestType == cfn.RequestDelete {
			// Nothing can have been created under a key that cannot exist.
			out = outcome{status: cfn.StatusSuccess}
		}
	} else {
		out = o.run(ctx, log, ev, key, eng)
	}
	resp.Status, resp.Reason, resp.Data = out.status, out.reason, out.data
	if out.status == cfn.StatusFailed {
		log.WarnContext(ctx, "custom resource request failed", "reason", out.reason)
	} else {
		log.InfoContext(ctx, "custom resource request succeeded", "data", out.data)
	}
	return resp, o.send(ctx, log, ev.ResponseURL, resp)
}

// outcome is what the work decided to answer.
type outcome struct {
	status cfn.StatusType
	reason string
	data   map[string]any
}

func failed(format string, args ...any) outcome {
	return outcome{status: cfn.StatusFailed, reason: fmt.Sprintf(format, args...)}
}

// run does the work in its own goroutine, so that a hung engine call cannot
// keep CloudFormation waiting past the Lambda deadline, and recovers a
// panic there (recover only works in the panicking goroutine).
func (o Options) run(ctx context.Context, log *slog.Logger, ev cfn.Event, key string, eng Engine) outcome {
	workCtx, cancel := context.WithCancel(ctx)
	if dl, ok := ctx.Deadline(); ok {
		cancel()
		now := time.Now
		if o.Now != nil {
			now = o.Now
		}
		workCtx, cancel = context.WithDeadline(ctx, dl.Add(-o.reserve(dl.Sub(now()))))
	}
	defer cancel()

	done := make(chan outcome, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				log.ErrorContext(ctx, "custom resource work panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				done <- outcome{status: cfn.StatusFailed, reason: panicReason(p)}
			}
		}()
		done <- o.work(workCtx, log, ev, key, eng)
	}()
	select {
	case out := <-done:
		return out
	case <-workCtx.Done():
		select {
		case out := <-done: // finished at the same moment: report what happened
			return out
		default:
		}
		if errors.Is(workCtx.Err(), context.DeadlineExceeded) {
			return failed("%s did not finish before the Lambda timeout (answered before the function is stopped); the rules are reconciled level-based, so retrying the stack operation or its rollback converges", ev.RequestType)
		}
		return failed("%s was cancelled: %v", ev.RequestType, context.Cause(workCtx))
	}
}

// reserve is how long before the deadline the work is abandoned.
func (o Options) reserve(left time.Duration) time.Duration {
	r := o.Reserve
	if r <= 0 {
		r = min(max(left/10, 5*time.Second), 30*time.Second)
	}
	return min(r, left/2)
}

// MaxPropertiesSize bounds the JSON size of a resource's properties: one
// rule of 1000 CIDRs fits in well under it.
const MaxPropertiesSize = 64 << 10

// work converts the request and runs the engine.
func (o Options) work(ctx context.Context, log *slog.Logger, ev cfn.Event, key string, eng Engine) outcome {
	req := reconcile.Request{Reason: "cloudformation:" + string(ev.RequestType)}
	var file *rules.File
	switch ev.RequestType {
	case cfn.RequestCreate, cfn.RequestUpdate:
		if b, err := json.Marshal(ev.ResourceProperties); err != nil || len(b) > MaxPropertiesSize {
			return failed("invalid properties: %d bytes, over the limit of %d (one rule needs far less; split many peers over several resources)", len(b), MaxPropertiesSize)
		}
		f, diags := ParseProperties(key, ev.LogicalResourceID, ev.ResourceProperties)
		if diags.HasErrors() || f == nil || len(f.Rules) != 1 {
			// Nothing is asked of the engine: an invalid Create creates
			// nothing, an invalid Update leaves the previous rule in place
			// (CloudFormation then rolls back to the old properties).
			return failed("invalid properties: %s", renderDiags(diags))
		}
		for _, d := range diags {
			log.WarnContext(ctx, "property warning", "warning", d.String())
		}
		file = f
		req.Inline = map[string]reconcile.Inline{key: {File: f, Diagnostics: diags}}
	case cfn.RequestDelete:
		if ev.PhysicalResourceID != "" && ev.PhysicalResourceID != key {
			// Every answer sgrules gives, a failed Create's included,
			// carries the source key as PhysicalResourceId. Any other id
			// is not ours: CloudFormation invented it because no answer
			// reached it, or the event belongs to another resource.
			// Deleting by key could remove a live resource's rules, so
			// nothing is touched.
			log.WarnContext(ctx, "delete of a physical id that is not this resource's source key: nothing to do",
				"physicalResourceId", ev.PhysicalResourceID, "sourceKey", key)
			return outcome{status: cfn.StatusSuccess}
		}
		// The properties are not read: a Delete must never fail because
		// they are bad (the rollback of an invalid Create); the source is
		// gone and whatever it owns is revoked.
		req.Inline = map[string]reconcile.Inline{key: {File: nil}}
	default:
		return failed("unsupported RequestType %q", ev.RequestType)
	}

	if o.BeforeReconcile != nil {
		o.BeforeReconcile()
	}
	if faultHook != nil {
		faultHook()
	}
	res, err := eng.Reconcile(ctx, req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return failed("%s did not finish before the Lambda timeout: %v", ev.RequestType, err)
		}
		return failed("%s rule: %v", strings.ToLower(string(ev.RequestType)), err)
	}
	var src *reconcile.SourceResult
	for i := range res.Sources {
		if res.Sources[i].Key == key {
			src = &res.Sources[i]
		}
	}
	if ev.RequestType == cfn.RequestDelete {
		switch {
		case src == nil, src.Status == reconcile.StatusDeleted:
			// Never created (a failed Create) or now gone.
			return outcome{status: cfn.StatusSuccess}
		case src.Status == reconcile.StatusHeld:
			return failed("delete held: %s", src.Message)
		}
		return failed("delete not done: source %s is %s: %s", key, src.Status, src.Message)
	}
	if src == nil {
		return failed("the engine reported nothing for source %s", key)
	}
	switch src.Status {
	case reconcile.StatusApplied:
		// The source is applied, but a write of its rule the admission
		// check refused (a restore the policy now denies, a check it
		// cannot decide) left the rule out of EC2: FAILED, so the stack
		// never believes in a rule that does not exist (an Update's
		// rollback is judged the same way; docs/cloudformation.md).
		if r, ok := refusalOf(res.Policy.Refused, key); ok {
			return failed("not written: the guardrail policy refused it: %s", r)
		}
		return outcome{status: cfn.StatusSuccess, data: data(file.Rules[0], src.RuleIDs)}
	case reconcile.StatusHeld:
		return failed("%s", src.Message)
	case reconcile.StatusInvalid:
		return failed("invalid rule: %s", renderDiags(src.Diagnostics))
	}
	return failed("source %s is %s: %s", key, src.Status, src.Message)
}

// refusalOf returns the first refusal of a write key's source owns.
func refusalOf(refused []reconcile.PolicyRefusal, key string) (reconcile.PolicyRefusal, bool) {
	for _, r := range refused {
		if r.Owner.Source == key || slices.ContainsFunc(r.Action.Owners, func(o rules.Owner) bool { return o.Source == key }) {
			return r, true
		}
	}
	return reconcile.PolicyRefusal{}, false
}

// data is the response Data (Fn::GetAtt attributes).
func data(r rules.Rule, ruleIDs []string) map[string]any {
	first := ""
	if len(ruleIDs) > 0 {
		first = ruleIDs[0]
	}
	return map[string]any{
		"RuleId":          first,
		"RuleIds":         strings.Join(ruleIDs, ","),
		"SecurityGroupId": r.SecurityGroup.String(),
		"Type":            string(r.Direction),
		"Protocol":        r.Protocol,
		"FromPort":        strconv.Itoa(int(r.FromPort)),
		"ToPort":          strconv.Itoa(int(r.ToPort)),
	}
}

// renderDiags renders the error diagnostics, each starting with the
// property it is about.
func renderDiags(ds rules.Diagnostics) string {
	var parts []string
	for _, d := range ds {
		if d.Severity != rules.SeverityError {
			continue
		}
		msg := d.Msg
		if d.Field != "" && !strings.HasPrefix(msg, d.Field) {
			msg = d.Field + ": " + msg
		}
		parts = append(parts, msg)
	}
	if len(parts) == 0 {
		return "(no details)"
	}
	return strings.Join(parts, "; ")
}

func panicReason(p any) string {
	return fmt.Sprintf("internal error (panic: %v); see the sgrules function's logs", p)
}

// SourceKey returns the engine source key of a resource, "cfn/STACK/ID",
// from the StackId ARN (arn:PARTITION:cloudformation:REGION:ACCOUNT:stack/NAME/GUID).
func SourceKey(stackID, logicalID string) (string, error) {
	name, err := StackName(stackID)
	if err != nil {
		return "", err
	}
	if logicalID == "" || strings.Contains(logicalID, "/") {
		return "", fmt.Errorf("LogicalResourceId %q: want a template logical id", logicalID)
	}
	return "cfn/" + name + "/" + logicalID, nil
}

// StackName returns the stack name of a StackId ARN.
func StackName(stackID string) (string, error) {
	parts := strings.SplitN(stackID, ":", 6)
	if len(parts) == 6 && parts[0] == "arn" && parts[2] == "cloudformation" {
		res := strings.Split(parts[5], "/")
		if len(res) == 3 && res[0] == "stack" && res[1] != "" {
			return res[1], nil
		}
	}
	return "", fmt.Errorf("StackId %q: want arn:aws:cloudformation:REGION:ACCOUNT:stack/NAME/GUID", stackID)
}

// physicalID is the PhysicalResourceId to answer: the source key, derived
// from the stack and the logical id only, so stable for the life of the
// resource. Never empty.
func physicalID(ev cfn.Event, key string) string {
	switch {
	case key != "":
		return key
	case ev.PhysicalResourceID != "":
		return ev.PhysicalResourceID
	case ev.LogicalResourceID != "":
		return "sgrules-invalid:" + ev.LogicalResourceID
	}
	return "sgrules-invalid:" + ev.RequestID
}
