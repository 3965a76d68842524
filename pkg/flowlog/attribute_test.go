package flowlog

import (
	"context"
	"net/netip"
	"testing"

	"github.com/sgrules/sgrules/pkg/rules"
)

// staticLookup is a Lookup over fixed maps.
type staticLookup struct {
	ifaces map[string]Interface
	pls    map[string][]netip.Prefix
	calls  map[string]int
}

func (s *staticLookup) Interfaces(_ context.Context, ids []string) (map[string]Interface, error) {
	s.count("Interfaces")
	out := map[string]Interface{}
	for _, id := range ids {
		if in, ok := s.ifaces[id]; ok {
			out[id] = in
		}
	}
	return out, nil
}

func (s *staticLookup) InterfacesByAddress(_ context.Context, addrs []netip.Addr) (map[netip.Addr][]Interface, error) {
	s.count("InterfacesByAddress")
	out := map[netip.Addr][]Interface{}
	for _, a := range addrs {
		for _, in := range s.ifaces {
			if in.Has(a) {
				out[a] = append(out[a], in)
			}
		}
	}
	return out, nil
}

func (s *staticLookup) PrefixLists(_ context.Context, ids []string) (map[string][]netip.Prefix, error) {
	s.count("PrefixLists")
	return s.pls, nil
}

func (s *staticLookup) count(m string) {
	if s.calls == nil {
		s.calls = map[string]int{}
	}
	s.calls[m]++
}

