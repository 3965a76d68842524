// Package demo runs sgrules end to end on a laptop, with no AWS account:
// moto_server stands in for AWS, and the real reconcile and drift Lambda
// bootstraps run under the Lambda Runtime Interface Emulator.
//
// Run starts moto on a free loopback port; creates a VPC, the security
// groups the example rule files reference (by their Name tag), the ledger
// table, an SQS queue and a versioned bucket that notifies the queue of
// objects created and removed under rules/; creates a second target, a VPC
// and groups in account 111122223333 in eu-west-1, with the credentials
// moto's AssumeRole into its role sgrules-target gives (moto keeps
// accounts apart by them); uploads the examples and a file naming that
// account and region (the functions run with TARGET_ACCOUNTS); delivers
// the queued S3 events to the reconcile function as a Lambda SQS event
// source mapping would; prints the resulting rules of each target; then
// changes rules by hand in both, runs the drift function with a Scheduled
// Event and shows what it reverted (per target) and what it left alone.
// The example guardrail policy is in the bucket: the demo shows a file it
// refuses and a hand-made rule violating it reported by the drift
// function. It fails unless the final state is converged in both targets.
// Then (expiry.go, attribution.go, usage.go): a file whose rule expires
// 20 s after its upload is applied with its sgrules:expires-at tag and an
// EventBridge Scheduler schedule (group ExpiryGroup), and once the
// deadline has passed the drift function, invoked with the schedule's
// input as Scheduler does, revokes it; a managed rule deleted by hand is
// put back by the drift function fed a CloudTrail event of the call by
// assumed-role/Admin/alice, whose report, SNS alert (topic AlertTopic) and
// `sgrules history` name her; `sgrules usage` (the CLI, built with the
// functions) reads a flow log the demo writes to FlowLogBucket for an
// interface of group web: web.yaml's HTTPS rule carried traffic, the
// others none; and `sgrules history` of the temporary rule ends with its
// expiry.
// Everything it starts is stopped when it returns, also when ctx is
// cancelled (Ctrl-C).
//
// It may import anything but internal/testutil in code that is not a test
// (the demo is linked into the CLI).
package demo
