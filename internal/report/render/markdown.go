package render

import (
	"bytes"
	"fmt"
	"github.com/sgrules/sgrules/internal/report"
	"io"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/strutil"
	"github.com/sgrules/sgrules/pkg/rules"
)

// ChangeKind is what a reviewer sees a plan do to one permission.
type ChangeKind string

const (
	ChangeAdd    ChangeKind = "add"
	ChangeChange ChangeKind = "change"
	ChangeRemove ChangeKind = "remove"
	// ChangeAdopt and ChangeForget touch only the ledger.
	ChangeAdopt  ChangeKind = "adopt"
	ChangeForget ChangeKind = "forget"
)

// Change is one row of a reviewed plan. New is the authorize, adopt,
// forget or update action; Old is the revoked permission of a
// replacement (a rule whose ports, protocol or peer changed) or of a
// removal. A replacement has both.
type Change struct {
	Kind ChangeKind
	New  *reconcile.Action
	Old  *reconcile.Action
}

// Key is the permission the change leaves in place (the old one for a
// removal).
func (c Change) Key() rules.Key {
	if c.New != nil {
		return c.New.Key
	}
	return c.Old.Key
}

// PairReplacements turns sorted actions into changes: a revocation that is
// not a loss (the rule is still declared, in another form) is paired with
// an authorization of the same group and direction that shares an owner,
// preferring the same peer, into one "change". It is the one place that
// pairs a plan's actions; it reads only typed fields (Kind, Loss, Key,
// Owners), never Reason.
func PairReplacements(as []reconcile.Action) []Change {
	pairedNew := map[int]int{} // authorize index → revoke index
	pairedOld := map[int]bool{}
	shares := func(a, b []string) bool {
		for _, x := range a {
			for _, y := range b {
				if x == y {
					return true
				}
			}
		}
		return false
	}
	for i, r := range as {
		if r.Kind != reconcile.ActRevoke || r.Loss {
			continue
		}
		best := -1
		for j, a := range as {
			if a.Kind != reconcile.ActAuthorize || a.Key.GroupID != r.Key.GroupID || a.Key.Direction != r.Key.Direction {
				continue
			}
			if _, taken := pairedNew[j]; taken || !shares(rules.OwnerStrings(a.Owners), rules.OwnerStrings(r.Owners)) {
				continue
			}
			if best < 0 || (a.Key.Peer == r.Key.Peer && as[best].Key.Peer != r.Key.Peer) {
				best = j
			}
		}
		if best >= 0 {
			pairedNew[best] = i
			pairedOld[i] = true
		}
	}
	out := make([]Change, 0, len(as))
	for i := range as {
		a := &as[i]
		switch a.Kind {
		case reconcile.ActAuthorize:
			if j, ok := pairedNew[i]; ok {
				out = append(out, Change{Kind: ChangeChange, New: a, Old: &as[j]})
			} else {
				out = append(out, Change{Kind: ChangeAdd, New: a})
			}
		case reconcile.ActUpdate:
			out = append(out, Change{Kind: ChangeChange, New: a})
		case reconcile.ActModify:
			// One rule changed in place: Old is the permission it is now.
			old := reconcile.Action{Kind: reconcile.ActRevoke, Cause: a.Cause, Key: a.From, RuleID: a.RuleID,
				Description: a.OldDescription, Owners: a.Owners}
			out = append(out, Change{Kind: ChangeChange, New: a, Old: &old})
		case reconcile.ActRevoke:
			if !pairedOld[i] {
				out = append(out, Change{Kind: ChangeRemove, Old: a})
			}
		case reconcile.ActAdopt:
			out = append(out, Change{Kind: ChangeAdopt, New: a})
		case reconcile.ActForget, reconcile.ActRelease:
			out = append(out, Change{Kind: ChangeForget, New: a})
		}
	}
	return out
}

// Violation is a policy violation to show first in a reviewed plan.
// Nothing produces them yet (policies are not implemented); the markdown
// renders any it is given.
type Violation struct {
	// Where is FILE:LINE:COL of the rule.
	Where   string
	Rule    string
	Clause  string
	Message string
}

