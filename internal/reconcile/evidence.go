package reconcile

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sgrules/sgrules/pkg/flowlog"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Traffic evidence: before the plan revokes or narrows a rule that a rule
// file declared, the engine asks whether the rule carried traffic lately
// (Config.Evidence, over Config.UsedWithin). A rule that did is kept, and
// the removal reported as refused (Result.Usage), unless the request or
// the file acknowledges it (docs/usage.md, "Never remove a used rule by
// accident").
//
// The engine knows the evidence only through the interface below. The CLI
// implements it with the flow logs it reads over the window (sgrules plan
// --flow-logs); the reconcile function with the per-rule counters that the
// flow-log ingestion writes to the ledger.

// UsageEvidence tells whether rules carried traffic.
type UsageEvidence interface {
	// RuleUsage returns the use of each rule asked (out[i] for asked[i],
	// len(out) == len(asked)) on or after since, in target (the engine's
	// account and region; empty fields when it has none). The engine asks
	// once per plan, for the rules the plan would revoke or narrow, many
	// groups at once.
	//
	// A rule is identified by its EC2 rule id (sgr-…), which flow-log
	// attribution and the ledger's counters are keyed by, and by the
	// permission it carries now (Key: group, direction, protocol, ports,
	// peer), for implementations that credit permissions rather than ids.
	//
	// Known false means the evidence cannot tell (no counters are kept for
	// the rule's group or VPC, say no flow log delivers there): the plan
	// says "usage unknown" and the removal goes ahead. Known with Flows 0
	// means no traffic since since. An error fails the run (it is retried):
	// evidence that cannot be read never lets a removal through.
	RuleUsage(ctx context.Context, target rules.Target, asked []UsageRule, since time.Time) ([]RuleUse, error)
}

// UsageRule is one rule whose use the engine asks about.
type UsageRule struct {
	RuleID string
	Key    rules.Key
}

// RuleUse is the use of one rule within the window asked.
type RuleUse struct {
	// Known: the evidence covers the rule (false: unknown, see
	// UsageEvidence).
	Known bool
	// Flows and Bytes add up the flows credited to the rule in the window
	// (counted as pkg/flowlog.Usage counts them); Flows 0: unused.
	Flows, Bytes int64
	// Last is when the rule was last seen carrying traffic (zero when
	// unused or the logs carry no times), and Peer the peer address of
	// that flow ("" when unknown).
	Last time.Time
	Peer string
}

// Used reports whether the evidence shows traffic.
func (u RuleUse) Used() bool { return u.Known && u.Flows > 0 }

// DefaultUsedWithin is the default window of Config.UsedWithin: a rule
// that carried traffic within it is not removed by accident.
const DefaultUsedWithin = 30 * 24 * time.Hour

// UsageReport is what the evidence check did in one run (Result.Usage).
type UsageReport struct {
	// Since is the start of the window (zero: no evidence configured).
	Since time.Time
	// Refused are the removals refused, in plan order: the rule stays,
	// and its owner keeps declaring it in the ledger until it is
	// acknowledged or carries no traffic within the window.
	Refused []UsageRefusal
	// Allowed are the used rules removed because the request or the file
	// acknowledged it (allowUsedRemoval, --allow-used-removal).
	Allowed []UsageRefusal
}

// UsageRefusal is one removal of a used rule: the revoke or the narrowing
// modify (Action, its Usage set), and the source and rule that no longer
// declare the permission.
type UsageRefusal struct {
	Action Action
	Owner  rules.Owner
	Use    RuleUse
}

// String reads "refused: revoke KEY (rule ID) for SOURCE rule RULE: it
// carried traffic …".
func (r UsageRefusal) String() string {
	what := fmt.Sprintf("%s %s", r.Action.Kind, r.removed())
	if r.Action.Kind == ActModify {
		what = fmt.Sprintf("narrow %s into %s", r.Action.From, r.Action.Key)
	}
	s := fmt.Sprintf("refused: %s (rule %s)", what, r.Action.RuleID)
	if r.Owner.Source != "" {
		s += " for " + r.Owner.Source
		if r.Owner.Rule != "" {
			s += " rule " + r.Owner.Rule
		}
	}
	return s + ": it carried traffic lately (" + r.Use.Summary() + "); kept"
}

func (r UsageRefusal) removed() rules.Key {
	if r.Action.Kind == ActModify {
		return r.Action.From
	}
	return r.Action.Key
}

// Summary reads "last seen 2025-12-02T10:00:00Z, 1234 flows, 5678 bytes,
// from 10.1.4.7", or "no traffic", "usage unknown".
func (u RuleUse) Summary() string {
	switch {
	case !u.Known:
		return "usage unknown"
	case u.Flows == 0:
		return "no traffic"
	}
	s := ""
	if !u.Last.IsZero() {
		s = "last seen " + u.Last.UTC().Format(time.RFC3339) + ", "
	}
	s += fmt.Sprintf("%d flows, %d bytes", u.Flows, u.Bytes)
	if u.Peer != "" {
		s += ", from " + u.Peer
	}
	return s
}

