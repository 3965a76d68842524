package reconcile

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/sgrules/sgrules/pkg/rules"
)

// Policy: the guardrail policy (docs/policy.md) as verdicts of the plan.
// Before apply, every source read in this run is checked with the groups'
// EC2 facts: a violation makes it invalid as a whole (it keeps what it
// applied). A policy that exists but is invalid holds every source: it
// stops changes, never opens them. On the live rules of a sweep, rules that
// violate a deny clause are reported, and unmanaged ones revoked when the
// policy says enforce: revoke (clean-up under the blast-radius guard, never
// in paused groups).
//
// The engine knows the policy only through the interfaces below; package
// internal/adapters/policyload adapts pkg/policy to them and reads the policy file.

// PolicyStore reads the policy in force. The engine asks it once per run
// (level-based: the policy may have changed since the last run).
type PolicyStore interface {
	// Policy returns the policy in force: nil without error when there is
	// none, an error wrapping a *PolicyError when it exists but is
	// invalid. Any other error fails the run (it is retried).
	Policy(ctx context.Context) (Policy, error)
}

// Policy is a valid policy.
type Policy interface {
	// Name is the policy's key or file name, for messages.
	Name() string
	// CheckSource checks one source's rules with the facts read from
	// EC2. Error diagnostics are violations, and checks it could not
	// decide with those facts (fail closed), located at the offending rule
	// and field: the source is then invalid.
	CheckSource(src PolicySource, facts PolicyFacts) rules.Diagnostics
	// CheckRules returns the deny clauses each live rule violates
	// (out[i] for keys[i]), judging the rules of a group together with
	// each other and with facts.Held. Clauses it cannot decide are left
	// out.
	CheckRules(keys []rules.Key, facts PolicyFacts) [][]PolicyClause
	// Admit is the admission check of one write (see Engine.admit): the
	// deny clauses and the tenants, with the facts as EC2 reports them
	// now (facts.Held: the other rules the group will hold). It returns
	// why the write is refused, and the checks it could not decide
	// (Undecided); none: admitted.
	Admit(w PolicyWrite, facts PolicyFacts) []PolicyDenial
	// Revoke reports whether unmanaged live rules that violate a deny
	// clause are revoked (enforce: revoke), not only reported.
	Revoke() bool
}

// PolicyFacts is what the engine read from EC2 for the policy in one
// attempt.
type PolicyFacts struct {
	// Groups as EC2 reports them (nil: the group does not exist).
	Groups map[string]*GroupInfo
	// PrefixLists are the entries of the prefix lists read, by id; an
	// AWS-managed list is listed with none (AWS service ranges, never the
	// internet).
	PrefixLists map[string][]netip.Prefix
	// Unreadable are the prefix lists that could not be read, with why.
	Unreadable map[string]string
	// Held are the other rules of each group (by group id): the live
	// rules and what other sources declare there. A clause on CIDRs
	// judges a group's peers together (docs/policy.md, "The internet").
	Held map[string][]rules.Key
	// Now is the moment of the check and Deadlines the deadline of each
	// declared permission that has one (none when an owner declares it
	// without): allowIfExpiresWithin and maxDuration are measured from Now.
	Now       time.Time
	Deadlines map[rules.Key]time.Time
}

// PolicySource is one source to check: its parsed file and what it
// expands to. Groups holds what EC2 reports of the groups it involves (nil:
// the group does not exist).
type PolicySource struct {
	Key  string
	Kind SourceKind
	File *rules.File
	// Perms and Exclusive are the source's expansion with Resolve.
	Perms     []rules.Permission
	Exclusive []string
	Resolve   rules.Resolver
	// Target is the account and region the source's rules are written
	// to: this engine's target (empty fields when the engine has none).
	Target rules.Target
}

// PolicyWrite is one permission the plan is about to write: authorized,
// or a rule modified into it.
type PolicyWrite struct {
	Key rules.Key
	// Target is the account and region of the group written to.
	Target rules.Target
	// Owners are the sources declaring the permission (Action.Owners),
	// with their kinds.
	Owners []PolicyOwner
}

