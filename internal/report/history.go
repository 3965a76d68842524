package report

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/strutil"
	"github.com/sgrules/sgrules/pkg/rules"
)

// HistoryEntry is one event of a rule's history as `sgrules history`
// prints it (--output json): what happened, to which rule (in the rule
// files' vocabulary), declared by which file, version and commit, and,
// for drift, who made it.
type HistoryEntry struct {
	At        time.Time `json:"at"`
	Event     string    `json:"event"`
	Group     string    `json:"group"`
	Direction string    `json:"direction"`
	Rule      string    `json:"rule"`
	RuleID    string    `json:"ruleId,omitempty"`
	Owners    []string  `json:"owners,omitempty"`
	File      string    `json:"file,omitempty"`
	VersionID string    `json:"versionId,omitempty"`
	Commit    string    `json:"commit,omitempty"`
	ExpiresAt string    `json:"expiresAt,omitempty"`
	// Change is what a drifted event found (deleted, description,
	// modified, orphan, exclusive); Before what EC2 had then.
	Change string `json:"change,omitempty"`
	Before string `json:"before,omitempty"`
	Reason string `json:"reason,omitempty"`
	// By made the change (a CloudTrail event's caller); AttributedLate
	// when its event arrived after the change was reverted.
	By             *Actor `json:"by,omitempty"`
	AttributedLate bool   `json:"attributedLate,omitempty"`
}

// History converts events (newest first) into entries.
func History(evs []reconcile.HistoryEvent) []HistoryEntry {
	out := make([]HistoryEntry, 0, len(evs))
	for _, ev := range evs {
		e := HistoryEntry{At: ev.At.UTC(), Event: string(ev.Kind), Group: ev.Key.GroupID, Direction: string(ev.Key.Direction),
			Rule: RuleText(ev.Key, ev.Description), RuleID: ev.RuleID, Owners: rules.OwnerStrings(ev.Owners), File: ev.File,
			VersionID: ev.VersionID, Commit: ev.Commit, Change: ev.Change, Reason: ev.Reason, By: ActorOf(ev.By), AttributedLate: ev.LateBy}
		if len(e.Owners) == 0 {
			e.Owners = nil
		}
		if !ev.ExpiresAt.IsZero() {
			e.ExpiresAt = ev.ExpiresAt.UTC().Format(time.RFC3339)
		}
		e.Before = ev.Before
		if k, err := rules.ParseKey(ev.Before); err == nil {
			e.Before = RuleText(k, "") // a modified rule's key
		}
		out = append(out, e)
	}
	return out
}

// ActorOf is the Actor of a caller the engine recorded (nil for nil).
func ActorOf(c *reconcile.Caller) *Actor {
	if c == nil {
		return nil
	}
	return &Actor{Principal: c.Principal, ARN: c.ARN, EventName: c.EventName, EventID: c.EventID, EventTime: c.EventTime,
		SourceIP: c.SourceIP, UserAgent: c.UserAgent, Groups: c.Groups}
}

