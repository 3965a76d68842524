package reconcile

import (
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sgrules/sgrules/pkg/rules"
)

// ActionKind is what a plan does to one rule.
type ActionKind string

const (
	ActAuthorize ActionKind = "authorize" // create the rule
	ActUpdate    ActionKind = "update"    // change its description in place
	ActAdopt     ActionKind = "adopt"     // record an existing rule as owned
	ActModify    ActionKind = "modify"    // change the rule in place (ModifySecurityGroupRules): From → Key
	ActRevoke    ActionKind = "revoke"    // remove the rule
	ActForget    ActionKind = "forget"    // drop a ledger record whose rule is already gone
	// ActRelease drops the ledger record of a rule this deployment no
	// longer declares but another deployment claims (Action.Others), and
	// removes this deployment's tags from it: the rule stays.
	ActRelease ActionKind = "release"
)

// Cause is why the plan takes an action. Reports, metrics and renderers
// switch on it; Action.Reason is only its wording.
type Cause string

const (
	// CauseDeclared: a source declares a permission that sgrules does not
	// own yet (authorize, or adopt when it exists already).
	CauseDeclared Cause = "declared"
	// CauseDescription: the declared description changed (update).
	CauseDescription Cause = "description"
	// CauseChanged: a declared rule changed its ports, protocol or peer
	// (of the same kind): the rule it created is modified in place.
	CauseChanged Cause = "changed"
	// CauseUndeclared: no source declares the permission any more (revoke,
	// or forget when the rule is already gone).
	CauseUndeclared Cause = "undeclared"
	// CauseOwnerGone: every owner of the permission is a source with no
	// ledger record and no file (left by a commit cut short); a complete
	// sweep treats such owners as gone.
	CauseOwnerGone Cause = "owner-gone"
	// CauseDriftDeleted: an owned rule is missing from EC2 (authorize).
	CauseDriftDeleted Cause = "drift-deleted"
	// CauseDriftModified: an owned rule was changed outside sgrules into
	// another permission (revoke; Action.Was is the key it had).
	CauseDriftModified Cause = "drift-modified"
	// CauseDriftDescription: an owned rule's description was edited
	// outside sgrules (update).
	CauseDriftDescription Cause = "drift-description"
	// CauseOrphan: a rule this deployment created (or claimed) that
	// nothing declares or records: it carries this deployment's tag (or
	// claim) and the ledger holds an intent for it, written before the
	// authorize (or claim) whose commit a crash cut short (revoke,
	// complete sweeps only). A tag alone proves nothing.
	CauseOrphan Cause = "orphan"
	// CauseExclusive: a rule nobody declares in a group managed
	// exclusively (revoke).
	CauseExclusive Cause = "exclusive"
	CausePolicy    Cause = "policy" // an unmanaged live rule violating a deny clause, with enforce: revoke (revoke; see policy.go)
)

// Drift reports whether the cause is a correction of a change made outside
// sgrules (including clean-up of orphans and of exclusive groups).
func (c Cause) Drift() bool {
	switch c {
	case CauseDriftDeleted, CauseDriftModified, CauseDriftDescription, CauseOrphan, CauseExclusive:
		return true
	}
	return false
}

