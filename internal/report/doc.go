// Package report is the presentation layer shared by the Lambda functions
// and the CLI. Today it holds the drift report: one JSON report (logged by
// the drift function and printed by sgrules drift), CloudWatch metrics in
// the embedded metric format (a log line CloudWatch Logs turns into
// metrics, with no PutMetricData call or permission), and a short
// human-readable summary for an alert topic. It is pure: no AWS calls, no
// logging.
//
// It may import internal/reconcile, internal/strutil and pkg/* only; the
// Lambda wing (internal/lambda) and the CLI (internal/cli, cmd) import it,
// never each other (internal/dev/layout checks both).
package report
