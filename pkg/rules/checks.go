package rules

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Checks that span the fields of a rule or the rules of a file.

// familyChecks checks protocol against address family.
func (p *parser) familyChecks(r *Rule, nodes map[string]*yaml.Node) {
	if r.Protocol == ProtoICMPv6 && len(r.CIDRBlocks) > 0 {
		p.errf(nodes["cidrBlocks"], r.Name, "cidrBlocks", "cidrBlocks: icmpv6 applies to IPv6 only: move the IPv4 ranges to an icmp rule")
	}
	if r.Protocol == ProtoICMP && len(r.IPv6CIDRBlocks) > 0 {
		p.warnf(r.FieldPos["ipv6CidrBlocks"], r.Name, "ipv6CidrBlocks", "ipv6CidrBlocks: icmp is IPv4 only and never matches IPv6 traffic: use icmpv6")
	}
}

func describePorts(r *Rule) string {
	switch {
	case !HasPorts(r.Protocol):
		return "protocol " + r.Protocol
	case r.FromPort == r.ToPort:
		return fmt.Sprintf("%s %d", r.Protocol, r.FromPort)
	default:
		return fmt.Sprintf("%s %d-%d", r.Protocol, r.FromPort, r.ToPort)
	}
}

// QuotaPerGroup is the default EC2 quota of rules per security group, per
// direction and address family. Exceeding it in one file is a warning (the
// quota can be raised).
const QuotaPerGroup = 60

// fileChecks runs the checks that span rules: the same permission declared
// twice (decidable before resolution when the group references are equal),
// and the per-group quota.
func (p *parser) fileChecks(f *File) {
	ref := func(r *Rule) []string { return []string{r.SecurityGroup.String()} }
	peerRef := func(_ *Rule, _ int, g GroupRef) []string {
		if g.IsID() {
			return []string{g.ID}
		}
		return []string{g.String()}
	}
	eachPermission(f, ref, peerRef, func(r *Rule, k Key, at site, first *site) {
		if first != nil {
			p.add(SeverityError, at.pos.Line, at.pos.Col, r.Name, at.field,
				fmt.Sprintf("%s: same permission as %s: %s %s %s", at.field, first, r.Direction, describePorts(r), peerText(k.Peer)))
		}
	})
	p.quota(f)
	p.worldOpen(f)
}

// worldOpen warns about ingress rules open to the world: the CIDRs the
// file grants a group for the rule's traffic (its own, and those of the
// file's rules for the same group whose protocol and ports include it),
// taken together, cover the internet of one address family (Internet: all
// routable IPv4, or 2000::/3), and the rule's own CIDRs are among the
// fewest responsible. Only ICMP and tcp 80 and 443 are expected to be open
// to the world (not protocol -1).
func (p *parser) worldOpen(f *File) {
	for i := range f.Rules {
		r := &f.Rules[i]
		if r.Direction != Ingress || r.Protocol == ProtoICMP || r.Protocol == ProtoICMPv6 ||
			r.Protocol == ProtoTCP && r.FromPort == r.ToPort && (r.FromPort == 80 || r.FromPort == 443) {
			continue
		}
		for _, v6 := range []bool{false, true} {
			field := "cidrBlocks"
			if v6 {
				field = "ipv6CidrBlocks"
			}
			var set []netip.Prefix
			var from []*Rule // the rule of each prefix of set
			for j := range f.Rules {
				o := &f.Rules[j]
				if o.Direction != Ingress || o.SecurityGroup.String() != r.SecurityGroup.String() || !includes(o, r) {
					continue
				}
				list := o.CIDRBlocks
				if v6 {
					list = o.IPv6CIDRBlocks
				}
				for _, c := range list {
					set = append(set, c)
					from = append(from, o)
				}
			}
			idx, ok := Cover(set, Internet(v6))
			if !ok {
				continue
			}
			own, at := false, ""
			var others []string
			responsible := make([]netip.Prefix, len(idx))
			for k, x := range idx {
				responsible[k] = set[x]
				if from[x] != r {
					if !slices.Contains(others, from[x].Name) {
						others = append(others, from[x].Name)
					}
					continue
				}
				if !own {
					own = true
					for n, c := range r.CIDRBlocks {
						if !v6 && c == set[x] {
							at = fmt.Sprintf("%s[%d]", field, n)
						}
					}
					for n, c := range r.IPv6CIDRBlocks {
						if v6 && c == set[x] {
							at = fmt.Sprintf("%s[%d]", field, n)
						}
					}
				}
			}
			if !own {
				continue
			}
			what := PrefixesText(responsible)
			if len(others) > 0 {
				what += " with rule " + strings.Join(others, ", ")
			}
			if r.Protocol == ProtoAll {
				p.warnf(r.FieldPos[at], r.Name, at, "%s: all traffic (protocol -1) is open to the world (%s)", at, what)
			} else {
				p.warnf(r.FieldPos[at], r.Name, at, "%s: %s is open to the world (%s); only tcp 80 and 443 are expected to be", at, describePorts(r), what)
			}
		}
	}
}

