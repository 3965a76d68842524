package rules

import (
	"fmt"
	"strings"
)

// Names people bring from CloudFormation, Terraform and the EC2 API, for
// fields and for values (lower case, without '_' and '-'). An alias is
// suggested only where its target is known.
var aliases = map[string]string{
	"ipprotocol":              "protocol",
	"cidrip":                  "cidrBlocks",
	"cidripv4":                "cidrBlocks",
	"cidrblock":               "cidrBlocks",
	"cidripv6":                "ipv6CidrBlocks",
	"ipv6cidrblock":           "ipv6CidrBlocks",
	"groupid":                 "securityGroup",
	"securitygroupid":         "securityGroup",
	"direction":               "type",
	"sourcesecuritygroupid":   "sourceSecurityGroups",
	"referencedgroupid":       "sourceSecurityGroups",
	"prefixlistid":            "prefixListIds",
	"sourceprefixlistid":      "prefixListIds",
	"destinationprefixlistid": "prefixListIds",
	"name":                    "groupName",
	"vpc":                     "vpcId",
	"inbound":                 "ingress",
	"outbound":                "egress",
	"any":                     "all",
	"icmp6":                   "icmpv6",
	"ipv6icmp":                "icmpv6",
	"gre":                     "47",
	"esp":                     "50",
	"ah":                      "51",
	"sctp":                    "132",
}

// Values suggested for enum fields.
var (
	directions    = []string{string(Ingress), string(Egress)}
	protocolNames = []string{ProtoTCP, ProtoUDP, ProtoICMP, ProtoICMPv6, "all", "47", "50", "51", "132"}
)

// didYouMean returns ` (did you mean "x"?)` for the known value closest to
// s, or "".
func didYouMean(s string, known []string) string {
	if m := suggest(s, known); m != "" {
		return fmt.Sprintf(" (did you mean %q?)", m)
	}
	return ""
}

// suggest returns the known name closest to an unknown one, or "" when
// none is close: first a match ignoring case, '_' and '-' (so "cidrblocks"
// and "cidr_blocks" find "cidrBlocks"), then names people bring from
// CloudFormation or Terraform ("IpProtocol", "inbound"), then the smallest edit
// distance (with transpositions), allowing about one edit per three letters.
func suggest(name string, known []string) string {
	norm := func(s string) string {
		return strings.NewReplacer("_", "", "-", "", " ", "").Replace(strings.ToLower(s))
	}
	n := norm(name)
	for _, k := range known {
		if norm(k) == n {
			return k
		}
	}
	if a, ok := aliases[n]; ok {
		for _, k := range known {
			if k == a {
				return k
			}
		}
	}
	best, bestD := "", 1<<30
	for _, k := range known {
		d := editDistance(n, norm(k))
		limit := max(1, min(3, len(k)/3))
		if d <= limit && d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance (Levenshtein plus
// adjacent transpositions), on bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 30
	}
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
