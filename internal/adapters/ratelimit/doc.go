// Package ratelimit keeps sgrules' EC2 calls under EC2's request
// throttling with client-side token buckets shaped like EC2's own.
//
// EC2 throttles each account and region with token buckets per category
// of action: a call takes a token; an empty bucket answers
// RequestLimitExceeded; tokens come back at a fixed refill rate up to the
// bucket's capacity. Waiting on the client instead keeps a large plan from
// draining the account's buckets (which other tools share) and from
// turning into a retry storm.
//
// Client decorates the SDK-shaped ec2sg.API (what *ec2.Client offers the
// EC2 adapter), so each real EC2 call takes one token and the limiter knows
// nothing of how the adapter batches or pages. Defaults are the numbers of
// EC2's documented default buckets and every one is configurable:
//
//	mutating calls (egress authorize/revoke, ModifySecurityGroupRules): 50, refilled at 5/s
//	AuthorizeSecurityGroupIngress and RevokeSecurityGroupIngress:       50, refilled at 5/s (their own bucket)
//	non-mutating calls (Describe*):                                      100, refilled at 20/s
//
// The buckets are meant to live as long as the process (one per Lambda
// execution environment, built in main), so warm invocations share them.
//
// It may import the AWS SDK, pkg/rules, internal/reconcile (the ports it
// implements) and internal/strutil; never a Lambda shell or the CLI.
package ratelimit
