package report

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/strutil"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Namespace is the CloudWatch namespace of sgrules' metrics.
const Namespace = "sgrules"

// Metric names written by EMF (the template's alarms use them).
const (
	MetricDriftDetected   = "DriftDetected"
	MetricDriftReverted   = "DriftReverted"
	MetricUnmanagedRules  = "UnmanagedRules"
	MetricReconcileErrors = "ReconcileErrors"
	// MetricPolicyViolations counts live rules violating a deny clause of
	// the guardrail policy; MetricPolicyInvalid is 1 when the policy
	// exists but is invalid (no rule file is applied).
	MetricPolicyViolations = "PolicyViolations"
	MetricPolicyInvalid    = "PolicyInvalid"
	// MetricOffboardedTargets counts, once per schedule, the targets left
	// alone because their account is no longer a target account.
	MetricOffboardedTargets = "OffboardedTargets"
	// MetricExclusiveConflicts counts the groups this deployment declares
	// exclusive that another deployment declares exclusive too;
	// MetricUnverifiedClaims the rules other deployments claim without
	// proof (docs/reliability.md, Other deployments).
	MetricExclusiveConflicts = "ExclusiveConflicts"
	MetricUnverifiedClaims   = "UnverifiedClaims"
)

// Kind is what was changed outside sgrules.
type Kind string

const (
	// KindDeleted: a managed rule was deleted (re-authorized).
	KindDeleted Kind = "deleted"
	// KindDescription: the description of a managed rule was edited
	// (updated in place).
	KindDescription Kind = "description"
	// KindModified: the ports, protocol or peer of a managed rule were
	// modified (the declared rule is authorized, the modified one revoked).
	KindModified Kind = "modified"
	// KindOrphan: a rule tagged sgrules:managed=true that no source declares
	// (revoked).
	KindOrphan Kind = "orphan"
	// KindExclusive: an undeclared rule in an exclusive group (revoked).
	KindExclusive Kind = "exclusive"
)

// ScopeEveryGroup is the Scope of the reports of a deployment with no
// ManagedGroupTag (MANAGED_GROUP_TAG empty).
const ScopeEveryGroup = "every security group in the account and region: MANAGED_GROUP_TAG (the stack's ManagedGroupTag) is empty, " +
	"so sgrules may change the rules of any group here (in a target account, unless its template-target.yaml stack sets ManagedGroupTag)"

// Missing is the Before of a deleted rule and the After of a revoked one.
const Missing = "missing"

// Change is one rule changed outside sgrules. Before is what EC2 had, After
// what is declared: for KindDescription both are descriptions of Rule; for
// the other kinds they are rules ("tcp 443 from 0.0.0.0/0 \"HTTPS\"",
// RuleText) or Missing.
type Change struct {
	Kind      Kind   `json:"kind"`
	Group     string `json:"group"`
	Direction string `json:"direction"`
	// Rule is the declared rule (the rule EC2 has, for orphans and
	// undeclared rules in exclusive groups).
	Rule string `json:"rule"`
	// RuleID is the EC2 rule id of the changed rule, when it still exists.
	RuleID string   `json:"ruleId,omitempty"`
	Before string   `json:"before"`
	After  string   `json:"after"`
	Owners []string `json:"owners,omitempty"`
	// Reverted is true when this run put the declared state back.
	Reverted bool `json:"reverted"`
	// Paused is true when the group's sgrules:pause-until tag held it back.
	Paused bool `json:"paused,omitempty"`
	// By is who made the change: the caller of the CloudTrail event that
	// named the group (see Report.Attribute); nil when nobody is known.
	By *Actor `json:"by,omitempty"`
}