// checkUsage is the evidence check of the plan's removals: every revoke of
// a permission a rule file declared (no longer declared, or its owners
// gone) and every modify of a declared rule into a permission that does
// not allow all it allowed, when nothing that stays in the group allows it
// either (the traffic would stop), is judged by the rule's use within
// Config.UsedWithin. A used one is refused unless the request
// (AllowUsedRemoval) or the owner's file (allowUsedRemoval naming the
// rule) acknowledges it: the owner keeps declaring the permission (in a
// modify: the old one, besides the new one, which is authorized: make
// before break) and the diff runs again. An owner with neither file nor
// record (owners gone) keeps the rule: the revoke is dropped, the ledger
// keeps its record.
//
// Not judged: drift corrections, exclusive-group and orphan clean-up,
// policy revokes, rules whose expiresAt passed (those removals are what
// the declarations ask for), and CloudFormation resources (the stack
// change is the reviewed change; refusing would fail the stack's update
// or delete). Every revoke and modify with a rule id is marked with its
// usage (Action.Usage) all the same.
func (e *Engine) checkUsage(ctx context.Context, at *attempt, out diffOutput) (diffOutput, UsageReport, error) {
	if e.cfg.Evidence == nil {
		return out, UsageReport{}, nil
	}
	now := e.cfg.Now()
	rep := UsageReport{Since: now.Add(-e.cfg.UsedWithin).UTC()}
	bySource := map[string]*loaded{}
	for _, s := range at.srcs {
		bySource[s.key] = s
	}
	ownersOf := map[rules.Key]OwnedPermission{}
	for _, o := range at.st.owned {
		ownersOf[o.Key] = o
	}
	if at.usageDropped == nil {
		at.usageDropped = map[string]bool{}
	}
	dropped := at.usageDropped // rule ids whose removal no source can take back
	seen := map[string]bool{}  // refusals and acknowledgements reported, by rule id and owner
	for pass := 0; pass <= len(out.plan.Actions); pass++ {
		if err := e.askUsage(ctx, at, out.plan.Actions, rep.Since); err != nil {
			return out, UsageReport{}, err
		}
		after := at.heldAfter(out.plan.Actions)
		kept := false
		for _, a := range out.plan.Actions {
			removed, old, ok := judgedRemoval(a, ownersOf)
			if !ok || dropped[a.RuleID] {
				continue
			}
			use := at.usage[a.RuleID]
			if !use.Used() || coveredAfter(removed, after[removed.GroupID]) {
				continue
			}
			for _, o := range sortedOwners(old.Owners) {
				s := bySource[o.Source]
				if s != nil && (s.kind == KindCFN || at.req.Moved[s.key] || s.expired(removed, o) ||
					slices.ContainsFunc(s.desired, func(p rules.Permission) bool { return p.Key == removed && p.Owner == o })) {
					continue // not judged, or declared still (kept already, or an invalid file keeping what it applied)
				}
				r := UsageRefusal{Action: a, Owner: o, Use: use}
				id := a.RuleID + "\x00" + o.String()
				if at.req.AllowUsedRemoval || s != nil && s.file.AllowsUsedRemoval(o.Rule) {
					if !seen[id] {
						seen[id] = true
						rep.Allowed = append(rep.Allowed, r)
					}
					continue
				}
				if !seen[id] {
					seen[id] = true
					rep.Refused = append(rep.Refused, r)
				}
				if s == nil {
					dropped[a.RuleID] = true
					continue
				}
				s.keepUsed(removed, o, old.Owners[o])
				kept = true
			}
		}
		if !kept {
			break
		}
		out = diff(e.diffInput(at))
	}
	for _, r := range [][]UsageRefusal{rep.Refused, rep.Allowed} {
		for i := range r {
			r[i].Action.Usage = &r[i].Use
		}
	}
	return out, rep, nil
}

// settleUsage applies the evidence check to the final plan (the guard and
// the admission check may have planned again): the revokes it refused
// with no source to keep them are dropped, and every revoke and modify
// with a rule id is marked with its usage.
func (e *Engine) settleUsage(ctx context.Context, at *attempt, out diffOutput) (diffOutput, error) {
	if e.cfg.Evidence == nil {
		return out, nil
	}
	if err := e.askUsage(ctx, at, out.plan.Actions, e.cfg.Now().Add(-e.cfg.UsedWithin).UTC()); err != nil {
		return out, err
	}
	if len(at.usageDropped) > 0 {
		out = dropActions(out, func(a Action) bool {
			return at.usageDropped[a.RuleID] && (a.Kind == ActRevoke || a.Kind == ActModify)
		})
	}
	for i, a := range out.plan.Actions {
		if use, ok := at.usage[a.RuleID]; ok && a.RuleID != "" && (a.Kind == ActRevoke || a.Kind == ActModify) {
			out.plan.Actions[i].Usage = &use
		}
	}
	return out, nil
}

// expired reports whether the source's record holds the permission for
// owner o with a deadline that has passed: its revoke is what expiresAt
// asks for.
func (s *loaded) expired(k rules.Key, o rules.Owner) bool {
	for _, p := range slices.Concat(s.rec.Permissions, s.baseDesired) {
		if p.Key == k && p.Owner == o && rules.ExpiredAt(p.ExpiresAt, s.now) {
			return true
		}
	}
	return false
}

