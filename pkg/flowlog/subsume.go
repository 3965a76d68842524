package flowlog

import (
	"net/netip"
	"sort"

	"github.com/sgrules/sgrules/pkg/rules"
)

// Subsumed returns, for each permission that another permission of the
// same group and direction allows entirely (protocol, ports and peer),
// one such wider permission: the first in key order. A subsumed
// permission can go without changing what the group allows; whichever
// of the two a cleanup keeps is a reviewer's choice.
//
// Peers compare by containment for CIDRs of one family; a prefix list or
// a group covers only itself (their contents change apart from the
// rules).
func Subsumed(keys []rules.Key) map[rules.Key]rules.Key {
	byGroup := map[string][]rules.Key{}
	for _, k := range keys {
		g := k.GroupID + "|" + string(k.Direction)
		byGroup[g] = append(byGroup[g], k)
	}
	out := map[rules.Key]rules.Key{}
	for _, ks := range byGroup {
		sort.Slice(ks, func(i, j int) bool { return ks[i].Less(ks[j]) })
		for _, a := range ks {
			for _, b := range ks {
				if a != b && covers(b, a) {
					out[a] = b
					break
				}
			}
		}
	}
	return out
}

// Covers reports whether permission b allows all that a allows: same
// group and direction, b's protocol and ports including a's, and b's peer
// containing a's (as Subsumed compares them).
func Covers(b, a rules.Key) bool {
	return b.GroupID == a.GroupID && b.Direction == a.Direction && covers(b, a)
}

// covers reports whether permission b allows all that a allows (same
// group and direction assumed).
func covers(b, a rules.Key) bool {
	if !coversTraffic(b, a) {
		return false
	}
	if b.Peer.Kind != a.Peer.Kind || b.Peer.Account != a.Peer.Account {
		return false
	}
	switch b.Peer.Kind {
	case rules.PeerCIDR4, rules.PeerCIDR6:
		pb, errb := netip.ParsePrefix(b.Peer.Value)
		pa, erra := netip.ParsePrefix(a.Peer.Value)
		return errb == nil && erra == nil && pb.Bits() <= pa.Bits() && pb.Contains(pa.Addr())
	}
	return b.Peer.Value == a.Peer.Value
}

// coversTraffic reports whether b's protocol and ports include a's.
func coversTraffic(b, a rules.Key) bool {
	if b.Protocol == rules.ProtoAll {
		return true
	}
	if b.Protocol != a.Protocol {
		return false
	}
	bf, bt := b.Ports()
	af, at := a.Ports()
	switch b.Protocol {
	case rules.ProtoTCP, rules.ProtoUDP:
		return bf <= af && at <= bt
	case rules.ProtoICMP, rules.ProtoICMPv6:
		// FromPort is the type, ToPort the code; -1 is every one.
		return (bf == -1 || bf == af) && (bt == -1 || bt == at)
	}
	return true // a numbered protocol: no ports
}