// MaxCommentBytes is the default size limit of the markdown plan: GitHub
// refuses comments over 65,536 characters; the rest is left for the
// marker and heading the CI workflow adds.
const MaxCommentBytes = 60000

// MaxMermaidEdges is the most arrows drawn in a plan's flowchart (GitHub's
// Mermaid refuses more than 500 edges; far fewer are readable).
const MaxMermaidEdges = 150

// maxListItems caps each list (violations, sources, warnings).
const maxListItems = 50

// maxFileDiagnostics caps the diagnostics shown for one rule file.
const maxFileDiagnostics = 5

// MarkdownOptions control Markdown.
type MarkdownOptions struct {
	// Names maps group ids to readable names.
	Names map[string]string
	// MaxBytes is the size limit (default MaxCommentBytes): large plans
	// are summarised per group, never cut without a note.
	MaxBytes int
	// Violations are shown first when there are any.
	Violations []Violation
	// together marks the added permissions that open the internet only
	// together (0.0.0.0/1 and 128.0.0.0/1 in one group and port); set by
	// Markdown.
	together map[rules.Key]bool
	// Target returns the account/region of a group's permission; when it
	// returns a non-empty value for any change, tables gain a target
	// column. Nil today: every rule is in the home target.
	Target func(rules.Key) string
	// Now is the time deadlines are measured from ("expires in 7 h 58
	// min", in the description cell); zero shows them as times.
	Now time.Time
	// usageSince is the traffic evidence's window start; set by Markdown.
	usageSince time.Time
}

// protoText is the protocol as rule files write it.
func protoText(k rules.Key) string {
	if k.Protocol == rules.ProtoAll {
		return "all"
	}
	return k.Protocol
}

// portsText is the ports alone: "443", "1024-65535", "type 8", "all".
func portsText(k rules.Key) string {
	switch k.Protocol {
	case rules.ProtoTCP, rules.ProtoUDP:
		if k.FromPort == k.ToPort {
			return strconv.Itoa(int(k.FromPort))
		}
		return fmt.Sprintf("%d-%d", k.FromPort, k.ToPort)
	case rules.ProtoICMP, rules.ProtoICMPv6:
		return strings.TrimPrefix(report.Ports(k), k.Protocol+" ")
	}
	return "all"
}

func (o MarkdownOptions) peerText(k rules.Key) string {
	return Options{Names: o.Names}.PeerValue(k.Peer)
}

// arrow joins an old and a new value, or returns the value if equal.
func arrow(old, new string) string {
	if old == new {
		return new
	}
	return old + " → " + new
}

var changeMark = map[ChangeKind]string{
	ChangeAdd: "+ add", ChangeChange: "~ change", ChangeRemove: "- remove",
	ChangeAdopt: "= adopt (ledger only)", ChangeForget: "x forget (ledger only)",
}

// row is one table row of a change.
func (o MarkdownOptions) row(c Change, target bool) string {
	k := c.Key()
	proto, ports, peer := protoText(k), portsText(k), o.peerText(k)
	var desc string
	owners := []string{}
	switch {
	case c.New != nil && (c.New.Kind == reconcile.ActUpdate || c.New.Kind == reconcile.ActModify && c.New.OldDescription != c.New.Description):
		desc = strconv.Quote(c.New.OldDescription) + " → " + strconv.Quote(c.New.Description)
	case c.New != nil:
		desc = c.New.Description
	default:
		desc = c.Old.Description
	}
	if c.Old != nil && c.New != nil {
		ok := c.Old.Key
		proto, ports, peer = arrow(protoText(ok), proto), arrow(portsText(ok), ports), arrow(o.peerText(ok), peer)
	}
	for _, a := range []*reconcile.Action{c.New, c.Old} {
		if a != nil {
			owners = mergeSorted(owners, rules.OwnerStrings(a.Owners))
		}
	}
	if (IsWorld(k.Peer) || o.together[k]) && k.Direction == rules.Ingress && c.Kind != ChangeRemove {
		peer += " ⚠️ world"
	}
	src := make([]string, len(owners))
	for i, ow := range owners {
		src[i] = report.MarkdownCode(ow)
	}
	if len(src) == 0 {
		src = []string{"(no rule file: clean-up)"}
	}
	cells := []string{changeMark[c.Kind]}
	if target {
		cells = append(cells, report.MarkdownCell(o.Target(k)))
	}
	descCell := report.MarkdownCell(desc)
	if exp := changeExpiry(c, o.Now); exp != "" {
		if descCell != "" {
			descCell += "<br>"
		}
		descCell += exp
	}
	if u := changeUsage(c, o.usageSince, o.Now); u != "" {
		if descCell != "" {
			descCell += "<br>"
		}
		descCell += u
	}
	cells = append(cells, report.MarkdownCell(Options{Names: o.Names}.Group(k.GroupID)), string(k.Direction), report.MarkdownCell(proto), report.MarkdownCell(ports),
		report.MarkdownCell(peer), descCell, strings.Join(src, "<br>"))
	return "| " + strings.Join(cells, " | ") + " |\n"
}

