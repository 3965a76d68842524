// Package ddbledger is the DynamoDB ledger of sgrules: which source owns
// which security group rule, what each source last applied, and short
// leases that serialise work on a group.
//
// # Table
//
// One table: partition key pk (S), sort key sk (S), on-demand billing, TTL
// on the attribute ttl (see CreateTable). Every item of one target
// (account and region: group ids are unique only within one) is in that
// target's partition, and its sort key names its kind first (keys.go):
//
//	pk = "t#home"                 the home target (the hub's own account
//	                              and region, whatever they are)
//	pk = "t#<account>#<region>"   every other target
//
//	source      sk = "source#<key>"
//	            kind (S), etag (S), versionId (S), commit (S), status (S),
//	            diagnostics (L of S), message (S), appliedAt (S, RFC 3339),
//	            perms (B: gzip of a JSON array of
//	              {"key": Key.String(), "description": …, "rule": owner rule}
//	              plus "source" when the owner is not this source),
//	            exclusive (L of S), ver (N)
//	permission  sk = "perm#<Key.String()>"
//	            ruleId (S), owners (M of S: owner "source#rule" → description),
//	            description (S), ver (N)
//	lease       sk = "lease#<sg-id>"
//	            holder (S), expiresAt (N, unix ms), ttl (N, unix s)
//	intent      sk = "intent#<Key.String()>"
//	            at (S, RFC 3339), ttl (N, unix s: at + IntentTTL)
//	usage       sk = "usage#<sg-id>|<YYYY-MM-DD>": traffic counters of a
//	            group's rules on one day (counters.go)
//	flow object sk = "flowobj#<bucket>/<key>#etag#<etag>#<i>/<n>": the
//	            marker of a counted flow-log object (counters.go)
//	history     sk = "history#<sg-id>|h#<time>#<seq>#<Key.String()>"
//	            one event of a rule's history (history.go)
//
// Outside every target:
//
//	targets     pk = "meta#targets" sk = the target's pk
//	            account (S), region (S): the registry of the targets
//	            that hold source records, written before a target's first
//	            source record
//	layout      pk = "meta#layout" sk = "meta"
//	            layout (N) = 2; holder (S), expiresAt (N) while an upgrade
//	            runs (upgrade.go)
//	budget      pk = "meta#budget#<run id>" sk = "budget"
//	            c_<claimant> (N), v (N), ttl (N, unix s): the revoke
//	            budget of one scheduled sweep (budget.go)
//	deployment  pk = "meta#deployment" sk = "meta"
//	            id (S), table (S), createdAt (S, RFC 3339)
//
// So one target's items of one kind are one Query (pk = the target's,
// begins_with(sk, kind), strongly consistent, paged), and one group's
// permissions or intents one Query on kind + group id + "|" (Key.String()
// ends the group id with "|"): reads of a target grow with its own items,
// never with the other targets'. No path of a run or a sweep scans the
// table. ListAllSources reads the registry (one Query) and then each
// target's sources. Ownership decisions read the base table only, with
// strongly consistent reads and conditional writes: a global secondary
// index on a target attribute would have done the same job with the old
// keys, but its reads are eventually consistent, and a permission or
// lease read a moment late would let two runs both believe they own a
// rule. A new per-target kind adds a kind constant in keys.go and uses
// Ledger.key and Ledger.queryKind; nothing else builds a target's keys.
//
// One partition key per target is a hot key only past about 1,000 writes
// (3,000 reads) per second in one target; DynamoDB splits a busy
// partition by sort key ranges, and the table has no local index, which
// would stop it.
//
// Tables written before this layout (layout 1: each item under its own pk,
// "source#<key>", "group#<sg>", "lease#<sg>", "intent#<sg>", prefixed
// "target#<account>#<region>#" outside the home target) are upgraded in
// place on first use (Upgrade; docs/multi-account.md).
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
// New returns the home target's ledger (WithHome names it); For(t) the
// ledger of t, which reads and writes only its own partition. A peer group
// in another account appears in keys as "sg:<account>/sg-…" (rules.Key).
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
