package reconcile

import (
	"context"
	"fmt"
	"slices"

	"github.com/sgrules/sgrules/pkg/rules"
)

// Plan: diff the desired state against the ledger and EC2, then let the
// policies judge the result. A policy looks at the diff and returns
// verdicts per source (reject: invalid, keeps what it applied before; hold:
// the blast-radius guard) or sets actions aside; the diff then runs again
// on the judged sources. At most three diffs per plan.

// attempt is one observe → plan → lock → observe → apply → commit pass.
type attempt struct {
	req  Request
	srcs []*loaded
	// known are the keys of every source with a record or a file.
	known map[string]bool
	// outside is what the records a sweep does not load declare.
	outside *unloaded
	// quota are the sources EC2 refused for a group's rules quota in an
	// earlier attempt of this request.
	quota map[string]*quotaError
	st    state
	// policy is the guardrail policy of this run (nil: none).
	policy *policyRun
	// id is the deployment's identity ("" in a dry run of a ledger that
	// has none yet).
	id string
	// excl are the exclusive tags of the groups (readExclusiveMarks).
	excl exclusiveMarks
	// found are the groups resolving the files' references read: their
	// facts for the attempt (state.info).
	found []GroupInfo
	// usage is the traffic evidence read in this attempt, by rule id, and
	// usageDropped the revokes it refused that no source keeps (evidence.go).
	usage        map[string]RuleUse
	usageDropped map[string]bool
	// proof is what the peer ledgers prove (nil: none configured).
	proof *claimProof
}

// planned is the outcome of planning.
type planned struct {
	diffOutput
	// heldCleanup counts clean-up revocations (exclusive groups, orphans,
	// owners gone) the guard left out.
	heldCleanup int
	// paused are the groups whose drift was set aside.
	paused []string
	quota  []QuotaWarning
	// policy is what the guardrail policy found.
	policy PolicyReport
	// usage is what the traffic evidence check did.
	usage UsageReport
}

func (e *Engine) plan(ctx context.Context, at *attempt) (planned, error) {
	for _, s := range at.srcs {
		s.resetPlanState()
		if qe := at.quota[s.key]; qe != nil {
			s.reject(s.quotaDiagnostic(qe))
		}
	}
	if err := e.readExclusiveMarks(ctx, at); err != nil {
		return planned{}, err
	}
	if err := e.proveClaims(ctx, at); err != nil {
		return planned{}, err
	}
	out := diff(e.diffInput(at))

	// One DescribeGroups for the facts the policies need.
	need := e.groupsToCheck(out)
	e.policyGroups(at, need)
	if err := e.groupInfo(ctx, &at.st, need); err != nil {
		return planned{}, err
	}
	if err := e.policyPrefixLists(ctx, at); err != nil {
		return planned{}, err
	}
	if e.policyVerdicts(at) {
		out = diff(e.diffInput(at))
	}
	cannot := e.unchangeable(at.st)
	if e.rejectUnchangeable(at.srcs, out, cannot) {
		out = diff(e.diffInput(at))
	}
	out, usage, err := e.checkUsage(ctx, at, out)
	if err != nil {
		return planned{}, err
	}
	out = dropActions(out, func(a Action) bool { return cannot(a) != "" })

	p := planned{diffOutput: out, usage: usage}
	e.policyRevokes(at, &p)
	if err := e.guard(ctx, at, &p); err != nil {
		return planned{}, err
	}
	e.setAsidePaused(at, &p)
	e.admit(at, &p) // last: nothing after it adds a write
	if p.diffOutput, err = e.settleUsage(ctx, at, p.diffOutput); err != nil {
		return planned{}, err
	}
	e.policySettle(&p)
	q, err := e.quotaWarnings(ctx, at, p.diffOutput)
	if err != nil {
		return planned{}, err
	}
	p.quota = q
	markExpiry(at.srcs, at.outside.declared, p.plan.Actions)
	return p, nil
}

