package cfnresource

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/cfn"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

const (
	stackID = "arn:aws:cloudformation:eu-west-1:123456789012:stack/app-prod/6f0c8a50-1b2c-11ef-9b4e-0a1b2c3d4e5f"
	key     = "cfn/app-prod/WebIngress"
	groupID = "sg-0123456789abcdef0"
)

// fakeEngine answers Reconcile with fn and records the requests.
type fakeEngine struct {
	mu   sync.Mutex
	reqs []reconcile.Request
	fn   func(context.Context, reconcile.Request) (reconcile.Result, error)
}

func (f *fakeEngine) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	if f.fn == nil {
		return applied(req, "sgr-0aaa", "sgr-0bbb"), nil
	}
	return f.fn(ctx, req)
}

func (f *fakeEngine) calls() []reconcile.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]reconcile.Request(nil), f.reqs...)
}

// applied reports every inline source applied (or deleted, for a nil File)
// with ids.
func applied(req reconcile.Request, ids ...string) reconcile.Result {
	var res reconcile.Result
	for k, in := range req.Inline {
		if in.File == nil {
			res.Sources = append(res.Sources, reconcile.SourceResult{Key: k, Status: reconcile.StatusDeleted})
			continue
		}
		res.Sources = append(res.Sources, reconcile.SourceResult{Key: k, Status: reconcile.StatusApplied, RuleIDs: ids})
	}
	return res
}

func status(st reconcile.Status, msg string, diags ...rules.Diagnostic) func(context.Context, reconcile.Request) (reconcile.Result, error) {
	return func(_ context.Context, req reconcile.Request) (reconcile.Result, error) {
		return reconcile.Result{Sources: []reconcile.SourceResult{{Key: key, Status: st, Message: msg, Diagnostics: diags}}}, nil
	}
}

// received is one PUT the stand-in for the pre-signed URL got.
type received struct {
	method      string
	contentType []string
	body        []byte
	resp        cfn.Response
	at          time.Time
}

// responseURL stands in for the pre-signed S3 URL. fail answers the n-th
// request (from 1) with a status other than 200, or 0 for 200.
type responseURL struct {
	*httptest.Server
	mu   sync.Mutex
	got  []received
	fail func(n int) int
}

func newResponseURL(t *testing.T, fail func(n int) int) *responseURL {
	u := &responseURL{fail: fail}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec := received{method: r.Method, contentType: r.Header.Values("Content-Type"), body: body, at: time.Now()}
		if err := json.Unmarshal(body, &rec.resp); err != nil {
			t.Errorf("response body is not JSON: %v: %s", err, body)
		}
		u.mu.Lock()
		u.got = append(u.got, rec)
		n := len(u.got)
		u.mu.Unlock()
		if u.fail != nil {
			if code := u.fail(n); code != 0 {
				http.Error(w, "<Error><Code>InternalError</Code></Error>", code)
				return
			}
		}
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *responseURL) requests() []received {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]received(nil), u.got...)
}

// only returns the one response received, failing the test otherwise.
func (u *responseURL) only(t *testing.T) cfn.Response {
	t.Helper()
	got := u.requests()
	if len(got) != 1 {
		t.Fatalf("got %d responses, want 1", len(got))
	}
	checkRequest(t, got[0])
	return got[0].resp
}

func checkRequest(t *testing.T, r received) {
	t.Helper()
	if r.method != http.MethodPut {
		t.Errorf("method %s, want PUT", r.method)
	}
	if len(r.contentType) > 1 || (len(r.contentType) == 1 && r.contentType[0] != "") {
		t.Errorf("Content-Type %q, want none (pre-signed S3 URL)", r.contentType)
	}
	if len(r.body) >= MaxResponseSize {
		t.Errorf("body of %d bytes, want < %d", len(r.body), MaxResponseSize)
	}
	if r.resp.PhysicalResourceID == "" {
		t.Error("empty PhysicalResourceId")
	}
}

