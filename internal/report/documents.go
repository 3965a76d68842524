package report

import (
	"encoding/json"
	"io"
	"sort"
	"strings"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// FormatVersion is the version of the JSON documents; it changes only
// when a field changes meaning or disappears (new fields may be added).
const FormatVersion = 1

// RuleDoc is a rule key spelled out.
type RuleDoc struct {
	GroupID   string `json:"groupId"`
	GroupName string `json:"groupName,omitempty"`
	Direction string `json:"direction"`
	Protocol  string `json:"protocol"`
	FromPort  int32  `json:"fromPort"`
	ToPort    int32  `json:"toPort"`
	PeerKind  string `json:"peerKind"`
	Peer      string `json:"peer"`
	PeerName  string `json:"peerName,omitempty"`
	// PeerAccount is the account of a source group of another account
	// than the rule's group (rules.Peer.Account).
	PeerAccount string `json:"peerAccount,omitempty"`
	// Key is the canonical key text (rules.Key.String).
	Key string `json:"key"`
}

// ActionDoc is one action.
type ActionDoc struct {
	Action string `json:"action"`
	RuleDoc
	RuleID         string   `json:"ruleId,omitempty"`
	Description    string   `json:"description,omitempty"`
	OldDescription string   `json:"oldDescription,omitempty"`
	Owners         []string `json:"owners"`
	Reason         string   `json:"reason"`
	Loss           bool     `json:"loss"`
	Drift          bool     `json:"drift"`
	// From is, for a modify, the rule as it is now (it keeps its id).
	From *RuleDoc `json:"from,omitempty"`
	// Replaces is, in a drift report, the rule as modified outside sgrules
	// (ports, protocol or peer changed in place) that this authorize of the
	// declared rule replaces: the modified rule is revoked.
	Replaces *ReplacedDoc `json:"replaces,omitempty"`
	// ExpiresAt is the deadline (RFC 3339, UTC) of a declared permission,
	// or, for a revoke, the deadline that passed.
	ExpiresAt string `json:"expiresAt,omitempty"`
	// Usage is the traffic evidence of the rule a revoke or a modify
	// changes (--flow-logs; absent without it).
	Usage *UsageEvidenceDoc `json:"usage,omitempty"`
}

// ReplacedDoc is a rule modified outside sgrules.
type ReplacedDoc struct {
	RuleDoc
	RuleID      string `json:"ruleId,omitempty"`
	Description string `json:"description,omitempty"`
}

// ConflictDoc is one conflict.
type ConflictDoc struct {
	RuleDoc
	Descriptions map[string]string `json:"descriptions"`
	Winner       string            `json:"winner"`
}

// UnmanagedDoc is a rule no source declares and sgrules leaves alone.
type UnmanagedDoc struct {
	RuleDoc
	RuleID      string `json:"ruleId"`
	Description string `json:"description,omitempty"`
	// Unproven: the rule carries this deployment's sgrules:ledger tag, but
	// its ledger does not prove it its own (a tag set by hand, a lost
	// ledger); it is left alone.
	Unproven bool `json:"unproven,omitempty"`
	// Deployments are the other deployments that created or claim a rule
	// left alone in an exclusive group.
	Deployments []string `json:"deployments,omitempty"`
}

// SummaryDoc counts the plan.
type SummaryDoc struct {
	Authorize      int `json:"authorize"`
	Modify         int `json:"modify"`
	Update         int `json:"update"`
	Revoke         int `json:"revoke"`
	Adopt          int `json:"adopt"`
	Forget         int `json:"forget"`
	Unmanaged      int `json:"unmanaged"`
	Conflicts      int `json:"conflicts"`
	InvalidSources int `json:"invalidSources"`
	HeldSources    int `json:"heldSources"`
	HeldCleanup    int `json:"heldCleanup"`
}

// PlanDoc is the JSON form of plan and apply. Every list is present
// (empty rather than null) and sorted as the engine sorts it.
type PlanDoc struct {
	FormatVersion int            `json:"formatVersion"`
	Executed      bool           `json:"executed"`
	Changes       bool           `json:"changes"`
	Summary       SummaryDoc     `json:"summary"`
	Actions       []ActionDoc    `json:"actions"`
	Conflicts     []ConflictDoc  `json:"conflicts"`
	Sources       []SourceDoc    `json:"sources"`
	Unmanaged     []UnmanagedDoc `json:"unmanaged"`
	// Quota lists groups the plan leaves over EC2's default rules quota.
	Quota []QuotaDoc `json:"quota,omitempty"`
	// Gone are the rule files that are gone (deleted, or not in the
	// directory planned), as the text plan's first line names them.
	Gone []string `json:"gone,omitempty"`
	// PolicyRefused are the writes the guardrail policy refused
	// (--policy): left out of the plan, never written.
	PolicyRefused []Refusal `json:"policyRefused,omitempty"`
	// UsageRefused are the removals of rules that carried traffic, refused
	// (--flow-logs): the rules are kept.
	UsageRefused []UsageRefusalDoc `json:"usageRefused,omitempty"`
	// ExclusiveConflicts and UnverifiedClaims: as in the drift report.
	ExclusiveConflicts []ExclusiveConflictDoc `json:"exclusiveConflicts,omitempty"`
	UnverifiedClaims   []ClaimDoc             `json:"unverifiedClaims,omitempty"`
}

// QuotaDoc is one group over the default rules quota after the plan.
type QuotaDoc struct {
	GroupID   string `json:"groupId"`
	Direction string `json:"direction"`
	Family    string `json:"family"`
	Rules     int    `json:"rules"`
	Quota     int    `json:"quota"`
}

// DriftDoc is the JSON form of drift.
type DriftDoc struct {
	FormatVersion int  `json:"formatVersion"`
	Reverted      bool `json:"reverted"`
	GroupsChecked int  `json:"groupsChecked"`
	// Drifted has one entry per drifted rule: a rule modified in place is
	// the authorize of the declared rule with Replaces set.
	Drifted       []ActionDoc `json:"drifted"`
	RevertedCount int         `json:"revertedCount"`
	Unmanaged     int         `json:"unmanaged"`
	// Paused maps each paused group to its sgrules:pause-until value.
	Paused  map[string]string `json:"paused"`
	Sources []SourceDoc       `json:"sources"`
	// PolicyViolations are the live rules that violate the guardrail
	// policy (--policy), with what this run did about each.
	PolicyViolations []Violation `json:"policyViolations,omitempty"`
	// PolicyRefused are the writes the guardrail policy refused: not
	// reverted, never written.
	PolicyRefused []Refusal `json:"policyRefused,omitempty"`
	// ExclusiveConflicts and UnverifiedClaims: as in the drift report.
	ExclusiveConflicts []ExclusiveConflictDoc `json:"exclusiveConflicts,omitempty"`
	UnverifiedClaims   []ClaimDoc             `json:"unverifiedClaims,omitempty"`
}

func ruleDoc(k rules.Key, names map[string]string) RuleDoc {
	d := RuleDoc{
		GroupID: k.GroupID, GroupName: names[k.GroupID], Direction: string(k.Direction), Protocol: k.Protocol,
		FromPort: k.FromPort, ToPort: k.ToPort, PeerKind: string(k.Peer.Kind), Peer: k.Peer.Value, PeerAccount: k.Peer.Account, Key: k.String(),
	}
	if k.Peer.Kind == rules.PeerGroup {
		d.PeerName = names[k.Peer.Value]
	}
	return d
}

func actionDocs(as []reconcile.Action, names map[string]string) []ActionDoc {
	out := make([]ActionDoc, 0, len(as))
	for _, a := range as {
		out = append(out, actionDoc(a, names))
	}
	return out
}

func actionDoc(a reconcile.Action, names map[string]string) ActionDoc {
	owners := rules.OwnerStrings(a.Owners)
	d := ActionDoc{Action: string(a.Kind), RuleDoc: ruleDoc(a.Key, names), RuleID: a.RuleID,
		Description: a.Description, OldDescription: a.OldDescription, Owners: owners, Reason: a.Reason,
		Loss: a.Loss, Drift: a.Drift()}
	if a.Kind == reconcile.ActModify {
		from := ruleDoc(a.From, names)
		d.From = &from
	}
	if !a.ExpiresAt.IsZero() {
		d.ExpiresAt = rules.FormatExpiresAt(a.ExpiresAt)
	}
	d.Usage = usageEvidenceDoc(a.Usage)
	return d
}

// driftDocs has one entry per drifted rule (Pair).
func driftDocs(drifted []reconcile.Action, names map[string]string) []ActionDoc {
	items := Pair(drifted)
	out := make([]ActionDoc, 0, len(items))
	for _, d := range items {
		if d.Declared == nil {
			out = append(out, actionDoc(d.Action, names))
			continue
		}
		doc := actionDoc(*d.Declared, names)
		doc.Reason = ModifiedReason(d)
		doc.Replaces = &ReplacedDoc{RuleDoc: ruleDoc(d.Action.Key, names), RuleID: d.Action.RuleID, Description: d.Action.Description}
		out = append(out, doc)
	}
	return out
}

// NewPlanDoc builds the JSON document of a plan or apply result.
func NewPlanDoc(res reconcile.Result, names map[string]string) PlanDoc {
	p := res.Plan
	invalid, held := SourceProblems(res.Sources)
	doc := PlanDoc{
		FormatVersion: FormatVersion,
		Executed:      res.Executed,
		Changes:       len(p.Actions) > 0,
		Summary: SummaryDoc{
			Authorize: p.Count(reconcile.ActAuthorize), Modify: p.Count(reconcile.ActModify), Update: p.Count(reconcile.ActUpdate),
			Revoke: p.Count(reconcile.ActRevoke), Adopt: p.Count(reconcile.ActAdopt), Forget: p.Count(reconcile.ActForget),
			Unmanaged: len(p.Unmanaged), Conflicts: len(p.Conflicts),
			InvalidSources: invalid, HeldSources: held, HeldCleanup: res.HeldCleanup,
		},
		Gone:      res.Gone,
		Actions:   actionDocs(p.Actions, names),
		Conflicts: make([]ConflictDoc, 0, len(p.Conflicts)),
		Sources:   NewSourceDocs(res.Sources),
		Unmanaged: make([]UnmanagedDoc, 0, len(p.Unmanaged)),
	}
	doc.PolicyRefused = Refusals(res)
	doc.UsageRefused = usageRefusalDocs(res, names)
	doc.ExclusiveConflicts, doc.UnverifiedClaims = ExclusiveConflicts(p), UnverifiedClaims(p)
	for _, q := range res.Quota {
		doc.Quota = append(doc.Quota, QuotaDoc{GroupID: q.Group, Direction: string(q.Direction), Family: q.Family, Rules: q.Rules, Quota: rules.QuotaPerGroup})
	}
	for _, c := range p.Conflicts {
		descs := make(map[string]string, len(c.Descriptions))
		for o, d := range c.Descriptions {
			descs[o.String()] = d
		}
		doc.Conflicts = append(doc.Conflicts, ConflictDoc{RuleDoc: ruleDoc(c.Key, names), Descriptions: descs, Winner: c.Winner.String()})
	}
	unproven := map[string]bool{}
	for _, u := range p.Unproven {
		unproven[u.RuleID] = true
	}
	foreign := map[string][]string{}
	for _, f := range p.Foreign {
		foreign[f.Rule.RuleID] = f.Deployments
	}
	for _, u := range p.Unmanaged {
		doc.Unmanaged = append(doc.Unmanaged, UnmanagedDoc{RuleDoc: ruleDoc(u.Key, names), RuleID: u.RuleID, Description: u.Description,
			Unproven: unproven[u.RuleID], Deployments: foreign[u.RuleID]})
	}
	return doc
}

// NewDriftDoc builds the JSON document of a drift report; paused maps
// paused groups to their pause-until value.
func NewDriftDoc(res reconcile.Result, paused map[string]string, reverted bool, names map[string]string) DriftDoc {
	d := res.Drift
	doc := DriftDoc{
		FormatVersion: FormatVersion,
		Reverted:      reverted,
		GroupsChecked: d.GroupsChecked,
		Drifted:       driftDocs(d.Drifted, names),
		RevertedCount: Build(res).Reverted,
		Unmanaged:     d.Unmanaged,
		Paused:        map[string]string{},
		Sources:       NewSourceDocs(res.Sources),
	}
	doc.PolicyViolations = Build(res).Violations
	doc.PolicyRefused = Refusals(res)
	doc.ExclusiveConflicts, doc.UnverifiedClaims = ExclusiveConflicts(res.Plan), UnverifiedClaims(res.Plan)
	for g, until := range paused {
		doc.Paused[g] = until
	}
	for _, g := range d.Paused {
		if _, ok := doc.Paused[g]; !ok {
			doc.Paused[g] = ""
		}
	}
	return doc
}

// DiagnosticDoc is one finding of sgrules validate --output json: every
// field always present.
type DiagnosticDoc struct {
	File     string `json:"file"`
	Line     int    `json:"line"`
	Col      int    `json:"col"`
	Rule     string `json:"rule"`
	Field    string `json:"field"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
	// Policy is the id of the policy clause (or "tenant PREFIX") of a
	// violation ("error") or a skipped check ("notice"), else "".
	Policy string `json:"policy"`
}

// JSON writes v indented, with a trailing newline (map keys sorted by
// encoding/json, so the output is stable).
func JSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// GroupIDs returns every group id a result mentions (targets and peer
// groups), sorted, for one DescribeGroups call that names them.
func GroupIDs(res reconcile.Result) []string {
	set := map[string]bool{}
	add := func(k rules.Key) {
		set[k.GroupID] = true
		if k.Peer.Kind == rules.PeerGroup {
			set[k.Peer.Value] = true
		}
	}
	for _, a := range res.Plan.Actions {
		add(a.Key)
	}
	for _, c := range res.Plan.Conflicts {
		add(c.Key)
	}
	for _, a := range res.Drift.Drifted {
		add(a.Key)
	}
	for _, g := range res.Drift.Paused {
		set[g] = true
	}
	// What the reports print besides actions: a group with a policy
	// violation, a refusal or a quota warning and no action is named too.
	for _, v := range res.Policy.Violations {
		add(v.Rule.Key)
	}
	for _, r := range res.Policy.Refused {
		add(r.Action.Key)
	}
	for _, q := range res.Quota {
		set[q.Group] = true
	}
	out := make([]string, 0, len(set))
	for g := range set {
		out = append(out, g)
	}
	sort.Strings(out)
	return out
}

// SourceProblems counts invalid and held sources.
func SourceProblems(srcs []reconcile.SourceResult) (invalid, held int) {
	for _, s := range srcs {
		switch s.Status {
		case reconcile.StatusInvalid:
			invalid++
		case reconcile.StatusHeld:
			held++
		}
	}
	return invalid, held
}

// ModifiedReason says what was changed in a rule modified in place, in
// the words of a rule file: "drift: rule modified outside sgrules (ports
// tcp 443 -> tcp 8443)".
func ModifiedReason(d Drifted) string {
	was, now := d.Declared.Key, d.Action.Key
	var changes []string
	if Ports(was) != Ports(now) {
		from, to := Ports(was), Ports(now)
		if was.Protocol == now.Protocol {
			from, to = strings.TrimPrefix(from, was.Protocol+" "), strings.TrimPrefix(to, now.Protocol+" ")
		}
		changes = append(changes, "ports "+from+" -> "+to)
	}
	if was.Peer != now.Peer {
		what := "source"
		if was.Direction == rules.Egress {
			what = "destination"
		}
		changes = append(changes, what+" "+PeerText(was.Peer)+" -> "+PeerText(now.Peer))
	}
	if len(changes) == 0 {
		return "drift: rule modified outside sgrules"
	}
	return "drift: rule modified outside sgrules (" + strings.Join(changes, ", ") + ")"
}