// judgedRemoval tells whether the evidence check judges the action, and
// what it removes: the revoked permission, or the one a declared rule is
// modified from, with the ledger's record of it (its owners).
func judgedRemoval(a Action, owned map[rules.Key]OwnedPermission) (rules.Key, OwnedPermission, bool) {
	if a.RuleID == "" {
		return rules.Key{}, OwnedPermission{}, false
	}
	var removed rules.Key
	switch {
	case a.Kind == ActRevoke && (a.Cause == CauseUndeclared || a.Cause == CauseOwnerGone):
		removed = a.Key
	case a.Kind == ActModify && a.Cause == CauseChanged && !flowlog.Covers(a.Key, a.From):
		removed = a.From
	default:
		return rules.Key{}, OwnedPermission{}, false
	}
	old, ok := owned[removed]
	return removed, old, ok
}

// coveredAfter reports whether a permission that stays in the group
// (after: the group's rules once the plan is executed) allows all that k
// allows: removing k then stops no traffic.
func coveredAfter(k rules.Key, after []rules.Key) bool {
	for _, o := range after {
		if o != k && flowlog.Covers(o, k) {
			return true
		}
	}
	return false
}

// askUsage asks the evidence about the rules the actions revoke or modify
// that it was not asked about yet in this attempt (one call).
func (e *Engine) askUsage(ctx context.Context, at *attempt, actions []Action, since time.Time) error {
	if at.usage == nil {
		at.usage = map[string]RuleUse{}
	}
	var asked []UsageRule
	for _, a := range actions {
		if a.RuleID == "" || (a.Kind != ActRevoke && a.Kind != ActModify) {
			continue
		}
		if _, done := at.usage[a.RuleID]; done {
			continue
		}
		k := a.Key
		if a.Kind == ActModify {
			k = a.From
		}
		at.usage[a.RuleID] = RuleUse{}
		asked = append(asked, UsageRule{RuleID: a.RuleID, Key: k})
	}
	if len(asked) == 0 {
		return nil
	}
	got, err := e.cfg.Evidence.RuleUsage(ctx, e.target(nil), asked, since)
	if err != nil {
		for _, r := range asked {
			delete(at.usage, r.RuleID)
		}
		return fmt.Errorf("read traffic evidence: %w", err)
	}
	if len(got) != len(asked) {
		for _, r := range asked {
			delete(at.usage, r.RuleID)
		}
		return fmt.Errorf("read traffic evidence: %d answers for %d rules", len(got), len(asked))
	}
	for i, r := range asked {
		at.usage[r.RuleID] = got[i]
	}
	return nil
}

// keepUsed makes the source declare again a permission the evidence
// check refused to remove, as its record holds it (its deadline, if any),
// and keeps its record out of the sweeps' cache so the refusal is judged
// again. A file that is gone is held: its record stays, with what it keeps.
func (s *loaded) keepUsed(k rules.Key, o rules.Owner, desc string) {
	p := rules.Permission{Key: k, Owner: o, Description: desc}
	for _, r := range s.rec.Permissions {
		if r.Key == k && r.Owner == o {
			p = r
			break
		}
	}
	s.desired = append(slices.Clip(s.desired), p)
	rules.SortPermissions(s.desired)
	s.static = false
	if s.gone || s.file == nil {
		s.status = StatusHeld
	}
	note := fmt.Sprintf("kept %s (rule %s): it carried traffic lately; list it in allowUsedRemoval to let it go", k, o.Rule)
	if s.message == "" {
		s.message = note
	} else if !strings.Contains(s.message, note) {
		s.message += "; " + note
	}
}

// CombineEvidence asks every evidence (nil ones left out) and keeps, per
// rule, the strongest answer: known when any knows, used when any saw
// traffic, the largest counts and the latest use with its peer. The CLI
// combines the flow logs it reads with the ledger's counters.
func CombineEvidence(evs ...UsageEvidence) UsageEvidence {
	var kept combined
	for _, ev := range evs {
		if ev != nil {
			kept = append(kept, ev)
		}
	}
	switch len(kept) {
	case 0:
		return nil
	case 1:
		return kept[0]
	}
	return kept
}

type combined []UsageEvidence

func (c combined) RuleUsage(ctx context.Context, target rules.Target, asked []UsageRule, since time.Time) ([]RuleUse, error) {
	out := make([]RuleUse, len(asked))
	for _, ev := range c {
		got, err := ev.RuleUsage(ctx, target, asked, since)
		if err != nil {
			return nil, err
		}
		if len(got) != len(asked) {
			return nil, fmt.Errorf("%d answers for %d rules", len(got), len(asked))
		}
		for i, u := range got {
			o := &out[i]
			o.Known = o.Known || u.Known
			o.Flows, o.Bytes = max(o.Flows, u.Flows), max(o.Bytes, u.Bytes)
			if u.Flows > 0 && (o.Last.IsZero() || u.Last.After(o.Last)) {
				o.Last, o.Peer = u.Last, u.Peer
			}
		}
	}
	return out, nil
}