func (e *Engine) diffInput(at *attempt) diffInput {
	in := diffInput{
		scope:           map[string][]rules.Permission{},
		scopeRules:      map[string]map[string]bool{},
		complete:        at.req.All, // every source is loaded: a sweep of some groups is complete for them
		known:           at.known,
		ledgerID:        at.id,
		legacyID:        e.cfg.LedgerID,
		groups:          at.st.groups,
		owned:           at.st.owned,
		actual:          at.st.actual,
		exclusive:       at.st.exclusive,
		exclusiveOthers: at.excl.others,
		intents:         map[rules.Key]bool{},
		proof:           at.proof,
		now:             at.outside.now,
		expired:         at.outside.expired,
		unread:          at.outside.unread,
	}
	for _, it := range at.st.intents {
		in.intents[it.Key] = true
	}
	for _, s := range at.srcs {
		in.scope[s.key] = s.desired
		names := map[string]bool{}
		for _, p := range s.desired {
			names[p.Owner.Rule] = true
		}
		in.scopeRules[s.key] = names
	}
	return in
}

// groupsToCheck are the groups whose EC2 facts the policies need: those
// new rules go into or reference (they must exist), those with drift to
// correct (a pause tag holds it), and, with ManagedGroupTag, every group
// the plan changes.
func (e *Engine) groupsToCheck(out diffOutput) map[string]bool {
	need := map[string]bool{}
	for _, a := range out.plan.Actions {
		switch {
		case a.Kind == ActAuthorize, a.Kind == ActModify:
			need[a.Key.GroupID] = true
			if a.Key.Peer.Kind == rules.PeerGroup {
				need[a.Key.Peer.Value] = true
			}
		case a.Drift(), e.cfg.ManagedGroupTag != "" && a.Kind != ActForget && a.Kind != ActAdopt:
			need[a.Key.GroupID] = true
		}
	}
	return need
}

// unchangeable returns a function telling why an action cannot be taken
// ("" when it can): its group or peer group does not exist, or its group
// lacks ManagedGroupTag.
func (e *Engine) unchangeable(st state) func(Action) string {
	missing := func(id string) bool {
		g, read := st.info[id]
		return read && g == nil
	}
	return func(a Action) string {
		if a.Kind == ActAuthorize || a.Kind == ActModify {
			switch {
			case missing(a.Key.GroupID):
				return fmt.Sprintf("security group %s does not exist", a.Key.GroupID)
			case a.Key.Peer.Kind == rules.PeerGroup && missing(a.Key.Peer.Value):
				return fmt.Sprintf("peer security group %s does not exist", a.Key.Peer.Value)
			}
		}
		if tag := e.cfg.ManagedGroupTag; tag != "" && a.Kind != ActForget && a.Kind != ActAdopt {
			if g := st.info[a.Key.GroupID]; g != nil {
				if _, ok := g.Tags[tag]; !ok {
					return fmt.Sprintf("security group %s is not tagged %s: this deployment changes only groups carrying that tag (ManagedGroupTag)", a.Key.GroupID, tag)
				}
			}
		}
		return ""
	}
}

// rejectUnchangeable marks invalid every applied source that declares a
// permission the plan cannot take; it reports whether any was.
func (e *Engine) rejectUnchangeable(srcs []*loaded, out diffOutput, cannot func(Action) string) bool {
	why := map[rules.Key]string{}
	for _, a := range out.plan.Actions {
		if a.Drift() {
			continue
		}
		if msg := cannot(a); msg != "" {
			why[a.Key] = msg
		}
	}
	if len(why) == 0 {
		return false
	}
	any := false
	for _, s := range srcs {
		if s.status != StatusApplied {
			continue
		}
		var diags rules.Diagnostics
		for _, p := range slices.Concat(s.desired, s.rec.Permissions) {
			msg, bad := why[p.Key]
			if !bad || p.Owner.Source != s.key {
				continue
			}
			pos := s.fieldPos(p.Owner.Rule, "securityGroup")
			diags = append(diags, rules.Diagnostic{File: s.key, Line: pos.Line, Col: pos.Col, Rule: p.Owner.Rule,
				Field: "securityGroup", Severity: rules.SeverityError, Msg: msg})
		}
		if len(diags) > 0 {
			s.reject(dedupeDiagnostics(diags))
			any = true
		}
	}
	return any
}