// groupCount is a group's line of the summary table.
type groupCount struct {
	group, target       string
	add, change, remove int
	ledger              int
}

// planFlows draws the changes as a graph: added flows green, removed red,
// changed amber (a replacement with another peer shows the old flow
// removed).
func planFlows(cs []Change, names map[string]string) Graph {
	b := &GraphBuilder{Names: names}
	for i, c := range cs {
		id := strconv.Itoa(i)
		switch {
		case c.Kind == ChangeAdd:
			b.addKeyed(id, c.New.Key).Status = StatusAdded
		case c.Kind == ChangeRemove:
			b.addKeyed(id, c.Old.Key).Status = StatusRemoved
		case c.Kind == ChangeChange && c.Old == nil:
			e := b.addKeyed(id, c.New.Key)
			e.Status, e.Label = StatusChanged, e.Label+" (description)"
		case c.Kind == ChangeChange && c.Old.Key.Peer == c.New.Key.Peer:
			e := b.addKeyed(id, c.New.Key)
			e.Status, e.Label = StatusChanged, report.Ports(c.Old.Key)+" → "+report.Ports(c.New.Key)
		case c.Kind == ChangeChange:
			b.addKeyed(id, c.New.Key).Status = StatusChanged
			b.addKeyed(id+"-old", c.Old.Key).Status = StatusRemoved
		}
	}
	return b.Graph()
}

