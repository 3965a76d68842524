package render

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/pkg/flowlog"
	"github.com/sgrules/sgrules/pkg/rules"
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
	Source    string `json:"source"`
	Rule      string `json:"rule"`
	RuleID    string `json:"ruleId"`
	GroupID   string `json:"groupId"`
	GroupName string `json:"groupName,omitempty"`
	Direction string `json:"direction"`
	Protocol  string `json:"protocol"`
	FromPort  int32  `json:"fromPort"`
	ToPort    int32  `json:"toPort"`
	// Peer is the machine key of the peer ("cidr4:0.0.0.0/0",
	// "sg:sg-0abc"), as in a rule key; PeerText is the peer as rule files
	// write it ("0.0.0.0/0", "sg-0abc", "111122223333/sg-0abc").
	Peer           string  `json:"peer"`
	PeerText       string  `json:"peerText"`
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
// permission (applied or not), sorted by source, rule and key; names are
// the groups' readable names (Name tag or group name) by id, if known.
func NewUsageDoc(usage []flowlog.Usage, read flowlog.Stats, attr flowlog.AttributionStats, from, to time.Time, names map[string]string) UsageDoc {
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
		r := UsageRule{Source: u.Owner.Source, Rule: u.Owner.Rule, RuleID: u.RuleID, GroupID: u.Key.GroupID, GroupName: names[u.Key.GroupID],
			Direction: string(u.Key.Direction), Protocol: u.Key.Protocol, FromPort: u.Key.FromPort, ToPort: u.Key.ToPort,
			Peer: u.Key.Peer.String(), PeerText: report.PeerText(u.Key.Peer), Flows: u.Flows, Bytes: u.Bytes, AmbiguousFlows: u.AmbiguousFlows}
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
	fmt.Fprintln(tw, "FILE\tRULE\tRULE ID\tGROUP\tPERMISSION\tFLOWS\tBYTES\tLAST SEEN")
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Source, r.Rule, id, groupText(r), trafficText(r), flows, bytes, last)
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

// UnusedDoc is the JSON document of "sgrules unused": the managed
// permissions that carried no traffic in the window, those another
// permission of the same group allows entirely, and the groups with no
// network interface.
type UnusedDoc struct {
	Unused                 []UnusedRule     `json:"unused"`
	Subsumed               []SubsumedRule   `json:"subsumed"`
	DeclaredTwice          []DeclaredTwice  `json:"declaredTwice"`
	GroupsWithoutInterface []string         `json:"groupsWithoutInterface"`
	Window                 UsageWindow      `json:"window"`
	Read                   UsageRead        `json:"read"`
	Attribution            UsageAttribution `json:"attribution"`
	// StaleReferences are the managed groups' rules EC2 reports stale
	// (DescribeStaleSecurityGroups): referencing a deleted group or one of
	// a VPC no longer peered.
	StaleReferences []StaleReference `json:"staleReferences"`
	// Removed lists, with --write, the rules taken out of each file.
	Removed []RemovedRules `json:"removed,omitempty"`
}

// UnusedRule is a permission with no traffic in the window. Unknown,
// when set, says why the logs cannot tell whether it is used (its group
// has no network interface, or no flow-log record of the window names
// one of its interfaces): such a rule is listed, never removed by
// --write.
type UnusedRule struct {
	UsageRule
	Unknown string `json:"unknown,omitempty"`
}

// Why a rule's usage is unknown (UnusedRule.Unknown).
const (
	UnknownNoInterface = "group has no network interface"
	UnknownNoLogs      = "usage unknown: no flow-log record of the group's interfaces"
)

// MarkUnknown marks the unused rules whose usage the logs cannot tell:
// those of a group without interface (GroupsWithoutInterface) or whose
// group is not in covered (the groups of the interfaces the window's
// records name).
func (d *UnusedDoc) MarkUnknown(covered map[string]bool) {
	noIface := map[string]bool{}
	for _, g := range d.GroupsWithoutInterface {
		noIface[g] = true
	}
	for i := range d.Unused {
		switch g := d.Unused[i].GroupID; {
		case noIface[g]:
			d.Unused[i].Unknown = UnknownNoInterface
		case !covered[g]:
			d.Unused[i].Unknown = UnknownNoLogs
		}
	}
}

