package awsconfig_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
)

func TestLoad(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
	t.Setenv("AWS_REGION", "eu-west-3")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")

	cfg, err := awsconfig.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != "eu-west-3" {
		t.Errorf("region = %q", cfg.Region)
	}
	if got := aws.ToString(cfg.BaseEndpoint); got != "http://127.0.0.1:4566" {
		t.Errorf("BaseEndpoint = %q, want AWS_ENDPOINT_URL", got)
	}
	r := cfg.Retryer()
	if n := r.MaxAttempts(); n != awsconfig.MaxAttempts {
		t.Errorf("MaxAttempts = %d, want %d", n, awsconfig.MaxAttempts)
	}

	c := s3.NewFromConfig(cfg, awsconfig.S3Options)
	if !c.Options().UsePathStyle {
		t.Error("S3Options did not set path style with an endpoint override")
	}
	if got := aws.ToString(c.Options().BaseEndpoint); got != "http://127.0.0.1:4566" {
		t.Errorf("s3 BaseEndpoint = %q", got)
	}

	cfg.BaseEndpoint = nil
	t.Setenv("AWS_ENDPOINT_URL", "")
	if s3.NewFromConfig(cfg, awsconfig.S3Options).Options().UsePathStyle {
		t.Error("S3Options set path style without an endpoint override")
	}
}

func TestRetryerBackoff(t *testing.T) {
	r := awsconfig.NewRetryer()
	// Full jitter over min(MaxBackoff, 2^attempt s): never above MaxBackoff.
	for attempt := 1; attempt < 12; attempt++ {
		d, err := r.RetryDelay(attempt, &retryableErr{})
		if err != nil {
			t.Fatal(err)
		}
		if d > awsconfig.MaxBackoff {
			t.Fatalf("attempt %d delay %s > %s", attempt, d, awsconfig.MaxBackoff)
		}
	}
	if !r.IsErrorRetryable(&throttle{}) {
		t.Error("throttling error is not retryable")
	}
}

type retryableErr struct{}

func (*retryableErr) Error() string { return "x" }

type throttle struct{}

func (*throttle) Error() string        { return "slow down" }
func (*throttle) ErrorCode() string    { return "ThrottlingException" }
func (*throttle) ErrorMessage() string { return "slow down" }
func (*throttle) ErrorFault() int      { return 0 }