// Text renders the entry on one line: "2026-03-02T11:21:10Z reverted
// sg-0a1b ingress tcp 22 from 192.0.2.0/24 \"SSH\" (sgr-0c2d); rule ssh
// of rules/web.yaml, version 3HL4…, commit c0ffee1".
func (e HistoryEntry) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-8s %s %s %s", e.At.Format(time.RFC3339), e.Event, e.Group, e.Direction, e.Rule)
	if e.RuleID != "" {
		fmt.Fprintf(&b, " (%s)", e.RuleID)
	}
	switch e.Change {
	case "":
	case "deleted":
		b.WriteString(": deleted")
	case "description":
		fmt.Fprintf(&b, ": description edited to %q", e.Before)
	case "modified":
		fmt.Fprintf(&b, ": modified to %s", e.Before)
	case string(KindOrphan):
		b.WriteString(": created by sgrules, declared by nothing")
	case string(KindExclusive):
		b.WriteString(": added to an exclusive group")
	}
	if e.Event == string(reconcile.HistModified) && e.Before != "" {
		fmt.Fprintf(&b, ", was %s", e.Before)
	}
	if e.By != nil {
		fmt.Fprintf(&b, " by %s", e.By.Text())
		if e.AttributedLate {
			b.WriteString(", named by its CloudTrail event after the revert")
		}
	} else if e.Event == string(reconcile.HistDrifted) {
		fmt.Fprintf(&b, ", found by %s", foundByText(e.Reason))
	}
	if e.Event == string(reconcile.HistExpired) && e.ExpiresAt != "" {
		fmt.Fprintf(&b, ", expiresAt %s", e.ExpiresAt)
	}
	if e.Event == string(reconcile.HistRefused) || e.Event == string(reconcile.HistRevoked) && strings.HasPrefix(e.Reason, "policy: ") {
		fmt.Fprintf(&b, ": %s", e.Reason)
	}
	var from []string
	for _, o := range e.Owners {
		owner := rules.ParseOwner(o)
		from = append(from, fmt.Sprintf("rule %s of %s", owner.Rule, owner.Source))
	}
	if len(from) > 0 {
		fmt.Fprintf(&b, "; %s", strings.Join(from, ", "))
	}
	if e.VersionID != "" {
		fmt.Fprintf(&b, ", version %s", e.VersionID)
	}
	if e.Commit != "" {
		fmt.Fprintf(&b, ", commit %s", e.Commit)
	}
	return b.String()
}

// foundByText says what found a drift from the run's reason.
func foundByText(reason string) string {
	switch {
	case reason == "schedule" || strings.HasPrefix(reason, "sweep") || strings.HasPrefix(reason, "expiry"):
		return "schedule"
	case reason == "":
		return "a sweep"
	}
	return reason
}

// WriteHistory writes entries one per line, newest first, or a line
// saying there are none.
func WriteHistory(w io.Writer, what string, entries []HistoryEntry) error {
	if len(entries) == 0 {
		_, err := fmt.Fprintf(w, "No history for %s.\n", what)
		return err
	}
	for _, e := range entries {
		if _, err := fmt.Fprintln(w, e.Text()); err != nil {
			return err
		}
	}
	return nil
}

// LateAlert is the follow-up alert of drift a CloudTrail event named
// after an earlier run had reverted it ("found by schedule"): who made
// which change, grouped per principal. ok is false when there is none.
func LateAlert(reps []Report) (subject, message string, ok bool) {
	var all []HistoryEntry
	for _, r := range reps {
		all = append(all, r.AttributedLate...)
	}
	if len(all) == 0 {
		return "", "", false
	}
	var b strings.Builder
	var names []string
	for i, e := range all {
		if e.By == nil {
			continue
		}
		if i == 0 || all[i-1].By == nil || all[i-1].By.Text() != e.By.Text() {
			n := 0
			for _, x := range all[i:] {
				if x.By != nil && x.By.Text() == e.By.Text() {
					n++
				}
			}
			fmt.Fprintf(&b, "%s made %d %s reverted earlier:\n", e.By.Text(), n, strutil.Plural(n, "change"))
			names = append(names, e.By.Name())
		}
		what := e.Change
		switch e.Change {
		case "description":
			what = fmt.Sprintf("description edited to %q", e.Before)
		case "modified":
			what = "modified to " + e.Before
		}
		fmt.Fprintf(&b, "- %s %s: %s %s (found and reverted at %s)\n", e.Group, e.Direction, what, e.Rule, e.At.Format(time.RFC3339))
	}
	subject = fmt.Sprintf("sgrules: %d security group rule %s reverted earlier made by %s", len(all), strutil.Plural(len(all), "change"), strings.Join(slices.Compact(slices.Sorted(slices.Values(names))), ", "))
	return subject, b.String(), true
}