// StaleReference is one stale rule: GroupID's rule referencing
// RefGroupID, and the managed rules ("file#rule") declaring it, if any.
type StaleReference struct {
	GroupID       string   `json:"groupId"`
	Direction     string   `json:"direction"`
	Protocol      string   `json:"protocol"`
	FromPort      int32    `json:"fromPort"`
	ToPort        int32    `json:"toPort"`
	RefGroupID    string   `json:"refGroupId"`
	RefVPCID      string   `json:"refVpcId,omitempty"`
	PeeringStatus string   `json:"peeringStatus,omitempty"`
	Owners        []string `json:"owners"`
}

// AddStale adds the stale references, naming the managed rules of the
// group whose peer is the referenced group, same direction and ports.
func (d *UnusedDoc) AddStale(refs []StaleReference, usage UsageDoc) {
	d.StaleReferences = []StaleReference{}
	for _, r := range refs {
		r.Owners = []string{}
		for _, u := range usage.Rules {
			if u.GroupID == r.GroupID && u.Direction == r.Direction && u.FromPort == r.FromPort && u.ToPort == r.ToPort &&
				strings.HasPrefix(u.Peer, "sg:") && strings.HasSuffix(u.Peer, r.RefGroupID) {
				r.Owners = append(r.Owners, u.Source+"#"+u.Rule)
			}
		}
		d.StaleReferences = append(d.StaleReferences, r)
	}
}

// RemovedRules names the rules --write took out of one file (its path
// under the directory written).
type RemovedRules struct {
	File  string   `json:"file"`
	Rules []string `json:"rules"`
}

// SubsumedRule is a permission and one wider permission of its group.
type SubsumedRule struct {
	UsageRule
	By UsageRule `json:"by"`
}

// DeclaredTwice is one permission (one EC2 rule) that several rules
// declare, named "file#rule".
type DeclaredTwice struct {
	RuleID  string `json:"ruleId"`
	GroupID string `json:"groupId"`
	Peer    string `json:"peer"`
	// Text is the permission in the rule files' vocabulary.
	Text   string   `json:"text"`
	Owners []string `json:"owners"`
}

// NewUnusedDoc selects from a usage document the applied permissions
// with no traffic, and adds the subsumed ones (keyed by rule id: the
// wider rule's id) and the groups without an interface.
func NewUnusedDoc(doc UsageDoc, subsumedBy map[string]string, noInterface []string) UnusedDoc {
	out := UnusedDoc{Unused: []UnusedRule{}, Subsumed: []SubsumedRule{}, DeclaredTwice: []DeclaredTwice{}, StaleReferences: []StaleReference{}, GroupsWithoutInterface: noInterface,
		Window: doc.Window, Read: doc.Read, Attribution: doc.Attribution}
	if out.GroupsWithoutInterface == nil {
		out.GroupsWithoutInterface = []string{}
	}
	byID := map[string]UsageRule{}
	for _, r := range doc.Rules {
		if r.RuleID != "" {
			byID[r.RuleID] = r
		}
	}
	owners := map[string][]string{}
	var twice []string
	for _, r := range doc.Rules {
		if r.RuleID == "" {
			continue
		}
		owners[r.RuleID] = append(owners[r.RuleID], r.Source+"#"+r.Rule)
		if len(owners[r.RuleID]) == 2 {
			twice = append(twice, r.RuleID)
		}
	}
	for _, id := range twice {
		r := byID[id]
		out.DeclaredTwice = append(out.DeclaredTwice, DeclaredTwice{RuleID: id, GroupID: r.GroupID, Peer: r.Peer, Text: trafficText(r), Owners: owners[id]})
	}
	for _, r := range doc.Rules {
		if r.RuleID == "" {
			continue
		}
		if r.LastSeen == nil {
			out.Unused = append(out.Unused, UnusedRule{UsageRule: r})
		}
		if by, ok := subsumedBy[r.RuleID]; ok {
			out.Subsumed = append(out.Subsumed, SubsumedRule{UsageRule: r, By: byID[by]})
		}
	}
	return out
}