// Action is one step of a plan.
type Action struct {
	Kind   ActionKind
	Cause  Cause
	Key    rules.Key
	RuleID string
	// Description is the declared description (authorize, update, adopt),
	// or the rule's current one (orphan and exclusive revokes).
	Description string
	// OldDescription is the description EC2 has now (update).
	OldDescription string
	// Owners declaring the rule (for revokes: who declared it), sorted.
	Owners []rules.Owner
	// Was is, for a CauseDriftModified revoke, the key the rule had when
	// sgrules recorded it: the revoke undoes the modification together
	// with the authorization of Was.
	Was rules.Key
	// From is, for ActModify, the permission the rule is now; Key is what
	// it becomes.
	From rules.Key
	// Reason says why, in a few words (wording only: decide on Cause).
	Reason string
	// Loss marks a revocation that is not a replacement: a rule or file
	// disappeared, or an undeclared rule in an exclusive group. Losses
	// count against the blast-radius guard.
	Loss bool
	// LossSource is the source whose change causes the loss ("" for
	// clean-up: exclusive groups, orphans, owners gone).
	LossSource string
	// Paused marks drift found in a group whose sgrules:pause-until tag is
	// in the future: reported, not executed.
	Paused bool
	// ExpiresAt is the deadline of a declared permission (authorize,
	// adopt, update, modify): the latest of its owners' (expiresAt), zero
	// when any owner declares it without one. For a revoke, the deadline
	// that passed, when the permission was revoked because it expired.
	ExpiresAt time.Time
	// Others are the other deployments claiming the rule (ActRelease).
	Others []string
	// Usage is the traffic evidence of the rule a revoke or a modify
	// changes (Config.Evidence; nil without evidence or rule id).
	Usage *RuleUse
}

// Drift reports whether the action corrects a change made outside sgrules.
func (a Action) Drift() bool { return a.Cause.Drift() }

// Conflict is one permission declared by several owners with different
// descriptions; the first owner's (by source, then rule) description wins.
type Conflict struct {
	Key          rules.Key
	Descriptions map[rules.Owner]string
	Winner       rules.Owner
}

// Plan is the sorted, stable list of actions for one run, with what it
// found but leaves alone.
type Plan struct {
	Actions   []Action
	Conflicts []Conflict
	Unmanaged []ActualRule
	// Foreign are rules of other deployments (created or claimed by them)
	// that this one would revoke if they were not: undeclared rules in its
	// exclusive groups, and (Result.Policy) rules violating its policy.
	// They are left alone and reported. Each is in Unmanaged too.
	Foreign []ForeignRule
	// Unproven are the unmanaged rules that carry this deployment's tag
	// but that its ledger neither holds nor has an intent for (a lost
	// ledger, or a tag set by someone else): reported, never revoked as
	// orphans. Each is in Unmanaged too.
	Unproven []ActualRule
	// ExclusiveConflicts are the groups this deployment declares exclusive
	// that other deployments declare exclusive too (an error, reported by
	// each): their undeclared rules are in Foreign (CauseExclusive), none
	// is revoked as exclusive clean-up; this deployment's own orphans
	// there (proven by its intents) are revoked as in any group.
	ExclusiveConflicts []ExclusiveConflict
	// UnverifiedClaims are the rules of this deployment (held by its
	// ledger or carrying its tag) or in its exclusive groups that other
	// deployments claim without proof (claims.go): honoured and reported
	// without peer ledgers, ignored and reported with them.
	UnverifiedClaims []ClaimedRule
}

// ForeignRule is a rule of other deployments left alone (Plan.Foreign).
type ForeignRule struct {
	Rule ActualRule
	// Deployments are the identities of the deployments that created or
	// claim it, sorted.
	Deployments []string
	// Cause is what would have revoked it (CauseExclusive).
	Cause Cause
}

// Empty reports whether the plan changes nothing in EC2.
func (p Plan) Empty() bool {
	for _, a := range p.Actions {
		if a.Kind != ActAdopt && a.Kind != ActForget {
			return false
		}
	}
	return true
}

// Count returns the number of actions of a kind.
func (p Plan) Count(k ActionKind) int {
	n := 0
	for _, a := range p.Actions {
		if a.Kind == k {
			n++
		}
	}
	return n
}

// Groups returns the sorted ids of the groups the plan acts on.
func (p Plan) Groups() []string {
	set := map[string]bool{}
	for _, a := range p.Actions {
		set[a.Key.GroupID] = true
	}
	return sortedKeys(set)
}