// Report is the outcome of one drift run (in one target).
type Report struct {
	// Account and Region name the target swept (set by the drift
	// function; empty for a run that knows no target).
	Account string `json:"account,omitempty"`
	Region  string `json:"region,omitempty"`
	// Scope, when set, says which groups the deployment may change:
	// ScopeEveryGroup when MANAGED_GROUP_TAG is empty (set by the drift
	// function on every report).
	Scope         string   `json:"scope,omitempty"`
	GroupsChecked int      `json:"groupsChecked"`
	Drifted       []Change `json:"drifted"`
	// Detected is the number of drifted rules (len(Drifted)): a modified
	// rule counts once, although it takes an authorize and a revoke.
	Detected int `json:"driftDetected"`
	// Reverted is the number of drifted rules this run corrected.
	Reverted int `json:"driftReverted"`
	// Unmanaged counts rules no source declares that are left alone
	// (normal groups).
	Unmanaged int `json:"unmanagedRules"`
	// Paused lists groups with a future sgrules:pause-until tag: nothing in
	// them was changed.
	Paused []string `json:"pausedGroups,omitempty"`
	// PauseTooLong lists groups whose sgrules:pause-until tag is beyond
	// the cap (PAUSE_UNTIL_MAX): not paused, to be fixed.
	PauseTooLong []string `json:"pauseTooLong,omitempty"`
	// HeldCleanup counts exclusive-group or orphan revocations the
	// blast-radius guard held back.
	HeldCleanup int `json:"heldCleanup,omitempty"`
	// ReportOnly is true when drift was found and not corrected
	// (DRIFT_MODE=report).
	ReportOnly bool `json:"reportOnly,omitempty"`
	// Errors is 1 when the run failed (Error says why), else 0.
	Errors int    `json:"reconcileErrors"`
	Error  string `json:"error,omitempty"`
	// Violations are the live rules that violate the guardrail policy.
	Violations []Violation `json:"policyViolations,omitempty"`
	// PolicyInvalid says why the policy is invalid (nothing was applied).
	PolicyInvalid string `json:"policyInvalid,omitempty"`
	// Refused are the writes the guardrail policy refused at admission
	// (a restore of a rule the policy now denies, a rule for another
	// tenant's group): never written.
	Refused []Refusal `json:"policyRefused,omitempty"`
	// FoundBy is what made the run look: FoundByCloudTrail or
	// FoundBySchedule (set by the drift function, see Attribute); Event
	// the CloudTrail event's caller.
	FoundBy string `json:"foundBy,omitempty"`
	Event   *Actor `json:"event,omitempty"`
	// AttributedLate are the drifted rules an earlier run (a scheduled
	// sweep) reverted without knowing who changed them, which this run's
	// CloudTrail event named (their history is completed with By).
	AttributedLate []HistoryEntry `json:"attributedLate,omitempty"`
	// ExclusiveConflicts are the groups this deployment declares
	// exclusive that other deployments declare exclusive too: nothing in
	// them is revoked as exclusive clean-up.
	ExclusiveConflicts []ExclusiveConflictDoc `json:"exclusiveConflicts,omitempty"`
	// UnverifiedClaims are the rules other deployments claim without proof.
	UnverifiedClaims []ClaimDoc `json:"unverifiedClaims,omitempty"`
}

// ExclusiveConflictDoc is a group declared exclusive by this deployment
// and by others (their identities).
type ExclusiveConflictDoc struct {
	GroupID     string   `json:"groupId"`
	Deployments []string `json:"deployments"`
	Message     string   `json:"message"`
}

// ClaimDoc is a rule other deployments claim without proof: honoured
// (no peer ledger can prove it: the rule is left to them) or not (their
// ledgers do not hold it: the claim is ignored).
type ClaimDoc struct {
	Group       string   `json:"group"`
	Direction   string   `json:"direction"`
	Rule        string   `json:"rule"`
	RuleID      string   `json:"ruleId"`
	Deployments []string `json:"deployments"`
	Honoured    bool     `json:"honoured"`
}

// ExclusiveConflicts is the document of a plan's exclusive conflicts.
func ExclusiveConflicts(p reconcile.Plan) []ExclusiveConflictDoc {
	var out []ExclusiveConflictDoc
	for _, c := range p.ExclusiveConflicts {
		out = append(out, ExclusiveConflictDoc{GroupID: c.GroupID, Deployments: c.Deployments, Message: c.String()})
	}
	return out
}