func props(port string) map[string]any {
	return map[string]any{
		"ServiceToken":  "arn:aws:lambda:eu-west-1:123456789012:function:sgrules-reconcile",
		"securityGroup": groupID,
		"type":          "ingress",
		"protocol":      "tcp",
		"fromPort":      port,
		"toPort":        port,
		"cidrBlocks":    []any{"10.0.0.0/16", "192.168.0.0/24"},
		"description":   "HTTP from the VPC",
	}
}

func event(rt cfn.RequestType, url string, p map[string]any) cfn.Event {
	ev := cfn.Event{
		RequestType:        rt,
		RequestID:          "req-" + string(rt),
		ResponseURL:        url,
		ResourceType:       ResourceType,
		LogicalResourceID:  "WebIngress",
		StackID:            stackID,
		ResourceProperties: p,
	}
	if rt != cfn.RequestCreate {
		ev.PhysicalResourceID = key
	}
	return ev
}

func testOptions() Options {
	return Options{Logger: slog.New(slog.DiscardHandler), Backoff: time.Millisecond}
}

func TestCreateUpdateDelete(t *testing.T) {
	eng := &fakeEngine{}
	u := newResponseURL(t, nil)
	o := testOptions()
	ctx := context.Background()

	// Create.
	if _, err := o.Handle(ctx, event(cfn.RequestCreate, u.URL, props("80")), eng); err != nil {
		t.Fatal(err)
	}
	// Update: the port changes, the physical id does not.
	ev := event(cfn.RequestUpdate, u.URL, props("8080"))
	ev.OldResourceProperties = props("80")
	if _, err := o.Handle(ctx, ev, eng); err != nil {
		t.Fatal(err)
	}
	// Delete, then Delete again (the engine no longer knows the source).
	if _, err := o.Handle(ctx, event(cfn.RequestDelete, u.URL, props("8080")), eng); err != nil {
		t.Fatal(err)
	}
	eng.fn = func(context.Context, reconcile.Request) (reconcile.Result, error) { return reconcile.Result{}, nil }
	if _, err := o.Handle(ctx, event(cfn.RequestDelete, u.URL, props("8080")), eng); err != nil {
		t.Fatal(err)
	}

	got := u.requests()
	if len(got) != 4 {
		t.Fatalf("got %d responses, want 4", len(got))
	}
	for i, r := range got {
		checkRequest(t, r)
		if r.resp.Status != cfn.StatusSuccess || r.resp.PhysicalResourceID != key || r.resp.Reason != "" {
			t.Errorf("response %d: %s %q %q, want SUCCESS %q", i, r.resp.Status, r.resp.PhysicalResourceID, r.resp.Reason, key)
		}
		if r.resp.StackID != stackID || r.resp.LogicalResourceID != "WebIngress" || !strings.HasPrefix(r.resp.RequestID, "req-") {
			t.Errorf("response %d does not echo the request: %+v", i, r.resp)
		}
	}
	wantData := map[string]any{
		"RuleId": "sgr-0aaa", "RuleIds": "sgr-0aaa,sgr-0bbb", "SecurityGroupId": groupID,
		"Type": "ingress", "Protocol": "tcp", "FromPort": "80", "ToPort": "80",
	}
	checkData(t, got[0].resp.Data, wantData)
	wantData["FromPort"], wantData["ToPort"] = "8080", "8080"
	checkData(t, got[1].resp.Data, wantData)
	if got[2].resp.Data != nil || got[3].resp.Data != nil {
		t.Errorf("delete responses carry data: %v %v", got[2].resp.Data, got[3].resp.Data)
	}

	reqs := eng.calls()
	if len(reqs) != 4 {
		t.Fatalf("engine called %d times, want 4", len(reqs))
	}
	for i, want := range []int32{80, 8080} {
		in, ok := reqs[i].Inline[key]
		if !ok || len(reqs[i].Inline) != 1 || in.File == nil {
			t.Fatalf("request %d: inline %v, want one file under %s", i, reqs[i].Inline, key)
		}
		r := in.File.Rules[0]
		if r.FromPort != want || r.ToPort != want || r.SecurityGroup.ID != groupID || len(r.CIDRBlocks) != 2 || r.Name != "WebIngress" {
			t.Errorf("request %d: rule %+v", i, r)
		}
	}
	for _, req := range reqs[2:] {
		if in, ok := req.Inline[key]; !ok || in.File != nil || len(req.Inline) != 1 {
			t.Errorf("delete request inline %v, want %s with a nil file", req.Inline, key)
		}
	}
}