// PolicyOwner is one owner of a write and the kind of its source.
type PolicyOwner struct {
	rules.Owner
	Kind SourceKind
}

// PolicyDenial is one reason a write is refused.
type PolicyDenial struct {
	// Owner indexes PolicyWrite.Owners: the owner a tenant refuses; -1
	// for a deny clause, which refuses whoever declares the permission.
	Owner int
	// Policy is the clause id as written, or "tenant PREFIX".
	Policy string
	// Reason reads "violates policy ID: MESSAGE (what matched)".
	Reason string
	// Undecided: the check needed facts not at hand (Need); it does not
	// refuse the write.
	Undecided bool
	Need      []string
}

// PolicyClause is one deny clause, as a violation names it.
type PolicyClause struct {
	// ID is the clause id as written ("no-world-ssh").
	ID      string
	Message string
}

// Name is the clause id as messages show it: upper-cased.
func (c PolicyClause) Name() string { return strings.ToUpper(c.ID) }

// PolicyError is a policy that exists but is invalid.
type PolicyError struct {
	Key         string
	Diagnostics rules.Diagnostics
}

func (e *PolicyError) Error() string {
	errs := 0
	first := ""
	for _, d := range e.Diagnostics {
		if d.Severity == rules.SeverityError {
			if errs == 0 {
				first = d.String()
			}
			errs++
		}
	}
	if errs == 0 {
		return fmt.Sprintf("policy %s is invalid", e.Key)
	}
	return fmt.Sprintf("policy %s is invalid (%d error%s; first: %s)", e.Key, errs, plural(errs), first)
}

// PolicyReport is what the policy did in one run (Result.Policy).
type PolicyReport struct {
	// Name is the policy in force ("" when none).
	Name string
	// Invalid is set when the policy exists but is invalid: no source was
	// applied in this run.
	Invalid *PolicyError
	// Rejected are the sources the policy made invalid, sorted.
	Rejected []string
	// Violations are the live rules that violate a deny clause (sweeps
	// only), sorted by key.
	Violations []PolicyViolation
	// Refused are the writes the admission check refused: dropped from
	// the plan, never written. In plan order, one per reason.
	Refused []PolicyRefusal
}

// PolicyRefusal is one write the admission check refused, and why.
type PolicyRefusal struct {
	// Action is the write refused: an authorization (declared, or a
	// restore of a rule deleted outside sgrules) or a modification into
	// Action.Key.
	Action Action
	// Owner is the source and rule the refusal is about: the owner a
	// tenant refuses, the first owner for a deny clause.
	Owner rules.Owner
	// Policy is the clause id as written, "tenant PREFIX", or "" when
	// the policy is invalid (nothing is written until it is fixed).
	Policy string
	Reason string
}

// String reads "refused: authorize KEY (CAUSE) for SOURCE rule RULE: REASON".
func (r PolicyRefusal) String() string {
	s := fmt.Sprintf("refused: %s %s (%s)", r.Action.Kind, r.Action.Key, r.Action.Cause)
	if r.Owner.Source != "" {
		s += " for " + r.Owner.Source
		if r.Owner.Rule != "" {
			s += " rule " + r.Owner.Rule
		}
	}
	return s + ": " + r.Reason
}

// Revoked counts the violations this run's plan revokes.
func (r PolicyReport) Revoked() int {
	n := 0
	for _, v := range r.Violations {
		if v.Revoke {
			n++
		}
	}
	return n
}

// PolicyViolation is one live rule that violates the policy.
type PolicyViolation struct {
	Rule    ActualRule
	Clauses []PolicyClause
	// Managed: a source owns the rule (it was applied before the policy
	// changed). It is reported, not revoked, until its file is fixed.
	Managed bool
	// Revoke: the plan revokes the rule (enforce: revoke, unmanaged, not
	// paused, not held back by the blast-radius guard).
	Revoke bool
	// Paused: the group's sgrules:pause-until tag keeps it as it is.
	Paused bool
	// Others are the other deployments that created or claim the rule:
	// it is theirs, reported and never revoked by this one.
	Others []string
}