// UnverifiedClaims is the document of a plan's unverified claims.
func UnverifiedClaims(p reconcile.Plan) []ClaimDoc {
	var out []ClaimDoc
	for _, c := range p.UnverifiedClaims {
		k := c.Rule.Key
		out = append(out, ClaimDoc{Group: k.GroupID, Direction: string(k.Direction), Rule: RuleText(k, c.Rule.Description), RuleID: c.Rule.RuleID,
			Deployments: c.Deployments, Honoured: c.Honoured})
	}
	return out
}

// Refusal is one write the guardrail policy refused.
type Refusal struct {
	// Account and Region name the target (set in the reconcile
	// function's response, which lists every target's).
	Account   string `json:"account,omitempty"`
	Region    string `json:"region,omitempty"`
	Group     string `json:"group"`
	Direction string `json:"direction"`
	Rule      string `json:"rule"`
	// Action is the write refused: authorize or modify.
	Action string `json:"action"`
	// Cause is why the plan wanted it (declared, drift-deleted, ...).
	Cause string `json:"cause"`
	// Source and RuleName name the owner the refusal is about.
	Source   string `json:"source,omitempty"`
	RuleName string `json:"ruleName,omitempty"`
	// Policy is the clause id as written or "tenant PREFIX" ("" when the
	// policy is invalid).
	Policy string `json:"policy,omitempty"`
	Reason string `json:"reason"`
	// By is who made the change the refused write would have undone (see
	// Report.Attribute).
	By *Actor `json:"by,omitempty"`
}

// Refusals converts a run's refused writes.
func Refusals(res reconcile.Result) []Refusal {
	var out []Refusal
	for _, r := range res.Policy.Refused {
		k := r.Action.Key
		out = append(out, Refusal{Group: k.GroupID, Direction: string(k.Direction), Rule: RuleText(k, r.Action.Description),
			Action: string(r.Action.Kind), Cause: string(r.Action.Cause), Source: r.Owner.Source, RuleName: r.Owner.Rule,
			Policy: r.Policy, Reason: r.Reason})
	}
	return out
}

// What names the write refused and its owner: "restore for
// rules/ssh.yaml rule r", "authorize for rules/web.yaml rule https".
func (r Refusal) What() string {
	what := r.Action
	if r.Cause == string(reconcile.CauseDriftDeleted) || r.Cause == string(reconcile.CauseDriftModified) {
		what = "restore"
	}
	if r.Source != "" {
		what += " for " + r.Source
		if r.RuleName != "" {
			what += " rule " + r.RuleName
		}
	}
	return what
}

// Text renders the refusal for people: "sg-1 ingress: tcp 22 from
// 0.0.0.0/0 (restore for rules/ssh.yaml rule r) not written: violates ...".
func (r Refusal) Text() string {
	s := fmt.Sprintf("%s %s: %s (%s) not written: %s", r.Group, r.Direction, r.Rule, r.What(), r.Reason)
	if r.By != nil {
		s += "; changed by " + r.By.Principal
	}
	return s
}

// Violation is one live rule that violates a deny clause.
type Violation struct {
	Group     string `json:"group"`
	Direction string `json:"direction"`
	Rule      string `json:"rule"`
	RuleID    string `json:"ruleId"`
	// Policies are the clause ids, upper-cased; Message the first clause's.
	Policies []string `json:"policies"`
	Message  string   `json:"message,omitempty"`
	// Action is what this run does: revoked (or "would revoke" in a dry
	// run), reported (enforce: report), managed (a source owns it: fix the
	// file), paused, or another deployment's (left to it).
	Action string `json:"action"`
	// Deployments are the other sgrules deployments that created or
	// claim the rule (Action "another deployment's").
	Deployments []string `json:"deployments,omitempty"`
}

// Actions of a violation.
const (
	ViolationRevoked     = "revoked"
	ViolationWouldRevoke = "would revoke"
	ViolationReported    = "reported"
	ViolationManaged     = "managed"
	ViolationPaused      = "paused"
	ViolationOther       = "another deployment's"
)

