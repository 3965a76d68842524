package reconcile

import (
	"maps"
	"sort"
	"strings"

	"github.com/sgrules/sgrules/pkg/rules"
)

// ActionKind is what a plan does to one rule.
type ActionKind string

const (
	ActAuthorize ActionKind = "authorize" // create the rule
	ActUpdate    ActionKind = "update"    // change its description in place
	ActAdopt     ActionKind = "adopt"     // record an existing rule as owned
	ActRevoke    ActionKind = "revoke"    // remove the rule
	ActForget    ActionKind = "forget"    // drop a ledger record whose rule is already gone
)

// Action is one step of a plan.
type Action struct {
	Kind   ActionKind `json:"action"`
	Key    rules.Key  `json:"-"`
	RuleID string     `json:"ruleId,omitempty"`
	// Description is the declared description (authorize, update, adopt).
	Description string `json:"description,omitempty"`
	// OldDescription is the description EC2 has now (update).
	OldDescription string `json:"oldDescription,omitempty"`
	// Owners declaring the rule ("source#rule"), sorted.
	Owners []string `json:"owners,omitempty"`
	// Reason says why, in a few words.
	Reason string `json:"reason"`
	// Loss marks a revocation that is not a replacement: a rule or file
	// disappeared, or an undeclared rule in an exclusive group. Losses
	// count against the blast-radius guard.
	Loss bool `json:"loss,omitempty"`
	// LossSource is the source whose change causes the loss ("" for
	// exclusive-group and orphan clean-up).
	LossSource string `json:"-"`
	// Drift marks a correction of a change made outside sgrules.
	Drift bool `json:"drift,omitempty"`
	// Paused marks drift found in a group whose sgrules:pause-until tag is
	// in the future: reported, not executed.
	Paused bool `json:"paused,omitempty"`
}

// Conflict is one permission declared by several owners with different
// descriptions; the lexically first owner's description wins.
type Conflict struct {
	Key          rules.Key         `json:"-"`
	Descriptions map[string]string `json:"descriptions"`
	Winner       string            `json:"winner"`
}

// Plan is the sorted, stable list of actions for one run, with what it
// found but leaves alone.
type Plan struct {
	Actions   []Action     `json:"actions"`
	Conflicts []Conflict   `json:"conflicts,omitempty"`
	Unmanaged []ActualRule `json:"-"`
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
	// complete is true when every source is in scope (a sweep): only then
	// can a rule tagged as ours that nobody declares be revoked as orphan.
	complete bool
	// groups restricts the diff to these group ids.
	groups map[string]bool
	// owned are the ledger records of those groups.
	owned []OwnedPermission
	// actual are the EC2 rules of those groups.
	actual []ActualRule
	// exclusive groups: undeclared rules in them are revoked.
	exclusive map[string]bool
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
}

// ownerSource returns the source part of an owner string "source#rule".
// Rule names cannot contain '#', source keys can.
func ownerSource(owner string) string {
	if i := strings.LastIndexByte(owner, '#'); i >= 0 {
		return owner[:i]
	}
	return owner
}