func TestAttribute(t *testing.T) {
	a := netip.MustParseAddr
	pfx := func(s string) netip.Prefix { return netip.PrefixFrom(a(s), a(s).BitLen()) }
	lk := &staticLookup{ifaces: map[string]Interface{
		"eni-x": {ID: "eni-x", Groups: []string{"sg-x"}, Addrs: []netip.Prefix{pfx("10.0.0.1")}},
		"eni-y": {ID: "eni-y", Groups: []string{"sg-y"}, Addrs: []netip.Prefix{pfx("10.0.0.2")}},
	}}
	key := func(dir rules.Direction, proto string, from, to int32, kind rules.PeerKind, v string) rules.Key {
		return rules.Key{GroupID: "sg-x", Direction: dir, Protocol: proto, FromPort: from, ToPort: to, Peer: rules.Peer{Kind: kind, Value: v}}
	}
	rec := func(src, dst string, sp, dp uint16, proto uint8) Record {
		return Record{Interface: "eni-x", Src: a(src), Dst: a(dst), SrcPort: sp, DstPort: dp, Protocol: proto, Bytes: 10, Start: 100, End: 160, Action: ActionAccept}
	}
	tests := []struct {
		name      string
		recs      []Record
		rule      rules.Key
		flows     int64
		ambiguous int64
	}{
		{"icmp rule naming a type: vague", []Record{rec("10.0.0.9", "10.0.0.1", 0, 0, ProtoICMP)},
			key(rules.Ingress, "icmp", 8, -1, rules.PeerCIDR4, "10.0.0.0/24"), 1, 1},
		{"all traffic rule takes any protocol", []Record{rec("10.0.0.9", "10.0.0.1", 0, 0, 47)},
			key(rules.Ingress, "-1", -1, -1, rules.PeerCIDR4, "10.0.0.0/24"), 1, 1},
		{"numbered protocol", []Record{rec("10.0.0.9", "10.0.0.1", 0, 0, 47)},
			key(rules.Ingress, "47", -1, -1, rules.PeerCIDR4, "10.0.0.0/24"), 1, 1},
		{"other numbered protocol does not match", []Record{rec("10.0.0.9", "10.0.0.1", 0, 0, 50)},
			key(rules.Ingress, "47", -1, -1, rules.PeerCIDR4, "10.0.0.0/24"), 0, 0},
		{"port range", []Record{rec("10.0.0.9", "10.0.0.1", 40000, 8443, ProtoTCP)},
			key(rules.Ingress, "tcp", 8000, 9000, rules.PeerCIDR4, "10.0.0.0/24"), 1, 0},
		{"reply to the interface's own connection is not inbound use", []Record{rec("10.0.0.9", "10.0.0.1", 443, 40000, ProtoTCP)},
			key(rules.Ingress, "tcp", 0, 65535, rules.PeerCIDR4, "10.0.0.0/24"), 0, 0},
		{"the same reply credits the outbound rule", []Record{rec("10.0.0.9", "10.0.0.1", 443, 40000, ProtoTCP)},
			key(rules.Egress, "tcp", 443, 443, rules.PeerCIDR4, "10.0.0.0/24"), 1, 0},
		{"udp to the wrong protocol", []Record{rec("10.0.0.9", "10.0.0.1", 40000, 53, ProtoUDP)},
			key(rules.Ingress, "tcp", 53, 53, rules.PeerCIDR4, "10.0.0.0/24"), 0, 0},
		{"peer outside the cidr", []Record{rec("10.0.1.9", "10.0.0.1", 40000, 22, ProtoTCP)},
			key(rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "10.0.0.0/24"), 0, 0},
		{"ipv6 peer against an ipv4 cidr", []Record{rec("::1", "10.0.0.1", 40000, 22, ProtoTCP)},
			key(rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "0.0.0.0/0"), 0, 0},
		{"group peer", []Record{rec("10.0.0.2", "10.0.0.1", 40000, 22, ProtoTCP)},
			key(rules.Ingress, "tcp", 22, 22, rules.PeerGroup, "sg-y"), 1, 0},
		{"group peer of another group", []Record{rec("10.0.0.2", "10.0.0.1", 40000, 22, ProtoTCP)},
			key(rules.Ingress, "tcp", 22, 22, rules.PeerGroup, "sg-z"), 0, 0},
		{"rejected credits nothing", []Record{func() Record {
			r := rec("10.0.0.9", "10.0.0.1", 40000, 22, ProtoTCP)
			r.Action = ActionReject
			return r
		}()},
			key(rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "10.0.0.0/24"), 0, 0},
		{"ambiguous one-way flow credits only its sender's side", []Record{rec("10.0.0.9", "10.0.0.1", 5000, 6000, ProtoUDP)},
			key(rules.Egress, "udp", 5000, 5000, rules.PeerCIDR4, "10.0.0.0/24"), 0, 0},
		{"ambiguous one-way flow: inbound use", []Record{rec("10.0.0.9", "10.0.0.1", 5000, 6000, ProtoUDP)},
			key(rules.Ingress, "udp", 6000, 6000, rules.PeerCIDR4, "10.0.0.0/24"), 1, 1},
		{"a SYN from the interface is outbound, whatever the ports", []Record{func() Record {
			r := rec("10.0.0.1", "10.0.0.9", 22, 40000, ProtoTCP)
			r.TCPFlags, r.HasTCPFlags = FlagSYN, true
			return r
		}()}, key(rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "10.0.0.0/24"), 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ag := NewAggregator(zeroTime, zeroTime)
			for i := range tc.recs {
				ag.Add(&tc.recs[i])
			}
			rep, err := Attribute(context.Background(), ag.Flows(), []Rule{{Key: tc.rule, RuleID: "sgr-1"}}, lk)
			if err != nil {
				t.Fatal(err)
			}
			u := rep.Rules[0]
			if u.Flows != tc.flows || u.AmbiguousFlows != tc.ambiguous {
				t.Errorf("flows %d ambiguous %d, want %d %d", u.Flows, u.AmbiguousFlows, tc.flows, tc.ambiguous)
			}
			if u.Used() && (u.RuleID != "sgr-1" || u.Bytes != 10 || u.Last.Unix() != 160 || u.First.Unix() != 100) {
				t.Errorf("usage %+v", u)
			}
		})
	}
}

// TestAttributeLooksUpOnlyWhatItNeeds: no peer look-up without a rule
// referencing a group that the flow's protocol and port could match.
func TestAttributeLooksUpOnlyWhatItNeeds(t *testing.T) {
	a := netip.MustParseAddr
	lk := &staticLookup{ifaces: map[string]Interface{
		"eni-x": {ID: "eni-x", Groups: []string{"sg-x"}, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")}},
	}}
	ag := NewAggregator(zeroTime, zeroTime)
	ag.Add(&Record{Interface: "eni-x", Src: a("10.0.0.9"), Dst: a("10.0.0.1"), SrcPort: 40000, DstPort: 22, Protocol: ProtoTCP, Action: ActionAccept})
	managed := []Rule{{Key: rules.Key{GroupID: "sg-x", Direction: rules.Ingress, Protocol: "tcp", FromPort: 443, ToPort: 443, Peer: rules.Peer{Kind: rules.PeerGroup, Value: "sg-y"}}}}
	if _, err := Attribute(context.Background(), ag.Flows(), managed, lk); err != nil {
		t.Fatal(err)
	}
	if lk.calls["InterfacesByAddress"] != 0 || lk.calls["PrefixLists"] != 0 || lk.calls["Interfaces"] != 1 {
		t.Errorf("calls %v", lk.calls)
	}
}
