// Package handler turns Lambda invocations into engine requests: it decodes
// the event (internal/lambda/trigger), builds a reconcile.Request, runs it and
// shapes the response. It holds the logic of functions/reconcile
// (Reconcile: rule file events, sweeps, CloudFormation) and functions/drift
// (Drift: sweeps planned per target, CloudTrail calls, drift reports and
// alerts), whose main packages only wire it up. The two handler types share
// the decoding, the run and its response (core); neither switches on the
// other's settings.
//
// Errors: invalid rule files are reported by the engine in the result (a
// source's status) and logged; they never fail an invocation (no retry
// storm). An error that retrying cannot fix (IsTerminal: a
// *rules.ValidationError, which the engine does not return today) is logged
// and the invocation succeeds. Any other engine error is returned, so
// Lambda retries the invocation; in an SQS batch it fails only the message
// it came from (events.SQSEventResponse).
//
// It may import internal/reconcile, pkg/*, the Lambda libraries and
// adapters; never the CLI or development tooling.
package handler