// guard is the blast-radius guard: a plan losing more permissions than
// MaxRevoke holds the sources causing the losses (they keep what they
// applied) and leaves clean-up revocations for a later run.
//
// With a budget (Request.Budget) the limit is the run's: the plan's losses
// are claimed there and a claim that does not fit, with what the other
// targets and shards of the run claimed first, holds the plan too.
func (e *Engine) guard(ctx context.Context, at *attempt, p *planned) error {
	if at.req.AllowMassRevoke || e.cfg.MaxRevoke < 0 {
		return nil
	}
	losses, bySource := 0, map[string]int{}
	for _, a := range p.plan.Actions {
		if a.Loss {
			losses++
			bySource[a.LossSource]++
		}
	}
	if losses == 0 {
		return nil // an earlier claim of this engine stays: over-counting only holds sooner
	}
	rel := relativeHold(at, p)
	hold := GuardHold{Losses: losses, Limit: e.cfg.MaxRevoke}
	n := losses
	switch {
	case losses > e.cfg.MaxRevoke:
		n = 0 // held: none of this plan's revocations is executed
	case rel != nil:
		n = bySource[""] // the sources are held: only clean-up is executed
	}
	granted, spent, err := e.claim(ctx, at.req, n)
	if err != nil {
		return err
	}
	switch {
	case losses > e.cfg.MaxRevoke:
	case rel != nil:
		hold.Losses, hold.Owned, hold.Group = rel.Losses, rel.Owned, rel.Group
		if !granted {
			hold.Spent = spent // the clean-up waits too
		}
	case granted:
		return nil
	default:
		hold.Spent = spent
	}
	held := false
	for _, s := range at.srcs {
		if n := bySource[s.key]; n > 0 {
			h := hold
			h.FromSource = n
			s.hold(h)
			held = true
		}
	}
	if held {
		p.diffOutput = diff(e.diffInput(at))
	}
	if losses <= e.cfg.MaxRevoke && hold.Spent == 0 {
		return nil // the relative guard holds sources, not clean-up
	}
	before := len(p.plan.Actions)
	p.diffOutput = dropActions(p.diffOutput, func(a Action) bool { return a.Loss && a.LossSource == "" })
	p.heldCleanup = before - len(p.plan.Actions)
	return nil
}

// relativeHold is the relative guard (Request.RelativeGuard): in a sweep
// whose sources would lose at least MinRelativeLosses permissions, more
// than half of what they owned, or every permission sgrules manages in a
// group (at least MinRelativeLosses, none authorized there), holds. It
// returns the hold's Owned and Group, or nil.
func relativeHold(at *attempt, p *planned) *GuardHold {
	if !at.req.RelativeGuard || !at.req.All {
		return nil
	}
	inRun := map[string]bool{}
	for _, s := range at.srcs {
		inRun[s.key] = true
	}
	losses := 0
	lostIn, grows := map[string]int{}, map[string]bool{}
	for _, a := range p.plan.Actions {
		switch {
		// Only the losses of the run's sources: an expiry of a source the
		// sweep does not load (unloaded) is not one, and not in owned.
		case a.Loss && inRun[a.LossSource] && !at.req.Moved[a.LossSource]:
			losses++
			lostIn[a.Key.GroupID]++
		case a.Kind == ActAuthorize || a.Kind == ActAdopt:
			grows[a.Key.GroupID] = true
		}
	}
	if losses < MinRelativeLosses {
		return nil
	}
	owned, ownedIn := 0, map[string]int{}
	for _, o := range at.st.owned {
		ownedIn[o.Key.GroupID]++
		for owner := range o.Owners {
			if inRun[owner.Source] {
				owned++
				break
			}
		}
	}
	if 2*losses > owned {
		return &GuardHold{Losses: losses, Owned: owned}
	}
	for _, g := range sortedKeys(lostIn) {
		if n := lostIn[g]; n >= MinRelativeLosses && n == ownedIn[g] && !grows[g] {
			return &GuardHold{Losses: losses, Owned: owned, Group: g}
		}
	}
	return nil
}