// Markdown writes the plan for a pull request comment: a summary line and
// table per group, policy violations (when any), rule files not applied,
// warnings, the table of changes in rule-file vocabulary and a Mermaid
// flowchart of the flows that change. It stays under o.MaxBytes by
// leaving out the details of the last groups (they stay in the summary
// table), saying so.
func Markdown(w io.Writer, res reconcile.Result, o MarkdownOptions) {
	max := o.MaxBytes
	if max <= 0 {
		max = MaxCommentBytes
	}
	changes := PairReplacements(res.Plan.Actions)
	o.together = worldTogether(changes)
	o.usageSince = res.Usage.Since
	target := false
	if o.Target != nil {
		for _, c := range changes {
			if o.Target(c.Key()) != "" {
				target = true
				break
			}
		}
	}

	// Per group, in plan order.
	var counts []*groupCount
	byGroup := map[string]*groupCount{}
	runIndex := map[string]int{}
	var runs [][]Change
	var tally [4]int // add, change, remove, ledger
	for _, c := range changes {
		g := c.Key().GroupID
		var tgt string
		if target {
			tgt = o.Target(c.Key())
			g = tgt + "\x00" + g // group ids are unique within a target only
		}
		gc := byGroup[g]
		if gc == nil {
			gc = &groupCount{group: c.Key().GroupID, target: tgt}
			byGroup[g] = gc
			runIndex[g] = len(counts)
			counts = append(counts, gc)
			runs = append(runs, nil)
		}
		switch c.Kind {
		case ChangeAdd:
			gc.add++
			tally[0]++
		case ChangeChange:
			gc.change++
			tally[1]++
		case ChangeRemove:
			gc.remove++
			tally[2]++
		default:
			gc.ledger++
			tally[3]++
		}
		runs[runIndex[g]] = append(runs[runIndex[g]], c)
	}

	// Groups in the order people look them up: by name, then id (the
	// engine sorts by id).
	order := make([]int, len(counts))
	for i := range order {
		order[i] = i
	}
	sortKey := func(gc *groupCount) string { return gc.target + "\x00" + o.Names[gc.group] + "\x00" + gc.group }
	sort.SliceStable(order, func(i, j int) bool { return sortKey(counts[order[i]]) < sortKey(counts[order[j]]) })
	sortedCounts, sortedRuns := make([]*groupCount, len(counts)), make([][]Change, len(runs))
	for i, k := range order {
		sortedCounts[i], sortedRuns[i] = counts[k], runs[k]
	}
	counts, runs = sortedCounts, sortedRuns

	var head bytes.Buffer
	invalid, held := report.SourceProblems(res.Sources)
	switch {
	case len(changes) == 0 && invalid+held+PendingMoves(res.Sources) == 0:
		fmt.Fprintln(&head, "### sgrules plan: no changes")
		fmt.Fprintln(&head)
		fmt.Fprintln(&head, "The security groups match the rule files.")
	default:
		fmt.Fprintf(&head, "### sgrules plan: %d to add, %d to change, %d to remove\n", tally[0], tally[1], tally[2])
	}
	var notes []string
	if len(counts) > 0 {
		notes = append(notes, fmt.Sprintf("%d %s", len(counts), strutil.Plural(len(counts), "group")))
	}
	if tally[3] > 0 {
		notes = append(notes, fmt.Sprintf("%d ledger-only %s (adopt existing rules, forget records of rules already gone)", tally[3], strutil.Plural(tally[3], "step")))
	}
	if n := len(res.Plan.Unmanaged); n > 0 {
		notes = append(notes, fmt.Sprintf("%d unmanaged %s left alone", n, strutil.Plural(n, "rule")))
	}
	if res.HeldCleanup > 0 {
		notes = append(notes, fmt.Sprintf("%d clean-up %s held by the blast-radius guard", res.HeldCleanup, strutil.Plural(res.HeldCleanup, "revocation")))
	}
	if invalid > 0 {
		notes = append(notes, fmt.Sprintf("**%d %s invalid**", invalid, strutil.Plural(invalid, "rule file")))
	}
	if held > 0 {
		notes = append(notes, fmt.Sprintf("**%d %s held**", held, strutil.Plural(held, "rule file")))
	}
	if len(o.Violations) > 0 {
		notes = append(notes, fmt.Sprintf("**%d policy %s**", len(o.Violations), strutil.Plural(len(o.Violations), "violation")))
	}
	if n := o.countRisk(changes, riskUsed); n > 0 {
		notes = append(notes, fmt.Sprintf("**%d %s of rules that carried traffic**", n, strutil.Plural(n, "removal")))
	}
	if n := len(res.Usage.Refused); n > 0 {
		notes = append(notes, fmt.Sprintf("**%d %s refused: the rules carried traffic**", n, strutil.Plural(n, "removal")))
	}
	if len(notes) > 0 {
		fmt.Fprintln(&head)
		fmt.Fprintln(&head, strings.Join(notes, " · "))
	}
	if len(counts) > 0 {
		fmt.Fprintln(&head)
		summary := summaryTable(counts, o, target, max/4)
		head.WriteString(summary)
	}

	// Risk first: the changes a reviewer must see are shown in full,
	// across all groups, before any list or table that may be summarised.
	var risky bytes.Buffer
	riskyRows := 0
	if n := o.countRisk(changes, riskWorld); n > 0 {
		fmt.Fprintln(&risky)
		fmt.Fprintf(&risky, "#### 🔴 Review first: %d world-open %s\n\n", n, strutil.Plural(n, "change"))
		risky.WriteString(tableHeader(target))
		var world []Change
		for _, run := range runs {
			for _, c := range run {
				if o.changeRisk(c) == riskWorld {
					world = append(world, c)
				}
			}
		}
		// The most dangerous first (all traffic, then administration and
		// data ports), so a section too long for a comment loses the
		// least dangerous rows.
		sort.SliceStable(world, func(i, j int) bool { return worldRank(world[i].New.Key) < worldRank(world[j].New.Key) })
		for _, c := range world {
			row := o.row(c, target)
			if risky.Len()+len(row) > max/2 {
				// Only a plan of hundreds of world-open changes gets
				// here: it cannot be reviewed in a comment, and says so
				// in its own section rather than hiding rows silently.
				fmt.Fprintf(&risky, "\n%d more world-open %s not shown: too many to review in a comment. Run `sgrules plan` for all of them.\n",
					n-riskyRows, isAre(n-riskyRows))
				break
			}
			risky.WriteString(row)
			riskyRows++
		}
		riskyRows = n // the rest are counted in the note, not left to the tables
	}

	// The lists share what the risky rows leave, each at most a third.
	listBudget := (max - head.Len() - risky.Len() - 2000) / 3
	worldOwners := map[string]int{} // FILE#RULE → worldRank of its change
	for _, c := range changes {
		if o.changeRisk(c) == riskWorld {
			for _, ow := range c.New.Owners {
				if r, ok := worldOwners[ow.String()]; !ok || worldRank(c.New.Key) < r {
					worldOwners[ow.String()] = worldRank(c.New.Key)
				}
			}
		}
	}
	var lists bytes.Buffer
	if len(o.Violations) > 0 {
		items := make([]listItem, len(o.Violations))
		for i, v := range o.Violations {
			file, _, _ := strings.Cut(v.Where, ":")
			items[i] = listItem{file: file, text: fmt.Sprintf("%s: %s: violates policy %s: %s", report.MarkdownCode(v.Where), report.MarkdownCell(v.Rule), report.MarkdownCode(v.Clause), report.MarkdownCell(v.Message))}
		}
		mdList(&lists, "⛔ Policy violations", "violations", items, listBudget)
	}
	var bad, warn []listItem
	for _, s := range res.Sources {
		switch {
		case s.Status == reconcile.StatusInvalid || s.Status == reconcile.StatusHeld || s.Status == reconcile.StatusPending:
			line := report.MarkdownCode(s.Key) + ": " + string(s.Status)
			if s.Message != "" {
				line += ": " + report.MarkdownCell(s.Message)
			}
			// One file's diagnostics are summarised: a file with
			// thousands of errors is one item, not the whole comment.
			for i, d := range s.Diagnostics {
				if i == maxFileDiagnostics {
					line += fmt.Sprintf("<br>… and %d more (run `sgrules validate %s` for all)", len(s.Diagnostics)-i, report.MarkdownCell(s.Key))
					break
				}
				line += "<br>" + report.MarkdownCode(d.String())
			}
			bad = append(bad, listItem{file: s.Key, text: line})
		default:
			for _, d := range s.Diagnostics {
				rank := 100
				if r, ok := worldOwners[rules.Owner{Source: d.File, Rule: d.Rule}.String()]; ok && strings.Contains(d.Msg, "open to the world") {
					rank = r
				} else if strings.Contains(d.Msg, "open to the world") {
					rank = 50
				}
				warn = append(warn, listItem{file: s.Key, text: report.MarkdownCode(d.String()), rank: rank})
			}
		}
	}
	if len(bad) > 0 {
		mdList(&lists, "❌ Rule files not applied (their previous rules are kept)", "files", bad, listBudget)
	}
	if len(res.Usage.Refused) > 0 {
		mdList(&lists, "🚦 Removals refused: these rules carried traffic and are kept (list the rule in the file's `allowUsedRemoval` to let it go)",
			"refusals", usageItems(res, o), listBudget)
	}
	for _, q := range res.Quota {
		warn = append(warn, listItem{text: report.MarkdownCell(Options{Names: o.Names}.QuotaLine(q)), rank: 100})
	}
	for _, c := range res.Plan.Conflicts {
		warn = append(warn, listItem{text: fmt.Sprintf("%s in %s is declared with different descriptions; %s wins",
			report.MarkdownCell(Options{Names: o.Names}.Rule(c.Key)), report.MarkdownCell(Options{Names: o.Names}.Group(c.Key.GroupID)), report.MarkdownCode(c.Winner.String())), rank: 100})
	}
	if len(warn) > 0 {
		// World-open warnings first, the most dangerous first: they are
		// the ones a cap must not hide.
		sort.SliceStable(warn, func(i, j int) bool { return warn[i].rank < warn[j].rank })
		mdList(&lists, "⚠️ Warnings", "warnings", warn, listBudget)
	}

	budget := max - head.Len() - risky.Len() - lists.Len() - 1800 // room for the notes below
	var details bytes.Buffer
	var drawn []Change
	if rest := len(changes) - riskyRows; rest > 0 {
		// The other rows share the budget fairly: each group's rows in
		// risk order, taken round by round (one row of every group, then
		// the next), so no group is dropped whole for another's size.
		type cand struct{ run, idx, rank int }
		var cands []cand
		for r, run := range runs {
			ranked := make([]int, 0, len(run))
			for i, c := range run {
				if o.changeRisk(c) != riskWorld {
					ranked = append(ranked, i)
				}
			}
			sort.SliceStable(ranked, func(a, b int) bool { return o.changeRisk(run[ranked[a]]) < o.changeRisk(run[ranked[b]]) })
			for rank, i := range ranked {
				cands = append(cands, cand{run: r, idx: i, rank: rank})
			}
		}
		sort.SliceStable(cands, func(a, b int) bool {
			ra, rb := o.changeRisk(runs[cands[a].run][cands[a].idx]), o.changeRisk(runs[cands[b].run][cands[b].idx])
			if ra != rb {
				return ra < rb
			}
			return cands[a].rank < cands[b].rank
		})
		title := "#### Changes\n\n"
		if riskyRows > 0 {
			title = "#### Other changes\n\n"
		}
		used := len(title) + len(tableHeader(target))
		chosen := map[[2]int]string{}
		for _, cd := range cands {
			row := o.row(runs[cd.run][cd.idx], target)
			if used+len(row) > budget {
				break
			}
			used += len(row)
			chosen[[2]int{cd.run, cd.idx}] = row
		}
		var omitted []string
		left := 0
		if len(chosen) > 0 {
			details.WriteString(title)
			details.WriteString(tableHeader(target))
		}
		for r, run := range runs {
			n := 0
			for i, c := range run {
				if o.changeRisk(c) == riskWorld {
					continue
				}
				if row, ok := chosen[[2]int{r, i}]; ok {
					details.WriteString(row)
					if c.Kind != ChangeAdopt && c.Kind != ChangeForget {
						drawn = append(drawn, c)
					}
				} else {
					n++
				}
			}
			if n > 0 {
				left += n
				omitted = append(omitted, fmt.Sprintf("%s (%d)", Options{Names: o.Names}.Group(counts[r].group), n))
			}
		}
		if left > 0 {
			groups := strings.Join(omitted, ", ")
			if len(groups) > 1000 {
				groups = groups[:strings.LastIndex(groups[:1000], ", ")] + ", …"
			}
			fmt.Fprintln(&details)
			fmt.Fprintf(&details, "%d lower-risk %s left out to stay under GitHub's comment size limit, in %s; the summary above counts them. Run `sgrules plan` for every change.\n",
				left, isAre(left), report.MarkdownCell(groups))
		}
	}
	for _, run := range runs {
		for _, c := range run {
			if o.changeRisk(c) == riskWorld {
				drawn = append(drawn, c)
			}
		}
	}

	var flows bytes.Buffer
	if len(drawn) > 0 {
		g := planFlows(drawn, o.Names)
		if len(g.Edges) > 0 {
			var chart bytes.Buffer
			Mermaid(&chart, g)
			arrows := len(g.drawn())
			fmt.Fprintln(&flows)
			fmt.Fprintln(&flows, "#### Flows that change")
			fmt.Fprintln(&flows)
			switch {
			case arrows > MaxMermaidEdges || details.Len()+chart.Len()+100 > budget:
				fmt.Fprintf(&flows, "The diagram (%d arrows) is left out: too large for a comment. Run `sgrules graph` to draw it.\n", arrows)
			default:
				fmt.Fprintln(&flows, "`+` added (green), `-` removed (red, dotted), `~` changed (amber); thick arrows come from the internet.")
				fmt.Fprintln(&flows)
				fmt.Fprintln(&flows, "```mermaid")
				flows.Write(chart.Bytes())
				fmt.Fprintln(&flows, "```")
			}
		}
	}

	var out bytes.Buffer
	out.Write(head.Bytes())
	out.Write(risky.Bytes())
	out.Write(lists.Bytes())
	if details.Len() > 0 {
		fmt.Fprintln(&out)
		out.Write(details.Bytes())
	}
	out.Write(flows.Bytes())
	b := out.Bytes()
	if len(b) > max {
		// Only pathological inputs get here (lists are capped, tables
		// budgeted): cut at a line, and say so.
		note := fmt.Sprintf("\n… cut at %d of %d bytes to stay under GitHub's comment size limit. Run `sgrules plan` for all of it.\n", max, len(b))
		cut := bytes.LastIndexByte(b[:max-len(note)], '\n')
		if cut < 0 {
			cut = 0
		}
		b = append(b[:cut:cut], note...)
	}
	_, _ = w.Write(b)
}