// diffInput is everything the diff needs; it is built by the engine from the
// sources, the ledger and EC2.
type diffInput struct {
	// scope maps each source whose claims are re-evaluated to its desired
	// permissions (empty: declares nothing any more).
	scope map[string][]rules.Permission
	// scopeRules maps a scope source to the names of the rules it still
	// declares (to tell a replacement from a loss).
	scopeRules map[string]map[string]bool
	// complete is true when every source is in scope (a sweep, of every
	// group or of some): only then can a rule tagged as ours that nobody
	// declares be revoked as orphan, and an owner that is neither a file
	// nor a record be judged gone.
	complete bool
	// known are the keys of every source that has a ledger record or a
	// file (complete sweeps).
	known map[string]bool
	// ledgerID is this deployment's identity (the TagLedger value on the
	// rules it creates): orphans are only rules carrying it.
	ledgerID string
	// legacyID is the TagLedger value of the rules it created before it
	// had an identity (its table's name).
	legacyID string
	// intents are the keys of the ledger's write-ahead intents: an orphan
	// must carry ledgerID and have one.
	intents map[rules.Key]bool
	// groups restricts the diff to these group ids.
	groups map[string]bool
	// owned are the ledger records of those groups.
	owned []OwnedPermission
	// actual are the EC2 rules of those groups.
	actual []ActualRule
	// exclusive groups: undeclared rules in them are revoked.
	exclusive map[string]bool
	// exclusiveOthers maps the exclusive groups other deployments declare
	// exclusive too to their identities: nothing is revoked there as
	// exclusive clean-up.
	exclusiveOthers map[string][]string
	// proof is what the peer ledgers prove of other deployments' claims
	// (nil: no peer ledger, every claim honoured).
	proof *claimProof

	// Owners a sweep keeps from the ledger without loading their sources
	// (unloaded, expiry.go) do not keep a rule past its deadline.
	// now is the time the sweep loaded its sources at.
	now time.Time
	// expired are, by key, such owners whose record declares the
	// permission with a deadline passed at now: they declare it no more.
	expired map[rules.Key]map[rules.Owner]time.Time
	// unread are such sources whose record could not be read: their
	// declaration of a rule that carries this deployment's identity ends
	// at its TagExpiresAt, and a rule only they declare is never created
	// again (nothing proves they still declare it, nor until when).
	unread map[string]bool
}

// diffOutput is the plan plus the ledger records to write once the plan's
// EC2 calls succeed.
type diffOutput struct {
	plan Plan
	// put are the ledger records to write (RuleID empty for rules still to
	// be authorized: filled in after reading them back).
	put []OwnedPermission
	del []OwnedPermission
	// pausedDrift is drift in paused groups, set aside by the engine.
	pausedDrift []Action
	// claims are rules this deployment holds without having created them
	// and without its claim tag yet: tagged TagClaimPrefix+identity.
	claims []ActualRule
	// ledgerTags are the TagLedger values of the rules released (by id).
	ledgerTags map[string]string
}