func checkData(t *testing.T, got, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Data[%s] = %v, want %v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("Data = %v, want the keys of %v", got, want)
	}
}

func TestICMPAndReferenceData(t *testing.T) {
	eng := &fakeEngine{}
	u := newResponseURL(t, nil)
	p := map[string]any{
		"securityGroup": map[string]any{"tags": map[string]any{"Name": "web"}},
		"type":          "egress", "protocol": "icmp", "fromPort": "-1", "toPort": "-1",
		"sourceSecurityGroups": []any{groupID},
	}
	if _, err := testOptions().Handle(context.Background(), event(cfn.RequestCreate, u.URL, p), eng); err != nil {
		t.Fatal(err)
	}
	r := u.only(t)
	if r.Status != cfn.StatusSuccess {
		t.Fatalf("status %s: %s", r.Status, r.Reason)
	}
	checkData(t, r.Data, map[string]any{
		"RuleId": "sgr-0aaa", "RuleIds": "sgr-0aaa,sgr-0bbb", "SecurityGroupId": "tags:Name=web",
		"Type": "egress", "Protocol": "icmp", "FromPort": "-1", "ToPort": "-1",
	})
}

func TestFailures(t *testing.T) {
	bad := props("70000")
	tests := []struct {
		name       string
		ev         func(url string) cfn.Event
		engine     func(context.Context, reconcile.Request) (reconcile.Result, error)
		wantStatus cfn.StatusType
		wantReason []string // substrings
		wantCalls  int
	}{{
		name:       "invalid create names the property and creates nothing",
		ev:         func(url string) cfn.Event { return event(cfn.RequestCreate, url, bad) },
		wantStatus: cfn.StatusFailed, wantReason: []string{"fromPort", "70000", "out of range"},
	}, {
		name: "invalid update leaves the previous rule alone",
		ev: func(url string) cfn.Event {
			ev := event(cfn.RequestUpdate, url, bad)
			ev.OldResourceProperties = props("80")
			return ev
		},
		wantStatus: cfn.StatusFailed, wantReason: []string{"fromPort"},
	}, {
		name: "unknown property",
		ev: func(url string) cfn.Event {
			p := props("80")
			p["fromport"] = "80"
			return event(cfn.RequestCreate, url, p)
		},
		wantStatus: cfn.StatusFailed, wantReason: []string{"fromport"},
	}, {
		name: "oversized properties are refused before parsing",
		ev: func(url string) cfn.Event {
			p := props("80")
			p["description"] = strings.Repeat("x", MaxPropertiesSize)
			return event(cfn.RequestCreate, url, p)
		},
		wantStatus: cfn.StatusFailed, wantReason: []string{"over the limit"},
	}, {
		name:       "missing property",
		ev:         func(url string) cfn.Event { return event(cfn.RequestCreate, url, map[string]any{"ServiceToken": "x"}) },
		wantStatus: cfn.StatusFailed, wantReason: []string{"securityGroup", "type", "protocol"},
	}, {
		name:       "delete with bad properties deletes what the source owns",
		ev:         func(url string) cfn.Event { return event(cfn.RequestDelete, url, bad) },
		wantStatus: cfn.StatusSuccess, wantCalls: 1,
	}, {
		name: "delete of a create that failed",
		ev: func(url string) cfn.Event {
			ev := event(cfn.RequestDelete, url, bad)
			ev.PhysicalResourceID = ""
			return ev
		},
		engine:     func(context.Context, reconcile.Request) (reconcile.Result, error) { return reconcile.Result{}, nil },
		wantStatus: cfn.StatusSuccess, wantCalls: 1,
	}, {
		name: "delete of another source's physical id touches nothing",
		ev: func(url string) cfn.Event {
			ev := event(cfn.RequestDelete, url, props("80"))
			ev.PhysicalResourceID = "cfn/app-prod/Other"
			return ev
		},
		wantStatus: cfn.StatusSuccess,
	}, {
		name: "delete of an id CloudFormation invented touches nothing",
		ev: func(url string) cfn.Event {
			ev := event(cfn.RequestDelete, url, props("80"))
			ev.PhysicalResourceID = "app-prod-WebIngress-1A2B3C4D5E6F"
			return ev
		},
		wantStatus: cfn.StatusSuccess,
	}, {
		name: "engine error",
		ev:   func(url string) cfn.Event { return event(cfn.RequestCreate, url, props("80")) },
		engine: func(context.Context, reconcile.Request) (reconcile.Result, error) {
			return reconcile.Result{}, errors.New("describe rules: throttled")
		},
		wantStatus: cfn.StatusFailed, wantReason: []string{"describe rules: throttled"}, wantCalls: 1,
	}, {
		name: "engine error on delete",
		ev:   func(url string) cfn.Event { return event(cfn.RequestDelete, url, props("80")) },
		engine: func(context.Context, reconcile.Request) (reconcile.Result, error) {
			return reconcile.Result{}, errors.New("ledger: throttled")
		},
		wantStatus: cfn.StatusFailed, wantReason: []string{"ledger: throttled"}, wantCalls: 1,
	}, {
		name:       "held by the blast-radius guard",
		ev:         func(url string) cfn.Event { return event(cfn.RequestUpdate, url, props("80")) },
		engine:     status(reconcile.StatusHeld, "plan holds: it would revoke 60 permissions"),
		wantStatus: cfn.StatusFailed, wantReason: []string{"plan holds: it would revoke 60 permissions"}, wantCalls: 1,
	}, {
		name:       "delete held",
		ev:         func(url string) cfn.Event { return event(cfn.RequestDelete, url, props("80")) },
		engine:     status(reconcile.StatusHeld, "plan holds: it would revoke 60 permissions"),
		wantStatus: cfn.StatusFailed, wantReason: []string{"plan holds"}, wantCalls: 1,
	}, {
		name: "group missing (invalid in the engine)",
		ev:   func(url string) cfn.Event { return event(cfn.RequestCreate, url, props("80")) },
		engine: status(reconcile.StatusInvalid, "", rules.Diagnostic{File: key, Rule: "WebIngress", Field: "securityGroup",
			Severity: rules.SeverityError, Msg: "security group " + groupID + " does not exist"}),
		wantStatus: cfn.StatusFailed, wantReason: []string{"securityGroup: security group " + groupID + " does not exist"}, wantCalls: 1,
	}, {
		name: "engine reports nothing for the source",
		ev:   func(url string) cfn.Event { return event(cfn.RequestCreate, url, props("80")) },
		engine: func(context.Context, reconcile.Request) (reconcile.Result, error) {
			return reconcile.Result{}, nil
		},
		wantStatus: cfn.StatusFailed, wantReason: []string{"reported nothing"}, wantCalls: 1,
	}, {
		name: "malformed StackId fails a create",
		ev: func(url string) cfn.Event {
			ev := event(cfn.RequestCreate, url, props("80"))
			ev.StackID = "app-prod"
			return ev
		},
		wantStatus: cfn.StatusFailed, wantReason: []string{"StackId"},
	}, {
		name: "malformed StackId deletes nothing",
		ev: func(url string) cfn.Event {
			ev := event(cfn.RequestDelete, url, props("80"))
			ev.StackID = "app-prod"
			return ev
		},
		wantStatus: cfn.StatusSuccess,
	}, {
		// A write of the resource's rule the admission check refused (a
		// restore of its rule deleted by hand that the policy now
		// denies, a check it cannot decide): the source stays applied,
		// but its rule is not in EC2, so the stack must not believe it
		// is (before: SUCCESS with the rule ids of the last apply).
		name: "a write refused at admission fails the resource",
		ev:   func(url string) cfn.Event { return event(cfn.RequestUpdate, url, props("80")) },
		engine: func(_ context.Context, req reconcile.Request) (reconcile.Result, error) {
			res := applied(req, "sgr-0aaa")
			owner := rules.Owner{Source: key, Rule: "WebIngress"}
			res.Policy.Refused = []reconcile.PolicyRefusal{{
				Action: reconcile.Action{Kind: reconcile.ActAuthorize, Cause: reconcile.CauseDriftDeleted, Owners: []rules.Owner{owner}},
				Owner:  owner, Policy: "no-world-ssh", Reason: "violates policy NO-WORLD-SSH: SSH must not be open to the internet"}}
			return res, nil
		},
		wantStatus: cfn.StatusFailed, wantReason: []string{"not written", "NO-WORLD-SSH"}, wantCalls: 1,
	}, {
		name: "a refusal of another source's write does not fail the resource",
		ev:   func(url string) cfn.Event { return event(cfn.RequestUpdate, url, props("80")) },
		engine: func(_ context.Context, req reconcile.Request) (reconcile.Result, error) {
			res := applied(req, "sgr-0aaa")
			owner := rules.Owner{Source: "rules/other.yaml", Rule: "ssh"}
			res.Policy.Refused = []reconcile.PolicyRefusal{{
				Action: reconcile.Action{Kind: reconcile.ActAuthorize, Cause: reconcile.CauseDriftDeleted, Owners: []rules.Owner{owner}},
				Owner:  owner, Policy: "no-world-ssh", Reason: "violates policy NO-WORLD-SSH"}}
			return res, nil
		},
		wantStatus: cfn.StatusSuccess, wantCalls: 1,
	}, {
		name: "panic in the engine",
		ev:   func(url string) cfn.Event { return event(cfn.RequestCreate, url, props("80")) },
		engine: func(context.Context, reconcile.Request) (reconcile.Result, error) {
			panic(errors.New("engine exploded"))
		},
		wantStatus: cfn.StatusFailed, wantReason: []string{"panic", "engine exploded"}, wantCalls: 1,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eng := &fakeEngine{fn: tc.engine}
			u := newResponseURL(t, nil)
			resp, err := testOptions().Handle(context.Background(), tc.ev(u.URL), eng)
			if err != nil {
				t.Fatal(err)
			}
			r := u.only(t)
			if r.Status != tc.wantStatus || resp.Status != tc.wantStatus {
				t.Fatalf("status %s (returned %s), want %s; reason %q", r.Status, resp.Status, tc.wantStatus, r.Reason)
			}
			for _, s := range tc.wantReason {
				if !strings.Contains(r.Reason, s) {
					t.Errorf("reason %q does not contain %q", r.Reason, s)
				}
			}
			if tc.wantStatus == cfn.StatusFailed && r.Data != nil {
				t.Errorf("FAILED response carries data %v", r.Data)
			}
			if n := len(eng.calls()); n != tc.wantCalls {
				t.Errorf("engine called %d times, want %d", n, tc.wantCalls)
			}
		})
	}
}

