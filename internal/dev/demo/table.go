package demo

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/strutil"
	"github.com/sgrules/sgrules/pkg/rules"
)

// row is one security group rule as the demo shows it.
type row struct {
	Group       string // Name tag of the group
	RuleID      string
	Key         rules.Key
	Description string
	// Owner is the source file that declares the rule ("web.yaml"), from
	// the ledger; empty when sgrules does not manage the rule.
	Owner string
}

// Managed reports whether sgrules owns the rule.
func (r row) Managed() bool { return r.Owner != "" }

// snapshot reads every rule of the groups from EC2 and their owners from
// the ledger, sorted for display.
func snapshot(ctx context.Context, c clients, groups map[string]string) ([]row, error) {
	ids := make([]string, 0, len(groups))
	names := make(map[string]string, len(groups))
	for name, id := range groups {
		ids = append(ids, id)
		names[id] = name
	}
	var opts []ec2sg.Option
	if c.account != "" {
		opts = append(opts, ec2sg.WithAccount(c.account))
	}
	actual, err := ec2sg.New(c.ec2, opts...).DescribeRules(ctx, ids)
	if err != nil {
		return nil, err
	}
	owned, err := ddbledger.New(c.ddb, Table).For(c.scope).AllPermissions(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the ledger: %w", err)
	}
	owners := map[rules.Key]string{}
	for _, p := range owned {
		owners[p.Key] = ownerText(p.Owners)
	}
	rows := make([]row, 0, len(actual))
	for _, a := range actual {
		rows = append(rows, row{Group: names[a.Key.GroupID], RuleID: a.RuleID, Key: a.Key,
			Description: a.Description, Owner: owners[a.Key]})
	}
	sortRows(rows, names)
	return rows, nil
}

// ownerText names the files of an owner set ("source#rule" →
// "description"): "web.yaml", or "web.yaml +1" when several own the rule.
func ownerText(owners map[rules.Owner]string) string {
	var files []string
	for o := range owners {
		files = append(files, strings.TrimPrefix(o.Source, Prefix))
	}
	slices.Sort(files)
	files = slices.Compact(files)
	switch len(files) {
	case 0:
		return "?"
	case 1:
		return files[0]
	}
	return fmt.Sprintf("%s +%d", files[0], len(files)-1)
}

// sortRows orders rows by group name, ingress first, then by key with
// group peers ordered by name.
func sortRows(rows []row, groupNames map[string]string) {
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		if a.Key.Direction != b.Key.Direction {
			return a.Key.Direction == rules.Ingress
		}
		ak, bk := a.Key, b.Key
		ak.Peer.Value, bk.Peer.Value = peerText(ak.Peer, groupNames), peerText(bk.Peer, groupNames)
		return ak.Less(bk)
	})
}

// isDefaultEgress reports whether r is the "all traffic to 0.0.0.0/0" rule
// EC2 creates with every group, left as it is.
func isDefaultEgress(r row) bool {
	return !r.Managed() && r.Key.Direction == rules.Egress && r.Key.Protocol == rules.ProtoAll &&
		r.Key.Peer == rules.Peer{Kind: rules.PeerCIDR4, Value: "0.0.0.0/0"}
}

// printRules writes rows as a table, grouped by security group, leaving
// out unmanaged default egress rules (counted below the table).
func printRules(w io.Writer, rows []row, groupNames map[string]string, indent string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, indent+"GROUP\tDIRECTION\tPROTOCOL\tPORTS\tPEER\tMANAGED BY\tDESCRIPTION")
	last, hidden := "", 0
	for _, r := range rows {
		if isDefaultEgress(r) {
			hidden++
			continue
		}
		group := r.Group
		if group == last {
			group = ""
		}
		last = r.Group
		fmt.Fprintln(tw, indent+strings.Join(cells(r, groupNames, group), "\t"))
	}
	tw.Flush()
	if hidden > 0 {
		fmt.Fprintf(w, "%s(not shown: %d default egress %s \"all traffic to 0.0.0.0/0\" that EC2 creates with every group; sgrules leaves them alone)\n",
			indent, hidden, strutil.Plural(hidden, "rule"))
	}
}

// cells are a row's columns after GROUP (given) in printRules order.
func cells(r row, groupNames map[string]string, group string) []string {
	owner := r.Owner
	if owner == "" {
		owner = "- (not managed)"
	}
	desc := r.Description
	if desc == "" {
		desc = "-"
	}
	return []string{group, string(r.Key.Direction), protocolText(r.Key.Protocol), portsText(r.Key),
		peerText(r.Key.Peer, groupNames), owner, desc}
}

// protocolText names a canonical protocol: "tcp", "all", "47 (GRE)".
func protocolText(p string) string {
	switch p {
	case rules.ProtoAll:
		return "all"
	case "47":
		return "47 (GRE)"
	case "50":
		return "50 (ESP)"
	case "51":
		return "51 (AH)"
	}
	return p
}

// portsText renders the port range, or ICMP type and code.
func portsText(k rules.Key) string {
	switch k.Protocol {
	case rules.ProtoTCP, rules.ProtoUDP:
		if k.FromPort == k.ToPort {
			return strconv.Itoa(int(k.FromPort))
		}
		return fmt.Sprintf("%d-%d", k.FromPort, k.ToPort)
	case rules.ProtoICMP, rules.ProtoICMPv6:
		switch {
		case k.FromPort == -1:
			return "all types"
		case k.ToPort == -1:
			return fmt.Sprintf("type %d", k.FromPort)
		}
		return fmt.Sprintf("type %d code %d", k.FromPort, k.ToPort)
	}
	return "all"
}

// peerText renders a peer; a group id becomes "sg NAME".
func peerText(p rules.Peer, groupNames map[string]string) string {
	if p.Kind == rules.PeerGroup {
		if name, ok := groupNames[p.Value]; ok {
			return "sg " + name
		}
		return p.Value
	}
	return p.Value
}

// change is one difference between two snapshots, matched by rule key (a
// restored rule has a new rule id).
type change struct {
	Before, After *row
}

func diffRows(before, after []row) []change {
	bm := map[rules.Key]*row{}
	for i := range before {
		bm[before[i].Key] = &before[i]
	}
	var out []change
	seen := map[rules.Key]bool{}
	for i := range after {
		a := &after[i]
		seen[a.Key] = true
		b := bm[a.Key]
		if b == nil || b.Description != a.Description {
			out = append(out, change{Before: b, After: a})
		}
	}
	for i := range before {
		if !seen[before[i].Key] {
			out = append(out, change{Before: &before[i]})
		}
	}
	return out
}

// printChanges writes what happened between two snapshots, plus the rules
// in keep that did not change (the unmanaged rules left alone).
func printChanges(w io.Writer, changes []change, keep []row, groupNames map[string]string, indent string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, indent+"WHAT HAPPENED\tGROUP\tDIRECTION\tPROTOCOL\tPORTS\tPEER\tMANAGED BY\tDESCRIPTION")
	line := func(what string, r row, desc string) {
		c := cells(r, groupNames, r.Group)
		c[len(c)-1] = desc
		fmt.Fprintln(tw, indent+what+"\t"+strings.Join(c, "\t"))
	}
	for _, ch := range changes {
		switch {
		case ch.Before == nil:
			line("restored", *ch.After, orDash(ch.After.Description))
		case ch.After == nil:
			line("revoked", *ch.Before, orDash(ch.Before.Description))
		default:
			line("description reverted", *ch.After, fmt.Sprintf("%q → %q", ch.Before.Description, ch.After.Description))
		}
	}
	for _, r := range keep {
		line("left alone", r, orDash(r.Description))
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
