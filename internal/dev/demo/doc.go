// Package demo runs sgrules end to end on a laptop, with no AWS account:
// moto_server stands in for AWS, and the real reconcile and drift Lambda
// bootstraps run under the Lambda Runtime Interface Emulator.
//
// Run starts moto on a free loopback port; creates a VPC, the security
// groups the example rule files reference (by their Name tag), the ledger
// table, an SQS queue and a versioned bucket that notifies the queue of
// objects created and removed under rules/; uploads the examples; delivers
// the queued S3 events to the reconcile function as a Lambda SQS event
// source mapping would; prints the resulting rules; then changes rules by
// hand, runs the drift function with a Scheduled Event and shows what it
// reverted and what it left alone. The example guardrail policy is in the
// bucket: the demo shows a file it refuses and a hand-made rule violating
// it reported by the drift function. It fails unless the final state is
// converged. Everything it starts is stopped when it returns, also when
// ctx is cancelled (Ctrl-C).
//
// It may import anything but internal/testutil in code that is not a test
// (the demo is linked into the CLI).
package demo
