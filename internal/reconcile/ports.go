package reconcile

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/sgrules/sgrules/pkg/rules"
)

// Errors that adapters map AWS error codes to. The engine decides what each
// means; adapters never retry on their own beyond the SDK retryer.
var (
	// ErrNotFound: a source object, rule or group does not exist.
	ErrNotFound = errors.New("not found")
	// ErrDuplicate: authorize found a permission that already exists
	// (EC2 InvalidPermission.Duplicate). The engine re-reads and adopts.
	ErrDuplicate = errors.New("permission already exists")
	// ErrGroupNotFound: the security group does not exist (InvalidGroup.NotFound).
	ErrGroupNotFound = errors.New("security group not found")
	// ErrConflict: a conditional ledger write lost a race (another writer
	// changed the item). Retryable.
	ErrConflict = errors.New("ledger item changed concurrently")
	// ErrLeaseHeld: a group lease is held by another invocation. Retryable.
	ErrLeaseHeld = errors.New("group lease held by another invocation")
	// ErrRulesLimit: EC2 refused because the group reached its rules quota
	// (RulesPerSecurityGroupLimitExceeded).
	ErrRulesLimit = errors.New("security group rules limit exceeded")
	// ErrAccessDenied: the credentials may not make the call
	// (UnauthorizedOperation). Waiting does not help.
	ErrAccessDenied = errors.New("access denied")
)

// ObjectInfo describes one rule source object.
type ObjectInfo struct {
	Key       string
	ETag      string
	VersionID string
	Size      int64
	// Commit is the commit the object was uploaded from, when it carries
	// one (S3 metadata sgrules-commit, set by the example sync workflow);
	// known after Get only.
	Commit string
}

// Object is a source object with its content.
type Object struct {
	ObjectInfo
	Body []byte
}

// Source lists and reads rule files (an S3 prefix or a local directory).
// Keys are full object keys for S3 ("rules/web.yaml") and slash-separated
// paths relative to the directory for a directory; only rule files (.yaml,
// .yml, .json) are listed.
type Source interface {
	// List returns every rule object, sorted by key.
	List(ctx context.Context) ([]ObjectInfo, error)
	// Get returns one object; an error wrapping ErrNotFound if it is absent.
	// Objects larger than rules.MaxFileSize are returned with Body nil and
	// Size set, so the engine can refuse them without reading them.
	Get(ctx context.Context, key string) (Object, error)
}

// ActualRule is one security group rule as EC2 reports it, flattened into
// the canonical key.
type ActualRule struct {
	Key         rules.Key
	RuleID      string
	Description string
	Tags        map[string]string
}

// GroupInfo is what the engine needs to know about a security group.
type GroupInfo struct {
	GroupID string
	VPCID   string
	Name    string
	Tags    map[string]string
	// Rules are the group's rules as DescribeSecurityGroups lists them
	// (IpPermissions): key and description, without rule ids or tags;
	// RulesKnown tells they were read. A sweep that found every rule of
	// its deployment by tag describes the rules of a group again only
	// where one of these may need acting on (Engine.readState).
	Rules      []ActualRule
	RulesKnown bool
}

// PrefixListInfo is what the rules quota count needs of a managed prefix
// list: EC2 counts a rule referencing a list as MaxEntries rules of its
// AddressFamily ("IPv4" or "IPv6"); for an AWS-managed list MaxEntries is
// its weight (CloudFront origin-facing 55).
type PrefixListInfo struct {
	ID            string
	MaxEntries    int
	AddressFamily string
	AWSManaged    bool
}

// RuleUpdate changes one rule in place, by id, into Key (same group and
// direction; ports, protocol, a peer of the same kind) with Description.
type RuleUpdate struct {
	RuleID      string
	Key         rules.Key
	Description string
}

