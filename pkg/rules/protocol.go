package rules

import (
	"fmt"
	"strconv"
	"strings"
)

// NormalizeProtocol returns the canonical protocol as EC2 reports it:
// "tcp", "udp", "icmp", "icmpv6", "-1" (all), or a decimal protocol number
// 0-255 for the others ("47" for GRE). Names are case-insensitive; "6",
// "17", "1" and "58" become their names and "all" becomes "-1". Anything
// else is an error: an unknown protocol is never passed through.
func NormalizeProtocol(s string) (string, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	switch t {
	case "tcp", "6":
		return ProtoTCP, nil
	case "udp", "17":
		return ProtoUDP, nil
	case "icmp", "1":
		return ProtoICMP, nil
	case "icmpv6", "58":
		return ProtoICMPv6, nil
	case "all", "-1":
		return ProtoAll, nil
	}
	n, err := strconv.Atoi(t)
	if err != nil || n < 0 || n > 255 || strconv.Itoa(n) != t {
		return "", fmt.Errorf("unknown protocol %q: want tcp, udp, icmp, icmpv6, all, -1 or a number 0-255", s)
	}
	return t, nil
}

// HasPorts reports whether a canonical protocol carries ports (tcp, udp)
// or ICMP type/code (icmp, icmpv6). For the others EC2 stores -1/-1.
func HasPorts(proto string) bool {
	switch proto {
	case ProtoTCP, ProtoUDP, ProtoICMP, ProtoICMPv6:
		return true
	}
	return false
}

// NormalizePorts returns the ports EC2 stores for a canonical protocol:
// from and to for protocols with ports (tcp, udp) or ICMP type and code,
// -1/-1 for every other protocol. It is the one place that normalises the
// ports of port-less protocols.
func NormalizePorts(proto string, from, to int32) (int32, int32) {
	if HasPorts(proto) {
		return from, to
	}
	return -1, -1
}

// Ports returns the key's ports as EC2 stores them (NormalizePorts).
func (k Key) Ports() (from, to int32) { return NormalizePorts(k.Protocol, k.FromPort, k.ToPort) }
