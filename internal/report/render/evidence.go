package render

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/pkg/rules"
)

// UsageNote says what the traffic evidence found for a revoke or a modify:
// "last used 3 h ago, 1.2k flows from 10.1.4.7", "no traffic in 30 d",
// "usage unknown (no flow log here)". since is the window's start
// (Result.Usage.Since) and now the clock (zero: times are shown, not
// ages). It is "" without evidence (u nil).
func UsageNote(u *reconcile.RuleUse, since, now time.Time) string {
	switch {
	case u == nil:
		return ""
	case !u.Known:
		return "usage unknown (no flow log here)"
	case u.Flows == 0 && now.IsZero() || u.Flows == 0 && since.IsZero():
		return "no traffic since " + since.UTC().Format(time.RFC3339)
	case u.Flows == 0:
		return "no traffic in " + rules.FormatDuration(now.Sub(since))
	}
	s := ""
	switch {
	case !u.Last.IsZero() && !now.IsZero():
		s = "last used " + rules.FormatDuration(now.Sub(u.Last)) + " ago, "
	case !u.Last.IsZero():
		s = "last used " + u.Last.UTC().Format(time.RFC3339) + ", "
	}
	s += shortCount(u.Flows) + " " + plural(u.Flows, "flow")
	if u.Peer != "" {
		s += " from " + u.Peer
	}
	return s
}

// shortCount writes 950, 1.2k, 34k, 5.6M.
func shortCount(n int64) string {
	switch {
	case n < 1000:
		return strconv.FormatInt(n, 10)
	case n < 10_000:
		return strconv.FormatFloat(float64(n)/1000, 'f', 1, 64) + "k"
	case n < 1_000_000:
		return strconv.FormatInt(n/1000, 10) + "k"
	case n < 10_000_000:
		return strconv.FormatFloat(float64(n)/1e6, 'f', 1, 64) + "M"
	}
	return strconv.FormatInt(n/1_000_000, 10) + "M"
}

func plural(n int64, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// usedRemoval reports whether a change takes away a permission that
// carried traffic in the window.
func usedRemoval(c Change) bool {
	return c.Old != nil && c.Old.Usage != nil && c.Old.Usage.Used() ||
		c.New != nil && c.New.Kind == reconcile.ActModify && c.New.Usage != nil && c.New.Usage.Used()
}

// changeUsage is the usage note of a markdown row that removes or changes
// a rule ("" when none).
func changeUsage(c Change, since, now time.Time) string {
	var u *reconcile.RuleUse
	switch {
	case c.Old != nil && c.Old.Usage != nil:
		u = c.Old.Usage
	case c.New != nil && c.New.Usage != nil:
		u = c.New.Usage
	}
	note := UsageNote(u, since, now)
	switch {
	case note == "":
		return ""
	case u.Used():
		return "🚦 " + report.MarkdownCell(note)
	}
	return report.MarkdownCell(note)
}

// UsageRefusals writes the removals the traffic evidence refused: the
// rules stay, each with its file and rule, its last flow and peer, and
// how to let it go.
func UsageRefusals(w io.Writer, res reconcile.Result, o Options) {
	if len(res.Usage.Refused) == 0 {
		return
	}
	fmt.Fprintln(w, o.paint(ansiRed, "Refused: these rules carried traffic, they are kept")+
		" (list the rule in the file's allowUsedRemoval, or apply --allow-used-removal):")
	for _, r := range res.Usage.Refused {
		k := r.Action.Key
		what := "revoke"
		if r.Action.Kind == reconcile.ActModify {
			k, what = r.Action.From, "narrow to "+o.Rule(r.Action.Key)
		}
		fmt.Fprintln(w, "  "+o.Group(k.GroupID)+" "+o.Rule(k))
		fmt.Fprintf(w, "      %s refused for %s (rule %s): %s\n", what, r.Owner, r.Action.RuleID, UsageNote(&r.Use, res.Usage.Since, o.Now))
	}
	fmt.Fprintln(w)
}

// usageItems are the markdown list items of the refused removals.
func usageItems(res reconcile.Result, o MarkdownOptions) []listItem {
	items := make([]listItem, 0, len(res.Usage.Refused))
	for _, r := range res.Usage.Refused {
		k, what := r.Action.Key, "revoke"
		if r.Action.Kind == reconcile.ActModify {
			k, what = r.Action.From, "narrow"
		}
		names := Options{Names: o.Names}
		items = append(items, listItem{file: r.Owner.Source, text: fmt.Sprintf("%s %s in %s (%s, %s): %s",
			what, report.MarkdownCell(names.Rule(k)), report.MarkdownCell(names.Group(k.GroupID)), report.MarkdownCode(r.Owner.String()), report.MarkdownCode(r.Action.RuleID),
			"🚦 "+report.MarkdownCell(UsageNote(&r.Use, res.Usage.Since, o.Now)))})
	}
	return items
}