// Groups is the EC2 side: security groups and their rules. Every method is
// batched: one call (or one page loop) for many groups or many rules.
type Groups interface {
	// ResolveGroups resolves references by name+VPC or tags with filtered
	// DescribeSecurityGroups calls; the result maps ref.String() to the ids
	// of every matching group (none, one or several). Id references are
	// returned as themselves without a call.
	ResolveGroups(ctx context.Context, refs []rules.GroupRef) (map[string][]string, error)
	// DescribeGroups returns the groups that exist among ids (missing ones
	// are simply absent from the result).
	DescribeGroups(ctx context.Context, groupIDs []string) ([]GroupInfo, error)
	// DescribeRules returns every rule of the given groups (both
	// directions), with many group ids per call and all pages.
	DescribeRules(ctx context.Context, groupIDs []string) ([]ActualRule, error)
	// Authorize creates perms (all of one group and direction) in as few
	// calls as the API allows, tagging each new rule with tags. It returns
	// an error wrapping ErrDuplicate if any already exists (nothing was
	// created by that call), ErrGroupNotFound if the group is gone.
	Authorize(ctx context.Context, groupID string, dir rules.Direction, perms []rules.Permission, tags map[string]string) error
	// Revoke removes rules by id (all of one group and direction). An error
	// wrapping ErrNotFound means some id no longer exists (nothing was
	// revoked by that call); a missing group is success (all gone).
	Revoke(ctx context.Context, groupID string, dir rules.Direction, ruleIDs []string) error
	// DescribePrefixLists returns the managed prefix lists among ids
	// (missing ones are absent), with all pages.
	DescribePrefixLists(ctx context.Context, ids []string) ([]PrefixListInfo, error)
	// ModifyRules changes rules in place (one call per group, atomic).
	ModifyRules(ctx context.Context, groupID string, updates []RuleUpdate) error
	// TagRules adds tags to existing rules (all of one group).
	TagRules(ctx context.Context, groupID string, ruleIDs []string, tags map[string]string) error
	// UntagRules removes tags from rules (all of one group): a tag given
	// with a value only where the rule has that value, one given with ""
	// whatever its value.
	UntagRules(ctx context.Context, groupID string, ruleIDs []string, tags map[string]string) error
	// TagGroups adds tags to security groups (CreateTags), many groups per
	// call; UntagGroups removes them (DeleteTags, whatever their value).
	TagGroups(ctx context.Context, groupIDs []string, tags map[string]string) error
	UntagGroups(ctx context.Context, groupIDs []string, keys []string) error
	ManagedRuleFinder
	PrefixListReader
}

// RuleAuthorizer is implemented by Groups whose Authorize can report the
// rules it created (EC2 answers with them, ids included): the engine then
// learns the new rules' ids without describing their groups again, and
// describes again only the groups whose answer lacked some.
type RuleAuthorizer interface {
	// AuthorizeRules is Groups.Authorize returning the rules created.
	AuthorizeRules(ctx context.Context, groupID string, dir rules.Direction, perms []rules.Permission, tags map[string]string) ([]ActualRule, error)
}

// GroupInfoResolver is implemented by Groups whose ResolveGroups reads the
// groups it finds (DescribeSecurityGroups with filters): the engine keeps
// what it read of them for the attempt instead of describing them again.
// Its GroupInfo, from ResolveGroupsInfo and DescribeGroups, carry the
// groups' rules (RulesKnown).
type GroupInfoResolver interface {
	// ResolveGroupsInfo is ResolveGroups also returning every group found.
	ResolveGroupsInfo(ctx context.Context, refs []rules.GroupRef) (map[string][]string, []GroupInfo, error)
}

// PrefixListReader reads what the guardrail policy needs of a managed
// prefix list: the addresses it stands for.
type PrefixListReader interface {
	// PrefixListEntries returns the CIDRs of the list's current version
	// (all pages). An error wraps ErrNotFound when the list does not
	// exist, ErrAccessDenied when it may not be read.
	PrefixListEntries(ctx context.Context, id string) ([]netip.Prefix, error)
}

