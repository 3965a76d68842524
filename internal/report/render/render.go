package render

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/internal/strutil"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Options control the text renderers.
type Options struct {
	// Color adds ANSI colours (only on a terminal, without NO_COLOR).
	Color bool
	// Names maps group ids to a readable name (Name tag or group name),
	// shown next to the id when known.
	Names map[string]string
	// Past renders what was done (apply, drift --revert) rather than what
	// would be done.
	Past bool
	// Now is the time deadlines are measured from ("expires in 7 h 58
	// min"); zero shows them as times (Expiry).
	Now time.Time
	// usageSince is the traffic evidence's window start (Plan sets it).
	usageSince time.Time
}

// ANSI escapes.
const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiDim    = "\x1b[2m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
)

func (o Options) paint(code, s string) string {
	if !o.Color || s == "" {
		return s
	}
	return code + s + ansiReset
}

// Symbol is the one-character marker of an action kind, as in terraform:
// + authorize, - revoke, ~ modify or update, = adopt, x forget, > release
// (let go to another deployment).
func Symbol(k reconcile.ActionKind) string {
	switch k {
	case reconcile.ActAuthorize:
		return "+"
	case reconcile.ActRevoke:
		return "-"
	case reconcile.ActUpdate, reconcile.ActModify:
		return "~"
	case reconcile.ActAdopt:
		return "="
	case reconcile.ActForget:
		return "x"
	case reconcile.ActRelease:
		return ">"
	}
	return "?"
}

func (o Options) symbol(k reconcile.ActionKind) string {
	s := Symbol(k)
	switch k {
	case reconcile.ActAuthorize:
		return o.paint(ansiGreen, s)
	case reconcile.ActRevoke:
		return o.paint(ansiRed, s)
	case reconcile.ActUpdate, reconcile.ActModify:
		return o.paint(ansiYellow, s)
	case reconcile.ActAdopt:
		return o.paint(ansiCyan, s)
	}
	return o.paint(ansiDim, s)
}

// Group renders a group id with its name when known: "sg-0abc (web)".
func (o Options) Group(id string) string {
	if n := o.Names[id]; n != "" && n != id {
		return id + " (" + n + ")"
	}
	return id
}

// Peer renders the peer with its preposition: "from 10.0.0.0/8",
// "to sg-0abc (db)", "from pl-0abc".
func (o Options) Peer(k rules.Key) string {
	prep := "from"
	if k.Direction == rules.Egress {
		prep = "to"
	}
	return prep + " " + o.PeerValue(k.Peer)
}

// PeerValue renders a peer without preposition: "10.0.0.0/8",
// "sg-0abc (db)", "111122223333/sg-0abc" (a group of another account).
func (o Options) PeerValue(p rules.Peer) string {
	if p.Kind != rules.PeerGroup {
		return p.Value
	}
	if p.Account != "" {
		return p.Account + "/" + o.Group(p.Value)
	}
	return o.Group(p.Value)
}

// Rule renders a key without its group: "ingress tcp 443 from 0.0.0.0/0".
func (o Options) Rule(k rules.Key) string {
	return string(k.Direction) + " " + report.Ports(k) + " " + o.Peer(k)
}

// actionLine is "+ ingress tcp 443 from 0.0.0.0/0 "HTTPS"" (without indent).
func (o Options) actionLine(a reconcile.Action) string {
	line := o.symbol(a.Kind) + " " + o.Rule(a.Key)
	switch a.Kind {
	case reconcile.ActUpdate:
		line += " description " + strconv.Quote(a.OldDescription) + " -> " + strconv.Quote(a.Description)
	case reconcile.ActModify:
		// One rule changed in place: "~ ingress tcp 80 from 10.0.0.0/8 -> tcp 8080 from 10.0.0.0/8".
		line = o.symbol(a.Kind) + " " + o.Rule(a.From) + " -> " + report.Ports(a.Key) + " " + o.Peer(a.Key)
		if a.OldDescription != a.Description {
			line += " description " + strconv.Quote(a.OldDescription) + " -> " + strconv.Quote(a.Description)
		} else if a.Description != "" {
			line += " " + strconv.Quote(a.Description)
		}
	default:
		if a.Description != "" {
			line += " " + strconv.Quote(a.Description)
		}
	}
	return line
}

