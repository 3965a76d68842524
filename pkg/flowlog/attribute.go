package flowlog

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"time"

	"github.com/sgrules/sgrules/pkg/rules"
)

// Rule is one managed permission to credit: its canonical key, its EC2
// rule id, and who declares it.
type Rule struct {
	Key    rules.Key
	RuleID string
	Owner  rules.Owner
}

// Usage is what the flows credited to one rule add up to.
type Usage struct {
	Rule
	// Flows counts flow-log records of the connections credited, a
	// connection's request and reply records in one capture window
	// counting once (the larger of the two directions' counts). Bytes
	// counts both directions.
	Flows, Bytes int64
	// AmbiguousFlows is the part of Flows credited from Ambiguous flows
	// (initiator unknown) or from ICMP records to a rule naming one ICMP
	// type (flow logs carry no type): evidence, not proof.
	AmbiguousFlows int64
	// First and Last seen, zero when unused (or the format has no times).
	First, Last time.Time
	// LastPeer is the peer address of the flow that was seen last.
	LastPeer netip.Addr
}

// Used reports whether any flow was credited.
func (u Usage) Used() bool { return u.Flows > 0 }

// Interface is what attribution needs of a network interface.
type Interface struct {
	ID    string
	VPCID string
	// Groups are the ids of its security groups.
	Groups []string
	// Addrs are its addresses (private, public, IPv6) as single-address
	// prefixes, and its delegated prefixes.
	Addrs []netip.Prefix
}

