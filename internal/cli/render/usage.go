package render

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/sgrules/sgrules/pkg/flowlog"
)

// UsageDoc is the JSON document of "sgrules usage": one entry per managed
// permission (a rule with several peers has one per peer), the window,
// and what was read and credited.
type UsageDoc struct {
	Rules       []UsageRule      `json:"rules"`
	Window      UsageWindow      `json:"window"`
	Read        UsageRead        `json:"read"`
	Attribution UsageAttribution `json:"attribution"`
}

// UsageRule is one managed permission's usage. RuleID is "" for a
// declared permission that is not applied (no rule carries it). LastSeen
// is null when no flow was credited in the window.
type UsageRule struct {
	Source         string  `json:"source"`
	Rule           string  `json:"rule"`
	RuleID         string  `json:"ruleId"`
	GroupID        string  `json:"groupId"`
	Direction      string  `json:"direction"`
	Protocol       string  `json:"protocol"`
	FromPort       int32   `json:"fromPort"`
	ToPort         int32   `json:"toPort"`
	Peer           string  `json:"peer"`
	Flows          int64   `json:"flows"`
	Bytes          int64   `json:"bytes"`
	AmbiguousFlows int64   `json:"ambiguousFlows"`
	LastSeen       *string `json:"lastSeen"`
	LastPeer       string  `json:"lastPeer,omitempty"`
}

// UsageWindow is the time window read.
type UsageWindow struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// UsageRead counts what was read.
type UsageRead struct {
	Objects        int64    `json:"objects"`
	BadObjects     int64    `json:"badObjects"`
	Records        int64    `json:"records"`
	Accepted       int64    `json:"accepted"`
	Rejected       int64    `json:"rejected"`
	OutsideWindow  int64    `json:"outsideWindow"`
	NoData         int64    `json:"noData"`
	SkipData       int64    `json:"skipData"`
	Malformed      int64    `json:"malformed"`
	Problems       []string `json:"problems,omitempty"`
	ObjectProblems []string `json:"objectProblems,omitempty"`
}

// UsageAttribution counts the accepted flows by what they credited.
type UsageAttribution struct {
	Credited         int64 `json:"credited"`
	Unmatched        int64 `json:"unmatched"`
	UnknownSide      int64 `json:"unknownSide"`
	NoManagedGroup   int64 `json:"noManagedGroup"`
	UnknownInterface int64 `json:"unknownInterface"`
}

// NewUsageDoc builds the document from the usage of every managed
// permission (applied or not), sorted by source, rule and key.
func NewUsageDoc(usage []flowlog.Usage, read flowlog.Stats, attr flowlog.AttributionStats, from, to time.Time) UsageDoc {
	us := append([]flowlog.Usage(nil), usage...)
	sort.SliceStable(us, func(i, j int) bool {
		a, b := us[i], us[j]
		if a.Owner.Source != b.Owner.Source {
			return a.Owner.Source < b.Owner.Source
		}
		if a.Owner.Rule != b.Owner.Rule {
			return a.Owner.Rule < b.Owner.Rule
		}
		return a.Key.Less(b.Key)
	})
	doc := UsageDoc{
		Rules:  make([]UsageRule, 0, len(us)),
		Window: UsageWindow{From: from.UTC().Format(time.RFC3339), To: to.UTC().Format(time.RFC3339)},
		Read: UsageRead{Objects: read.Objects, BadObjects: read.BadObjects, Records: read.Records, Accepted: read.Accepted,
			Rejected: read.Rejected, OutsideWindow: read.OutsideWindow, NoData: read.NoData, SkipData: read.SkipData,
			Malformed: read.Malformed, ObjectProblems: read.BadObjectErrors},
		Attribution: UsageAttribution{Credited: attr.Credited, Unmatched: attr.Unmatched, UnknownSide: attr.UnknownSide,
			NoManagedGroup: attr.NoManagedGroup, UnknownInterface: attr.UnknownInterface},
	}
	for _, e := range read.Examples {
		doc.Read.Problems = append(doc.Read.Problems, e.String())
	}
	for _, u := range us {
		r := UsageRule{Source: u.Owner.Source, Rule: u.Owner.Rule, RuleID: u.RuleID, GroupID: u.Key.GroupID,
			Direction: string(u.Key.Direction), Protocol: u.Key.Protocol, FromPort: u.Key.FromPort, ToPort: u.Key.ToPort,
			Peer: u.Key.Peer.String(), Flows: u.Flows, Bytes: u.Bytes, AmbiguousFlows: u.AmbiguousFlows}
		if u.Used() {
			s := u.Last.UTC().Format(time.RFC3339)
			if u.Last.IsZero() {
				s = "" // the format has no end field: used, time unknown
			}
			r.LastSeen = &s
			if u.LastPeer.IsValid() {
				r.LastPeer = u.LastPeer.String()
			}
		}
		doc.Rules = append(doc.Rules, r)
	}
	return doc
}

// NoTraffic is what the text shows for a rule that carried nothing.
const NoTraffic = "no traffic in the window"

// UsageText writes the document as a table, one line per managed
// permission, then a summary.
func UsageText(w io.Writer, doc UsageDoc) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FILE\tRULE\tRULE ID\tGROUP\tPEER\tFLOWS\tBYTES\tLAST SEEN")
	used, ambiguous, unapplied := 0, false, 0
	for _, r := range doc.Rules {
		id, flows, bytes, last := r.RuleID, strconv.FormatInt(r.Flows, 10), strconv.FormatInt(r.Bytes, 10), NoTraffic
		if id == "" {
			id, last = "-", "not applied"
			unapplied++
		}
		if r.AmbiguousFlows > 0 {
			flows += "*"
			ambiguous = true
		}
		if r.LastSeen != nil {
			used++
			last = *r.LastSeen
			if last == "" {
				last = "(time not logged)"
			}
			if r.LastPeer != "" {
				last += " from " + r.LastPeer
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Source, r.Rule, id, r.GroupID, r.Peer, flows, bytes, last)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if ambiguous {
		fmt.Fprintln(w, "* includes flows whose opener the logs do not tell (ICMP, both ports ephemeral): see docs/usage.md.")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%d rules: %d used, %d with no traffic in the window %s to %s", len(doc.Rules), used, len(doc.Rules)-used-unapplied, doc.Window.From, doc.Window.To)
	if unapplied > 0 {
		fmt.Fprintf(w, ", %d not applied", unapplied)
	}
	fmt.Fprintln(w, ".")
	rd := doc.Read
	fmt.Fprintf(w, "Read %d log objects", rd.Objects)
	if rd.BadObjects > 0 {
		fmt.Fprintf(w, " (%d unreadable)", rd.BadObjects)
	}
	fmt.Fprintf(w, ": %d accepted and %d rejected records in the window", rd.Accepted, rd.Rejected)
	if rd.Malformed > 0 {
		fmt.Fprintf(w, ", %d malformed lines skipped", rd.Malformed)
	}
	fmt.Fprintln(w, ".")
	a := doc.Attribution
	if n := a.Unmatched + a.UnknownSide + a.NoManagedGroup + a.UnknownInterface; n > 0 {
		fmt.Fprintf(w, "%d accepted flows credited no managed rule: %d allowed by no managed rule, %d on interfaces without a managed group, %d on interfaces that no longer exist, %d whose side is unknown.\n",
			n, a.Unmatched, a.NoManagedGroup, a.UnknownInterface, a.UnknownSide)
	}
	return nil
}