func TestPanicHookAnswersFailed(t *testing.T) {
	eng := &fakeEngine{}
	u := newResponseURL(t, nil)
	o := testOptions()
	o.BeforeReconcile = func() { panic("injected") }
	if _, err := o.Handle(context.Background(), event(cfn.RequestUpdate, u.URL, props("80")), eng); err != nil {
		t.Fatal(err)
	}
	r := u.only(t)
	if r.Status != cfn.StatusFailed || !strings.Contains(r.Reason, "injected") || r.PhysicalResourceID != key {
		t.Errorf("got %s %q %q, want FAILED naming the panic with physical id %s", r.Status, r.Reason, r.PhysicalResourceID, key)
	}
	if len(eng.calls()) != 0 {
		t.Error("engine called after the hook panicked")
	}
}

// TestDeadline: the work is abandoned the reserve before the Lambda
// deadline, and CloudFormation is answered FAILED then, whether or not the
// engine returns. The clock is injected: the time left is what the test
// says, and the work's deadline is already past when Handle starts, while
// the invocation's own is a reserve away (no wall-clock margin asserted).
func TestDeadline(t *testing.T) {
	for _, tc := range []struct {
		name    string
		reserve time.Duration // Options.Reserve
		left    time.Duration // the time left by the injected clock
		want    time.Duration // the reserve Handle keeps
		honour  bool          // whether the engine returns when its context ends
	}{
		{"engine ignores the context", 10 * time.Minute, time.Hour, 10 * time.Minute, false},
		{"engine honours the context", 10 * time.Minute, time.Hour, 10 * time.Minute, true},
		{"reserve at most half the time left", time.Hour, 10 * time.Minute, 5 * time.Minute, false},
		{"default reserve: a tenth", 0, 200 * time.Second, 20 * time.Second, false},
		{"default reserve: at most 30 s", 0, time.Hour, 30 * time.Second, false},
		{"default reserve: at least 5 s", 0, 20 * time.Second, 5 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			defer close(release)
			seen := make(chan time.Time, 1)
			eng := &fakeEngine{fn: func(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
				dl, _ := ctx.Deadline()
				seen <- dl
				if tc.honour {
					<-ctx.Done()
					return reconcile.Result{}, ctx.Err()
				}
				<-release
				return reconcile.Result{}, nil
			}}
			u := newResponseURL(t, nil)
			o := testOptions()
			o.Reserve = tc.reserve
			// The invocation's deadline is the reserve away on the real
			// clock: the work's deadline is now.
			deadline := time.Now().Add(tc.want)
			o.Now = func() time.Time { return deadline.Add(-tc.left) }
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			defer cancel()
			resp, err := o.Handle(ctx, event(cfn.RequestCreate, u.URL, props("80")), eng)
			if err != nil {
				t.Fatal(err)
			}
			r := u.only(t)
			if r.Status != cfn.StatusFailed || resp.Status != cfn.StatusFailed || !strings.Contains(r.Reason, "timeout") {
				t.Errorf("got %s %q, want FAILED for the timeout", r.Status, r.Reason)
			}
			// The work goroutine calls the engine even when Handle has
			// answered first.
			if got := deadline.Sub(<-seen); got != tc.want {
				t.Errorf("the engine's deadline is %v before the invocation's, want %v", got, tc.want)
			}
		})
	}
}

