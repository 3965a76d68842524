package flowlogs_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sgrules/sgrules/internal/lambda/flowlogs"
)

// cutS3 serves an object whose connection breaks after half its bytes.
type cutS3 struct{ data []byte }

func (f cutS3) GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	half := bytes.NewReader(f.data[:len(f.data)/2])
	return &s3.GetObjectOutput{Body: io.NopCloser(io.MultiReader(half, errReader{})), ContentLength: aws.Int64(int64(len(f.data))), ETag: aws.String(`"e"`)}, nil
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

// shortS3 serves an object whose body ends early without an error (a
// connection closed cleanly mid-object).
type shortS3 struct{ data []byte }

func (f shortS3) GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(f.data[:len(f.data)/2])), ContentLength: aws.Int64(int64(len(f.data))), ETag: aws.String(`"e"`)}, nil
}

// TestTransferCut: an object whose transfer breaks is not counted (its
// first half would be, and marked, for good) but returned for a retry;
// the same bytes broken as content are counted and not retried.
func TestTransferCut(t *testing.T) {
	data := benchObject(t, 2000, 20)
	key := "AWSLogs/123456789012/vpcflowlogs/eu-west-1/2025/12/01/x.log.gz"
	for name, api := range map[string]flowlogs.S3API{"error": cutS3{data}, "short": shortS3{data}} {
		led := &fakeLedger{}
		h := &flowlogs.Handler{S3: api, Ledger: led, Targets: fakeTargets{}, Logger: slog.New(slog.DiscardHandler)}
		if err := h.Object(context.Background(), flowlogs.Notification{Bucket: "b", Key: key}); err == nil || led.credited.Load() != 0 {
			t.Errorf("%s: err %v, %d counters written; want an error and none", name, err, led.credited.Load())
		}
	}
	// A gzip cut in the middle, served whole: bad content, counted.
	led := &fakeLedger{}
	h := &flowlogs.Handler{S3: fakeS3{data[:len(data)/2]}, Ledger: led, Targets: fakeTargets{}, Logger: slog.New(slog.DiscardHandler)}
	if err := h.Object(context.Background(), flowlogs.Notification{Bucket: "b", Key: key}); err != nil || led.credited.Load() == 0 {
		t.Errorf("truncated content: err %v, %d counters; want counted, no error", err, led.credited.Load())
	}
}