// setAsidePaused keeps drift corrections out of groups whose
// sgrules:pause-until tag is in the future (break-glass): they are
// reported, never executed. Only an explicit change of a declaration
// touches a paused group.
func (e *Engine) setAsidePaused(at *attempt, p *planned) {
	now := e.cfg.Now()
	paused := map[string]bool{}
	for _, a := range p.plan.Actions {
		if a.Drift() && at.st.paused(a.Key.GroupID, now, e.cfg.MaxPause) {
			paused[a.Key.GroupID] = true
			a.Paused = true
			p.pausedDrift = append(p.pausedDrift, a)
		}
	}
	if len(paused) == 0 {
		return
	}
	p.diffOutput = dropActions(p.diffOutput, func(a Action) bool { return a.Drift() && paused[a.Key.GroupID] })
	p.paused = sortedKeys(paused)
}

// dropActions removes matching actions and the ledger writes of their keys.
func dropActions(out diffOutput, drop func(Action) bool) diffOutput {
	dropped := map[rules.Key]bool{}
	kept := out.plan.Actions[:0:0]
	for _, a := range out.plan.Actions {
		if drop(a) {
			dropped[a.Key] = true
			if a.Kind == ActRevoke && a.Cause == CauseDriftModified {
				dropped[a.Was] = true
			}
			if a.Kind == ActModify {
				dropped[a.From] = true
			}
			continue
		}
		kept = append(kept, a)
	}
	out.plan.Actions = kept
	out.put = slices.DeleteFunc(slices.Clone(out.put), func(o OwnedPermission) bool { return dropped[o.Key] })
	out.del = slices.DeleteFunc(slices.Clone(out.del), func(o OwnedPermission) bool { return dropped[o.Key] })
	out.claims = slices.DeleteFunc(slices.Clone(out.claims), func(a ActualRule) bool { return dropped[a.Key] })
	return out
}

// reject marks the source invalid for this plan: it keeps what it applied.
func (s *loaded) reject(diags rules.Diagnostics) {
	s.status = StatusInvalid
	s.diags = append(s.diags, diags...)
	s.keepPrevious()
}

func (s *loaded) hold(g GuardHold) {
	s.status, s.guard = StatusHeld, &g
	switch {
	case g.Group != "":
		s.message = fmt.Sprintf("plan held: it would revoke every rule sgrules manages in %s (%d permissions in this run, %d because of this source)",
			g.Group, g.Losses, g.FromSource)
	case g.Owned > 0:
		s.message = fmt.Sprintf("plan held: it would revoke %d of the %d permissions the rule files owned (more than half; %d because of this source)",
			g.Losses, g.Owned, g.FromSource)
	case g.Spent > 0:
		s.message = fmt.Sprintf("plan held: it would revoke %d permissions (%d because of this source) besides the %d the other targets of this run revoke, over the blast-radius limit of %d per run",
			g.Losses, g.FromSource, g.Spent, g.Limit)
	default:
		s.message = fmt.Sprintf("plan held: it would revoke %d permissions in this run (%d because of this source), over the blast-radius limit of %d",
			g.Losses, g.FromSource, g.Limit)
	}
	s.keepPrevious()
}

// quotaDiagnostic says EC2 refused the source's new rules in a group whose
// rules quota they would exceed.
func (s *loaded) quotaDiagnostic(qe *quotaError) rules.Diagnostics {
	return rules.Diagnostics{{File: s.key, Line: 1, Col: 1, Field: "securityGroup", Severity: rules.SeverityError,
		Msg: fmt.Sprintf("security group %s: EC2 refused %d new %s rules: the group's rules quota would be exceeded",
			qe.group, qe.count, qe.dir)}}
}

func dedupeDiagnostics(ds rules.Diagnostics) rules.Diagnostics {
	seen := map[rules.Diagnostic]bool{}
	return slices.DeleteFunc(ds, func(d rules.Diagnostic) bool {
		if seen[d] {
			return true
		}
		seen[d] = true
		return false
	})
}