// AdoptNote is the comment under every adoption in a plan.
const AdoptNote = "existing rule, now managed: removing it from the files revokes it"

// note is the comment under an action: why, who owns it, which rule id.
func (o Options) note(a reconcile.Action) string {
	parts := []string{a.Reason}
	if a.Kind == reconcile.ActAdopt {
		// Declaring a rule that exists hands it over to sgrules (import
		// does this for every rule): say so where it happens.
		parts = []string{AdoptNote}
		if len(a.Owners) > 0 {
			parts = append(parts, "declared by "+joinOwners(a.Owners))
		}
	}
	if len(a.Owners) > 0 && !strings.Contains(strings.Join(parts, "; "), a.Owners[0].String()) {
		parts = append(parts, "owners: "+joinOwners(a.Owners))
	}
	if a.RuleID != "" {
		parts = append(parts, "rule "+a.RuleID)
	}
	if exp := Expiry(a, o.Now); exp != "" {
		parts = append(parts, exp)
	}
	if u := UsageNote(a.Usage, o.usageSince, o.Now); u != "" {
		parts = append(parts, u)
	}
	return o.paint(ansiDim, "# "+strings.Join(parts, "; "))
}

// byGroup splits sorted actions into runs of one group, keeping order.
func byGroup(as []reconcile.Action) [][]reconcile.Action {
	var out [][]reconcile.Action
	for _, a := range as {
		if n := len(out); n > 0 && out[n-1][0].Key.GroupID == a.Key.GroupID {
			out[n-1] = append(out[n-1], a)
			continue
		}
		out = append(out, []reconcile.Action{a})
	}
	return out
}

// Plan writes the plan (or, with Past, what apply did): actions per
// group, conflicts, sources not applied, and a summary line.
func Plan(w io.Writer, res reconcile.Result, o Options) {
	p := res.Plan
	o.usageSince = res.Usage.Since
	GoneFiles(w, res.Gone, o)
	if len(p.Actions) > 0 {
		if o.Past {
			fmt.Fprintln(w, "sgrules made these changes:")
		} else {
			fmt.Fprintln(w, "sgrules will make these changes:")
		}
		fmt.Fprintf(w, "  %s authorize  %s revoke  %s modify in place or update description  %s adopt existing rule (now managed)  %s forget (ledger only)\n",
			o.symbol(reconcile.ActAuthorize), o.symbol(reconcile.ActRevoke), o.symbol(reconcile.ActUpdate),
			o.symbol(reconcile.ActAdopt), o.symbol(reconcile.ActForget))
		for _, run := range byGroup(p.Actions) {
			fmt.Fprintln(w)
			fmt.Fprintln(w, o.paint(ansiBold, o.Group(run[0].Key.GroupID)))
			for _, a := range run {
				fmt.Fprintln(w, "  "+o.actionLine(a))
				fmt.Fprintln(w, "      "+o.note(a))
			}
		}
		fmt.Fprintln(w)
	}
	Conflicts(w, p.Conflicts, o)
	QuotaWarnings(w, res.Quota, o)
	PolicyViolations(w, res, o)
	UsageRefusals(w, res, o)
	Sources(w, res.Sources, o)
	fmt.Fprintln(w, Summary(res, o.Past))
}

// GoneFiles heads the plan with the rule files that are gone (deleted, or
// not in the directory planned): a wrong directory is seen before the
// list of revocations.
func GoneFiles(w io.Writer, gone []string, o Options) {
	if len(gone) == 0 {
		return
	}
	const show = 10
	names := strings.Join(gone[:min(len(gone), show)], ", ")
	if len(gone) > show {
		names += fmt.Sprintf(" and %d more", len(gone)-show)
	}
	verb := "are revoked"
	if o.Past {
		verb = "were revoked"
	}
	fmt.Fprintf(w, "%s (%d): %s; their rules %s unless held below.\n\n",
		o.paint(ansiYellow, "Rule files gone"), len(gone), names, verb)
}

