package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sgrules/sgrules/internal/strutil"
)

// Delivery bounds: a failed message becomes visible again after
// redeliverAfter and is retried up to maxReceives times in all.
const (
	batchSize      = 10
	redeliverAfter = 1 // seconds
	maxReceives    = 3
)

// batchResult is what one batch did.
type batchResult struct {
	Messages int
	Events   []string // S3 event names in the messages ("ObjectCreated:Put")
	Tests    int      // s3:TestEvent messages
	Failed   []string // message ids the function reported as failed
	Deleted  int
}

// deliver does what a Lambda SQS event source mapping does: it receives
// batches from the queue, invokes fn with an SQS event, and deletes the
// messages the function did not report in batchItemFailures. It returns
// when the queue is empty, or fails when a message failed maxReceives times.
func deliver(ctx context.Context, c clients, queueURL, queueARN string, fn *function, report func(int, batchResult)) error {
	receives := map[string]int{}
	failed := map[string]bool{} // failed messages not received again yet
	for n := 1; ; {
		out, err := c.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(queueURL),
			MaxNumberOfMessages:         batchSize,
			VisibilityTimeout:           redeliverAfter,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
		})
		if err != nil {
			return fmt.Errorf("receive from %s: %w", Queue, err)
		}
		if len(out.Messages) == 0 {
			if len(failed) == 0 {
				return nil
			}
			// Wait for failed messages to become visible again.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(redeliverAfter * time.Second):
			}
			continue
		}
		for _, m := range out.Messages {
			id := aws.ToString(m.MessageId)
			receives[id]++
			delete(failed, id)
		}
		res, err := deliverBatch(ctx, c, queueURL, queueARN, fn, out.Messages)
		if err != nil {
			return err
		}
		report(n, res)
		n++
		for _, id := range res.Failed {
			if receives[id] >= maxReceives {
				return fmt.Errorf("message %s failed %d times (a real queue would move it to its dead-letter queue)", id, receives[id])
			}
			failed[id] = true
		}
	}
}

// deliverBatch invokes fn with one batch and deletes what succeeded.
func deliverBatch(ctx context.Context, c clients, queueURL, queueARN string, fn *function, msgs []sqstypes.Message) (batchResult, error) {
	res := batchResult{Messages: len(msgs)}
	for _, m := range msgs {
		names, test := s3EventNames(aws.ToString(m.Body))
		res.Events = append(res.Events, names...)
		if test {
			res.Tests++
		}
	}
	payload, err := json.Marshal(sqsEvent(msgs, queueARN))
	if err != nil {
		return res, fmt.Errorf("encode sqs event: %w", err)
	}
	body, err := fn.invoke(ctx, payload)
	if err != nil {
		return res, err
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		return res, fmt.Errorf("reconcile function answered %s: want batchItemFailures: %w", body, err)
	}
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
		res.Failed = append(res.Failed, f.ItemIdentifier)
	}
	var del []sqstypes.DeleteMessageBatchRequestEntry
	for _, m := range msgs {
		if !failed[aws.ToString(m.MessageId)] {
			del = append(del, sqstypes.DeleteMessageBatchRequestEntry{Id: m.MessageId, ReceiptHandle: m.ReceiptHandle})
		}
	}
	if len(del) == 0 {
		return res, nil
	}
	out, err := c.sqs.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(queueURL), Entries: del})
	if err != nil {
		return res, fmt.Errorf("delete %d messages from %s: %w", len(del), Queue, err)
	}
	if len(out.Failed) > 0 {
		return res, fmt.Errorf("delete messages from %s: %d failed: %s", Queue, len(out.Failed), aws.ToString(out.Failed[0].Message))
	}
	res.Deleted = len(out.Successful)
	return res, nil
}

// sqsEvent is the event Lambda's SQS event source mapping sends for msgs.
func sqsEvent(msgs []sqstypes.Message, queueARN string) events.SQSEvent {
	ev := events.SQSEvent{Records: make([]events.SQSMessage, 0, len(msgs))}
	for _, m := range msgs {
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId:         aws.ToString(m.MessageId),
			ReceiptHandle:     aws.ToString(m.ReceiptHandle),
			Body:              aws.ToString(m.Body),
			Md5OfBody:         aws.ToString(m.MD5OfBody),
			Attributes:        m.Attributes,
			MessageAttributes: map[string]events.SQSMessageAttribute{},
			EventSourceARN:    queueARN,
			EventSource:       "aws:sqs",
			AWSRegion:         Region,
		})
	}
	return ev
}

// s3EventNames returns the event names of an S3 notification body, and
// whether it is the s3:TestEvent S3 sends when notifications are set up.
func s3EventNames(body string) (names []string, test bool) {
	var n struct {
		Event   string `json:"Event"`
		Records []struct {
			EventName string `json:"eventName"`
		} `json:"Records"`
	}
	if json.Unmarshal([]byte(body), &n) != nil {
		return nil, false
	}
	for _, r := range n.Records {
		names = append(names, r.EventName)
	}
	return names, n.Event == "s3:TestEvent"
}

// describeBatch renders a batch as one line: "8 messages (7 ObjectCreated:Put,
// 1 s3:TestEvent): 0 failed, 8 deleted".
func describeBatch(n int, b batchResult) string {
	counts := map[string]int{}
	var order []string
	for _, e := range b.Events {
		if counts[e] == 0 {
			order = append(order, e)
		}
		counts[e]++
	}
	var parts []string
	for _, e := range order {
		parts = append(parts, fmt.Sprintf("%d %s", counts[e], e))
	}
	if b.Tests > 0 {
		parts = append(parts, fmt.Sprintf("%d s3:TestEvent", b.Tests))
	}
	what := ""
	if len(parts) > 0 {
		what = " (" + strings.Join(parts, ", ") + ")"
	}
	return fmt.Sprintf("batch %d: %d %s%s → %d failed, %d deleted from the queue",
		n, b.Messages, strutil.Plural(b.Messages, "message"), what, len(b.Failed), b.Deleted)
}
