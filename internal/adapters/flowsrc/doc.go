// Package flowsrc is the AWS side of traffic evidence: it reads VPC Flow
// Logs objects from S3 in the standard layout over a time window (Logs)
// and finds network interfaces and prefix-list entries with batched,
// cached EC2 calls (Lookup, a flowlog.Lookup).
//
// It may import the SDK, pkg/flowlog and pkg/rules.
package flowsrc