// Conflicts writes the permissions declared with different descriptions.
func Conflicts(w io.Writer, cs []reconcile.Conflict, o Options) {
	if len(cs) == 0 {
		return
	}
	fmt.Fprintln(w, o.paint(ansiYellow, "Conflicts")+" (declared by several rules with different descriptions; the first owner's wins):")
	for _, c := range cs {
		fmt.Fprintf(w, "  %s in %s\n", o.Rule(c.Key), o.Group(c.Key.GroupID))
		owners := make([]rules.Owner, 0, len(c.Descriptions))
		for k := range c.Descriptions {
			owners = append(owners, k)
		}
		sort.Slice(owners, func(i, j int) bool { return owners[i].Less(owners[j]) })
		for _, owner := range owners {
			mark := ""
			if owner == c.Winner {
				mark = "  (wins)"
			}
			fmt.Fprintf(w, "    %s: %s%s\n", owner.String(), strconv.Quote(c.Descriptions[owner]), mark)
		}
	}
	fmt.Fprintln(w)
}

// Sources writes the sources that were not applied (invalid, held, or a
// move pending out of this target) with their diagnostics, and the
// warnings of the others.
func Sources(w io.Writer, srcs []reconcile.SourceResult, o Options) {
	var bad, warned []reconcile.SourceResult
	for _, s := range srcs {
		switch {
		case s.Status == reconcile.StatusInvalid || s.Status == reconcile.StatusHeld || s.Status == reconcile.StatusPending:
			bad = append(bad, s)
		case len(s.Diagnostics) > 0:
			warned = append(warned, s)
		}
	}
	if len(bad) > 0 {
		fmt.Fprintln(w, o.paint(ansiRed, "Sources not applied")+" (their previous rules are kept):")
		for _, s := range bad {
			line := "  " + s.Key + ": " + string(s.Status)
			if s.Message != "" {
				line += ": " + s.Message
			}
			fmt.Fprintln(w, line)
			for _, d := range s.Diagnostics {
				fmt.Fprintln(w, "    "+d.String())
			}
			for _, d := range s.Recorded {
				fmt.Fprintln(w, "    "+d)
			}
			switch {
			case s.Guard != nil && s.Guard.Owned > 0:
				fmt.Fprintln(w, "    if this is intended, run again with --allow-mass-revoke (is this the right directory or prefix?)")
			case s.Guard != nil:
				fmt.Fprintln(w, "    if this is intended, run again with --allow-mass-revoke (or raise --max-revoke)")
			}
		}
		fmt.Fprintln(w)
	}
	if len(warned) > 0 {
		fmt.Fprintln(w, o.paint(ansiYellow, "Warnings")+":")
		for _, s := range warned {
			for _, d := range s.Diagnostics {
				fmt.Fprintln(w, "  "+d.String())
			}
		}
		fmt.Fprintln(w)
	}
}

