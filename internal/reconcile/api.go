package reconcile

import (
	"context"
	"log/slog"
	"time"

	"github.com/sgrules/sgrules/pkg/rules"
)

// Config wires an Engine.
type Config struct {
	Source Source
	Groups Groups
	Ledger Ledger
	// LedgerID is the ledger table's name, the identity of deployments
	// before they had a generated one: rules tagged TagLedger=LedgerID by
	// earlier versions are recognised as this deployment's (when its
	// ledger holds them, which proves them its own). Required.
	LedgerID string
	// DeploymentID is the identity proposed for a ledger that has none
	// yet (DEPLOYMENT_ID: the stack's id); empty proposes a random one.
	// The identity is stored once in the ledger (Ledger.DeploymentID) and
	// every engine on that ledger uses the stored one: rules it creates
	// are tagged TagLedger=<identity>, unique per deployment whatever the
	// table's name, account or region.
	DeploymentID string
	// Peers are the ledgers of the other deployments sharing these
	// groups, read only (PEER_LEDGERS): with them, another deployment's
	// claim on a rule is honoured only when its ledger holds the rule
	// (claims.go); without them every claim is honoured and reported.
	Peers []Peer
	// ManagedGroupTag, when set, limits changes to groups carrying this tag
	// (as the template's IAM policy does): a source declaring rules in a
	// group without it is invalid, and drift there is only reported.
	ManagedGroupTag string
	// MaxPause caps break-glass: a sgrules:pause-until tag more than this
	// ahead of now pauses nothing and is reported (DriftReport.PauseTooLong)
	// (0 means DefaultMaxPause; negative means no cap).
	MaxPause time.Duration
	// MaxRevoke is the blast-radius guard: a plan losing more permissions
	// than this is held, not executed (0 means DefaultMaxRevoke; negative
	// means no limit).
	MaxRevoke int
	// Holder names this invocation in leases (e.g. the Lambda request id).
	Holder string
	// LeaseTTL and LeaseWait bound group leases (defaults 2m and 30s).
	LeaseTTL  time.Duration
	LeaseWait time.Duration
	Logger    *slog.Logger
	Now       func() time.Time
	// Policy, when set, is the guardrail policy checked before apply and
	// on the live rules of sweeps (policy.go).
	Policy PolicyStore
	// Target is the account and region this engine's Groups reach; Home
	// is the hub's own. A file whose target (its account and region
	// fields, empty ones filled from Home) is not Target is not this
	// engine's: it is treated as gone here (a Fleet reconciles it in its
	// own target). Both zero: every file is this engine's, as before
	// multi-account.
	Target, Home rules.Target
	// AllowAccount tells the accounts a file may name (TARGET_ACCOUNTS);
	// a file naming any other is invalid, with the error at its account
	// field. Nil allows only Home.Account.
	AllowAccount func(account string) bool
	// RegionExists tells whether a region a file names exists (nil: every
	// region name is taken to exist), and Partition is the hub's AWS
	// partition ("" skips that check): a file naming a region that does
	// not exist, or one of another partition, is invalid, with the error
	// at its region field (region.go).
	RegionExists func(ctx context.Context, region string) (bool, error)
	Partition    string
	// Concurrency bounds the EC2 batches (groups and directions) run at
	// once within one phase; phases (authorize, update, revoke) never
	// overlap. 0 means DefaultConcurrency.
	Concurrency int
	// Evidence, when set, is the traffic evidence checked before a rule a
	// file declared is revoked or narrowed (evidence.go): one that carried
	// traffic within UsedWithin (0 means DefaultUsedWithin) is kept and
	// the removal refused, unless acknowledged. Nil: no evidence, no check.
	Evidence   UsageEvidence
	UsedWithin time.Duration
	// History, when set, keeps the history of every rule (history.go);
	// nil: the Ledger's, when it keeps one (implements HistoryLog).
	History HistoryLog
}

// DefaultMaxPause is the default cap of a sgrules:pause-until tag.
const DefaultMaxPause = 24 * time.Hour

// DefaultMaxRevoke is the default blast-radius limit.
const DefaultMaxRevoke = 50

// DefaultConcurrency is the default bound on concurrent EC2 batches.
const DefaultConcurrency = 4

// Inline is a source that is not read from the Source, such as a
// CloudFormation custom resource. A nil File means the source is deleted.
type Inline struct {
	File *rules.File
	// Diagnostics of converting the input (errors make the source invalid).
	Diagnostics rules.Diagnostics
}

