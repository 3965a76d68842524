// Command flowlogs is the flow-log function: subscribed through SQS to
// the S3 notifications of the VPC Flow Logs bucket, it counts each log
// object's traffic per managed rule and day in the ledger
// (internal/lambda/flowlogs). main only wires.
package main