// risk ranks a change for review; lower is riskier.
type risk int

const (
	// riskWorld authorizes or changes into an ingress rule open to the
	// world: always shown in full, first.
	riskWorld risk = iota
	// riskUsed takes away a rule that carried traffic in the evidence's
	// window (flow logs): shown before the other removals.
	riskUsed
	// riskRemove takes traffic away: removals and replacements.
	riskRemove
	// riskOther is every other change (adds, description updates,
	// ledger-only steps).
	riskOther
)

func (o MarkdownOptions) changeRisk(c Change) risk {
	switch {
	case c.New != nil && c.Kind != ChangeAdopt && c.Kind != ChangeForget &&
		c.New.Key.Direction == rules.Ingress && (IsWorld(c.New.Key.Peer) || o.together[c.New.Key]):
		return riskWorld
	case usedRemoval(c):
		return riskUsed
	case c.Kind == ChangeRemove || c.Old != nil && c.New != nil && c.Old.Key != c.New.Key:
		return riskRemove
	}
	return riskOther
}

func (o MarkdownOptions) countRisk(cs []Change, r risk) int {
	n := 0
	for _, c := range cs {
		if o.changeRisk(c) == r {
			n++
		}
	}
	return n
}

// worldTogether finds the ingress CIDR permissions a plan adds or changes
// into that cover the internet only together, per group, protocol and
// ports (the routable space of pkg/rules: halves, quarters, 2000::/3).
func worldTogether(cs []Change) map[rules.Key]bool {
	type port struct {
		group, proto string
		from, to     int32
	}
	keys := map[port][]rules.Key{}
	for _, c := range cs {
		if c.New == nil || c.Kind == ChangeAdopt || c.Kind == ChangeForget || c.New.Key.Direction != rules.Ingress {
			continue
		}
		k := c.New.Key
		if k.Peer.Kind != rules.PeerCIDR4 && k.Peer.Kind != rules.PeerCIDR6 {
			continue
		}
		p := port{k.GroupID, k.Protocol, k.FromPort, k.ToPort}
		keys[p] = append(keys[p], k)
	}
	out := map[rules.Key]bool{}
	for _, ks := range keys {
		set := make([]netip.Prefix, 0, len(ks))
		var of []rules.Key
		for _, k := range ks {
			if pfx, err := netip.ParsePrefix(k.Peer.Value); err == nil {
				set, of = append(set, pfx), append(of, k)
			}
		}
		if idx, ok := rules.WorldOpen(set); ok {
			for _, i := range idx {
				out[of[i]] = true
			}
		}
	}
	return out
}

