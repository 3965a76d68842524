package flowsrc

import (
	"context"
	"fmt"
	"net/netip"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/sgrules/sgrules/pkg/flowlog"
)

// EC2API is the part of the EC2 client Lookup uses; *ec2.Client
// satisfies it.
type EC2API interface {
	DescribeNetworkInterfaces(ctx context.Context, in *ec2.DescribeNetworkInterfacesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error)
	GetManagedPrefixListEntries(ctx context.Context, in *ec2.GetManagedPrefixListEntriesInput, optFns ...func(*ec2.Options)) (*ec2.GetManagedPrefixListEntriesOutput, error)
}

var (
	_ EC2API         = (*ec2.Client)(nil)
	_ flowlog.Lookup = (*Lookup)(nil)
)

// batch is how many values one DescribeNetworkInterfaces filter carries.
const batch = 200

// Lookup finds interfaces by id and by address, and prefix-list entries,
// with batched calls (a filter of up to 200 values a call, every page),
// each answer cached for the life of the Lookup (one run). Not safe for
// concurrent use.
type Lookup struct {
	api    EC2API
	byID   map[string]*flowlog.Interface // nil: looked up, not found
	byAddr map[netip.Addr][]flowlog.Interface
	pls    map[string][]netip.Prefix
}

// NewLookup returns an empty lookup on api.
func NewLookup(api EC2API) *Lookup {
	return &Lookup{api: api, byID: map[string]*flowlog.Interface{}, byAddr: map[netip.Addr][]flowlog.Interface{}, pls: map[string][]netip.Prefix{}}
}

// Interfaces returns the interfaces with these ids that exist. It asks by
// the network-interface-id filter, so that an id that no longer exists
// is left out instead of failing the call.
func (l *Lookup) Interfaces(ctx context.Context, ids []string) (map[string]flowlog.Interface, error) {
	var todo []string
	for _, id := range ids {
		if _, ok := l.byID[id]; !ok {
			todo = append(todo, id)
		}
	}
	for start := 0; start < len(todo); start += batch {
		chunk := todo[start:min(start+batch, len(todo))]
		for _, id := range chunk {
			l.byID[id] = nil
		}
		err := l.describe(ctx, "network-interface-id", chunk, func(in flowlog.Interface) {
			l.byID[in.ID] = &in
		})
		if err != nil {
			return nil, err
		}
	}
	out := make(map[string]flowlog.Interface, len(ids))
	for _, id := range ids {
		if in := l.byID[id]; in != nil {
			out[id] = *in
		}
	}
	return out, nil
}