// diff computes the plan. It is pure: same input, same output.
func diff(in diffInput) diffOutput {
	var out diffOutput

	owned := map[rules.Key]OwnedPermission{}
	ownedByRuleID := map[string]OwnedPermission{}
	for _, o := range in.owned {
		if !in.groups[o.Key.GroupID] {
			continue
		}
		owned[o.Key] = o
		if o.RuleID != "" {
			ownedByRuleID[o.RuleID] = o
		}
	}
	actual := map[rules.Key]ActualRule{}
	var extra []ActualRule // a second rule with an equal key: never ours to judge
	for _, a := range in.actual {
		if !in.groups[a.Key.GroupID] {
			continue
		}
		if _, dup := actual[a.Key]; dup {
			extra = append(extra, a)
			continue
		}
		actual[a.Key] = a
	}

	// New owners of every key: the ledger's owners outside the scope (but
	// for owners a complete sweep finds gone), plus what the scope
	// declares now.
	newOwners := map[rules.Key]map[rules.Owner]string{}
	ownerGone := map[rules.Key]bool{}
	// expiredAt: the latest deadline passed of an owner outside the scope
	// that declares the key no more; expiredBy: the first such owner.
	expiredAt := map[rules.Key]time.Time{}
	expiredBy := map[rules.Key]rules.Owner{}
	for k, o := range owned {
		act, exists := actual[k]
		tagAt, tagExpired := in.tagExpired(act, exists)
		for owner, desc := range o.Owners {
			if _, inScope := in.scope[owner.Source]; inScope {
				continue
			}
			if in.complete && !in.known[owner.Source] {
				ownerGone[k] = true
				continue
			}
			at, expired := in.expired[k][owner]
			if !expired && tagExpired && in.unread[owner.Source] {
				at, expired = tagAt, true
			}
			if expired {
				if at.After(expiredAt[k]) {
					expiredAt[k] = at
				}
				if by, ok := expiredBy[k]; !ok || owner.Less(by) {
					expiredBy[k] = owner
				}
				continue
			}
			if newOwners[k] == nil {
				newOwners[k] = map[rules.Owner]string{}
			}
			newOwners[k][owner] = desc
		}
	}
	for _, perms := range in.scope {
		for _, p := range perms {
			if !in.groups[p.Key.GroupID] {
				continue
			}
			if newOwners[p.Key] == nil {
				newOwners[p.Key] = map[rules.Owner]string{}
			}
			newOwners[p.Key][p.Owner] = p.Description
		}
	}

	keys := map[rules.Key]bool{}
	for k := range owned {
		keys[k] = true
	}
	for k := range newOwners {
		keys[k] = true
	}
	declared := map[rules.Key]bool{}
	for k := range keys {
		owners := newOwners[k]
		old, isOwned := owned[k]
		act, exists := actual[k]
		if len(owners) == 0 {
			// Nobody declares it any more.
			if !isOwned {
				continue
			}
			out.del = append(out.del, old)
			a := Action{Kind: ActRevoke, Cause: CauseUndeclared, Key: k, RuleID: act.RuleID,
				Owners: sortedOwners(old.Owners), Reason: "no longer declared"}
			if !exists {
				a.Kind, a.RuleID, a.Reason = ActForget, old.RuleID, "no longer declared; rule already gone"
			} else if others := in.othersOf(act); len(others) > 0 {
				a.Kind, a.Others = ActRelease, others
				out.noteRelease(act)
				a.Reason = "no longer declared; kept: claimed by deployment " + strings.Join(others, ", ")
			} else if ownerGone[k] && !anyInScope(old.Owners, in.scope) {
				a.Cause, a.Loss, a.Reason = CauseOwnerGone, true, "its owners have no source record or file"
			} else {
				a.Loss, a.LossSource = lossOf(old, in)
				if at, ok := expiredAt[k]; ok && a.Kind == ActRevoke {
					// An owner the sweep does not load declared it
					// until a deadline now passed: a loss of that
					// owner, which holding sources does not keep.
					if !a.Loss {
						a.Loss, a.LossSource = true, expiredBy[k].Source
					}
					a.ExpiresAt, a.Reason = at, "expired at "+rules.FormatExpiresAt(at)
				}
			}
			out.plan.Actions = append(out.plan.Actions, a)
			continue
		}
		if _, exists := actual[k]; !exists && (!in.complete && !anyInScope(owners, in.scope) || allUnread(owners, in.unread)) {
			// Missing, and only owners outside the scope declare it, as
			// the ledger says: a run that did not read their sources
			// cannot tell drift from their own revocation that a crash
			// kept from the ledger (a file deleted or changed since).
			// Their run or the next sweep settles it. Owners whose
			// record could not be read: CloudFormation sending them
			// again settles it.
			continue
		}
		declared[k] = true
		ownerList := sortedOwners(owners)
		desc := owners[ownerList[0]]
		if c, ok := conflictOf(k, owners, ownerList[0]); ok {
			out.plan.Conflicts = append(out.plan.Conflicts, c)
		}
		rec := OwnedPermission{Key: k, Owners: owners, Description: desc, Version: old.Version}
		switch {
		case !exists:
			a := Action{Kind: ActAuthorize, Cause: CauseDeclared, Key: k, Description: desc,
				Owners: ownerList, Reason: "declared by " + joinOwners(ownerList)}
			if isOwned {
				a.Cause, a.Reason = CauseDriftDeleted, "drift: rule deleted or changed outside sgrules"
			}
			out.plan.Actions = append(out.plan.Actions, a)
		default:
			rec.RuleID = act.RuleID
			if in.ledgerID != "" && !in.taggedOurs(act) && act.Tags[TagClaimPrefix+in.ledgerID] == "" {
				out.claims = append(out.claims, act)
			}
			if !isOwned {
				out.plan.Actions = append(out.plan.Actions, Action{Kind: ActAdopt, Cause: CauseDeclared, Key: k, RuleID: act.RuleID,
					Description: desc, Owners: ownerList, Reason: "exists already; declared by " + joinOwners(ownerList)})
			}
			// A rule another deployment created or claims keeps the
			// description of its creator: a claimer never changes it
			// (two deployments declaring it otherwise would flap).
			drift := isOwned && old.Description == desc
			// Drift, and only owners outside the scope declare it, as the
			// ledger says: a run that did not read their sources cannot
			// tell an edit outside sgrules from their own change a crash
			// kept from the ledger (like a missing rule above); their run
			// or the next sweep settles it.
			unsure := drift && !in.complete && !anyInScope(owners, in.scope)
			if act.Description != desc && !unsure && (in.taggedOurs(act) || len(in.othersOf(act)) == 0) {
				a := Action{Kind: ActUpdate, Cause: CauseDescription, Key: k, RuleID: act.RuleID,
					Description: desc, OldDescription: act.Description, Owners: ownerList, Reason: "description changed"}
				if drift {
					a.Cause, a.Reason = CauseDriftDescription, "drift: description edited outside sgrules"
				}
				out.plan.Actions = append(out.plan.Actions, a)
			}
		}
		if !isOwned || !sameRecord(old, rec) {
			out.put = append(out.put, rec)
		}
	}

	// Rules in EC2 that nobody declares.
	rest := make([]ActualRule, 0, len(actual)+len(extra))
	for k, a := range actual {
		if !declared[k] {
			rest = append(rest, a)
		}
	}
	rest = append(rest, extra...)
	for _, a := range rest {
		if _, isOwned := owned[a.Key]; isOwned {
			continue // handled above (revoked or forgotten)
		}
		// An orphan: left by a crash of this deployment's run before its
		// commit, proven by its write-ahead intent: a rule it created, or
		// one another deployment created that it claimed (released, then
		// revoked if nobody else holds it).
		orphan := in.complete && in.ledgerID != "" && in.intents[a.Key] &&
			(a.Tags[TagLedger] == in.ledgerID || a.Tags[TagClaimPrefix+in.ledgerID] != "")
		// A group other deployments declare exclusive too: only a rule
		// another deployment claims is theirs; this deployment's own
		// orphan is revoked as in any group.
		conflict := len(in.exclusiveOthers[a.Key.GroupID]) > 0
		switch o, ours := ownedByRuleID[a.RuleID]; {
		case ours:
			out.plan.Actions = append(out.plan.Actions, Action{Kind: ActRevoke, Cause: CauseDriftModified, Key: a.Key, RuleID: a.RuleID,
				Owners: sortedOwners(o.Owners), Was: o.Key, Reason: "drift: rule modified outside sgrules (was " + o.Key.String() + ")"})
		case orphan && len(in.othersOf(a)) > 0:
			// Left by a crash, and adopted by another deployment since:
			// let go, in an exclusive group too (the claimer then sets
			// its own description).
			out.noteRelease(a)
			out.plan.Actions = append(out.plan.Actions, Action{Kind: ActRelease, Cause: CauseUndeclared, Key: a.Key, RuleID: a.RuleID,
				Description: a.Description, Others: in.othersOf(a), Reason: "created by sgrules, no longer declared; kept: claimed by deployment " + strings.Join(in.othersOf(a), ", ")})
		case in.exclusive[a.Key.GroupID] && (len(in.othersOf(a)) > 0 || conflict && !orphan):
			out.plan.Unmanaged = append(out.plan.Unmanaged, a)
			deps := slices.Compact(slices.Sorted(slices.Values(append(in.othersOf(a), in.exclusiveOthers[a.Key.GroupID]...))))
			out.plan.Foreign = append(out.plan.Foreign, ForeignRule{Rule: a, Deployments: deps, Cause: CauseExclusive})
		case in.exclusive[a.Key.GroupID] && !conflict:
			out.plan.Actions = append(out.plan.Actions, Action{Kind: ActRevoke, Cause: CauseExclusive, Key: a.Key, RuleID: a.RuleID,
				Description: a.Description, Reason: "exclusive group: not declared by any source", Loss: true})
		case orphan:
			out.plan.Actions = append(out.plan.Actions, Action{Kind: ActRevoke, Cause: CauseOrphan, Key: a.Key, RuleID: a.RuleID,
				Description: a.Description, Reason: "created by sgrules, no longer declared by any source", Loss: true})
		default:
			out.plan.Unmanaged = append(out.plan.Unmanaged, a)
			if in.taggedOurs(a) {
				out.plan.Unproven = append(out.plan.Unproven, a)
			}
		}
	}

	for _, g := range sortedKeys(in.exclusiveOthers) {
		if in.exclusive[g] && in.groups[g] {
			out.plan.ExclusiveConflicts = append(out.plan.ExclusiveConflicts, ExclusiveConflict{GroupID: g, Deployments: in.exclusiveOthers[g]})
		}
	}
	ownedIDs := make(map[string]bool, len(ownedByRuleID))
	for id := range ownedByRuleID {
		ownedIDs[id] = true
	}
	out.plan.UnverifiedClaims = unverifiedClaims(in, ownedIDs)
	pairModifications(&out, in, actual)
	SortActions(out.plan.Actions)
	sort.Slice(out.plan.Conflicts, func(i, j int) bool { return out.plan.Conflicts[i].Key.Less(out.plan.Conflicts[j].Key) })
	sort.Slice(out.plan.Unmanaged, func(i, j int) bool { return out.plan.Unmanaged[i].Key.Less(out.plan.Unmanaged[j].Key) })
	sort.Slice(out.plan.Foreign, func(i, j int) bool { return out.plan.Foreign[i].Rule.Key.Less(out.plan.Foreign[j].Rule.Key) })
	sort.Slice(out.claims, func(i, j int) bool { return out.claims[i].Key.Less(out.claims[j].Key) })
	sort.Slice(out.plan.Unproven, func(i, j int) bool { return out.plan.Unproven[i].Key.Less(out.plan.Unproven[j].Key) })
	sort.Slice(out.put, func(i, j int) bool { return out.put[i].Key.Less(out.put[j].Key) })
	sort.Slice(out.del, func(i, j int) bool { return out.del[i].Key.Less(out.del[j].Key) })
	return out
}