// adminPorts are the ports whose exposure to the internet is the usual
// finding (remote administration, databases, caches, container APIs).
var adminPorts = []int32{22, 23, 135, 139, 445, 1433, 1521, 2375, 2376, 3306, 3389, 5432, 5900, 5984, 6379, 9200, 11211, 27017}

// worldRank orders world-open permissions by danger: all traffic, then
// any range holding an administration or data port, then the rest.
func worldRank(k rules.Key) int {
	if k.Protocol == rules.ProtoAll {
		return 0
	}
	if k.Protocol == rules.ProtoTCP || k.Protocol == rules.ProtoUDP {
		for _, p := range adminPorts {
			if k.FromPort <= p && p <= k.ToPort {
				return 1
			}
		}
	}
	return 2
}

func isAre(n int) string {
	if n == 1 {
		return "change is"
	}
	return "changes are"
}

// tableHeader is the heading of a table of changes.
func tableHeader(target bool) string {
	if target {
		return "| | target | group | direction | protocol | ports | peer | description | source |\n|---|---|---|---|---|---|---|---|---|\n"
	}
	return "| | group | direction | protocol | ports | peer | description | source |\n|---|---|---|---|---|---|---|---|\n"
}

// summaryTable is the per-group count table, cut (with a line counting
// the rest) at about limit bytes.
func summaryTable(counts []*groupCount, o MarkdownOptions, target bool, limit int) string {
	var b strings.Builder
	if target {
		b.WriteString("| target | group | add | change | remove |\n|---|---|---:|---:|---:|\n")
	} else {
		b.WriteString("| group | add | change | remove |\n|---|---:|---:|---:|\n")
	}
	for i, gc := range counts {
		line := fmt.Sprintf("| %s | %d | %d | %d |\n", report.MarkdownCell(Options{Names: o.Names}.Group(gc.group)), gc.add, gc.change, gc.remove)
		if target {
			line = "| " + report.MarkdownCell(gc.target) + " " + line
		}
		if b.Len()+len(line) > limit {
			var add, change, remove int
			for _, r := range counts[i:] {
				add, change, remove = add+r.add, change+r.change, remove+r.remove
			}
			rest := fmt.Sprintf("| %d more groups | %d | %d | %d |\n", len(counts)-i, add, change, remove)
			if target {
				rest = "| | " + rest[2:]
			}
			b.WriteString(rest)
			break
		}
		b.WriteString(line)
	}
	return b.String()
}