// policyRun is the policy of one run.
type policyRun struct {
	pol     Policy
	invalid *PolicyError
}

// loadPolicy asks the store for the policy in force (nil: none).
func (e *Engine) loadPolicy(ctx context.Context) (*policyRun, error) {
	if e.cfg.Policy == nil {
		return nil, nil
	}
	pol, err := e.cfg.Policy.Policy(ctx)
	var pe *PolicyError
	switch {
	case errors.As(err, &pe):
		e.log.ErrorContext(ctx, "policy invalid: no rule source is applied until it is fixed",
			"policy", pe.Key, "diagnostics", pe.Diagnostics.Strings())
		return &policyRun{invalid: pe}, nil
	case err != nil:
		return nil, fmt.Errorf("read policy: %w", err)
	case pol == nil:
		return nil, nil
	}
	return &policyRun{pol: pol}, nil
}

// noCache: with a policy in force, a source's outcome depends on the
// policy and on the tags of its groups too, so sweeps read every file.
func (pr *policyRun) noCache() bool { return pr != nil }

// policyGroups adds the groups whose facts the policy needs: those of the
// sources it checks, and in a sweep every group of the live rules read and
// their peer groups.
func (e *Engine) policyGroups(at *attempt, need map[string]bool) {
	pr := at.policy
	if pr == nil || pr.pol == nil {
		return
	}
	addKey := func(k rules.Key) {
		need[k.GroupID] = true
		if k.Peer.Kind == rules.PeerGroup {
			need[k.Peer.Value] = true
		}
	}
	for _, s := range at.srcs {
		if s.status != StatusApplied || s.file == nil {
			continue
		}
		for _, p := range s.desired {
			addKey(p.Key)
		}
		for _, g := range s.exclusive {
			need[g] = true
		}
	}
	if at.req.All {
		for _, a := range at.st.actual {
			if at.st.groups[a.Key.GroupID] {
				addKey(a.Key)
			}
		}
	}
}

// policyVerdicts judges the sources read in this run: a violating source
// is invalid as a whole; with an invalid policy every source is held. It
// reports whether any verdict changed a source.
func (e *Engine) policyVerdicts(at *attempt) bool {
	pr := at.policy
	if pr == nil {
		return false
	}
	changed := false
	idx := at.heldIndex()
	for _, s := range at.srcs {
		if s.status != StatusApplied {
			continue
		}
		if pr.invalid != nil {
			s.status = StatusHeld
			s.message = fmt.Sprintf("not applied: %v; every rule source keeps what it applied until the policy is fixed", pr.invalid)
			s.keepPrevious()
			changed = true
			continue
		}
		if s.file == nil {
			continue // gone, or unchanged since its record (CloudFormation in a sweep)
		}
		facts := at.policyFacts()
		facts.Held = at.heldFor(s, idx)
		diags := pr.pol.CheckSource(PolicySource{Key: s.key, Kind: s.kind, File: s.file,
			Perms: s.desired, Exclusive: s.exclusive, Resolve: s.resolve, Target: e.target(s.file)}, facts)
		if diags.HasErrors() {
			s.reject(diags)
			changed = true
			continue
		}
		s.diags = append(s.diags, diags...)
	}
	return changed
}

// target is the account and region a file's rules are written to: its
// own fields, the empty ones filled from Home (a file reaches this engine
// only when that is its Target), else the engine's Target.
func (e *Engine) target(f *rules.File) rules.Target {
	var t rules.Target
	if f != nil {
		t = f.Target.Resolve(e.cfg.Home)
	}
	if t.Account == "" {
		t.Account = e.cfg.Target.Account
	}
	if t.Region == "" {
		t.Region = e.cfg.Target.Region
	}
	return t
}