func ownerRule(owner string) string {
	if i := strings.LastIndexByte(owner, '#'); i >= 0 {
		return owner[i+1:]
	}
	return ""
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

	// New owners of every key: the ledger's owners outside the scope, plus
	// what the scope declares now.
	newOwners := map[rules.Key]map[string]string{}
	for k, o := range owned {
		for owner, desc := range o.Owners {
			if _, inScope := in.scope[ownerSource(owner)]; inScope {
				continue
			}
			if newOwners[k] == nil {
				newOwners[k] = map[string]string{}
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
				newOwners[p.Key] = map[string]string{}
			}
			newOwners[p.Key][p.Owner.String()] = p.Description
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
			if !exists {
				out.plan.Actions = append(out.plan.Actions, Action{Kind: ActForget, Key: k, RuleID: old.RuleID,
					Owners: sortedKeys(old.Owners), Reason: "no longer declared; rule already gone"})
				continue
			}
			loss, lossSource := lossOf(old, in)
			out.plan.Actions = append(out.plan.Actions, Action{Kind: ActRevoke, Key: k, RuleID: act.RuleID,
				Owners: sortedKeys(old.Owners), Reason: "no longer declared", Loss: loss, LossSource: lossSource})
			continue
		}
		declared[k] = true
		ownerList := sortedKeys(owners)
		desc := owners[ownerList[0]]
		if c, ok := conflictOf(k, owners, ownerList[0]); ok {
			out.plan.Conflicts = append(out.plan.Conflicts, c)
		}
		rec := OwnedPermission{Key: k, Owners: owners, Description: desc, Version: old.Version}
		switch {
		case !exists:
			reason := "declared by " + strings.Join(ownerList, ", ")
			if isOwned {
				reason = "drift: rule deleted or changed outside sgrules"
			}
			out.plan.Actions = append(out.plan.Actions, Action{Kind: ActAuthorize, Key: k, Description: desc,
				Owners: ownerList, Reason: reason, Drift: isOwned})
		default:
			rec.RuleID = act.RuleID
			if !isOwned {
				out.plan.Actions = append(out.plan.Actions, Action{Kind: ActAdopt, Key: k, RuleID: act.RuleID,
					Description: desc, Owners: ownerList, Reason: "exists already; declared by " + strings.Join(ownerList, ", ")})
			}
			if act.Description != desc {
				reason, drifted := "description changed", false
				if isOwned && old.Description == desc {
					reason, drifted = "drift: description edited outside sgrules", true
				}
				out.plan.Actions = append(out.plan.Actions, Action{Kind: ActUpdate, Key: k, RuleID: act.RuleID,
					Description: desc, OldDescription: act.Description, Owners: ownerList, Reason: reason, Drift: drifted})
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
		switch o, ours := ownedByRuleID[a.RuleID]; {
		case ours:
			out.plan.Actions = append(out.plan.Actions, Action{Kind: ActRevoke, Key: a.Key, RuleID: a.RuleID,
				Owners: sortedKeys(o.Owners), Reason: "drift: rule modified outside sgrules (was " + o.Key.String() + ")", Drift: true})
		case in.exclusive[a.Key.GroupID]:
			out.plan.Actions = append(out.plan.Actions, Action{Kind: ActRevoke, Key: a.Key, RuleID: a.RuleID,
				Description: a.Description, Reason: "exclusive group: not declared by any source", Loss: true, Drift: true})
		case in.complete && a.Tags[TagManaged] == "true":
			out.plan.Actions = append(out.plan.Actions, Action{Kind: ActRevoke, Key: a.Key, RuleID: a.RuleID,
				Description: a.Description, Reason: "created by sgrules, no longer declared by any source", Loss: true, Drift: true})
		default:
			out.plan.Unmanaged = append(out.plan.Unmanaged, a)
		}
	}

	SortActions(out.plan.Actions)
	sort.Slice(out.plan.Conflicts, func(i, j int) bool { return out.plan.Conflicts[i].Key.Less(out.plan.Conflicts[j].Key) })
	sort.Slice(out.plan.Unmanaged, func(i, j int) bool { return out.plan.Unmanaged[i].Key.Less(out.plan.Unmanaged[j].Key) })
	sort.Slice(out.put, func(i, j int) bool { return out.put[i].Key.Less(out.put[j].Key) })
	sort.Slice(out.del, func(i, j int) bool { return out.del[i].Key.Less(out.del[j].Key) })
	return out
}

// lossOf tells whether revoking an owned permission is a loss (an owner's
// rule or whole source disappeared) rather than a replacement (the rule is
// still declared, with other ports, protocol or sources).
func lossOf(old OwnedPermission, in diffInput) (bool, string) {
	for _, owner := range sortedKeys(old.Owners) {
		src := ownerSource(owner)
		names, inScope := in.scopeRules[src]
		if !inScope {
			continue
		}
		if !names[ownerRule(owner)] {
			return true, src
		}
	}
	return false, ""
}

func conflictOf(k rules.Key, owners map[string]string, winner string) (Conflict, bool) {
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

var kindOrder = map[ActionKind]int{ActAuthorize: 0, ActAdopt: 1, ActUpdate: 2, ActRevoke: 3, ActForget: 4}

// SortActions orders actions as plans do: by group, direction, kind (make
// before break: authorize, adopt, update, revoke, forget), then key.
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

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
