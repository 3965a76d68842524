package faultproxy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/testutil/faultproxy"
)

// backend records what reaches it and answers 200 with an empty body of
// the right shape for each service.
type backend struct {
	mu    sync.Mutex
	calls []string
	srv   *httptest.Server
}

func newBackend(t *testing.T) *backend {
	b := &backend{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		c, _ := faultproxy.Identify(r, body)
		b.mu.Lock()
		b.calls = append(b.calls, c.String())
		b.mu.Unlock()
		switch c.Service {
		case faultproxy.DynamoDB:
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			io.WriteString(w, "{}")
		case faultproxy.EC2:
			w.Header().Set("Content-Type", "text/xml")
			fmt.Fprintf(w, `<%sResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>x</requestId><return>true</return></%sResponse>`, c.Action, c.Action)
		default:
			w.WriteHeader(http.StatusOK)
		}
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) seen() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.calls...)
}

type clients struct {
	ec2 *ec2.Client
	ddb *dynamodb.Client
	s3  *s3.Client
}

func newClients(url string, attempts int) clients {
	cfg := aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("k", "s", ""),
		BaseEndpoint: aws.String(url),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = attempts
				o.MaxBackoff = time.Millisecond
			})
		},
	}
	return clients{
		ec2: ec2.NewFromConfig(cfg),
		ddb: dynamodb.NewFromConfig(cfg),
		s3:  s3.NewFromConfig(cfg, awsconfig.S3Options),
	}
}

var (
	item  = map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: "x"}}
	getIn = &dynamodb.GetItemInput{TableName: aws.String("t"), Key: item}
	putIn = &dynamodb.PutItemInput{TableName: aws.String("t"), Item: item}
)

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestIdentifiesCalls(t *testing.T) {
	b := newBackend(t)
	p := faultproxy.Start(t, b.srv.URL, 1)
	var seen []faultproxy.Call
	var mu sync.Mutex
	p.Before(func(c faultproxy.Call) { mu.Lock(); seen = append(seen, c); mu.Unlock() })
	c := newClients(p.URL, 1)
	ctx := context.Background()
	c.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{})
	c.ec2.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String("sg-1")})
	c.ddb.Query(ctx, &dynamodb.QueryInput{TableName: aws.String("t")})
	c.ddb.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []ddbtypes.TransactWriteItem{{Put: &ddbtypes.Put{TableName: aws.String("t"), Item: item}}}})
	c.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("rules/a.yaml")})
	c.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("rules/a.yaml"), Body: strings.NewReader("x")})
	want := []faultproxy.Call{
		{Service: "ec2", Action: "DescribeSecurityGroups"},
		{Service: "ec2", Action: "RevokeSecurityGroupIngress", Mutating: true},
		{Service: "dynamodb", Action: "Query"},
		{Service: "dynamodb", Action: "TransactWriteItems", Mutating: true},
		{Service: "s3", Action: "GET /b/rules/a.yaml"},
		{Service: "s3", Action: "PUT /b/rules/a.yaml", Mutating: true},
	}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("calls:\n got %v\nwant %v", seen, want)
	}
	if st := p.Stats(); st.Calls != 6 || st.Mutating != 3 || st.Injected() != 0 {
		t.Errorf("stats = %+v", st)
	}
}

// Throttles and server errors come in each service's own format: the SDK
// reads the code and, with retries, rides them out.
func TestErrorsAsTheSDKSeesThem(t *testing.T) {
	b := newBackend(t)
	p := faultproxy.Start(t, b.srv.URL, 1)
	ctx := context.Background()
	c := newClients(p.URL, 1)

	p.Set(faultproxy.Faults{ThrottleRate: 1})
	_, err := c.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{})
	if code := errorCode(err); code != "RequestLimitExceeded" {
		t.Errorf("ec2 throttle: %q (%v)", code, err)
	}
	_, err = c.ddb.GetItem(ctx, getIn)
	if code := errorCode(err); code != "ThrottlingException" {
		t.Errorf("dynamodb throttle: %q (%v)", code, err)
	}
	_, err = c.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: strings.NewReader("x")})
	if code := errorCode(err); code != "SlowDown" {
		t.Errorf("s3 throttle: %q (%v)", code, err)
	}
	if !retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err).Bool() {
		t.Errorf("the SDK does not take %v for a throttle", err)
	}

	p.Set(faultproxy.Faults{ServerErrorRate: 1})
	_, err = c.ddb.GetItem(ctx, getIn)
	var re interface{ HTTPStatusCode() int }
	if !errors.As(err, &re) || (re.HTTPStatusCode() != 500 && re.HTTPStatusCode() != 503) {
		t.Errorf("server error: %v", err)
	}
	if len(b.seen()) != 0 {
		t.Errorf("faulted calls reached the backend: %v", b.seen())
	}

	// Half the calls throttled: with retries every call succeeds.
	p.Set(faultproxy.Faults{ThrottleRate: 0.5, ServerErrorRate: 0.1})
	c = newClients(p.URL, 20)
	for i := 0; i < 20; i++ {
		if _, err := c.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{}); err != nil {
			t.Fatalf("call %d with retries: %v", i, err)
		}
	}
	if st := p.Stats(); st.Faults[faultproxy.KindThrottle] < 5 {
		t.Errorf("only %d throttles in %d calls", st.Faults[faultproxy.KindThrottle], st.Calls)
	}
}