// policyRevokes checks the live rules of a sweep against the deny clauses:
// it records the violations and, with enforce: revoke, plans the
// revocation of the unmanaged ones outside paused groups that no other
// deployment created or claims (those are reported: Others) (Loss with no
// source: clean-up, which the blast-radius guard may hold back).
func (e *Engine) policyRevokes(at *attempt, p *planned) {
	pr := at.policy
	if pr == nil {
		return
	}
	p.policy = PolicyReport{Invalid: pr.invalid}
	if pr.pol == nil {
		return
	}
	p.policy.Name = pr.pol.Name()
	for _, s := range at.srcs {
		if s.status == StatusInvalid && slices.ContainsFunc(s.diags, isPolicyDiagnostic) {
			p.policy.Rejected = append(p.policy.Rejected, s.key)
		}
	}
	if !at.req.All {
		return
	}
	owned := map[rules.Key]bool{}
	for _, o := range at.st.owned {
		owned[o.Key] = true
	}
	unmanaged := map[string]bool{}
	for _, u := range p.plan.Unmanaged {
		unmanaged[u.RuleID] = true
	}
	revoking := map[string]bool{}
	for _, a := range p.plan.Actions {
		if a.Kind == ActRevoke {
			revoking[a.RuleID] = true
		}
	}
	now := e.cfg.Now()
	// The live rules to judge, together: those of the groups in scope
	// that stay (not revoked by this plan), managed or unmanaged; the
	// others that stay (another deployment's) are held.
	var judged []ActualRule
	var keys []rules.Key
	facts := at.policyFacts()
	facts.Held = map[string][]rules.Key{}
	for _, a := range at.st.actual {
		if !at.st.groups[a.Key.GroupID] || revoking[a.RuleID] {
			continue
		}
		if !owned[a.Key] && !unmanaged[a.RuleID] {
			facts.Held[a.Key.GroupID] = append(facts.Held[a.Key.GroupID], a.Key)
			continue
		}
		judged = append(judged, a)
		keys = append(keys, a.Key)
	}
	for i, clauses := range pr.pol.CheckRules(keys, facts) {
		a := judged[i]
		if len(clauses) == 0 {
			continue
		}
		v := PolicyViolation{Rule: a, Clauses: clauses, Managed: owned[a.Key], Paused: at.st.paused(a.Key.GroupID, now, e.cfg.MaxPause)}
		if !v.Managed {
			v.Others, _ = at.proof.split(a.RuleID, otherDeployments(a, at.id, e.cfg.LedgerID))
		}
		if !v.Managed && !v.Paused && len(v.Others) == 0 && pr.pol.Revoke() {
			p.plan.Actions = append(p.plan.Actions, Action{Kind: ActRevoke, Cause: CausePolicy, Key: a.Key, RuleID: a.RuleID,
				Description: a.Description, Reason: "violates policy " + clauseNames(clauses), Loss: true})
		}
		p.policy.Violations = append(p.policy.Violations, v)
	}
	SortActions(p.plan.Actions)
}

