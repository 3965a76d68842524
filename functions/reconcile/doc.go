// Command reconcile is the Lambda function that applies rule files: S3
// object events (direct, SQS or EventBridge) reconcile the files they name;
// it also serves CloudFormation Custom::SecurityGroupRule requests. The
// logic is in internal/lambda/handler; this file only wires it up.
//
// Environment (read by internal/config, config.Reconcile): STATE_TABLE and
// RULES_BUCKET (required), RULES_PREFIX (default rules/), MAX_REVOKE
// (default 50, negative for no limit).
//
// It may import internal/config, internal/fleetrt, internal/lambda and the
// adapters; main only wires things up.
package main
