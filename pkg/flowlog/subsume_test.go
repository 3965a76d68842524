package flowlog

import (
	"testing"

	"github.com/sgrules/sgrules/pkg/rules"
)

func TestSubsumed(t *testing.T) {
	k := func(g string, dir rules.Direction, proto string, from, to int32, kind rules.PeerKind, v string) rules.Key {
		return rules.Key{GroupID: g, Direction: dir, Protocol: proto, FromPort: from, ToPort: to, Peer: rules.Peer{Kind: kind, Value: v}}
	}
	in, out := rules.Ingress, rules.Egress
	wide := k("sg-a", in, "tcp", 0, 65535, rules.PeerCIDR4, "10.0.0.0/8")
	tests := []struct {
		name string
		a, b rules.Key
		want bool
	}{
		{"narrower port and cidr", k("sg-a", in, "tcp", 443, 443, rules.PeerCIDR4, "10.1.0.0/16"), wide, true},
		{"same cidr, port inside", k("sg-a", in, "tcp", 22, 22, rules.PeerCIDR4, "10.0.0.0/8"), wide, true},
		{"cidr outside", k("sg-a", in, "tcp", 22, 22, rules.PeerCIDR4, "192.168.0.0/16"), wide, false},
		{"wider cidr", k("sg-a", in, "tcp", 22, 22, rules.PeerCIDR4, "0.0.0.0/0"), wide, false},
		{"other protocol", k("sg-a", in, "udp", 53, 53, rules.PeerCIDR4, "10.0.0.0/8"), wide, false},
		{"all traffic covers udp", k("sg-a", in, "udp", 53, 53, rules.PeerCIDR4, "10.0.0.0/8"), k("sg-a", in, "-1", -1, -1, rules.PeerCIDR4, "10.0.0.0/8"), true},
		{"other direction", k("sg-a", out, "tcp", 443, 443, rules.PeerCIDR4, "10.1.0.0/16"), wide, false},
		{"other group", k("sg-b", in, "tcp", 443, 443, rules.PeerCIDR4, "10.1.0.0/16"), wide, false},
		{"ipv6 against ipv4", k("sg-a", in, "tcp", 443, 443, rules.PeerCIDR6, "::/0"), wide, false},
		{"icmp all types covers echo", k("sg-a", in, "icmp", 8, -1, rules.PeerCIDR4, "10.0.0.0/8"), k("sg-a", in, "icmp", -1, -1, rules.PeerCIDR4, "10.0.0.0/8"), true},
		{"icmp echo does not cover all", k("sg-a", in, "icmp", -1, -1, rules.PeerCIDR4, "10.0.0.0/8"), k("sg-a", in, "icmp", 8, -1, rules.PeerCIDR4, "10.0.0.0/8"), false},
		{"same group peer", k("sg-a", in, "tcp", 22, 22, rules.PeerGroup, "sg-x"), k("sg-a", in, "tcp", 0, 100, rules.PeerGroup, "sg-x"), true},
		{"other group peer", k("sg-a", in, "tcp", 22, 22, rules.PeerGroup, "sg-x"), k("sg-a", in, "tcp", 0, 100, rules.PeerGroup, "sg-y"), false},
		{"prefix list vs cidr", k("sg-a", in, "tcp", 22, 22, rules.PeerPrefixList, "pl-1"), k("sg-a", in, "tcp", 0, 100, rules.PeerCIDR4, "0.0.0.0/0"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Subsumed([]rules.Key{tc.a, tc.b})
			if by, ok := got[tc.a]; ok != tc.want || (ok && by != tc.b) {
				t.Errorf("Subsumed = %v, want %v", got, tc.want)
			}
			if _, ok := got[tc.b]; ok && tc.want {
				t.Errorf("the wider rule is subsumed too: %v", got)
			}
		})
	}
}