// InterfacesByAddress returns the interfaces holding each address: IPv4
// by the addresses.private-ip-address filter (primary and secondary
// addresses), IPv6 by ipv6-addresses.ipv6-address.
func (l *Lookup) InterfacesByAddress(ctx context.Context, addrs []netip.Addr) (map[netip.Addr][]flowlog.Interface, error) {
	var v4, v6 []netip.Addr
	for _, a := range addrs {
		if _, ok := l.byAddr[a]; ok {
			continue
		}
		if a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	for _, fam := range []struct {
		filter string
		addrs  []netip.Addr
	}{{"addresses.private-ip-address", v4}, {"ipv6-addresses.ipv6-address", v6}} {
		for start := 0; start < len(fam.addrs); start += batch {
			chunk := fam.addrs[start:min(start+batch, len(fam.addrs))]
			values := make([]string, len(chunk))
			want := map[netip.Addr]bool{}
			for i, a := range chunk {
				values[i] = a.String()
				want[a] = true
				l.byAddr[a] = []flowlog.Interface{}
			}
			err := l.describe(ctx, fam.filter, values, func(in flowlog.Interface) {
				for _, p := range in.Addrs {
					if p.IsSingleIP() && want[p.Addr()] {
						l.byAddr[p.Addr()] = append(l.byAddr[p.Addr()], in)
					}
				}
			})
			if err != nil {
				return nil, err
			}
		}
	}
	out := map[netip.Addr][]flowlog.Interface{}
	for _, a := range addrs {
		if ins := l.byAddr[a]; len(ins) > 0 {
			out[a] = ins
		}
	}
	return out, nil
}

// PrefixLists returns the entries of each prefix list
// (GetManagedPrefixListEntries, every page).
func (l *Lookup) PrefixLists(ctx context.Context, ids []string) (map[string][]netip.Prefix, error) {
	out := map[string][]netip.Prefix{}
	for _, id := range ids {
		if e, ok := l.pls[id]; ok {
			out[id] = e
			continue
		}
		var entries []netip.Prefix
		in := &ec2.GetManagedPrefixListEntriesInput{PrefixListId: aws.String(id)}
		for {
			page, err := l.api.GetManagedPrefixListEntries(ctx, in)
			if err != nil {
				return nil, fmt.Errorf("get entries of prefix list %s: %w", id, err)
			}
			for _, e := range page.Entries {
				p, err := netip.ParsePrefix(aws.ToString(e.Cidr))
				if err != nil {
					return nil, fmt.Errorf("prefix list %s: entry %q: %w", id, aws.ToString(e.Cidr), err)
				}
				entries = append(entries, p.Masked())
			}
			if aws.ToString(page.NextToken) == "" {
				break
			}
			in.NextToken = page.NextToken
		}
		l.pls[id] = entries
		out[id] = entries
	}
	return out, nil
}

// describe calls DescribeNetworkInterfaces with one filter, every page.
func (l *Lookup) describe(ctx context.Context, filter string, values []string, fn func(flowlog.Interface)) error {
	in := &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{{Name: aws.String(filter), Values: values}}}
	for {
		page, err := l.api.DescribeNetworkInterfaces(ctx, in)
		if err != nil {
			return fmt.Errorf("describe network interfaces by %s: %w", filter, err)
		}
		for _, ni := range page.NetworkInterfaces {
			fn(flattenInterface(ni))
		}
		if aws.ToString(page.NextToken) == "" {
			return nil
		}
		in.NextToken = page.NextToken
	}
}

// flattenInterface keeps what attribution needs: id, VPC, group ids, and
// every address (private, public, IPv6) and delegated prefix.
func flattenInterface(ni types.NetworkInterface) flowlog.Interface {
	in := flowlog.Interface{ID: aws.ToString(ni.NetworkInterfaceId), VPCID: aws.ToString(ni.VpcId)}
	for _, g := range ni.Groups {
		in.Groups = append(in.Groups, aws.ToString(g.GroupId))
	}
	sort.Strings(in.Groups)
	seen := map[netip.Prefix]bool{}
	addAddr := func(s *string) {
		if a, err := netip.ParseAddr(aws.ToString(s)); err == nil {
			p := netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
			if !seen[p] {
				seen[p] = true
				in.Addrs = append(in.Addrs, p)
			}
		}
	}
	addPrefix := func(s *string) {
		if p, err := netip.ParsePrefix(aws.ToString(s)); err == nil && !seen[p.Masked()] {
			seen[p.Masked()] = true
			in.Addrs = append(in.Addrs, p.Masked())
		}
	}
	addAddr(ni.PrivateIpAddress)
	for _, a := range ni.PrivateIpAddresses {
		addAddr(a.PrivateIpAddress)
		if a.Association != nil {
			addAddr(a.Association.PublicIp)
		}
	}
	if ni.Association != nil {
		addAddr(ni.Association.PublicIp)
	}
	for _, a := range ni.Ipv6Addresses {
		addAddr(a.Ipv6Address)
	}
	for _, p := range ni.Ipv4Prefixes {
		addPrefix(p.Ipv4Prefix)
	}
	for _, p := range ni.Ipv6Prefixes {
		addPrefix(p.Ipv6Prefix)
	}
	return in
}

// GroupInterfaces counts the network interfaces of each group (the
// group-id filter, 200 groups a call, every page); a group with none is
// absent from the result.
func (l *Lookup) GroupInterfaces(ctx context.Context, groupIDs []string) (map[string]int, error) {
	out := map[string]int{}
	for start := 0; start < len(groupIDs); start += batch {
		chunk := groupIDs[start:min(start+batch, len(groupIDs))]
		want := map[string]bool{}
		for _, g := range chunk {
			want[g] = true
		}
		err := l.describe(ctx, "group-id", chunk, func(in flowlog.Interface) {
			if _, ok := l.byID[in.ID]; !ok {
				cp := in
				l.byID[in.ID] = &cp
			}
			for _, g := range in.Groups {
				if want[g] {
					out[g]++
				}
			}
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