func TestSendRetries(t *testing.T) {
	tests := []struct {
		name      string
		fail      func(n int) int
		wantCalls int
		wantErr   bool
	}{
		{"503 then 500 then OK", func(n int) int { return map[int]int{1: 503, 2: 500}[n] }, 3, false},
		{"429 then OK", func(n int) int { return map[int]int{1: 429}[n] }, 2, false},
		{"always 500: bounded attempts", func(int) int { return 500 }, 5, true},
		{"403 is not retried", func(int) int { return 403 }, 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := newResponseURL(t, tc.fail)
			_, err := testOptions().Handle(context.Background(), event(cfn.RequestCreate, u.URL, props("80")), &fakeEngine{})
			if (err != nil) != tc.wantErr {
				t.Errorf("err = %v, want error %v", err, tc.wantErr)
			}
			got := u.requests()
			if len(got) != tc.wantCalls {
				t.Fatalf("%d PUTs, want %d", len(got), tc.wantCalls)
			}
			for _, r := range got {
				checkRequest(t, r)
				if string(r.body) != string(got[0].body) {
					t.Error("retried with a different body")
				}
			}
		})
	}

	t.Run("connection refused is retried", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		start := time.Now()
		_, err := testOptions().Handle(context.Background(), event(cfn.RequestCreate, url, props("80")), &fakeEngine{})
		if err == nil || !strings.Contains(err.Error(), "after 5 attempts") {
			t.Errorf("err = %v, want a failure after 5 attempts", err)
		}
		if time.Since(start) > 5*time.Second {
			t.Errorf("took %v", time.Since(start))
		}
	})

	t.Run("retries stop before the deadline", func(t *testing.T) {
		u := newResponseURL(t, func(int) int { return 503 })
		o := testOptions()
		o.Backoff, o.Attempts = 300*time.Millisecond, 100
		deadline := time.Now().Add(time.Second)
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		_, err := o.Handle(ctx, event(cfn.RequestDelete, u.URL, props("80")), &fakeEngine{})
		if err == nil {
			t.Error("no error")
		}
		if time.Now().After(deadline) {
			t.Errorf("returned %v after the deadline", time.Since(deadline))
		}
	})
}