// listItem is one item of a list section; file names the rule file it
// is about (for the count of what a capped list leaves out); a lower
// rank comes first.
type listItem struct {
	file, text string
	rank       int
}

// mdList writes a section with at most maxListItems items and about
// maxBytes bytes; the line counting the rest names the files they are
// about, so a capped list still points at every file.
func mdList(w *bytes.Buffer, title, what string, items []listItem, maxBytes int) {
	fmt.Fprintln(w)
	fmt.Fprintf(w, "#### %s\n\n", title)
	start := w.Len()
	for i, it := range items {
		if i == maxListItems || i > 0 && w.Len()-start+len(it.text)+2500 > maxBytes {
			rest := items[i:]
			perFile := map[string]int{}
			var files []string
			for _, r := range rest {
				if r.file == "" {
					continue
				}
				if perFile[r.file] == 0 {
					files = append(files, r.file)
				}
				perFile[r.file]++
			}
			line := fmt.Sprintf("- … and %d more %s", len(rest), what)
			if len(files) > 0 {
				var b strings.Builder
				for j, f := range files {
					part := report.MarkdownCode(f)
					if perFile[f] > 1 {
						part += fmt.Sprintf(" (%d)", perFile[f])
					}
					if b.Len()+len(part) > 2000 {
						fmt.Fprintf(&b, ", and %d more files", len(files)-j)
						break
					}
					if j > 0 {
						b.WriteString(", ")
					}
					b.WriteString(part)
				}
				line += " in " + b.String()
			}
			fmt.Fprintln(w, line)
			break
		}
		fmt.Fprintln(w, "- "+it.text)
	}
}
