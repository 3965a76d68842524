package sqsqueue_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sgrules/sgrules/internal/adapters/sqsqueue"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
)

func TestMain(m *testing.M) { motoserver.Main(m) }

// recorder passes calls to the real client (moto) and records the bodies
// of each call; fail, when set, may answer entries as failed instead of
// passing them on (as SQS does in a partial failure).
type recorder struct {
	api   sqsqueue.API
	mu    sync.Mutex
	calls [][]string
	// fail returns, for the n-th call (from 1) and a body, whether to fail
	// the entry and whether as the sender's fault.
	fail func(call int, body string) (fail, senderFault bool)
}

func (r *recorder) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	r.mu.Lock()
	var bodies []string
	for _, e := range in.Entries {
		bodies = append(bodies, aws.ToString(e.MessageBody))
	}
	r.calls = append(r.calls, bodies)
	n := len(r.calls)
	r.mu.Unlock()
	pass := *in
	pass.Entries = nil
	var failed []sqstypes.BatchResultErrorEntry
	for _, e := range in.Entries {
		if r.fail != nil {
			if f, sender := r.fail(n, aws.ToString(e.MessageBody)); f {
				failed = append(failed, sqstypes.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError"), Message: aws.String("injected"), SenderFault: sender})
				continue
			}
		}
		pass.Entries = append(pass.Entries, e)
	}
	out := &sqs.SendMessageBatchOutput{}
	if len(pass.Entries) > 0 {
		var err error
		if out, err = r.api.SendMessageBatch(ctx, &pass, optFns...); err != nil {
			return nil, err
		}
	}
	out.Failed = append(out.Failed, failed...)
	return out, nil
}

func (r *recorder) sizes() []int {
	var s []int
	for _, c := range r.calls {
		s = append(s, len(c))
	}
	return s
}

func newQueue(t *testing.T) (*sqs.Client, string) {
	t.Helper()
	srv := motoserver.Shared(t)
	srv.Reset(t)
	client := sqs.NewFromConfig(srv.Config(t))
	out, err := client.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String("sweep")})
	if err != nil {
		t.Fatal(err)
	}
	return client, aws.ToString(out.QueueUrl)
}

// received drains the queue and returns every body, sorted.
func received(t *testing.T, client *sqs.Client, url string) []string {
	t.Helper()
	var bodies []string
	for {
		out, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, VisibilityTimeout: 600})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			bodies = append(bodies, aws.ToString(m.Body))
		}
	}
	slices.Sort(bodies)
	return bodies
}

func bodies(n, size int) []string {
	out := make([]string, n)
	for i := range out {
		b := fmt.Sprintf(`{"sweep":{"account":"111122223333","region":"eu-west-1","shard":%d}}`, i)
		if size > len(b) {
			b += strings.Repeat(" ", size-len(b))
		}
		out[i] = b
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestSendBatchesByTen(t *testing.T) {
	client, url := newQueue(t)
	rec := &recorder{api: client}
	want := bodies(23, 0)
	if err := sqsqueue.New(rec, url).Send(context.Background(), want); err != nil {
		t.Fatal(err)
	}
	if got := rec.sizes(); !slices.Equal(got, []int{10, 10, 3}) {
		t.Errorf("calls carried %v entries, want [10 10 3]", got)
	}
	if got := received(t, client, url); !slices.Equal(got, sorted(want)) {
		t.Errorf("queue holds %d messages %v, want the %d sent", len(got), got, len(want))
	}
}

func TestSendNothing(t *testing.T) {
	client, url := newQueue(t)
	rec := &recorder{api: client}
	if err := sqsqueue.New(rec, url).Send(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if len(rec.calls) != 0 {
		t.Errorf("%d calls for no message", len(rec.calls))
	}
}

// Ten bodies of 120 KiB are more than one call may carry (moto, like SQS,
// refuses the batch): Send splits by size as well as by count.
func TestSendSplitsBySize(t *testing.T) {
	client, url := newQueue(t)
	want := bodies(10, 120*1024)
	var entries []sqstypes.SendMessageBatchRequestEntry
	for i, b := range want {
		entries = append(entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), MessageBody: aws.String(b)})
	}
	if _, err := client.SendMessageBatch(context.Background(), &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries}); err == nil {
		t.Fatal("moto took 1.2 MiB in one batch: this test no longer shows the size split matters")
	}
	rec := &recorder{api: client}
	if err := sqsqueue.New(rec, url).Send(context.Background(), want); err != nil {
		t.Fatal(err)
	}
	if got := rec.sizes(); !slices.Equal(got, []int{2, 2, 2, 2, 2}) {
		t.Errorf("calls carried %v entries, want [2 2 2 2 2] (at most %d bytes a call)", got, sqsqueue.MaxBatchBytes)
	}
	if got := received(t, client, url); !slices.Equal(got, sorted(want)) {
		t.Errorf("queue holds %d messages, want the %d sent", len(got), len(want))
	}
}