func violations(res reconcile.Result) []Violation {
	var out []Violation
	for _, v := range res.Policy.Violations {
		k := v.Rule.Key
		x := Violation{Group: k.GroupID, Direction: string(k.Direction), Rule: RuleText(k, v.Rule.Description), RuleID: v.Rule.RuleID}
		for _, c := range v.Clauses {
			x.Policies = append(x.Policies, c.Name())
		}
		if len(v.Clauses) > 0 {
			x.Message = v.Clauses[0].Message
		}
		switch {
		case v.Revoke && res.Executed:
			x.Action = ViolationRevoked
		case v.Revoke:
			x.Action = ViolationWouldRevoke
		case v.Managed:
			x.Action = ViolationManaged
		case v.Paused:
			x.Action = ViolationPaused
		case len(v.Others) > 0:
			x.Action, x.Deployments = ViolationOther, v.Others
		default:
			x.Action = ViolationReported
		}
		out = append(out, x)
	}
	return out
}

// PolicyInvalidEMF is the embedded metric format line of a run that found
// the policy invalid (the reconcile function writes it; the drift
// function's report line carries the same metric).
func PolicyInvalidEMF(now time.Time) []byte {
	line, _ := json.Marshal(map[string]any{
		"_aws": map[string]any{"Timestamp": now.UnixMilli(), "CloudWatchMetrics": []any{map[string]any{
			"Namespace": Namespace, "Dimensions": [][]string{{}},
			"Metrics": []any{map[string]string{"Name": MetricPolicyInvalid, "Unit": "Count"}},
		}}},
		MetricPolicyInvalid: 1,
	})
	return append(line, '\n')
}

// OffboardedEMF is the embedded metric format line of a schedule that
// left n offboarded targets alone.
func OffboardedEMF(now time.Time, n int) []byte {
	line, _ := json.Marshal(map[string]any{
		"_aws": map[string]any{"Timestamp": now.UnixMilli(), "CloudWatchMetrics": []any{map[string]any{
			"Namespace": Namespace, "Dimensions": [][]string{{}},
			"Metrics": []any{map[string]string{"Name": MetricOffboardedTargets, "Unit": "Count"}},
		}}},
		MetricOffboardedTargets: n,
	})
	return append(line, '\n')
}

// Build makes the report of a run's result.
func Build(res reconcile.Result) Report {
	r := Report{
		GroupsChecked: res.Drift.GroupsChecked,
		Unmanaged:     res.Drift.Unmanaged,
		Paused:        res.Drift.Paused,
		PauseTooLong:  res.Drift.PauseTooLong,
		HeldCleanup:   res.HeldCleanup,
		Drifted:       []Change{},
	}
	for _, d := range Pair(res.Drift.Drifted) {
		a := d.Action
		c := Change{Group: a.Key.GroupID, Direction: string(a.Key.Direction), RuleID: a.RuleID, Owners: rules.OwnerStrings(a.Owners),
			Reverted: res.Executed && !a.Paused, Paused: a.Paused}
		switch a.Cause {
		case reconcile.CauseDriftDeleted:
			c.Kind, c.Rule, c.Before, c.After = KindDeleted, RuleText(a.Key, a.Description), Missing, RuleText(a.Key, a.Description)
		case reconcile.CauseDriftDescription:
			c.Kind, c.Rule, c.Before, c.After = KindDescription, RuleText(a.Key, ""), a.OldDescription, a.Description
		case reconcile.CauseDriftModified:
			c.Kind, c.Before, c.After = KindModified, RuleText(a.Key, ""), Missing
			c.Rule = c.Before
			if d.Declared != nil {
				c.Rule = RuleText(d.Declared.Key, d.Declared.Description)
				c.After = c.Rule
			}
		case reconcile.CauseExclusive:
			c.Kind, c.Rule, c.After = KindExclusive, RuleText(a.Key, a.Description), Missing
			c.Before = c.Rule
		case reconcile.CauseOrphan:
			c.Kind, c.Rule, c.After = KindOrphan, RuleText(a.Key, a.Description), Missing
			c.Before = c.Rule
		default:
			continue
		}
		r.Drifted = append(r.Drifted, c)
	}
	r.Detected = len(r.Drifted)
	for _, c := range r.Drifted {
		if c.Reverted {
			r.Reverted++
		}
	}
	r.ReportOnly = r.Detected > 0 && !res.Executed
	r.Violations = violations(res)
	r.Refused = Refusals(res)
	r.ExclusiveConflicts = ExclusiveConflicts(res.Plan)
	r.UnverifiedClaims = UnverifiedClaims(res.Plan)
	if res.Policy.Invalid != nil {
		r.PolicyInvalid = res.Policy.Invalid.Error()
	}
	return r
}