// includes reports whether rule o grants at least the traffic of rule r
// (same direction assumed): protocol -1, or r's protocol with ports (ICMP
// type) including r's.
func includes(o, r *Rule) bool {
	switch {
	case o.Protocol == ProtoAll:
		return true
	case o.Protocol != r.Protocol:
		return false
	case o.Protocol == ProtoTCP || o.Protocol == ProtoUDP:
		return o.FromPort <= r.FromPort && r.ToPort <= o.ToPort
	case o.Protocol == ProtoICMP || o.Protocol == ProtoICMPv6:
		return o.FromPort == -1 || o.FromPort == r.FromPort && (o.ToPort == -1 || o.ToPort == r.ToPort)
	}
	return true
}

// quota warns when a file declares more permissions for one group,
// direction and address family than EC2's default quota.
func (p *parser) quota(f *File) {
	counts := map[string]int{}
	warned := map[string]bool{}
	for _, r := range f.Rules {
		for _, fam := range []string{"IPv4", "IPv6"} {
			n := len(r.SourceSecurityGroups) + len(r.PrefixListIDs)
			if fam == "IPv4" {
				n += len(r.CIDRBlocks)
			} else {
				n += len(r.IPv6CIDRBlocks)
			}
			if n == 0 {
				continue
			}
			ck := r.SecurityGroup.String() + "|" + string(r.Direction) + "|" + fam
			counts[ck] += n
			if counts[ck] > QuotaPerGroup && !warned[ck] {
				warned[ck] = true
				p.warnf(r.FieldPos["securityGroup"], r.Name, "securityGroup",
					"securityGroup: %s has %d %s %s permissions in this file so far, over the default EC2 quota of %d per group, direction and address family",
					r.SecurityGroup, counts[ck], r.Direction, fam, QuotaPerGroup)
			}
		}
	}
}

// site is where a permission is declared: a rule, the peer's field path
// and its position.
type site struct {
	rule, field string
	pos         Pos
}

// String renders "rule R FIELD (line L, col C)", without the position
// when it is unknown.
func (s site) String() string {
	out := fmt.Sprintf("rule %s %s", s.rule, s.field)
	if s.pos.Line > 0 {
		out += fmt.Sprintf(" (line %d, col %d)", s.pos.Line, s.pos.Col)
	}
	return out
}

// eachPermission calls fn for every permission the rules declare, in file
// order, with where it is declared and, when the same key was declared
// before, where that was (first is nil the first time). groups gives the
// ids a rule's securityGroup stands for, peerGroups those of its i-th
// source group: references before resolution, ids after. This is the one
// duplicate-permission check, used by Parse and by Expand.
func eachPermission(f *File, groups func(r *Rule) []string, peerGroups func(r *Rule, i int, g GroupRef) []string,
	fn func(r *Rule, k Key, at site, first *site)) {
	seen := map[Key]site{}
	for i := range f.Rules {
		r := &f.Rules[i]
		gids := groups(r)
		peers := rulePeers(r, func(j int, g GroupRef) []string { return peerGroups(r, j, g) })
		for _, gid := range gids {
			for _, pe := range peers {
				k := Key{GroupID: gid, Direction: r.Direction, Protocol: r.Protocol,
					FromPort: r.FromPort, ToPort: r.ToPort, Peer: pe.peer}
				at := site{r.Name, pe.field, r.FieldPos[pe.field]}
				if first, dup := seen[k]; dup {
					fn(r, k, at, &first)
					continue
				}
				seen[k] = at
				fn(r, k, at, nil)
			}
		}
	}
}

type rulePeer struct {
	peer  Peer
	field string
}

// rulePeers lists a rule's peers with their field paths; groups are mapped
// through resolve (which returns the candidate ids).
func rulePeers(r *Rule, resolve func(int, GroupRef) []string) []rulePeer {
	var out []rulePeer
	for i, c := range r.CIDRBlocks {
		out = append(out, rulePeer{Peer{Kind: PeerCIDR4, Value: c.String()}, fmt.Sprintf("cidrBlocks[%d]", i)})
	}
	for i, c := range r.IPv6CIDRBlocks {
		out = append(out, rulePeer{Peer{Kind: PeerCIDR6, Value: c.String()}, fmt.Sprintf("ipv6CidrBlocks[%d]", i)})
	}
	for i := range r.SourceSecurityGroups {
		g := r.SourceSecurityGroups[i]
		for _, id := range resolve(i, g) {
			out = append(out, rulePeer{Peer{Kind: PeerGroup, Value: id, Account: g.Account}, fmt.Sprintf("sourceSecurityGroups[%d]", i)})
		}
	}
	for i, pl := range r.PrefixListIDs {
		out = append(out, rulePeer{Peer{Kind: PeerPrefixList, Value: pl}, fmt.Sprintf("prefixListIds[%d]", i)})
	}
	return out
}

// peerText renders a peer's value for messages: "10.0.0.0/8", "sg-…" or
// "111122223333/sg-…".
func peerText(p Peer) string {
	if p.Account != "" {
		return p.Account + "/" + p.Value
	}
	return p.Value
}
