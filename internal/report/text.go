package report

import (
	"fmt"
	"strconv"

	"github.com/sgrules/sgrules/pkg/rules"
)

// The one way a permission is written for people, in the rule files'
// vocabulary, by the CLI and the functions alike.

// Ports renders protocol and ports: "tcp 443", "udp 1024-65535",
// "icmp all", "icmp type 8", "icmp type 3 code 4", "all traffic",
// "protocol 47".
func Ports(k rules.Key) string {
	switch k.Protocol {
	case rules.ProtoTCP, rules.ProtoUDP:
		if k.FromPort == k.ToPort {
			return fmt.Sprintf("%s %d", k.Protocol, k.FromPort)
		}
		return fmt.Sprintf("%s %d-%d", k.Protocol, k.FromPort, k.ToPort)
	case rules.ProtoICMP, rules.ProtoICMPv6:
		switch {
		case k.FromPort == -1:
			return k.Protocol + " all"
		case k.ToPort == -1:
			return fmt.Sprintf("%s type %d", k.Protocol, k.FromPort)
		default:
			return fmt.Sprintf("%s type %d code %d", k.Protocol, k.FromPort, k.ToPort)
		}
	case rules.ProtoAll:
		return "all traffic"
	}
	return "protocol " + k.Protocol
}

// PeerText renders a peer as rule files write it: "10.0.0.0/8",
// "pl-0abc", "sg-0abc", "111122223333/sg-0abc" (a group of another
// account).
func PeerText(p rules.Peer) string {
	if p.Kind == rules.PeerGroup && p.Account != "" {
		return p.Account + "/" + p.Value
	}
	return p.Value
}

// RuleText renders a permission without its group: "tcp 443 from
// 0.0.0.0/0 \"HTTPS\"" (ingress) or "all traffic to sg-0abc" (egress).
func RuleText(k rules.Key, description string) string {
	prep := " from "
	if k.Direction == rules.Egress {
		prep = " to "
	}
	s := Ports(k) + prep + PeerText(k.Peer)
	if description != "" {
		s += " " + strconv.Quote(description)
	}
	return s
}