// Drifted is one rule changed outside sgrules and what corrects it.
type Drifted struct {
	// Action corrects the rule: the authorize of a deleted rule, the
	// update of an edited description, the revoke of an orphan, of an
	// undeclared rule in an exclusive group, or of a rule modified in place
	// (ports, protocol or peer changed with ModifySecurityGroupRules).
	Action reconcile.Action
	// Declared is, for a modified rule, the authorize of the rule as
	// declared, which replaces the modified one; else nil.
	Declared *reconcile.Action
}

// Pair turns a run's drift corrections (reconcile.DriftReport.Drifted)
// into one item per drifted rule: a modified rule takes the authorize of
// the declared rule and the revoke of the modified one, and Pair puts the
// two in one item (at the revoke's place). Every report of drift (this
// package's, the CLI's) counts and shows drift through Pair.
func Pair(drifted []reconcile.Action) []Drifted {
	paired := map[int]bool{}
	declared := map[int]int{} // revoke index → authorize index
	for i, a := range drifted {
		if a.Cause != reconcile.CauseDriftModified {
			continue
		}
		for j, b := range drifted {
			if b.Kind == reconcile.ActAuthorize && !paired[j] && b.Key == a.Was {
				paired[j] = true
				declared[i] = j
				break
			}
		}
	}
	out := make([]Drifted, 0, len(drifted)-len(paired))
	for i, a := range drifted {
		if paired[i] {
			continue
		}
		if a.Kind == reconcile.ActModify {
			// Put back in place: Action is the rule as EC2 has it now,
			// Declared what it is put back to.
			decl := a
			now := reconcile.Action{Kind: reconcile.ActRevoke, Cause: a.Cause, Key: a.From, RuleID: a.RuleID,
				Description: a.OldDescription, Owners: a.Owners, Paused: a.Paused}
			out = append(out, Drifted{Action: now, Declared: &decl})
			continue
		}
		d := Drifted{Action: a}
		if j, ok := declared[i]; ok {
			b := drifted[j]
			d.Declared = &b
		}
		out = append(out, d)
	}
	return out
}

// Count is the number of drifted rules of a result (Build(res).Detected):
// the drift function's DriftDetected.
func Count(res reconcile.Result) int { return Build(res).Detected }

// WithError marks the report of a failed run.
func (r Report) WithError(err error) Report {
	if err != nil {
		r.Errors, r.Error = 1, err.Error()
	}
	return r
}

// EMF returns one CloudWatch embedded metric format line (with its
// newline): DriftDetected, DriftReverted, UnmanagedRules, ReconcileErrors,
// PolicyViolations, PolicyInvalid, ExclusiveConflicts and
// UnverifiedClaims in the sgrules namespace, without
// dimensions (what the template's alarms read) and, for a report of a
// target, also with the dimensions Account and Region.
func (r Report) EMF(now time.Time) []byte {
	type metric struct {
		Name string `json:"Name"`
		Unit string `json:"Unit"`
	}
	type directive struct {
		Namespace  string     `json:"Namespace"`
		Dimensions [][]string `json:"Dimensions"`
		Metrics    []metric   `json:"Metrics"`
	}
	type aws struct {
		Timestamp         int64       `json:"Timestamp"`
		CloudWatchMetrics []directive `json:"CloudWatchMetrics"`
	}
	dims := [][]string{{}}
	if r.Account != "" || r.Region != "" {
		dims = append(dims, []string{"Account", "Region"})
	}
	line, _ := json.Marshal(struct {
		AWS             aws    `json:"_aws"`
		Account         string `json:"Account,omitempty"`
		Region          string `json:"Region,omitempty"`
		DriftDetected   int    `json:"DriftDetected"`
		DriftReverted   int    `json:"DriftReverted"`
		UnmanagedRules  int    `json:"UnmanagedRules"`
		ReconcileErrors int    `json:"ReconcileErrors"`
		Violations      int    `json:"PolicyViolations"`
		PolicyInvalid   int    `json:"PolicyInvalid"`
		Exclusive       int    `json:"ExclusiveConflicts"`
		Claims          int    `json:"UnverifiedClaims"`
	}{
		AWS: aws{Timestamp: now.UnixMilli(), CloudWatchMetrics: []directive{{
			Namespace:  Namespace,
			Dimensions: dims,
			Metrics: []metric{
				{MetricDriftDetected, "Count"}, {MetricDriftReverted, "Count"},
				{MetricUnmanagedRules, "Count"}, {MetricReconcileErrors, "Count"},
				{MetricPolicyViolations, "Count"}, {MetricPolicyInvalid, "Count"},
				{MetricExclusiveConflicts, "Count"}, {MetricUnverifiedClaims, "Count"},
			},
		}}},
		Account: r.Account, Region: r.Region,
		DriftDetected: r.Detected, DriftReverted: r.Reverted, UnmanagedRules: r.Unmanaged, ReconcileErrors: r.Errors,
		Violations: len(r.Violations), PolicyInvalid: min(len(r.PolicyInvalid), 1),
		Exclusive: len(r.ExclusiveConflicts), Claims: len(r.UnverifiedClaims),
	})
	return append(line, '\n')
}

