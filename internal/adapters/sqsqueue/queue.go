package sqsqueue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// API is the part of the SQS client a Queue uses.
type API interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

var _ API = (*sqs.Client)(nil)

const (
	// MaxBatchEntries is the most entries SendMessageBatch takes.
	MaxBatchEntries = 10
	// MaxBatchBytes bounds the sum of the bodies of one call. SQS allows
	// 1 MiB today; 256 KiB was the limit for years and still fits ten
	// sweep messages of 500 groups (about 12 KB each) with room to spare.
	MaxBatchBytes = 256 * 1024
	// attempts is how often an entry is sent before Send gives up on it.
	attempts = 5
)

// Queue sends messages to one queue.
type Queue struct {
	api API
	url string
	// backoff is the pause before the first resend, doubled for each
	// further one (tests set it to zero).
	backoff time.Duration
}

// New returns a Queue sending to queueURL through api.
func New(api API, queueURL string) *Queue {
	return &Queue{api: api, url: queueURL, backoff: 100 * time.Millisecond}
}

// EntryError is an entry SQS did not accept.
type EntryError struct {
	Index       int // into the bodies given to Send
	Code        string
	Message     string
	SenderFault bool
	Attempts    int // sends of the entry, when Send gave up on it after retries
}

func (e *EntryError) Error() string {
	fault := "SQS"
	if e.SenderFault {
		fault = "sender"
	}
	msg := fmt.Sprintf("message %d: %s (%s fault): %s", e.Index, e.Code, fault, e.Message)
	if e.Attempts > 0 {
		msg += fmt.Sprintf(" (%d attempts)", e.Attempts)
	}
	return msg
}

// Send sends every body as one message. It returns nil once SQS has
// accepted all of them; otherwise an error naming the queue and wrapping
// the call's error or, joined, an *EntryError per message not sent.
// Bodies sent before an error stay sent: a caller that sends
// again may deliver some twice (sweep messages are idempotent).
func (q *Queue) Send(ctx context.Context, bodies []string) error {
	for i, b := range bodies {
		if len(b) > MaxBatchBytes {
			return fmt.Errorf("send to %s: message %d is %d bytes, more than %d", q.url, i, len(b), MaxBatchBytes)
		}
	}
	pending := make([]int, len(bodies))
	for i := range pending {
		pending[i] = i
	}
	var failed []error
	wait := q.backoff
	for attempt := 1; len(pending) > 0; attempt++ {
		retry, errs, err := q.sendAll(ctx, bodies, pending)
		if err != nil {
			return fmt.Errorf("send to %s: %w", q.url, err)
		}
		failed = append(failed, errs...)
		pending = pending[:0]
		for _, r := range retry {
			pending = append(pending, r.Index)
		}
		if len(retry) == 0 {
			break
		}
		if attempt == attempts {
			for _, r := range retry {
				r.Attempts = attempts
				failed = append(failed, r)
			}
			break
		}
		if err := sleep(ctx, wait); err != nil {
			return fmt.Errorf("send to %s: %w", q.url, err)
		}
		wait *= 2
	}
	if len(failed) > 0 {
		return fmt.Errorf("send to %s: %d of %d messages not sent: %w", q.url, len(failed), len(bodies), errors.Join(failed...))
	}
	return nil
}

// sendAll sends the bodies at the indexes in batches and returns the
// entries to send again and those that failed for good.
func (q *Queue) sendAll(ctx context.Context, bodies []string, indexes []int) (retry []*EntryError, failed []error, err error) {
	for start := 0; start < len(indexes); {
		end, size := start, 0
		for end < len(indexes) && end-start < MaxBatchEntries && size+len(bodies[indexes[end]]) <= MaxBatchBytes {
			size += len(bodies[indexes[end]])
			end++
		}
		batch := indexes[start:end]
		entries := make([]sqstypes.SendMessageBatchRequestEntry, len(batch))
		for j, i := range batch {
			// Ids are unique within a call; the index maps an answer back.
			entries[j] = sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(bodies[i])}
		}
		out, err := q.api.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.url), Entries: entries})
		if err != nil {
			return nil, nil, fmt.Errorf("SendMessageBatch of messages %s: %w", describe(batch), err)
		}
		for _, f := range out.Failed {
			i, err := strconv.Atoi(aws.ToString(f.Id))
			if err != nil || !slices.Contains(batch, i) {
				return nil, nil, fmt.Errorf("SendMessageBatch answered for unknown entry id %q", aws.ToString(f.Id))
			}
			e := &EntryError{Index: i, Code: aws.ToString(f.Code), Message: aws.ToString(f.Message), SenderFault: f.SenderFault}
			if f.SenderFault {
				failed = append(failed, e)
				continue
			}
			retry = append(retry, e)
		}
		start = end
	}
	return retry, failed, nil
}

// describe renders indexes as "0-9" or "3,7".
func describe(batch []int) string {
	contiguous := true
	for j := 1; j < len(batch); j++ {
		if batch[j] != batch[j-1]+1 {
			contiguous = false
		}
	}
	if contiguous && len(batch) > 1 {
		return fmt.Sprintf("%d-%d", batch[0], batch[len(batch)-1])
	}
	s := make([]string, len(batch))
	for j, i := range batch {
		s[j] = strconv.Itoa(i)
	}
	return strings.Join(s, ",")
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