func TestResponseSize(t *testing.T) {
	t.Run("long reason truncated", func(t *testing.T) {
		long := strings.Repeat(`engine said "no" <&> ünïcödé `, 400) // ~12 KB, escapes and multi-byte runes
		eng := &fakeEngine{fn: func(context.Context, reconcile.Request) (reconcile.Result, error) {
			return reconcile.Result{}, errors.New(long)
		}}
		u := newResponseURL(t, nil)
		if _, err := testOptions().Handle(context.Background(), event(cfn.RequestCreate, u.URL, props("80")), eng); err != nil {
			t.Fatal(err)
		}
		got := u.requests()[0]
		checkRequest(t, got)
		r := got.resp
		if r.Status != cfn.StatusFailed || !strings.HasSuffix(r.Reason, truncated) || !strings.Contains(r.Reason, `engine said "no" <&>`) {
			t.Errorf("reason %q", r.Reason)
		}
		if !utf8.ValidString(r.Reason) {
			t.Error("reason cut inside a character")
		}
		if len(got.body) < MaxResponseSize-64 {
			t.Errorf("body of %d bytes: cut more than needed", len(got.body))
		}
	})
	t.Run("many rule ids", func(t *testing.T) {
		ids := make([]string, 300)
		for i := range ids {
			ids[i] = "sgr-0123456789abcdef0"
		}
		eng := &fakeEngine{fn: func(_ context.Context, req reconcile.Request) (reconcile.Result, error) {
			return applied(req, ids...), nil
		}}
		u := newResponseURL(t, nil)
		if _, err := testOptions().Handle(context.Background(), event(cfn.RequestCreate, u.URL, props("80")), eng); err != nil {
			t.Fatal(err)
		}
		r := u.only(t)
		if r.Status != cfn.StatusSuccess || r.Data["RuleIdsTruncated"] != "true" || r.Data["RuleId"] != ids[0] {
			t.Errorf("got %s %v", r.Status, r.Data)
		}
		if list := strings.Split(r.Data["RuleIds"].(string), ","); len(list) < 100 || list[len(list)-1] != ids[0] {
			t.Errorf("RuleIds kept %d whole ids", len(list))
		}
	})
}

