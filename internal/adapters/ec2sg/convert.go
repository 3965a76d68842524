package ec2sg

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// flattenRule converts an EC2 rule into its canonical key: protocol
// normalised, ports -1/-1 for protocols without ports, CIDRs masked, a
// referenced group in another account than account (or, when account is
// "", than the rule's group owner) with Peer.Account set.
func flattenRule(r types.SecurityGroupRule, account string) (reconcile.ActualRule, error) {
	id := aws.ToString(r.SecurityGroupRuleId)
	proto, err := rules.NormalizeProtocol(aws.ToString(r.IpProtocol))
	if err != nil {
		return reconcile.ActualRule{}, fmt.Errorf("rule %s: %w", id, err)
	}
	k := rules.Key{
		GroupID:   aws.ToString(r.GroupId),
		Direction: rules.Ingress,
		Protocol:  proto,
	}
	k.FromPort, k.ToPort = rules.NormalizePorts(proto, aws.ToInt32(r.FromPort), aws.ToInt32(r.ToPort))
	if k.GroupID == "" {
		return reconcile.ActualRule{}, fmt.Errorf("rule %s: no group id", id)
	}
	if aws.ToBool(r.IsEgress) {
		k.Direction = rules.Egress
	}
	switch {
	case r.CidrIpv4 != nil:
		p, err := netip.ParsePrefix(*r.CidrIpv4)
		if err != nil || !p.Addr().Is4() {
			return reconcile.ActualRule{}, fmt.Errorf("rule %s: bad IPv4 CIDR %q", id, *r.CidrIpv4)
		}
		k.Peer = rules.Peer{Kind: rules.PeerCIDR4, Value: p.Masked().String()}
	case r.CidrIpv6 != nil:
		p, err := netip.ParsePrefix(*r.CidrIpv6)
		if err != nil || !p.Addr().Is6() {
			return reconcile.ActualRule{}, fmt.Errorf("rule %s: bad IPv6 CIDR %q", id, *r.CidrIpv6)
		}
		k.Peer = rules.Peer{Kind: rules.PeerCIDR6, Value: p.Masked().String()}
	case r.ReferencedGroupInfo != nil && aws.ToString(r.ReferencedGroupInfo.GroupId) != "":
		k.Peer = rules.Peer{Kind: rules.PeerGroup, Value: *r.ReferencedGroupInfo.GroupId}
		if account == "" {
			account = aws.ToString(r.GroupOwnerId)
		}
		if user := aws.ToString(r.ReferencedGroupInfo.UserId); user != "" && account != "" && user != account {
			k.Peer.Account = user
		}
	case aws.ToString(r.PrefixListId) != "":
		k.Peer = rules.Peer{Kind: rules.PeerPrefixList, Value: *r.PrefixListId}
	default:
		return reconcile.ActualRule{}, fmt.Errorf("rule %s: no peer", id)
	}
	return reconcile.ActualRule{
		Key:         k,
		RuleID:      id,
		Description: aws.ToString(r.Description),
		Tags:        flattenTags(r.Tags),
	}, nil
}

// ports returns the FromPort/ToPort to send for a key: its own for tcp,
// udp, icmp and icmpv6, -1/-1 for every other protocol (EC2 stores -1;
// moto refuses anything else for numbered protocols).
func ports(k rules.Key) (*int32, *int32) {
	from, to := k.Ports()
	return aws.Int32(from), aws.Int32(to)
}

// expandPermissions groups permissions with the same protocol and ports
// into one IpPermission carrying every peer with its description; a group
// peer in another account than account carries it as UserId. The result
// is sorted by protocol and ports; peers keep their input order.
func expandPermissions(perms []rules.Permission, account string) []types.IpPermission {
	type pk struct {
		proto    string
		from, to int32
	}
	idx := map[pk]int{}
	var out []types.IpPermission
	var order []pk
	for _, p := range perms {
		k := pk{proto: p.Key.Protocol}
		k.from, k.to = p.Key.Ports()
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			order = append(order, k)
			out = append(out, types.IpPermission{IpProtocol: aws.String(k.proto), FromPort: aws.Int32(k.from), ToPort: aws.Int32(k.to)})
		}
		ip := &out[i]
		desc := optional(p.Description)
		switch p.Key.Peer.Kind {
		case rules.PeerCIDR4:
			ip.IpRanges = append(ip.IpRanges, types.IpRange{CidrIp: aws.String(p.Key.Peer.Value), Description: desc})
		case rules.PeerCIDR6:
			ip.Ipv6Ranges = append(ip.Ipv6Ranges, types.Ipv6Range{CidrIpv6: aws.String(p.Key.Peer.Value), Description: desc})
		case rules.PeerGroup:
			pair := types.UserIdGroupPair{GroupId: aws.String(p.Key.Peer.Value), Description: desc}
			if peer := p.Key.Peer.InAccount(account); peer.Account != "" {
				pair.UserId = aws.String(peer.Account)
			}
			ip.UserIdGroupPairs = append(ip.UserIdGroupPairs, pair)
		case rules.PeerPrefixList:
			ip.PrefixListIds = append(ip.PrefixListIds, types.PrefixListId{PrefixListId: aws.String(p.Key.Peer.Value), Description: desc})
		}
	}
	sorted := make([]types.IpPermission, len(out))
	perm := make([]int, len(out))
	for i := range perm {
		perm[i] = i
	}
	sort.Slice(perm, func(i, j int) bool {
		a, b := order[perm[i]], order[perm[j]]
		if a.proto != b.proto {
			return a.proto < b.proto
		}
		if a.from != b.from {
			return a.from < b.from
		}
		return a.to < b.to
	})
	for i, j := range perm {
		sorted[i] = out[j]
	}
	return sorted
}

// expandRuleRequest restates a rule for ModifySecurityGroupRules.
func expandRuleRequest(k rules.Key, description string) *types.SecurityGroupRuleRequest {
	from, to := ports(k)
	r := &types.SecurityGroupRuleRequest{
		IpProtocol:  aws.String(k.Protocol),
		FromPort:    from,
		ToPort:      to,
		Description: aws.String(description),
	}
	switch k.Peer.Kind {
	case rules.PeerCIDR4:
		r.CidrIpv4 = aws.String(k.Peer.Value)
	case rules.PeerCIDR6:
		r.CidrIpv6 = aws.String(k.Peer.Value)
	case rules.PeerGroup:
		r.ReferencedGroupId = aws.String(k.Peer.Value)
	case rules.PeerPrefixList:
		r.PrefixListId = aws.String(k.Peer.Value)
	}
	return r
}

// dedupePermissions drops permissions whose key was seen before and
// refuses peers of an unknown kind.
func dedupePermissions(perms []rules.Permission) []rules.Permission {
	seen := make(map[rules.Key]bool, len(perms))
	out := make([]rules.Permission, 0, len(perms))
	for _, p := range perms {
		if seen[p.Key] {
			continue
		}
		seen[p.Key] = true
		out = append(out, p)
	}
	return out
}

// checkPeer reports a permission whose peer EC2 cannot express.
func checkPeer(p rules.Permission) error {
	switch p.Key.Peer.Kind {
	case rules.PeerCIDR4, rules.PeerCIDR6, rules.PeerGroup, rules.PeerPrefixList:
		if p.Key.Peer.Value == "" {
			return fmt.Errorf("permission %s: empty peer", p.Key)
		}
		return nil
	}
	return errors.New("permission " + p.Key.String() + ": unknown peer kind")
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}