// Summary is the last line: "Plan: 3 to authorize, 1 to update, 2 to
// revoke, 1 to adopt. 4 unmanaged rules left alone." (past tense with
// past: "Applied: 3 authorized, …").
func Summary(res reconcile.Result, past bool) string {
	p := res.Plan
	var b strings.Builder
	type count struct {
		kind          reconcile.ActionKind
		future, pastT string
	}
	counts := []count{
		{reconcile.ActAuthorize, "to authorize", "authorized"},
		{reconcile.ActUpdate, "to update", "updated"},
		{reconcile.ActRevoke, "to revoke", "revoked"},
		{reconcile.ActAdopt, "to adopt", "adopted"},
	}
	if p.Count(reconcile.ActModify) > 0 {
		counts = append(counts[:1], append([]count{{reconcile.ActModify, "to modify in place", "modified in place"}}, counts[1:]...)...)
	}
	if p.Count(reconcile.ActForget) > 0 {
		counts = append(counts, count{reconcile.ActForget, "to forget", "forgotten"})
	}
	if p.Count(reconcile.ActRelease) > 0 {
		counts = append(counts, count{reconcile.ActRelease, "to let go to another deployment", "let go to another deployment"})
	}
	invalid, held := report.SourceProblems(res.Sources)
	pending := PendingMoves(res.Sources)
	switch {
	case len(p.Actions) == 0 && invalid+held+pending == 0:
		b.WriteString("No changes: the security groups match the rule files.")
	case len(p.Actions) == 0:
		b.WriteString("No changes.")
	default:
		if past {
			b.WriteString("Applied: ")
		} else {
			b.WriteString("Plan: ")
		}
		for i, c := range counts {
			if i > 0 {
				b.WriteString(", ")
			}
			word := c.future
			if past {
				word = c.pastT
			}
			fmt.Fprintf(&b, "%d %s", p.Count(c.kind), word)
		}
		b.WriteString(".")
	}
	if n := len(p.Unmanaged); n > 0 {
		fmt.Fprintf(&b, " %d unmanaged %s left alone.", n, strutil.Plural(n, "rule"))
	}
	if n := len(p.Unproven); n > 0 {
		fmt.Fprintf(&b, " Unproven (this deployment's sgrules:ledger tag, not in its ledger; left alone): %d.", n)
	}
	if n := len(p.Foreign); n > 0 {
		fmt.Fprintf(&b, " %d %s of other deployments left alone in exclusive groups.", n, strutil.Plural(n, "rule"))
	}
	for _, c := range p.ExclusiveConflicts {
		fmt.Fprintf(&b, " Error: %s.", c)
	}
	if res.HeldCleanup > 0 {
		fmt.Fprintf(&b, " %d clean-up %s held by the blast-radius guard.", res.HeldCleanup, strutil.Plural(res.HeldCleanup, "revocation"))
	}
	if invalid > 0 {
		fmt.Fprintf(&b, " %d %s invalid.", invalid, strutil.Plural(invalid, "source"))
	}
	if held > 0 {
		fmt.Fprintf(&b, " %d %s held.", held, strutil.Plural(held, "source"))
	}
	if pending > 0 {
		fmt.Fprintf(&b, " %d %s to another target pending (their rules are kept here).", pending, strutil.Plural(pending, "move"))
	}
	if n := len(res.Usage.Refused); n > 0 {
		fmt.Fprintf(&b, " %d %s refused: the rules carried traffic (kept).", n, strutil.Plural(n, "removal"))
	}
	return b.String()
}

// PendingMoves counts the sources whose move out of this target waits for
// the new target to accept them.
func PendingMoves(srcs []reconcile.SourceResult) int {
	n := 0
	for _, s := range srcs {
		if s.Status == reconcile.StatusPending {
			n++
		}
	}
	return n
}

