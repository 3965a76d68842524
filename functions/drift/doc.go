// Command drift is the scheduled Lambda function that reverts (or, in
// report mode, only reports) changes made to managed security group rules
// outside sgrules. It runs on a schedule and on CloudTrail security group
// API calls; calls made by sgrules' own roles are ignored. The logic is in
// internal/lambda/handler; this file only wires it up.
//
// Environment (read by internal/config, config.Drift): as the reconcile
// function, plus DRIFT_MODE (report or revert, default revert),
// SGRULES_ROLE_ARNS (comma-separated role ARNs whose API calls are
// sgrules' own) and ALERT_TOPIC_ARN (optional SNS topic receiving a
// summary when drift is found). Each run logs one drift report
// line and writes the drift metrics as an embedded metric format line on
// stdout (internal/report).
//
// It may import internal/config, internal/fleetrt, internal/lambda and the
// adapters; main only wires things up.
package main