// Request names what to look at.
type Request struct {
	// Keys are source keys (files) to reconcile.
	Keys []string
	// All reconciles every source of the Source and of the ledger (a sweep).
	All bool
	// Groups, with All, restricts the sweep to these group ids.
	Groups []string
	// Inline sources (CloudFormation), by key ("cfn/STACK/LOGICAL_ID").
	Inline map[string]Inline
	// DryRun plans without changing EC2 or the ledger.
	DryRun bool
	// AllowMassRevoke bypasses the blast-radius guard for this request.
	AllowMassRevoke bool
	// AllowUsedRemoval lets this request revoke and narrow rules that
	// carried traffic (Config.Evidence): the CLI's --allow-used-removal.
	AllowUsedRemoval bool
	// RelativeGuard adds, to a sweep (All), the relative mass-revoke
	// guard: a plan whose sources lose at least MinRelativeLosses
	// permissions and either more than half of what they owned or every
	// permission sgrules manages in a group (at least MinRelativeLosses
	// of them) is held. The CLI sets it: a plan of the wrong directory
	// is a near-total wipe that the absolute limit (MaxRevoke) may not
	// catch.
	RelativeGuard bool
	// Moved are files that moved out of this target to another (a Fleet
	// sets it): gone here, but not gone; their revocations here are not
	// held by the relative guard, and Result.Gone does not name them.
	Moved map[string]bool
	// Budget, if set, is the revoke budget this request shares with the
	// other engines of its run (budget.go): a Fleet sets one per call, a
	// sweep message the one of its schedule. Nil: MaxRevoke per plan.
	Budget RevokeBudget
	// Reason is logged with the plan ("s3:ObjectCreated:Put", "schedule").
	Reason string
	// Holder, if set, names this request in group leases instead of
	// Config.Holder (the Lambda handler: the request id).
	Holder string
	// Pending are files that moved to another target which has not
	// accepted them yet (file key -> why, "pending move to A/R: …"): here
	// each keeps what its record holds and is reported StatusPending. A
	// Fleet sets it; see Fleet.Reconcile.
	Pending map[string]string
	// Route, on a sweep of one target (Fleet.Reconcile with All and that
	// target alone in only), is the target's routing as the planner
	// decided it for the whole schedule (Survey.Routes): the Fleet then
	// reads only that target's ledger (and, for a file that moved, that
	// file's record in its new target), not every target's. A route
	// naming nothing is that of a sweep no planner routed (a CloudTrail
	// event's, an expiry schedule's): the target's own records only; a
	// file they do not hold is left to its S3 event and the next
	// schedule. Nil: the Fleet routes every file of every target.
	Route *TargetRoute
	// Caller, when a CloudTrail event caused the request, is its caller:
	// the history names it in the drift of the groups it named, and
	// completes with it the drift an earlier run reverted there without
	// knowing who made it (history.go).
	Caller *Caller

	// refresh, once the request's run checked the siblings of the groups
	// it writes, are those it refreshes (refresh.go).
	refresh *refresh
}

// SourceResult is the outcome for one source.
type SourceResult struct {
	Key    string
	Status Status
	// Diagnostics of reading the source in this run.
	Diagnostics rules.Diagnostics
	// Recorded are the rendered diagnostics the ledger holds for a source
	// this run did not read again (a CloudFormation resource in a sweep).
	Recorded []string
	// Message explains Status in a sentence of facts.
	Message string
	// Guard is set when the blast-radius guard held the source.
	Guard *GuardHold
	// RuleIDs of the permissions this source owns after the run, sorted by key.
	RuleIDs []string
}

// GuardHold is why the blast-radius guard held a plan: it would revoke
// Losses permissions (FromSource of them because of this source), over
// Limit, or, with Spent set, Losses besides the Spent already claimed by
// the other targets and shards of the same run, over Limit together. The
// shells phrase the advice (MAX_REVOKE, --allow-mass-revoke).
type GuardHold struct {
	Losses, FromSource, Limit int
	// Owned is set when the relative guard held the plan (Request.
	// RelativeGuard): the permissions the run's sources owned, of which
	// Losses would be revoked; Group, when it is because every
	// permission sgrules manages in that group would be revoked.
	Owned int
	Group string
	// Spent is set when the run's revoke budget held the plan (budget.go):
	// what the other targets and shards of the run claimed first.
	Spent int
}

// MinRelativeLosses is the floor of the relative guard: a plan revoking
// fewer permissions because sources changed never trips it.
const MinRelativeLosses = 5