// Drift writes the drift report: each drifted rule with before and after,
// paused groups, the unmanaged count. paused maps a paused group to its
// sgrules:pause-until value (may be empty).
func Drift(w io.Writer, res reconcile.Result, paused map[string]string, o Options) {
	d := res.Drift
	if len(d.Drifted) > 0 {
		pausedN := 0
		for _, a := range d.Drifted {
			if a.Paused {
				pausedN++
			}
		}
		switch {
		case o.Past && pausedN == 0:
			fmt.Fprintln(w, "Drift found and reverted:")
		case o.Past && pausedN == len(d.Drifted):
			fmt.Fprintln(w, "Drift found in paused groups (reported, not reverted):")
		case o.Past:
			fmt.Fprintln(w, "Drift found and reverted, except in paused groups (reported, not reverted):")
		default:
			fmt.Fprintln(w, "Drift found (changes made outside sgrules):")
		}
		for _, run := range byGroup(d.Drifted) {
			fmt.Fprintln(w)
			head := o.paint(ansiBold, o.Group(run[0].Key.GroupID))
			if until, ok := paused[run[0].Key.GroupID]; ok {
				head += " " + o.paint(ansiYellow, "paused until "+until+": --revert leaves it alone")
			}
			fmt.Fprintln(w, head)
			for _, d := range report.Pair(run) {
				a := d.Action
				o := o
				if a.Paused {
					o.Past = false // nothing was done in a paused group
				}
				if d.Declared != nil {
					o.modified(w, d)
					continue
				}
				before, after := beforeAfter(a, o.Past)
				if a.Paused {
					after = "left as is: the group is paused (sgrules:pause-until)"
				}
				fmt.Fprintln(w, "  "+o.symbol(a.Kind)+" "+o.Rule(a.Key))
				fmt.Fprintln(w, "      before: "+before)
				fmt.Fprintln(w, "      after:  "+after)
				fmt.Fprintln(w, "      "+o.note(a))
			}
		}
		fmt.Fprintln(w)
	}
	if len(d.Paused) > 0 {
		fmt.Fprintln(w, "Paused groups (drift reported, not reverted):")
		for _, g := range d.Paused {
			line := "  " + o.Group(g)
			if until := paused[g]; until != "" {
				line += " until " + until
			}
			fmt.Fprintln(w, line)
		}
		fmt.Fprintln(w)
	}
	PolicyViolations(w, res, o)
	Sources(w, res.Sources, o)
	fmt.Fprintln(w, DriftSummary(res, o.Past))
}

// PolicyViolations writes the live rules that violate the guardrail
// policy, each with its clauses and what the run does about it.
func PolicyViolations(w io.Writer, res reconcile.Result, o Options) {
	vs := report.Build(res).Violations
	if res.Policy.Invalid != nil {
		fmt.Fprintln(w, o.paint(ansiRed, "Policy invalid: "+res.Policy.Invalid.Error()+"; no rule file is applied until it is fixed"))
		fmt.Fprintln(w)
	}
	if refused := report.Refusals(res); len(refused) > 0 {
		fmt.Fprintf(w, "%s (%s):\n", o.paint(ansiRed, "Refused by the guardrail policy, not written"), res.Policy.Name)
		for _, r := range refused {
			fmt.Fprintln(w, "  "+o.Group(r.Group)+" "+r.Direction+" "+r.Rule)
			fmt.Fprintln(w, "      "+r.What()+": "+r.Reason)
		}
		fmt.Fprintln(w)
	}
	if len(vs) == 0 {
		return
	}
	fmt.Fprintf(w, "Policy violations (%s):\n", res.Policy.Name)
	for i, v := range vs {
		pv := res.Policy.Violations[i]
		line := "  " + o.Group(v.Group) + " " + o.Rule(pv.Rule.Key) + " violates policy " + strings.Join(v.Policies, ", ")
		if v.Message != "" {
			line += ": " + v.Message
		}
		fmt.Fprintln(w, line)
		fmt.Fprintln(w, "      "+v.Action+" ("+v.RuleID+")")
	}
	fmt.Fprintln(w)
}

// modified writes a rule modified in place outside sgrules as one rule:
// the declared rule, what EC2 has instead, and the correction.
func (o Options) modified(w io.Writer, d report.Drifted) {
	decl, ec2 := *d.Declared, d.Action
	line := o.symbol(reconcile.ActUpdate) + " " + o.Rule(decl.Key)
	if decl.Description != "" {
		line += " " + strconv.Quote(decl.Description)
	}
	after := "would be put back as declared (authorized again, the modified rule revoked)"
	if o.Past {
		after = "put back as declared (authorized again, the modified rule revoked)"
	}
	if decl.Kind == reconcile.ActModify {
		after = "would be put back as declared, in place (the rule keeps its id)"
		if o.Past {
			after = "put back as declared, in place (the rule keeps its id)"
		}
	}
	if ec2.Paused {
		after = "left as is: the group is paused (sgrules:pause-until)"
	}
	fmt.Fprintln(w, "  "+line)
	fmt.Fprintln(w, "      before: modified to "+o.Rule(ec2.Key))
	fmt.Fprintln(w, "      after:  "+after)
	parts := []string{report.ModifiedReason(d)}
	if len(decl.Owners) > 0 {
		parts = append(parts, "owners: "+joinOwners(decl.Owners))
	}
	if ec2.RuleID != "" {
		parts = append(parts, "rule "+ec2.RuleID)
	}
	fmt.Fprintln(w, "      "+o.paint(ansiDim, "# "+strings.Join(parts, "; ")))
}

