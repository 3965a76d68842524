package importer

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Options tune the conversion.
type Options struct {
	// Name is the File's name (for diagnostics); "import.yaml" if empty.
	Name string
	// Exclusive declares every imported group exclusive: rules added
	// outside sgrules later are revoked.
	Exclusive bool
}

// Skipped is a rule that a rule file cannot express.
type Skipped struct {
	Rule   reconcile.ActualRule
	Reason string
}

// MaxNameLen is the longest rule name rules.Parse accepts.
const MaxNameLen = 128

// Convert builds a rule file declaring every rule of actual. groups names
// the groups (labels for rule names); the imported groups are the groups
// listed, in their order, and rules of other groups are ignored. Rules a
// file cannot express are returned as skipped, not declared.
func Convert(groups []reconcile.GroupInfo, actual []reconcile.ActualRule, opts Options) (*rules.File, []Skipped) {
	f := &rules.File{Name: opts.Name, Rules: []rules.Rule{}}
	if f.Name == "" {
		f.Name = "import.yaml"
	}
	label := map[string]string{}
	for _, g := range groups {
		label[g.GroupID] = Label(g)
	}

	type mergeKey struct {
		group    string
		dir      rules.Direction
		proto    string
		from, to int32
		desc     string
	}
	merged := map[mergeKey][]rules.Peer{}
	var skipped []Skipped
	seen := map[rules.Key]bool{}
	for _, a := range actual {
		if _, ok := label[a.Key.GroupID]; !ok {
			continue
		}
		if seen[a.Key] {
			continue
		}
		seen[a.Key] = true
		if why := inexpressible(a.Key); why != "" {
			skipped = append(skipped, Skipped{Rule: a, Reason: why})
			continue
		}
		k := mergeKey{a.Key.GroupID, a.Key.Direction, a.Key.Protocol, a.Key.FromPort, a.Key.ToPort, a.Description}
		merged[k] = append(merged[k], a.Key.Peer)
	}

	keys := make([]mergeKey, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	order := map[string]int{}
	for i, g := range groups {
		if _, dup := order[g.GroupID]; !dup {
			order[g.GroupID] = i
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.group != b.group {
			return order[a.group] < order[b.group]
		}
		if a.dir != b.dir {
			return a.dir == rules.Ingress
		}
		if a.proto != b.proto {
			return protoRank(a.proto) < protoRank(b.proto)
		}
		if a.from != b.from {
			return a.from < b.from
		}
		if a.to != b.to {
			return a.to < b.to
		}
		return a.desc < b.desc
	})

	names := newNamer()
	for _, k := range keys {
		peers := merged[k]
		sort.Slice(peers, func(i, j int) bool {
			if peers[i].Kind != peers[j].Kind {
				return peerRank(peers[i].Kind) < peerRank(peers[j].Kind)
			}
			return peerLess(peers[i], peers[j])
		})
		r := rules.Rule{
			Name:          names.next(RuleName(label[k.group], k.dir, k.proto, k.from, k.to)),
			SecurityGroup: rules.GroupRef{ID: k.group},
			Direction:     k.dir,
			Protocol:      k.proto,
			FromPort:      k.from,
			ToPort:        k.to,
			Description:   k.desc,
		}
		for _, p := range peers {
			switch p.Kind {
			case rules.PeerCIDR4:
				r.CIDRBlocks = append(r.CIDRBlocks, netip.MustParsePrefix(p.Value))
			case rules.PeerCIDR6:
				r.IPv6CIDRBlocks = append(r.IPv6CIDRBlocks, netip.MustParsePrefix(p.Value))
			case rules.PeerGroup:
				// A group of another account keeps its account
				// ({groupId, account}): a bare id would name a group
				// of the file's own account.
				r.SourceSecurityGroups = append(r.SourceSecurityGroups, rules.GroupRef{ID: p.Value, Account: p.Account})
			case rules.PeerPrefixList:
				r.PrefixListIDs = append(r.PrefixListIDs, p.Value)
			}
		}
		f.Rules = append(f.Rules, r)
	}
	if opts.Exclusive {
		done := map[string]bool{}
		for _, g := range groups {
			if !done[g.GroupID] {
				done[g.GroupID] = true
				f.ExclusiveGroups = append(f.ExclusiveGroups, rules.GroupRef{ID: g.GroupID})
			}
		}
	}
	return f, skipped
}

// inexpressible says why a rule cannot be declared in a rule file ("" if
// it can).
func inexpressible(k rules.Key) string {
	switch k.Peer.Kind {
	case rules.PeerCIDR4, rules.PeerCIDR6:
		p, err := netip.ParsePrefix(k.Peer.Value)
		if err != nil || p.Masked() != p {
			return fmt.Sprintf("peer %q is not a canonical CIDR", report.PeerText(k.Peer))
		}
		if k.Protocol == rules.ProtoICMPv6 && k.Peer.Kind == rules.PeerCIDR4 {
			return "icmpv6 with an IPv4 range never matches any traffic"
		}
	case rules.PeerGroup, rules.PeerPrefixList:
		if k.Peer.Value == "" {
			return "empty peer"
		}
		if k.Peer.Account != "" && (k.Peer.Kind != rules.PeerGroup || !rules.IsAccountID(k.Peer.Account)) {
			return fmt.Sprintf("peer account %q is not a 12-digit account id", k.Peer.Account)
		}
	default:
		return fmt.Sprintf("unknown peer kind %q", k.Peer.Kind)
	}
	return ""
}

func protoRank(p string) string {
	switch p {
	case rules.ProtoAll:
		return "0"
	case rules.ProtoTCP:
		return "1"
	case rules.ProtoUDP:
		return "2"
	case rules.ProtoICMP:
		return "3"
	case rules.ProtoICMPv6:
		return "4"
	}
	return fmt.Sprintf("5%03s", p)
}

func peerRank(k rules.PeerKind) int {
	switch k {
	case rules.PeerCIDR4:
		return 0
	case rules.PeerCIDR6:
		return 1
	case rules.PeerGroup:
		return 2
	}
	return 3
}

// peerLess orders CIDRs by address then length, the rest by text.
func peerLess(a, b rules.Peer) bool {
	pa, ea := netip.ParsePrefix(a.Value)
	pb, eb := netip.ParsePrefix(b.Value)
	if ea == nil && eb == nil {
		if c := pa.Addr().Compare(pb.Addr()); c != 0 {
			return c < 0
		}
		return pa.Bits() < pb.Bits()
	}
	if a.Value != b.Value {
		return a.Value < b.Value
	}
	return a.Account < b.Account
}

// Label is the readable part of a group's rule names: its Name tag, else
// its group name, else its id, sanitised (see Sanitize).
func Label(g reconcile.GroupInfo) string {
	for _, s := range []string{g.Tags["Name"], g.Name, g.GroupID} {
		if l := Sanitize(s); l != "" {
			return l
		}
	}
	return "group"
}

// Sanitize reduces s to the rule-name alphabet: lower-case letters and
// digits kept, '.', '_' and '-' kept, every other run of characters
// becomes one '-'; leading and trailing '-', '.' and '_' are dropped.
func Sanitize(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_':
			b.WriteRune(r)
			dash = false
		default:
			if !dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = true
		}
	}
	return strings.Trim(b.String(), "-._")
}