// Subject is a one-line title for an alert (at most 100 ASCII characters,
// as SNS requires of e-mail subjects).
func (r Report) Subject() string {
	if r.Detected == 0 && len(r.Violations) > 0 {
		verb := "violate"
		if len(r.Violations) == 1 {
			verb = "violates"
		}
		return fmt.Sprintf("sgrules: %d security group %s %s the guardrail policy", len(r.Violations), strutil.Plural(len(r.Violations), "rule"), verb)
	}
	if r.Detected == 0 && len(r.Refused) > 0 {
		return fmt.Sprintf("sgrules: %d security group %s refused by the guardrail policy (not written)", len(r.Refused), strutil.Plural(len(r.Refused), "rule"))
	}
	verb := "reverted"
	if r.ReportOnly {
		verb = "found, not reverted"
	}
	subject := fmt.Sprintf("sgrules: %d security group %s changed outside sgrules (%s)", r.Detected, strutil.Plural(r.Detected, "rule"), verb)
	if by := r.by(); by != "" && len(subject)+len(by)+4 <= 100 {
		subject = strings.Replace(subject, " changed outside sgrules", " changed outside sgrules by "+by, 1)
	}
	return subject
}

// by is the name of the one actor every drifted rule is attributed to
// ("alice"), else "".
func (r Report) by() string {
	name := ""
	for _, c := range r.Drifted {
		if c.By == nil || (name != "" && c.By.Name() != name) {
			return ""
		}
		name = c.By.Name()
	}
	return name
}