// Drop-after: the backend serves the call, the caller sees a failure.
func TestDropAfterForwarding(t *testing.T) {
	b := newBackend(t)
	p := faultproxy.Start(t, b.srv.URL, 1)
	p.Set(faultproxy.Faults{DropAfterRate: 1})
	c := newClients(p.URL, 1)
	ctx := context.Background()
	_, err := c.ec2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String("sg-1")})
	if err == nil {
		t.Fatal("a dropped call succeeded")
	}
	// Reads are never dropped.
	if _, err := c.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{}); err != nil {
		t.Fatalf("read: %v", err)
	}
	if got := strings.Join(b.seen(), ","); got != "ec2:AuthorizeSecurityGroupIngress,ec2:DescribeSecurityGroups" {
		t.Errorf("backend saw %s", got)
	}
	if st := p.Stats(); st.Faults[faultproxy.KindDropAfter] != 1 {
		t.Errorf("stats = %+v", st)
	}
}

// Abort after the k-th mutating call: the k calls pass, every later call
// fails without reaching the backend, until Reset.
func TestAbortAfter(t *testing.T) {
	b := newBackend(t)
	p := faultproxy.Start(t, b.srv.URL, 1)
	p.Set(faultproxy.Faults{AbortAfter: 2})
	c := newClients(p.URL, 3)
	ctx := context.Background()
	put := func() error {
		_, err := c.ddb.PutItem(ctx, putIn)
		return err
	}
	get := func() error {
		_, err := c.ddb.GetItem(ctx, getIn)
		return err
	}
	for i, f := range []func() error{put, get, put} {
		if err := f(); err != nil {
			t.Fatalf("call %d before the abort: %v", i, err)
		}
	}
	if err := put(); errorCode(err) != "SimulatedCrash" {
		t.Fatalf("third mutating call: %v", err)
	}
	if err := get(); errorCode(err) != "SimulatedCrash" || !p.Aborted() {
		t.Fatalf("read after the abort: %v", err)
	}
	if n := len(b.seen()); n != 3 {
		t.Errorf("backend saw %d calls, want 3 (the non-retryable crash error is not retried)", n)
	}
	p.Reset()
	if err := put(); err != nil {
		t.Fatalf("after reset: %v", err)
	}
}

// The same seed and the same calls give the same faults.
func TestSeeded(t *testing.T) {
	b := newBackend(t)
	run := func(seed uint64) string {
		p := faultproxy.Start(t, b.srv.URL, seed)
		p.Set(faultproxy.Faults{ThrottleRate: 0.5})
		c := newClients(p.URL, 1)
		var out strings.Builder
		for i := 0; i < 32; i++ {
			_, err := c.ddb.GetItem(context.Background(), getIn)
			out.WriteByte("01"[min(1, len(errorCode(err)))])
		}
		return out.String()
	}
	a, b1, c := run(7), run(7), run(8)
	if a != b1 {
		t.Errorf("seed 7 twice: %s vs %s", a, b1)
	}
	if a == c {
		t.Errorf("seeds 7 and 8 agree: %s", a)
	}
}

func TestDelay(t *testing.T) {
	b := newBackend(t)
	p := faultproxy.Start(t, b.srv.URL, 1)
	p.Set(faultproxy.Faults{DelayRate: 1, MaxDelay: 30 * time.Millisecond, Only: func(c faultproxy.Call) bool { return c.Service == faultproxy.S3 }})
	c := newClients(p.URL, 1)
	ctx := context.Background()
	if _, err := c.ddb.GetItem(ctx, getIn); err != nil {
		t.Fatal(err)
	}
	if _, err := c.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("b"), Key: aws.String("k")}); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Faults[faultproxy.KindDelay] != 1 {
		t.Errorf("Only did not restrict the delay: %+v", st)
	}
}

// A cut hits the k-th call of its kind: CutBefore refuses it without
// forwarding (not retried) and lets later calls through; CutAfter forwards
// it and then fails every later call. Calls of other kinds do not count.
func TestCut(t *testing.T) {
	tx := func(pk string) *dynamodb.TransactWriteItemsInput {
		return &dynamodb.TransactWriteItemsInput{TransactItems: []ddbtypes.TransactWriteItem{{Put: &ddbtypes.Put{TableName: aws.String("t"),
			Item: map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: pk}}}}}}
	}
	commitChunk := func(c faultproxy.Call) bool {
		return c.Action == "TransactWriteItems" && strings.Contains(string(c.Body), "commit#")
	}
	ctx := context.Background()
	for _, mode := range []faultproxy.CutMode{faultproxy.CutBefore, faultproxy.CutAfter} {
		t.Run(mode.String(), func(t *testing.T) {
			b := newBackend(t)
			p := faultproxy.Start(t, b.srv.URL, 1)
			p.Set(faultproxy.Faults{CutAt: 2, CutMode: mode, CutCalls: commitChunk})
			c := newClients(p.URL, 3)
			var codes []string
			for _, pk := range []string{"commit#1", "lease#1", "commit#2", "commit#3"} {
				_, err := c.ddb.TransactWriteItems(ctx, tx(pk))
				codes = append(codes, pk+"="+errorCode(err))
			}
			want := "[commit#1= lease#1= commit#2=SimulatedFailure commit#3=]"
			kind, injected := faultproxy.KindCutBefore, 1
			if mode == faultproxy.CutAfter { // commit#2 went through, commit#3 met the abort
				want, kind, injected = "[commit#1= lease#1= commit#2= commit#3=SimulatedCrash]", faultproxy.KindCutAfter, 2
			}
			if got := fmt.Sprint(codes); got != want {
				t.Errorf("errors: %s, want %s", got, want)
			}
			if n := len(b.seen()); n != 3 {
				t.Errorf("backend saw %d calls, want 3", n)
			}
			if st := p.Stats(); st.Faults[kind] != 1 || st.Injected() != injected {
				t.Errorf("stats = %+v", st)
			}
		})
	}
}