// RuleName is "LABEL-DIRECTION-PROTOCOL[-PORTS]": "web-ingress-tcp-443",
// "web-ingress-udp-1000-2000", "web-ingress-icmp-8", "web-ingress-icmp-3-4",
// "web-ingress-icmpv6" (all types), "web-egress-all", "web-ingress-proto-47".
// It is cut to MaxNameLen.
func RuleName(label string, dir rules.Direction, proto string, from, to int32) string {
	var p string
	switch proto {
	case rules.ProtoAll:
		p = "all"
	case rules.ProtoTCP, rules.ProtoUDP:
		p = proto + "-" + strconv.Itoa(int(from))
		if to != from {
			p += "-" + strconv.Itoa(int(to))
		}
	case rules.ProtoICMP, rules.ProtoICMPv6:
		p = proto
		if from != -1 {
			p += "-" + strconv.Itoa(int(from))
			if to != -1 {
				p += "-" + strconv.Itoa(int(to))
			}
		}
	default:
		p = "proto-" + proto
	}
	suffix := "-" + string(dir) + "-" + p
	if len(label)+len(suffix) > MaxNameLen {
		label = strings.TrimRight(label[:MaxNameLen-len(suffix)], "-._")
	}
	return label + suffix
}

// namer hands out unique names: the first use of a base keeps it, later
// ones get "-2", "-3"…, cut so the whole stays within MaxNameLen.
type namer struct {
	used map[string]bool
}

func newNamer() *namer { return &namer{used: map[string]bool{}} }

func (n *namer) next(base string) string {
	if !n.used[base] {
		n.used[base] = true
		return base
	}
	for i := 2; ; i++ {
		suffix := "-" + strconv.Itoa(i)
		b := base
		if len(b)+len(suffix) > MaxNameLen {
			b = b[:MaxNameLen-len(suffix)]
		}
		if name := b + suffix; !n.used[name] {
			n.used[name] = true
			return name
		}
	}
}