// beforeAfter describes a drifted rule's state in EC2 and what sgrules
// does (or did) about it.
func beforeAfter(a reconcile.Action, past bool) (string, string) {
	will := func(future, done string) string {
		if past {
			return done
		}
		return future
	}
	switch a.Kind {
	case reconcile.ActAuthorize:
		after := will("authorized again", "authorized again")
		if a.Description != "" {
			after += " with description " + strconv.Quote(a.Description)
		}
		return "missing (deleted or changed outside sgrules)", will("would be ", "") + after
	case reconcile.ActUpdate:
		return "description " + strconv.Quote(a.OldDescription),
			"description " + strconv.Quote(a.Description) + will(" (would be set back)", " (set back)")
	case reconcile.ActRevoke:
		before := "present"
		if a.Description != "" {
			before += " with description " + strconv.Quote(a.Description)
		}
		return before, will("would be revoked", "revoked")
	}
	return "-", "-"
}

// DriftSummary is the last line of the drift report.
func DriftSummary(res reconcile.Result, past bool) string {
	d := res.Drift
	var b strings.Builder
	rep := report.Build(res) // a modified rule counts once
	n := rep.Detected
	switch {
	case n == 0:
		fmt.Fprintf(&b, "No drift in %d %s checked.", d.GroupsChecked, strutil.Plural(d.GroupsChecked, "group"))
	case past:
		fmt.Fprintf(&b, "Reverted %d of %d drifted %s in %d %s checked.", rep.Reverted, n, strutil.Plural(n, "rule"), d.GroupsChecked, strutil.Plural(d.GroupsChecked, "group"))
	default:
		fmt.Fprintf(&b, "Drift: %d %s changed outside sgrules in %d %s checked. Run 'sgrules drift --revert' to correct it.",
			n, strutil.Plural(n, "rule"), d.GroupsChecked, strutil.Plural(d.GroupsChecked, "group"))
	}
	if d.Unmanaged > 0 {
		fmt.Fprintf(&b, " %d unmanaged %s left alone.", d.Unmanaged, strutil.Plural(d.Unmanaged, "rule"))
	}
	if len(d.Paused) > 0 {
		fmt.Fprintf(&b, " %d paused %s.", len(d.Paused), strutil.Plural(len(d.Paused), "group"))
	}
	return b.String()
}

func joinOwners(os []rules.Owner) string { return strings.Join(rules.OwnerStrings(os), ", ") }

// QuotaLine says one group would exceed the default rules quota.
func (o Options) QuotaLine(q reconcile.QuotaWarning) string {
	return fmt.Sprintf("%s would have %d %s %s rules, over EC2's default quota of %d per group (group references count in both families, prefix lists as their max entries)",
		o.Group(q.Group), q.Rules, q.Direction, q.Family, rules.QuotaPerGroup)
}

// QuotaWarnings writes the groups the plan leaves over the default quota.
func QuotaWarnings(w io.Writer, qs []reconcile.QuotaWarning, o Options) {
	if len(qs) == 0 {
		return
	}
	fmt.Fprintln(w, o.paint(ansiYellow, "Rules quota")+" (EC2 refuses what exceeds the account's quota; it can be raised):")
	for _, q := range qs {
		fmt.Fprintln(w, "  "+o.QuotaLine(q))
	}
	fmt.Fprintln(w)
}
