// Package ddbledger is the DynamoDB ledger of sgrules: which source owns
// which security group rule, what each source last applied, and short
// leases that serialise work on a group.
//
// # Table
//
// One table: partition key pk (S), sort key sk (S), on-demand billing, TTL
// on the attribute ttl (see CreateTable). Items:
//
//	source      pk = "source#<key>"  sk = "source"
//	            kind (S), etag (S), versionId (S), commit (S), status (S),
//	            diagnostics (L of S), message (S), appliedAt (S, RFC 3339),
//	            perms (B: gzip of a JSON array of
//	              {"key": Key.String(), "description": …, "rule": owner rule}
//	              plus "source" when the owner is not this source),
//	            exclusive (L of S), ver (N)
//	permission  pk = "group#<sg-id>" sk = "perm#<Key.String()>"
//	            ruleId (S), owners (M of S: owner "source#rule" → description),
//	            description (S), ver (N)
//	lease       pk = "lease#<sg-id>" sk = "lease"
//	            holder (S), expiresAt (N, unix ms), ttl (N, unix s)
//	budget      pk = "meta#budget#<run id>" sk = "budget"
//	            c_<claimant> (N), v (N), ttl (N, unix s): the revoke
//	            budget of one scheduled sweep (budget.go)
//	intent      pk = "intent#<sg-id>" sk = "<Key.String()>"
//	            at (S, RFC 3339), ttl (N, unix s: at + IntentTTL)
//	deployment  pk = "meta#deployment" sk = "meta"
//	            id (S), table (S), createdAt (S, RFC 3339)
//	history     pk = "history#<sg-id>" sk = "h#<time>#<seq>#<Key.String()>"
//	            one event of a rule's history (history.go)
//
// The deployment item holds the deployment's identity (the value of the
// sgrules:ledger tag on the rules it creates), written once by the first
// run, conditionally, so concurrent first runs agree; it is outside every
// target's scope (one per table).
//
// An intent is written before the engine authorizes the permission and
// deleted after the commit recording the new rule: a rule carrying the
// deployment's tag that no permission item holds is the deployment's only
// with an intent for its key (a crash cut the commit short).
//
// # Targets
//
// One table holds the ledger of every target (account and region): group
// ids are unique only within one. The home target's items have the keys
// above, unchanged, so a ledger written before targets existed is the home
// target's without a migration. Every other target's items have the same
// shapes with every pk prefixed by "target#<account>#<region>#":
//
//	source      pk = "target#111122223333#eu-west-1#source#<key>"  sk = "source"
//	permission  pk = "target#111122223333#eu-west-1#group#<sg-id>" sk = "perm#<Key.String()>"
//	lease       pk = "target#111122223333#eu-west-1#lease#<sg-id>" sk = "lease"
//
// New returns the home target's ledger (WithHome names it); For(t) the
// ledger of t, which reads and writes only its own prefix; ListAllSources
// reads every target's source records in one Scan. A peer group in another
// account appears in keys as "sg:<account>/sg-…" (rules.Key).
//
// Empty strings and empty lists are not stored; absent attributes read as
// zero values. perms is compressed so that a source with thousands of
// permissions stays well under the 400 KB item limit.
//
// # Versions and commits
//
// Every permission and source item carries ver, incremented on each write.
// Write puts and deletes an item on condition ver = Version, or, when the
// record's Version is 0, on the item having no numeric ver (absent, or an
// item not written by the ledger, read as undecodable and salvaged: it is
// replaced, never one the ledger wrote); a lost race is reported as
// reconcile.ErrConflict. An item that cannot be decoded is skipped and
// reported (a warning with the embedded metric UndecodableItems), so it
// never stops the reads of the other items.
//
// A commit is written in TransactWriteItems calls of at most 100 items:
// source records, then permission puts, then permission deletes, then
// source deletes. Each call is atomic, the calls are not atomic with each
// other. The order keeps one invariant at every cut: a permission item
// names only owners whose source record exists. Records are written before
// the permissions that name them and deleted after; a source's record
// is deleted only once it owns nothing. A commit cut short (a crash, a
// non-retryable error) therefore leaves either a source record ahead of
// its permissions, which the next run of that source or the next sweep
// completes from the source's declaration, EC2 and the rule tags, or
// permissions not yet deleted, which the next run deletes again. Every
// item write is conditional and idempotent in effect, and the engine
// always re-plans from EC2 plus the ledger. (Owners left without a record
// by earlier versions are treated as gone by complete sweeps.)
//
// It may import the AWS SDK, pkg/rules, internal/reconcile (the ports it
// implements) and internal/strutil; never a Lambda shell or the CLI.
package ddbledger
