// Package awsconfig loads the AWS configuration every sgrules binary
// shares: the default credential and region chain, and a retryer that rides
// out throttling and 5xx errors with backoff.
//
// Endpoint overrides (moto, LocalStack) need no code: the SDK reads
// AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE> itself (cfg.BaseEndpoint
// and per-service resolution). S3 clients must add S3Options so that a
// local endpoint is addressed path-style.
//
// Caller is the principal of a configuration: its account and partition
// (sts:GetCallerIdentity, once) and the configuration of a target account
// and region (its own credentials at home, an assumed role's elsewhere,
// one credentials cache per account). The functions' hubs (fleetrt, the
// flow-log function) share it.
//
// It may import the AWS SDK, pkg/rules, internal/reconcile (the ports it
// implements) and internal/strutil; never a Lambda shell or the CLI.
package awsconfig