// taggedOurs reports whether the rule carries this deployment's identity
// tag (or, on rules made before it had one, its table's name): a claim
// anyone allowed to tag rules can make, never a proof.
func (in diffInput) taggedOurs(a ActualRule) bool {
	v, ok := a.Tags[TagLedger]
	return ok && v != "" && (v == in.ledgerID || v == in.legacyID)
}

func (out *diffOutput) noteRelease(a ActualRule) {
	if out.ledgerTags == nil {
		out.ledgerTags = map[string]string{}
	}
	out.ledgerTags[a.RuleID] = a.Tags[TagLedger]
}

// othersOf returns the other deployments that created or claim the rule
// (its TagLedger when not this deployment's, its claim tags of other
// identities), sorted.
func (in diffInput) othersOf(a ActualRule) []string {
	honoured, _ := in.proof.split(a.RuleID, otherDeployments(a, in.ledgerID, in.legacyID))
	return honoured
}

func otherDeployments(a ActualRule, id, legacy string) []string {
	var out []string
	if v := a.Tags[TagLedger]; v != "" && v != id && v != legacy {
		out = append(out, v)
	}
	for k := range a.Tags {
		if o, ok := strings.CutPrefix(k, TagClaimPrefix); ok && o != "" && o != id {
			out = append(out, o)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// allUnread reports whether every owner is a source whose record a sweep
// could not read (diffInput.unread).
func allUnread(owners map[rules.Owner]string, unread map[string]bool) bool {
	for o := range owners {
		if !unread[o.Source] {
			return false
		}
	}
	return len(owners) > 0
}

// anyInScope reports whether any owner's source is re-evaluated in this run.
func anyInScope(owners map[rules.Owner]string, scope map[string][]rules.Permission) bool {
	for o := range owners {
		if _, ok := scope[o.Source]; ok {
			return true
		}
	}
	return false
}

// lossOf tells whether revoking an owned permission is a loss (an owner's
// rule or whole source disappeared) rather than a replacement (the rule is
// still declared, with other ports, protocol or sources).
func lossOf(old OwnedPermission, in diffInput) (bool, string) {
	for _, owner := range sortedOwners(old.Owners) {
		names, inScope := in.scopeRules[owner.Source]
		if !inScope {
			continue
		}
		if !names[owner.Rule] {
			return true, owner.Source
		}
	}
	return false, ""
}

func conflictOf(k rules.Key, owners map[rules.Owner]string, winner rules.Owner) (Conflict, bool) {
	for _, d := range owners {
		if d != owners[winner] {
			return Conflict{Key: k, Descriptions: maps.Clone(owners), Winner: winner}, true
		}
	}
	return Conflict{}, false
}

func sameRecord(a, b OwnedPermission) bool {
	return a.RuleID == b.RuleID && a.Description == b.Description && maps.Equal(a.Owners, b.Owners)
}

// pairModifications turns a revocation and an authorization of the same
// group, direction and peer kind into one in-place modification of the
// existing rule, when that is safe:
//   - a permission going away (no owner declares it any more) that this
//     deployment created (it carries its TagLedger), paired with a new
//     permission declared by one of the same owners (source and rule);
//     a pre-existing rule that was adopted is never rewritten into
//     something else, and one another owner still declares is not going
//     away;
//   - a managed rule modified by hand, paired with the authorization of
//     the permission it had: put back in place.
//
// Only the same peer kind pairs (IPv4 with IPv4, IPv6 with IPv6, group
// with group of the same account, prefix list with prefix list); other
// changes stay authorize + revoke. Pairing is deterministic: revocations in key order,
// each taking the first free authorization in key order, preferring the
// same peer, then the same ports.
func pairModifications(out *diffOutput, in diffInput, actual map[rules.Key]ActualRule) {
	as := out.plan.Actions
	var revs, auths []int
	for i, a := range as {
		switch {
		case a.Kind == ActRevoke && (a.Cause == CauseDriftModified ||
			a.Cause == CauseUndeclared && in.taggedOurs(actual[a.Key]) && len(in.othersOf(actual[a.Key])) == 0):
			revs = append(revs, i)
		case a.Kind == ActAuthorize && (a.Cause == CauseDeclared || a.Cause == CauseDriftDeleted):
			auths = append(auths, i)
		}
	}
	if len(revs) == 0 || len(auths) == 0 {
		return
	}
	byKey := func(idx []int) {
		sort.Slice(idx, func(x, y int) bool { return as[idx[x]].Key.Less(as[idx[y]].Key) })
	}
	byKey(revs)
	byKey(auths)
	taken := map[int]bool{}
	pairs := map[int]int{} // revoke index → authorization index
	for _, r := range revs {
		rv := as[r]
		best, bestScore := -1, 3
		for _, j := range auths {
			a := as[j]
			if taken[j] || a.Key.GroupID != rv.Key.GroupID || a.Key.Direction != rv.Key.Direction || a.Key.Peer.Kind != rv.Key.Peer.Kind ||
				a.Key.Peer.Account != rv.Key.Peer.Account { // ModifySecurityGroupRules cannot name a peer's account
				continue
			}
			if rv.Cause == CauseDriftModified {
				if a.Cause != CauseDriftDeleted || a.Key != rv.Was {
					continue
				}
			} else if a.Cause != CauseDeclared || !shareOwner(a.Owners, rv.Owners) {
				continue
			}
			score := 2
			switch {
			case a.Key.Peer == rv.Key.Peer:
				score = 0
			case a.Key.Protocol == rv.Key.Protocol && a.Key.FromPort == rv.Key.FromPort && a.Key.ToPort == rv.Key.ToPort:
				score = 1
			}
			if score < bestScore {
				best, bestScore = j, score
			}
		}
		if best >= 0 {
			taken[best] = true
			pairs[r] = best
		}
	}
	if len(pairs) == 0 {
		return
	}
	ruleID := map[rules.Key]string{}
	kept := as[:0:0]
	dropped := map[int]bool{}
	for r, j := range pairs {
		rv, a := as[r], as[j]
		cause := CauseChanged
		if rv.Cause == CauseDriftModified {
			cause = CauseDriftModified
		}
		kept = append(kept, Action{Kind: ActModify, Cause: cause, Key: a.Key, From: rv.Key, RuleID: rv.RuleID,
			Description: a.Description, OldDescription: actual[rv.Key].Description, Owners: a.Owners,
			Reason: modifyReason(cause)})
		ruleID[a.Key] = rv.RuleID
		dropped[r], dropped[j] = true, true
	}
	for i, a := range as {
		if !dropped[i] {
			kept = append(kept, a)
		}
	}
	out.plan.Actions = kept
	old := map[rules.Key]OwnedPermission{}
	for _, o := range in.owned {
		old[o.Key] = o
	}
	put := out.put[:0:0]
	for _, p := range out.put {
		if id, ok := ruleID[p.Key]; ok {
			p.RuleID = id
			if o, isOwned := old[p.Key]; isOwned && sameRecord(o, p) {
				continue // a hand modification put back: the record stands
			}
		}
		put = append(put, p)
	}
	out.put = put
}

func modifyReason(c Cause) string {
	if c == CauseDriftModified {
		return "drift: rule modified outside sgrules; put back in place"
	}
	return "declared rule changed; modified in place"
}

func shareOwner(a, b []rules.Owner) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

var kindOrder = map[ActionKind]int{ActAuthorize: 0, ActAdopt: 1, ActModify: 2, ActUpdate: 3, ActRevoke: 4, ActRelease: 5, ActForget: 6}

// SortActions orders actions as plans do: by group, direction, kind (make
// before break: authorize, adopt, modify, update, revoke, forget), then key.
func SortActions(as []Action) {
	sort.SliceStable(as, func(i, j int) bool {
		a, b := as[i], as[j]
		if a.Key.GroupID != b.Key.GroupID {
			return a.Key.GroupID < b.Key.GroupID
		}
		if a.Key.Direction != b.Key.Direction {
			return a.Key.Direction < b.Key.Direction
		}
		if a.Kind != b.Kind {
			return kindOrder[a.Kind] < kindOrder[b.Kind]
		}
		if a.Key != b.Key {
			return a.Key.Less(b.Key)
		}
		return a.RuleID < b.RuleID
	})
}

// sortedOwners returns the owners of m, sorted.
func sortedOwners[V any](m map[rules.Owner]V) []rules.Owner {
	out := slices.Collect(maps.Keys(m))
	slices.SortFunc(out, func(a, b rules.Owner) int {
		switch {
		case a.Less(b):
			return -1
		case b.Less(a):
			return 1
		}
		return 0
	})
	return out
}

func joinOwners(os []rules.Owner) string {
	s := ""
	for i, o := range os {
		if i > 0 {
			s += ", "
		}
		s += o.String()
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	out := slices.Collect(maps.Keys(m))
	slices.Sort(out)
	return out
}