// ManagedRuleFinder finds every rule this deployment created, in any group
// (DescribeSecurityGroupRules with a tag filter on TagLedger, all pages). A
// complete sweep uses it to find rules sgrules created in groups that no
// source names any more.
type ManagedRuleFinder interface {
	// DescribeManagedRules returns every rule tagged TagLedger with one of
	// ledgerIDs (the deployment's identity; its table's name, the value
	// of before deployments had one).
	DescribeManagedRules(ctx context.Context, ledgerIDs ...string) ([]ActualRule, error)
}

// Status of a source in the ledger.
type Status string

const (
	StatusApplied Status = "applied"
	StatusInvalid Status = "invalid"
	StatusHeld    Status = "held"
	// StatusPending: the file moved to another target (its account or
	// region fields) that has not accepted it yet; here it keeps what it
	// applied until the new target reports it applied (Fleet).
	StatusPending Status = "pending"
	// StatusUnknown: the ledger could not decode the record (it reports
	// that itself). A file is read and applied again, which replaces the
	// record; a custom resource is left out of sweeps until CloudFormation
	// sends it again: its rules still there are kept, but not past the
	// deadline they carry (TagExpiresAt), and none is created again
	// (unloaded, diffInput.unread).
	StatusUnknown Status = "unknown"
)

// SourceKind tells where a source lives.
type SourceKind string

const (
	KindFile SourceKind = "file" // an object of the Source (S3 or directory)
	KindCFN  SourceKind = "cfn"  // a CloudFormation custom resource
)

// SourceRecord is the ledger's record of one source.
type SourceRecord struct {
	Key       string
	Kind      SourceKind
	ETag      string
	VersionID string
	// Commit is the object's commit (ObjectInfo.Commit) when it was read.
	Commit string
	Status Status
	// Diagnostics are the rendered errors/warnings of the last read
	// ("FILE:LINE:COL: RULE: message").
	Diagnostics []string
	// Message explains Status (e.g. why a plan is held).
	Message   string
	AppliedAt time.Time
	// Permissions is the desired set this source last applied: what it owns.
	Permissions []rules.Permission
	// Exclusive lists the resolved group ids this source manages exclusively.
	Exclusive []string
	// Static: the source's outcome depends on its content alone (an applied
	// file that names every group by id), so a sweep may reuse this record
	// while the ETag is unchanged. Files that name groups by name or tags,
	// and invalid files, are read and resolved again by every sweep.
	Static bool
	// Version is the ledger item version, for conditional writes (0: new).
	Version int64
}

// OwnedPermission is the ledger's record of one rule sgrules manages.
type OwnedPermission struct {
	Key    rules.Key
	RuleID string
	// Owners maps each owner to the description it declares.
	Owners map[rules.Owner]string
	// Description as applied to EC2.
	Description string
	// Version is the ledger item version, for conditional writes (0: new).
	Version int64
}

// Commit is one batch of ledger changes, written after the EC2 calls they
// record have succeeded. Each item is written conditionally on its Version.
type Commit struct {
	Put     []OwnedPermission
	Delete  []OwnedPermission
	Sources []SourceRecord
	// DeleteSources removes source records (files that are gone and own nothing).
	DeleteSources []SourceRecord
}

// Empty reports whether the commit writes nothing.
func (c Commit) Empty() bool {
	return len(c.Put) == 0 && len(c.Delete) == 0 && len(c.Sources) == 0 && len(c.DeleteSources) == 0
}

