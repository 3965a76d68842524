// Package fleetrt is the runtime of one hub, built from a config.Config:
// the hub's identity (one sts:GetCallerIdentity on first use), the
// credentials of each target account (an assumed TARGET_ROLE behind one
// credentials cache per account), the clients of each target (one
// rate-limited EC2 adapter per account and region), the ledger, the
// guardrail policy, the region check, and a reconcile.Engine per target
// on top of them (Fleet, New). A function builds one Fleet in its init and
// keeps it for the execution environment, so warm invocations share the
// sessions, the caches and the token buckets. It also holds what runs on
// that runtime outside one engine: the revoke budget of a schedule, the
// expiry schedules, offboarding, and the traffic-evidence readers.
//
// Both Lambda mains and the CLI build their hub here. It may import the
// engine, the adapters, the pure core and internal/config; never the
// shells (internal/lambda, internal/cli, cmd, functions) or development
// tooling.
package fleetrt