// Has reports whether a is one of the interface's addresses.
func (i Interface) Has(a netip.Addr) bool {
	for _, p := range i.Addrs {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Lookup finds interfaces and prefix lists; an adapter implements it with
// batched, cached AWS calls.
type Lookup interface {
	// Interfaces returns the interfaces with these ids that exist; the
	// missing ones (deleted since) are left out.
	Interfaces(ctx context.Context, ids []string) (map[string]Interface, error)
	// InterfacesByAddress returns, per address, the interfaces holding it.
	InterfacesByAddress(ctx context.Context, addrs []netip.Addr) (map[netip.Addr][]Interface, error)
	// PrefixLists returns the entries of each prefix list.
	PrefixLists(ctx context.Context, ids []string) (map[string][]netip.Prefix, error)
}

// AttributionStats counts the accepted flows (Flows as in Usage) that
// credited nothing, by cause.
type AttributionStats struct {
	// UnknownInterface: the interface no longer exists (or never had a
	// security group: NAT gateways, some endpoints).
	UnknownInterface int64
	// NoManagedGroup: none of the interface's groups holds a managed rule.
	NoManagedGroup int64
	// UnknownSide: neither end is one of the interface's addresses and
	// the format has no flow-direction.
	UnknownSide int64
	// Unmatched: no managed rule allows it (an unmanaged rule of the same
	// groups does, or a group the files do not manage).
	Unmatched int64
	// Credited flows, counting each once however many rules they credit.
	Credited int64
}

// Report is the outcome of Attribute: one Usage per managed rule, sorted
// by key, used or not.
type Report struct {
	Rules []Usage
	Stats AttributionStats
}

// prepared is a managed rule with its peer parsed.
type prepared struct {
	idx    int
	prefix netip.Prefix // cidr4, cidr6
}

// Attribute credits the aggregated flows to the managed rules. A flow on
// an interface is credited to every managed rule of the interface's
// groups that allows it: for the end of the flow that is the interface,
// an inbound rule when the peer opened the flow (its port the listening
// port), an outbound rule when the interface did (the peer's port);
// protocol; the peer's address against the rule's CIDR, the entries of
// its prefix list, or the groups of the interfaces holding that address.
// Ambiguous flows try both ends as the opener, and credit is marked so.
func Attribute(ctx context.Context, flows map[FlowKey]*Counter, managed []Rule, lk Lookup) (Report, error) {
	a := &attribution{managed: managed, byGroup: map[string]map[rules.Direction][]prepared{}}
	usage := make([]Usage, len(managed))
	var plIDs []string
	for i, r := range managed {
		usage[i].Rule = r
		p := prepared{idx: i}
		switch r.Key.Peer.Kind {
		case rules.PeerCIDR4, rules.PeerCIDR6:
			pfx, err := netip.ParsePrefix(r.Key.Peer.Value)
			if err != nil {
				return Report{}, fmt.Errorf("rule %s: peer: %w", r.Key, err)
			}
			p.prefix = pfx
		case rules.PeerPrefixList:
			plIDs = append(plIDs, r.Key.Peer.Value)
		}
		m := a.byGroup[r.Key.GroupID]
		if m == nil {
			m = map[rules.Direction][]prepared{}
			a.byGroup[r.Key.GroupID] = m
		}
		m[r.Key.Direction] = append(m[r.Key.Direction], p)
	}

	// Iterate in a stable order, so that LastPeer is deterministic.
	keys := make([]FlowKey, 0, len(flows))
	var ifaceIDs []string
	seen := map[string]bool{}
	for k := range flows {
		keys = append(keys, k)
		if !seen[k.Interface] {
			seen[k.Interface] = true
			ifaceIDs = append(ifaceIDs, k.Interface)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keyLess(keys[i], keys[j]) })
	sort.Strings(ifaceIDs)
	if len(ifaceIDs) > 0 && len(managed) > 0 {
		var err error
		if a.ifaces, err = lk.Interfaces(ctx, ifaceIDs); err != nil {
			return Report{}, fmt.Errorf("look up interfaces: %w", err)
		}
	}
	if len(plIDs) > 0 {
		var err error
		if a.pls, err = lk.PrefixLists(ctx, sortedUnique(plIDs)); err != nil {
			return Report{}, fmt.Errorf("look up prefix lists: %w", err)
		}
	}

	// Peer addresses to look up: those a rule referencing a group could
	// match by protocol and port.
	var addrs []netip.Addr
	seenAddr := map[netip.Addr]bool{}
	for _, k := range keys {
		in, ws, _ := a.ways(k, flows[k])
		for _, w := range ws {
			for _, g := range in.Groups {
				for _, p := range a.byGroup[g][w.dir] {
					r := managed[p.idx].Key
					if r.Peer.Kind != rules.PeerGroup || seenAddr[w.peer] {
						continue
					}
					if ok, _ := allowsTraffic(r, k.Protocol, w.port); ok {
						seenAddr[w.peer] = true
						addrs = append(addrs, w.peer)
					}
				}
			}
		}
	}
	a.peerGroups = map[netip.Addr]map[string]bool{}
	if len(addrs) > 0 {
		sort.Slice(addrs, func(i, j int) bool { return addrs[i].Less(addrs[j]) })
		found, err := lk.InterfacesByAddress(ctx, addrs)
		if err != nil {
			return Report{}, fmt.Errorf("look up peer interfaces: %w", err)
		}
		for addr, ins := range found {
			gs := map[string]bool{}
			for _, in := range ins {
				for _, g := range in.Groups {
					gs[g] = true
				}
			}
			a.peerGroups[addr] = gs
		}
	}

	var st AttributionStats
	for _, k := range keys {
		c := flows[k]
		total := max(c.Fwd, c.Rev)
		in, ws, why := a.ways(k, c)
		switch why {
		case noInterface:
			st.UnknownInterface += total
			continue
		case noManagedGroup:
			st.NoManagedGroup += total
			continue
		case noSide:
			st.UnknownSide += total
			continue
		}
		credited := false
		for _, w := range ws {
			for _, g := range in.Groups {
				for _, p := range a.byGroup[g][w.dir] {
					match, vague := a.allows(p, k.Protocol, w.port, w.peer)
					if !match {
						continue
					}
					credited = true
					u := &usage[p.idx]
					u.Flows += w.flows
					u.Bytes += c.FwdBytes + c.RevBytes
					if vague || k.Class == Ambiguous {
						u.AmbiguousFlows += w.flows
					}
					if c.First > 0 && (u.First.IsZero() || c.First < u.First.Unix()) {
						u.First = time.Unix(c.First, 0).UTC()
					}
					if !u.LastPeer.IsValid() || (c.Last > 0 && (u.Last.IsZero() || c.Last >= u.Last.Unix())) {
						u.LastPeer = w.peer
					}
					if c.Last > 0 && (u.Last.IsZero() || c.Last > u.Last.Unix()) {
						u.Last = time.Unix(c.Last, 0).UTC()
					}
				}
			}
		}
		if credited {
			st.Credited += total
		} else {
			st.Unmatched += total
		}
	}
	sort.SliceStable(usage, func(i, j int) bool {
		if usage[i].Key != usage[j].Key {
			return usage[i].Key.Less(usage[j].Key)
		}
		return usage[i].RuleID < usage[j].RuleID
	})
	return Report{Rules: usage, Stats: st}, nil
}

// attribution is the state of one Attribute call.
type attribution struct {
	managed    []Rule
	byGroup    map[string]map[rules.Direction][]prepared
	ifaces     map[string]Interface
	pls        map[string][]netip.Prefix
	peerGroups map[netip.Addr]map[string]bool
}

// way is one way a flow may have been opened, seen from the interface:
// the direction of the rule that would allow it, the peer, the listening
// port, and the flows it counts.
type way struct {
	dir   rules.Direction
	peer  netip.Addr
	port  uint16
	flows int64
}

// Why a flow has no way to credit.
const (
	noInterface = iota + 1
	noManagedGroup
	noSide
)

// ways returns the interface of a flow and the ways it may have been
// opened: A opened it (listening port BPort), and for Ambiguous flows
// also B (APort), each only when its opener sent something.
func (a *attribution) ways(k FlowKey, c *Counter) (Interface, []way, int) {
	in, ok := a.ifaces[k.Interface]
	if !ok {
		return in, nil, noInterface
	}
	managed := false
	for _, g := range in.Groups {
		managed = managed || a.byGroup[g] != nil
	}
	if !managed {
		return in, nil, noManagedGroup
	}
	local := k.Local
	if local == SideUnknown {
		ha, hb := in.Has(k.A), in.Has(k.B)
		switch {
		case ha && !hb:
			local = SideA
		case hb && !ha:
			local = SideB
		default:
			return in, nil, noSide
		}
	}
	mk := func(opener, listener netip.Addr, port uint16, flows int64, openerLocal bool) way {
		if openerLocal {
			return way{dir: rules.Egress, peer: listener, port: port, flows: flows}
		}
		return way{dir: rules.Ingress, peer: opener, port: port, flows: flows}
	}
	if k.Class != Ambiguous {
		return in, []way{mk(k.A, k.B, k.BPort, max(c.Fwd, c.Rev), local == SideA)}, 0
	}
	var ws []way
	if c.Fwd > 0 {
		ws = append(ws, mk(k.A, k.B, k.BPort, c.Fwd, local == SideA))
	}
	if c.Rev > 0 {
		ws = append(ws, mk(k.B, k.A, k.APort, c.Rev, local == SideB))
	}
	return in, ws, 0
}

// allows reports whether the managed rule p allows a flow of protocol
// proto to the listening port from (ingress) or to (egress) peer, and
// whether the match is vague (an ICMP rule naming a type: the type is not
// logged).
func (a *attribution) allows(p prepared, proto uint8, port uint16, peer netip.Addr) (match, vague bool) {
	r := a.managed[p.idx].Key
	ok, vague := allowsTraffic(r, proto, port)
	if !ok {
		return false, false
	}
	switch r.Peer.Kind {
	case rules.PeerCIDR4, rules.PeerCIDR6:
		return p.prefix.Contains(peer), vague
	case rules.PeerPrefixList:
		for _, e := range a.pls[r.Peer.Value] {
			if e.Contains(peer) {
				return true, vague
			}
		}
		return false, false
	case rules.PeerGroup:
		return a.peerGroups[peer][r.Peer.Value], vague
	}
	return false, false
}

// allowsTraffic reports whether rule r allows protocol proto to the
// listening port, whatever the peer, and whether the match is vague (an
// ICMP rule naming a type: flow logs carry no type).
func allowsTraffic(r rules.Key, proto uint8, port uint16) (match, vague bool) {
	switch r.Protocol {
	case rules.ProtoAll:
		return true, false
	case rules.ProtoTCP, rules.ProtoUDP:
		if ProtocolName(proto) != r.Protocol {
			return false, false
		}
		from, to := r.Ports()
		return int32(port) >= from && int32(port) <= to, false
	case rules.ProtoICMP, rules.ProtoICMPv6:
		return ProtocolName(proto) == r.Protocol, r.FromPort != -1
	}
	return ProtocolName(proto) == r.Protocol, false
}

func keyLess(a, b FlowKey) bool {
	if a.Interface != b.Interface {
		return a.Interface < b.Interface
	}
	if a.Protocol != b.Protocol {
		return a.Protocol < b.Protocol
	}
	if a.Class != b.Class {
		return a.Class < b.Class
	}
	if a.A != b.A {
		return a.A.Less(b.A)
	}
	if a.B != b.B {
		return a.B.Less(b.B)
	}
	if a.APort != b.APort {
		return a.APort < b.APort
	}
	if a.BPort != b.BPort {
		return a.BPort < b.BPort
	}
	return a.Local < b.Local
}

func sortedUnique(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