// UnusedText writes the unused document for a person.
func UnusedText(w io.Writer, doc UnusedDoc) error {
	noIface := map[string]bool{}
	for _, g := range doc.GroupsWithoutInterface {
		noIface[g] = true
	}
	if len(doc.Unused) == 0 {
		fmt.Fprintf(w, "Every managed rule carried traffic in the window %s to %s.\n", doc.Window.From, doc.Window.To)
	} else {
		fmt.Fprintf(w, "%d rules carried no traffic in the window %s to %s:\n\n", len(doc.Unused), doc.Window.From, doc.Window.To)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "FILE\tRULE\tRULE ID\tGROUP\tPERMISSION\tNOTE")
		for _, r := range doc.Unused {
			note := r.Unknown
			if note == "" && noIface[r.GroupID] {
				note = UnknownNoInterface
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Source, r.Rule, r.RuleID, groupText(r.UsageRule), trafficText(r.UsageRule), note)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(doc.Subsumed) > 0 {
		fmt.Fprintf(w, "\n%d rules allow nothing that another rule of their group does not:\n\n", len(doc.Subsumed))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "FILE\tRULE\tRULE ID\tPERMISSION\tWITHIN")
		for _, s := range doc.Subsumed {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s#%s %s (%s)\n", s.Source, s.Rule, s.RuleID, trafficText(s.UsageRule),
				s.By.Source, s.By.Rule, s.By.RuleID, trafficText(s.By))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(doc.DeclaredTwice) > 0 {
		fmt.Fprintf(w, "\n%d rules are declared more than once:\n", len(doc.DeclaredTwice))
		for _, d := range doc.DeclaredTwice {
			fmt.Fprintf(w, "  %s (%s %s): %s\n", d.RuleID, d.GroupID, d.Text, strings.Join(d.Owners, ", "))
		}
	}
	if len(doc.GroupsWithoutInterface) > 0 {
		fmt.Fprintf(w, "\nGroups with managed rules and no network interface: %s.\n", strings.Join(doc.GroupsWithoutInterface, ", "))
	}
	if len(doc.StaleReferences) > 0 {
		fmt.Fprintf(w, "\n%d stale group references (DescribeStaleSecurityGroups: the group was deleted or its VPC is no longer peered):\n", len(doc.StaleReferences))
		for _, r := range doc.StaleReferences {
			owners := "not declared in the rule files"
			if len(r.Owners) > 0 {
				owners = strings.Join(r.Owners, ", ")
			}
			prep := "from"
			if r.Direction == string(rules.Egress) {
				prep = "to"
			}
			fmt.Fprintf(w, "  %s %s %s %d-%d %s %s: %s\n", r.GroupID, r.Direction, r.Protocol, r.FromPort, r.ToPort, prep, r.RefGroupID, owners)
		}
	}
	if doc.Removed != nil {
		if len(doc.Removed) == 0 {
			fmt.Fprintln(w, "\nRemoved no rule from the files (--write): none is unused with its usage known.")
		} else {
			fmt.Fprintln(w, "\nRemoved from the files (--write), for a reviewed change:")
			for _, r := range doc.Removed {
				fmt.Fprintf(w, "  %s: %s\n", r.File, strings.Join(r.Rules, ", "))
			}
		}
	}
	rd := doc.Read
	fmt.Fprintf(w, "\nRead %d log objects", rd.Objects)
	if rd.BadObjects > 0 {
		fmt.Fprintf(w, " (%d unreadable)", rd.BadObjects)
	}
	fmt.Fprintf(w, ": %d accepted and %d rejected records in the window", rd.Accepted, rd.Rejected)
	if rd.Malformed > 0 {
		fmt.Fprintf(w, ", %d malformed lines skipped", rd.Malformed)
	}
	fmt.Fprintln(w, ".")
	return nil
}

// trafficText is the permission in the rule files' vocabulary: "tcp
// 443 from 0.0.0.0/0", "all traffic to sg-0abc" (report.RuleText).
func trafficText(r UsageRule) string {
	k := rules.Key{Direction: rules.Direction(r.Direction), Protocol: r.Protocol, FromPort: r.FromPort, ToPort: r.ToPort}
	peer := r.PeerText
	if peer == "" {
		peer = r.Peer
	}
	prep := " from "
	if k.Direction == rules.Egress {
		prep = " to "
	}
	return report.Ports(k) + prep + peer
}

// groupText is "sg-… (name)", or the id alone.
func groupText(r UsageRule) string {
	if r.GroupName != "" {
		return r.GroupID + " (" + r.GroupName + ")"
	}
	return r.GroupID
}