// Ledger records what sgrules owns (DynamoDB).
type Ledger interface {
	GetSource(ctx context.Context, key string) (SourceRecord, bool, error)
	ListSources(ctx context.Context) ([]SourceRecord, error)
	// GroupPermissions returns the owned permissions in the given groups.
	GroupPermissions(ctx context.Context, groupIDs []string) ([]OwnedPermission, error)
	// AllPermissions returns every owned permission of the target, for
	// sweeps.
	AllPermissions(ctx context.Context) ([]OwnedPermission, error)
	// Write applies a commit; an error wrapping ErrConflict if a condition
	// failed.
	Write(ctx context.Context, c Commit) error
	// Lock takes a lease on every group (in sorted order) for ttl, waiting
	// up to wait for leases held by others; ErrLeaseHeld if it cannot.
	// The returned function releases them.
	Lock(ctx context.Context, groupIDs []string, holder string, ttl, wait time.Duration) (unlock func(context.Context) error, err error)
	IntentLedger
	// DeploymentID returns the deployment's identity stored in the ledger
	// (one per table, shared by every target's scope). When none is
	// stored, it stores proposed first (a conditional write: concurrent
	// first runs agree on one) and returns the stored one; with proposed
	// empty it only reads, returning "" when none is stored.
	DeploymentID(ctx context.Context, proposed string) (string, error)
}

// Intent is the ledger's write-ahead note of a permission this deployment
// is about to authorize (or whose rule it is about to claim): written
// before the Authorize (or claim's tag) call, cleared once the commit
// recording the rule is written. A rule carrying this deployment's tag (or
// claim) that its ledger does not hold is proven ours only by an intent
// for its key (a crash came between the call and the commit): a tag alone
// is never enough to revoke a rule.
type Intent struct {
	Key rules.Key
	At  time.Time
}

// IntentLedger keeps the write-ahead intents.
type IntentLedger interface {
	// RecordIntents writes intents (overwriting older ones of the same keys).
	RecordIntents(ctx context.Context, intents []Intent) error
	// Intents returns the intents of the given groups (nil: of every
	// group of the target), sorted by key.
	Intents(ctx context.Context, groupIDs []string) ([]Intent, error)
	// ClearIntents deletes the intents of keys; absent ones are no error.
	ClearIntents(ctx context.Context, keys []rules.Key) error
}

// Tag keys written on every rule sgrules creates. They say who created a
// rule; they prove nothing (anyone allowed to tag rules can set them):
// ownership is the ledger's (docs/reliability.md, Ownership).
const (
	TagManaged = "sgrules:managed" // "true"
	// TagLedger names the deployment that created the rule: its identity
	// (Ledger.DeploymentID), or, on rules created before deployments had
	// one, its ledger table's name. Orphan clean-up only revokes rules
	// carrying the deployment's identity and an intent in its ledger;
	// rules carrying another value are another deployment's.
	TagLedger = "sgrules:ledger"
	// TagClaimPrefix + <identity> ("true") marks a rule a deployment
	// adopted without having created it: a permission it declares too.
	// Other deployments never revoke or modify a rule another one claims
	// (or created): they report it, and let their own record go (release)
	// when they stop declaring it.
	TagClaimPrefix = "sgrules:claim:"
	// TagExclusivePrefix + <identity> ("true") is set on a security group
	// (not a rule) that a deployment manages exclusively (exclusiveGroups),
	// removed when none of its files declares it exclusive any more. A
	// deployment finding another identity's tag on a group it declares
	// exclusive revokes nothing there as exclusive clean-up and reports
	// the conflict (Plan.ExclusiveConflicts).
	TagExclusivePrefix = "sgrules:exclusive:"
	// TagOwner is the source ("file key" or "cfn/STACK/ID") that declared
	// every rule of the Authorize call that created it; absent when the
	// call carried rules of several sources (tags are per call). For
	// people reading the rule in the console; sgrules never reads it.
	TagOwner = "sgrules:owner"
	TagPause = "sgrules:pause-until" // on a group: RFC3339 time; drift is reported, not reverted, until then

	// TagExpiresAt is the deadline (RFC 3339, UTC) of the rules of the
	// Authorize call that created them, when they carry one (expiresAt):
	// every call carries rules of one deadline. For people; the file is the
	// truth and sgrules never reads it.
	TagExpiresAt = "sgrules:expires-at"
)