func TestSourceKey(t *testing.T) {
	tests := []struct {
		stackID, logicalID, want string
		wantErr                  bool
	}{
		{stackID, "WebIngress", key, false},
		{"arn:aws-cn:cloudformation:cn-north-1:123456789012:stack/app-cn/guid", "R", "cfn/app-cn/R", false},
		{"arn:aws:cloudformation:eu-west-1:123456789012:stack/parent-Child-1AB2C3/guid", "R", "cfn/parent-Child-1AB2C3/R", false},
		{"app-prod", "R", "", true},
		{"arn:aws:cloudformation:eu-west-1:123456789012:stackset/x/guid", "R", "", true},
		{"arn:aws:cloudformation:eu-west-1:123456789012:stack//guid", "R", "", true},
		{"arn:aws:s3:::bucket/stack/x/guid", "R", "", true},
		{stackID, "", "", true},
		{stackID, "a/b", "", true},
	}
	for _, tc := range tests {
		got, err := SourceKey(tc.stackID, tc.logicalID)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("SourceKey(%q, %q) = %q, %v; want %q, error %v", tc.stackID, tc.logicalID, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestReserve(t *testing.T) {
	for _, tc := range []struct{ left, set, want time.Duration }{
		{15 * time.Minute, 0, 30 * time.Second},
		{2 * time.Minute, 0, 12 * time.Second},
		{30 * time.Second, 0, 5 * time.Second},
		{4 * time.Second, 0, 2 * time.Second},
		{time.Minute, time.Second, time.Second},
	} {
		if got := (Options{Reserve: tc.set}).reserve(tc.left); got != tc.want {
			t.Errorf("reserve(%v) with %v = %v, want %v", tc.left, tc.set, got, tc.want)
		}
	}
}