// Summary renders the report for people: a headline, one line per drifted
// rule, then what was left alone.
func (r Report) Summary() string {
	var b strings.Builder
	switch {
	case r.Errors > 0:
		fmt.Fprintf(&b, "Drift sweep failed: %s\n", r.Error)
	case r.Detected == 0 && len(r.Violations) > 0:
		fmt.Fprintf(&b, "No drift in %d %s checked; %d %s violate the guardrail policy.\n",
			r.GroupsChecked, strutil.Plural(r.GroupsChecked, "group"), len(r.Violations), strutil.Plural(len(r.Violations), "rule"))
	case r.Detected == 0 && len(r.Refused) > 0:
		fmt.Fprintf(&b, "%d %s checked; %d %s not written: refused by the guardrail policy.\n",
			r.GroupsChecked, strutil.Plural(r.GroupsChecked, "group"), len(r.Refused), strutil.Plural(len(r.Refused), "rule"))
	case r.Detected == 0:
		fmt.Fprintf(&b, "No drift in %d %s checked.\n", r.GroupsChecked, strutil.Plural(r.GroupsChecked, "group"))
	case r.ReportOnly:
		fmt.Fprintf(&b, "%d %s changed outside sgrules in %d %s checked. Report mode (DRIFT_MODE=report): nothing was changed.\n",
			r.Detected, strutil.Plural(r.Detected, "rule"), r.GroupsChecked, strutil.Plural(r.GroupsChecked, "group"))
	default:
		fmt.Fprintf(&b, "%d %s changed outside sgrules in %d %s checked; %d reverted.\n",
			r.Detected, strutil.Plural(r.Detected, "rule"), r.GroupsChecked, strutil.Plural(r.GroupsChecked, "group"), r.Reverted)
	}
	r.writeDrifted(&b)
	if r.PolicyInvalid != "" {
		fmt.Fprintf(&b, "The guardrail policy is invalid, no rule file was applied: %s\n", r.PolicyInvalid)
	}
	if len(r.Violations) > 0 {
		fmt.Fprintf(&b, "Policy violations:\n")
		for _, v := range r.Violations {
			fmt.Fprintf(&b, "- %s %s: %s violates policy %s", v.Group, v.Direction, v.Rule, strings.Join(v.Policies, ", "))
			if v.Message != "" {
				fmt.Fprintf(&b, ": %s", v.Message)
			}
			fmt.Fprintf(&b, " (%s)\n", v.text())
		}
	}
	if len(r.Refused) > 0 {
		fmt.Fprintf(&b, "Refused by the guardrail policy, not written:\n")
		for _, x := range r.Refused {
			fmt.Fprintf(&b, "- %s\n", x.Text())
		}
	}
	if r.Unmanaged > 0 {
		fmt.Fprintf(&b, "%d unmanaged %s left alone (no source declares them; not in an exclusive group).\n", r.Unmanaged, strutil.Plural(r.Unmanaged, "rule"))
	}
	if len(r.Paused) > 0 {
		fmt.Fprintf(&b, "Paused (sgrules:pause-until), left unchanged: %s.\n", strings.Join(r.Paused, ", "))
	}
	if r.HeldCleanup > 0 {
		fmt.Fprintf(&b, "%d %s held by the blast-radius guard (MAX_REVOKE).\n", r.HeldCleanup, strutil.Plural(r.HeldCleanup, "revocation"))
	}
	return b.String()
}

func (v Violation) text() string {
	switch v.Action {
	case ViolationManaged:
		return "managed: kept until its rule file is fixed"
	case ViolationPaused:
		return "group paused: left alone"
	case ViolationOther:
		return "created or claimed by sgrules deployment " + strings.Join(v.Deployments, ", ") + ": left to it"
	case ViolationReported:
		return "reported; enforce: revoke would revoke it"
	}
	return v.Action
}

// Grouped is the alert of a run over several targets: a subject over all
// of them and, per target with drift or an error, its heading
// ("account 111122223333, region eu-west-1") and its Summary.
func Grouped(reps []Report) (subject, message string) {
	if len(reps) == 1 {
		return reps[0].Subject(), reps[0].Summary()
	}
	total := Report{}
	var b strings.Builder
	n := 0
	for _, r := range reps {
		total.Detected += r.Detected
		total.ReportOnly = total.ReportOnly || r.ReportOnly
		if r.Detected == 0 && r.Errors == 0 {
			continue
		}
		n++
		fmt.Fprintf(&b, "== account %s, region %s ==\n%s\n", r.Account, r.Region, r.Summary())
	}
	subject = total.Subject()
	if suffix := fmt.Sprintf(" in %d %s", n, strutil.Plural(n, "target")); len(subject)+len(suffix) <= 100 {
		subject = strings.Replace(subject, " changed outside sgrules", " changed outside sgrules"+suffix, 1)
	}
	return subject, b.String()
}

func (c Change) text() string {
	switch c.Kind {
	case KindDeleted:
		return "deleted " + c.Rule
	case KindDescription:
		return fmt.Sprintf("description of %s edited: %q, declared %q", c.Rule, c.Before, c.After)
	case KindModified:
		return fmt.Sprintf("modified to %s, declared %s", c.Before, c.After)
	case KindOrphan:
		return "rule created by sgrules that no source declares: " + c.Rule
	case KindExclusive:
		return "undeclared rule in exclusive group: " + c.Rule
	}
	return string(c.Kind) + " " + c.Rule
}