// admit is the admission check, the one place every write passes right
// before it is planned: each authorization and each modification into a
// permission, whatever caused it (a file, a drift restore, a
// CloudFormation resource, an import), is checked against the policy's
// deny clauses and tenants with the facts of its target at that moment
// (the groups as read in this attempt, this engine's account and region).
// A refused write is dropped from the plan, with its ledger records, and
// reported in PolicyReport.Refused; it is never written. With an invalid
// policy nothing is written; a check that cannot be decided refuses.
func (e *Engine) admit(at *attempt, p *planned) {
	pr := at.policy
	if pr == nil {
		return
	}
	kinds := map[string]SourceKind{}
	for _, s := range at.srcs {
		kinds[s.key] = s.kind
	}
	target := e.target(nil)
	facts := at.policyFacts()
	facts.Held = at.heldAfter(p.plan.Actions)
	refused := map[rules.Key]bool{}
	for _, a := range p.plan.Actions {
		if a.Kind != ActAuthorize && a.Kind != ActModify {
			continue
		}
		var denials []PolicyDenial
		if pr.invalid != nil {
			denials = []PolicyDenial{{Owner: -1, Reason: fmt.Sprintf("not written: %v; nothing is written until it is fixed", pr.invalid)}}
		} else {
			w := PolicyWrite{Key: a.Key, Target: target}
			for _, o := range a.Owners {
				kind, ok := kinds[o.Source]
				if !ok {
					kind = KindFile
				}
				w.Owners = append(w.Owners, PolicyOwner{Owner: o, Kind: kind})
			}
			denials = pr.pol.Admit(w, facts)
		}
		for _, d := range denials {
			// A check that cannot be decided refuses the write too (fail
			// closed): its Reason says what was missing.
			r := PolicyRefusal{Action: a, Policy: d.Policy, Reason: d.Reason}
			switch {
			case d.Owner >= 0 && d.Owner < len(a.Owners):
				r.Owner = a.Owners[d.Owner]
			case len(a.Owners) > 0:
				r.Owner = a.Owners[0]
			}
			p.policy.Refused = append(p.policy.Refused, r)
			refused[a.Key] = true
		}
	}
	if len(refused) == 0 {
		return
	}
	// A rule modified by hand that may not be put back in place is still
	// drift nothing declares: it is revoked, as when the diff plans the
	// revoke and the authorization apart.
	var revokes []Action
	for _, a := range p.plan.Actions {
		if a.Kind == ActModify && a.Cause == CauseDriftModified && refused[a.Key] {
			revokes = append(revokes, Action{Kind: ActRevoke, Cause: CauseDriftModified, Key: a.From, RuleID: a.RuleID,
				Owners: a.Owners, Was: a.Key, Reason: "drift: rule modified outside sgrules (was " + a.Key.String() + "); the policy refuses putting it back"})
		}
	}
	p.diffOutput = dropActions(p.diffOutput, func(a Action) bool {
		return (a.Kind == ActAuthorize || a.Kind == ActModify) && refused[a.Key]
	})
	if len(revokes) > 0 {
		p.plan.Actions = append(p.plan.Actions, revokes...)
		SortActions(p.plan.Actions)
	}
}

// policySettle marks the violations whose revocation survived the other
// verdicts (the blast-radius guard may have held it back) and takes the
// revoked rules out of the unmanaged ones.
func (e *Engine) policySettle(p *planned) {
	if len(p.policy.Violations) == 0 {
		return
	}
	revoked := map[string]bool{}
	for _, a := range p.plan.Actions {
		if a.Cause == CausePolicy {
			revoked[a.RuleID] = true
		}
	}
	for i := range p.policy.Violations {
		p.policy.Violations[i].Revoke = revoked[p.policy.Violations[i].Rule.RuleID]
	}
	p.plan.Unmanaged = slices.DeleteFunc(slices.Clone(p.plan.Unmanaged), func(u ActualRule) bool { return revoked[u.RuleID] })
	slices.SortStableFunc(p.policy.Violations, func(a, b PolicyViolation) int {
		switch {
		case a.Rule.Key.Less(b.Rule.Key):
			return -1
		case b.Rule.Key.Less(a.Rule.Key):
			return 1
		}
		return strings.Compare(a.Rule.RuleID, b.Rule.RuleID)
	})
}

// isPolicyDiagnostic tells a violation of the policy from other errors.
func isPolicyDiagnostic(d rules.Diagnostic) bool {
	return d.Severity == rules.SeverityError && (strings.Contains(d.Msg, "violates policy ") || strings.Contains(d.Msg, "cannot decide policy "))
}

func clauseNames(cs []PolicyClause) string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.Name()
	}
	return strings.Join(names, ", ")
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