func TestSendRetriesOnlyFailedEntries(t *testing.T) {
	client, url := newQueue(t)
	want := bodies(12, 0)
	flaky := map[string]bool{want[3]: true, want[11]: true}
	rec := &recorder{api: client, fail: func(call int, body string) (bool, bool) {
		// Both fail in their first call; want[3] fails once more.
		return (call <= 2 && flaky[body]) || (call == 3 && body == want[3]), false
	}}
	q := sqsqueue.New(rec, url)
	q.SetBackoff(0)
	if err := q.Send(context.Background(), want); err != nil {
		t.Fatal(err)
	}
	wantCalls := [][]string{want[:10], want[10:], {want[3], want[11]}, {want[3]}}
	if fmt.Sprint(rec.calls) != fmt.Sprint(wantCalls) {
		t.Errorf("calls =\n%v\nwant\n%v", rec.calls, wantCalls)
	}
	if got := received(t, client, url); !slices.Equal(got, sorted(want)) {
		t.Errorf("queue holds %d messages, want each of the %d sent once", len(got), len(want))
	}
}

func TestSendGivesUp(t *testing.T) {
	client, url := newQueue(t)
	want := bodies(4, 0)
	rec := &recorder{api: client, fail: func(_ int, body string) (bool, bool) {
		switch body {
		case want[1]:
			return true, true // the sender's fault: never sent again
		case want[2]:
			return true, false // always failing
		}
		return false, false
	}}
	q := sqsqueue.New(rec, url)
	q.SetBackoff(0)
	err := q.Send(context.Background(), want)
	if err == nil {
		t.Fatal("no error")
	}
	var entries []int
	for _, e := range unwrapAll(err) {
		if ee, ok := e.(*sqsqueue.EntryError); ok {
			entries = append(entries, ee.Index)
		}
	}
	if !slices.Equal(entries, []int{1, 2}) || !strings.Contains(err.Error(), url) || !strings.Contains(err.Error(), "2 of 4 messages not sent") || !strings.Contains(err.Error(), "message 2: InternalError (SQS fault): injected (5 attempts)") {
		t.Errorf("error %q names entries %v, want the queue and entries [1 2]", err, entries)
	}
	// One call with all four, then four with only the always failing one.
	if got := rec.sizes(); !slices.Equal(got, []int{4, 1, 1, 1, 1}) {
		t.Errorf("calls carried %v entries, want [4 1 1 1 1]", got)
	}
	if got := received(t, client, url); !slices.Equal(got, sorted([]string{want[0], want[3]})) {
		t.Errorf("queue holds %v, want messages 0 and 3", got)
	}
}

func unwrapAll(err error) []error {
	out := []error{err}
	switch e := err.(type) {
	case interface{ Unwrap() []error }:
		for _, c := range e.Unwrap() {
			out = append(out, unwrapAll(c)...)
		}
	case interface{ Unwrap() error }:
		if c := e.Unwrap(); c != nil {
			out = append(out, unwrapAll(c)...)
		}
	}
	return out
}

func TestSendRefusesTooLargeBody(t *testing.T) {
	client, url := newQueue(t)
	rec := &recorder{api: client}
	err := sqsqueue.New(rec, url).Send(context.Background(), []string{"ok", strings.Repeat("x", sqsqueue.MaxBatchBytes+1)})
	if err == nil || !strings.Contains(err.Error(), "message 1 is") {
		t.Errorf("error = %v, want message 1 named", err)
	}
	if len(rec.calls) != 0 {
		t.Errorf("%d calls: a refused send sends nothing", len(rec.calls))
	}
}

func TestSendToMissingQueue(t *testing.T) {
	client, url := newQueue(t)
	missing := strings.TrimSuffix(url, "sweep") + "nope"
	err := sqsqueue.New(client, missing).Send(context.Background(), bodies(3, 0))
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "messages 0-2") {
		t.Errorf("error = %v, want the queue URL and the messages named", err)
	}
}
