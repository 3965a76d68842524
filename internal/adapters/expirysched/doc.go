// Package expirysched keeps, per target (account and region), one
// EventBridge Scheduler one-time schedule at the earliest deadline of the
// target's rules: at that moment it invokes the drift function with the
// sweep message of exactly that target, which revokes what has expired.
//
// Keep is idempotent: it reads the schedule, and creates, updates or
// deletes it only when it differs from what is wanted. Schedules are named
// per target (Name), fire once (at(...) in UTC, no flexible window) and
// delete themselves after completion.
//
// It may import the AWS SDK and the standard library; never the engine,
// a Lambda shell or the CLI (the port it satisfies,
// reconcile.ExpiryScheduler, is declared where it is used).
package expirysched
