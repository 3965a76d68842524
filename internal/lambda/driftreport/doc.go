// Package driftreport turns the result of a drift sweep into what operators
// see: one JSON report (logged by the drift function), CloudWatch metrics in
// the embedded metric format (a log line CloudWatch Logs turns into metrics,
// with no PutMetricData call or permission), and a short human-readable
// summary for an alert topic. It is pure: no AWS calls, no logging.
//
// It may import internal/reconcile, pkg/*, the Lambda libraries and
// adapters; never the CLI or development tooling.
package driftreport
