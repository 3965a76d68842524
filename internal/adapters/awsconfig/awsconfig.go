package awsconfig

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Retry limits: a reconcile that is throttled waits rather than fails.
const (
	MaxAttempts = 8
	MaxBackoff  = 20 * time.Second
)

// Load returns config.LoadDefaultConfig with the standard retryer
// (MaxAttempts attempts, backoff up to MaxBackoff). optFns are applied
// after the defaults.
func Load(ctx context.Context, optFns ...func(*config.LoadOptions) error) (aws.Config, error) {
	opts := append([]func(*config.LoadOptions) error{
		config.WithRetryer(NewRetryer),
	}, optFns...)
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load aws config: %w", err)
	}
	return cfg, nil
}

// NewRetryer is the retryer Load installs.
func NewRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = MaxAttempts
		o.MaxBackoff = MaxBackoff
	})
}

// S3Options sets path-style addressing when the endpoint is overridden
// (local emulators serve buckets by path, not by virtual host). Use it as
// s3.NewFromConfig(cfg, awsconfig.S3Options).
func S3Options(o *s3.Options) {
	if o.BaseEndpoint != nil && *o.BaseEndpoint != "" {
		o.UsePathStyle = true
	}
}
