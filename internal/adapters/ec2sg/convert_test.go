package ec2sg

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

func TestFlattenRule(t *testing.T) {
	base := func(f func(*types.SecurityGroupRule)) types.SecurityGroupRule {
		r := types.SecurityGroupRule{
			SecurityGroupRuleId: aws.String("sgr-1"),
			GroupId:             aws.String("sg-1"),
			IsEgress:            aws.Bool(false),
			IpProtocol:          aws.String("tcp"),
			FromPort:            aws.Int32(80),
			ToPort:              aws.Int32(81),
			CidrIpv4:            aws.String("10.0.0.0/8"),
			Description:         aws.String("d"),
			Tags:                []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}},
		}
		f(&r)
		return r
	}
	key := func(dir rules.Direction, proto string, from, to int32, kind rules.PeerKind, v string) rules.Key {
		return rules.Key{GroupID: "sg-1", Direction: dir, Protocol: proto, FromPort: from, ToPort: to, Peer: rules.Peer{Kind: kind, Value: v}}
	}
	tests := []struct {
		name    string
		in      types.SecurityGroupRule
		want    rules.Key
		wantErr bool
	}{
		{"tcp cidr4", base(func(*types.SecurityGroupRule) {}), key(rules.Ingress, "tcp", 80, 81, rules.PeerCIDR4, "10.0.0.0/8"), false},
		{"unmasked cidr4", base(func(r *types.SecurityGroupRule) { r.CidrIpv4 = aws.String("10.1.2.3/16") }), key(rules.Ingress, "tcp", 80, 81, rules.PeerCIDR4, "10.1.0.0/16"), false},
		{"egress number 6", base(func(r *types.SecurityGroupRule) { r.IsEgress = aws.Bool(true); r.IpProtocol = aws.String("6") }), key(rules.Egress, "tcp", 80, 81, rules.PeerCIDR4, "10.0.0.0/8"), false},
		{"cidr6 canonical", base(func(r *types.SecurityGroupRule) { r.CidrIpv4 = nil; r.CidrIpv6 = aws.String("2001:DB8:0::1/32") }), key(rules.Ingress, "tcp", 80, 81, rules.PeerCIDR6, "2001:db8::/32"), false},
		{"all ports cleared", base(func(r *types.SecurityGroupRule) {
			r.IpProtocol = aws.String("-1")
			r.FromPort = aws.Int32(0)
			r.ToPort = aws.Int32(65535)
		}), key(rules.Ingress, "-1", -1, -1, rules.PeerCIDR4, "10.0.0.0/8"), false},
		{"gre", base(func(r *types.SecurityGroupRule) { r.IpProtocol = aws.String("47"); r.FromPort = nil; r.ToPort = nil }), key(rules.Ingress, "47", -1, -1, rules.PeerCIDR4, "10.0.0.0/8"), false},
		{"icmp type", base(func(r *types.SecurityGroupRule) {
			r.IpProtocol = aws.String("1")
			r.FromPort = aws.Int32(8)
			r.ToPort = aws.Int32(-1)
		}), key(rules.Ingress, "icmp", 8, -1, rules.PeerCIDR4, "10.0.0.0/8"), false},
		{"group", base(func(r *types.SecurityGroupRule) {
			r.CidrIpv4 = nil
			r.ReferencedGroupInfo = &types.ReferencedSecurityGroup{GroupId: aws.String("sg-2"), UserId: aws.String("123")}
		}), key(rules.Ingress, "tcp", 80, 81, rules.PeerGroup, "sg-2"), false},
		{"prefix list", base(func(r *types.SecurityGroupRule) { r.CidrIpv4 = nil; r.PrefixListId = aws.String("pl-1") }), key(rules.Ingress, "tcp", 80, 81, rules.PeerPrefixList, "pl-1"), false},
		{"no peer", base(func(r *types.SecurityGroupRule) { r.CidrIpv4 = nil }), rules.Key{}, true},
		{"bad cidr", base(func(r *types.SecurityGroupRule) { r.CidrIpv4 = aws.String("10.0.0.300/8") }), rules.Key{}, true},
		{"v6 as v4", base(func(r *types.SecurityGroupRule) { r.CidrIpv4 = aws.String("::/0") }), rules.Key{}, true},
		{"unknown protocol", base(func(r *types.SecurityGroupRule) { r.IpProtocol = aws.String("sctp") }), rules.Key{}, true},
		{"no group", base(func(r *types.SecurityGroupRule) { r.GroupId = nil }), rules.Key{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := flattenRule(tc.in, "")
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %+v, want error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Key != tc.want {
				t.Errorf("key = %s, want %s", got.Key, tc.want)
			}
			if got.RuleID != "sgr-1" || got.Description != "d" || got.Tags["k"] != "v" {
				t.Errorf("rule = %+v", got)
			}
		})
	}
}

func TestExpandPermissions(t *testing.T) {
	p := func(proto string, from, to int32, kind rules.PeerKind, v, desc string) rules.Permission {
		return rules.Permission{Key: rules.Key{GroupID: "sg-1", Direction: rules.Ingress, Protocol: proto, FromPort: from, ToPort: to,
			Peer: rules.Peer{Kind: kind, Value: v}}, Description: desc}
	}
	got := expandPermissions([]rules.Permission{
		p("tcp", 443, 443, rules.PeerCIDR4, "10.0.0.0/8", "a"),
		p("-1", -1, -1, rules.PeerCIDR4, "10.0.0.0/8", ""),
		p("tcp", 443, 443, rules.PeerCIDR6, "::/0", "b"),
		p("tcp", 443, 443, rules.PeerGroup, "sg-2", "c"),
		p("tcp", 443, 443, rules.PeerPrefixList, "pl-1", ""),
		p("tcp", 80, 80, rules.PeerCIDR4, "10.0.0.0/8", ""),
		p("47", -1, -1, rules.PeerCIDR4, "10.0.0.0/8", "gre"),
		p("tcp", 443, 443, rules.PeerCIDR4, "192.168.0.0/16", ""),
	}, "")
	want := []types.IpPermission{
		{IpProtocol: aws.String("-1"), FromPort: aws.Int32(-1), ToPort: aws.Int32(-1),
			IpRanges: []types.IpRange{{CidrIp: aws.String("10.0.0.0/8")}}},
		{IpProtocol: aws.String("47"), FromPort: aws.Int32(-1), ToPort: aws.Int32(-1),
			IpRanges: []types.IpRange{{CidrIp: aws.String("10.0.0.0/8"), Description: aws.String("gre")}}},
		{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(80), ToPort: aws.Int32(80),
			IpRanges: []types.IpRange{{CidrIp: aws.String("10.0.0.0/8")}}},
		{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443),
			IpRanges:         []types.IpRange{{CidrIp: aws.String("10.0.0.0/8"), Description: aws.String("a")}, {CidrIp: aws.String("192.168.0.0/16")}},
			Ipv6Ranges:       []types.Ipv6Range{{CidrIpv6: aws.String("::/0"), Description: aws.String("b")}},
			UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String("sg-2"), Description: aws.String("c")}},
			PrefixListIds:    []types.PrefixListId{{PrefixListId: aws.String("pl-1")}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("expandPermissions:\n got %s\nwant %s", dump(got), dump(want))
	}
}

// TestPeerAccount: a group peer in another account is written with its
// UserId and read back with Peer.Account; one in the client's account has
// neither.
func TestPeerAccount(t *testing.T) {
	const own, other = "123456789012", "111122223333"
	ref := func(user, owner string) types.SecurityGroupRule {
		r := types.SecurityGroupRule{SecurityGroupRuleId: aws.String("sgr-1"), GroupId: aws.String("sg-1"), IsEgress: aws.Bool(false),
			IpProtocol: aws.String("tcp"), FromPort: aws.Int32(5432), ToPort: aws.Int32(5432),
			ReferencedGroupInfo: &types.ReferencedSecurityGroup{GroupId: aws.String("sg-2"), UserId: optional(user)}}
		r.GroupOwnerId = optional(owner)
		return r
	}
	for _, tc := range []struct {
		name, account, user, owner, want string
	}{
		{"other account", own, other, "", other},
		{"own account", own, own, "", ""},
		{"no UserId", own, "", "", ""},
		{"not told, owner reported", "", other, own, other},
		{"not told, owner is the user", "", own, own, ""},
		{"not told, nothing reported", "", other, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := flattenRule(ref(tc.user, tc.owner), tc.account)
			if err != nil {
				t.Fatal(err)
			}
			if got.Key.Peer != (rules.Peer{Kind: rules.PeerGroup, Value: "sg-2", Account: tc.want}) {
				t.Errorf("peer %+v, want account %q", got.Key.Peer, tc.want)
			}
		})
	}
	k := rules.Key{GroupID: "sg-1", Direction: rules.Ingress, Protocol: "tcp", FromPort: 1, ToPort: 1}
	perm := func(acct string) rules.Permission {
		k := k
		k.Peer = rules.Peer{Kind: rules.PeerGroup, Value: "sg-2", Account: acct}
		return rules.Permission{Key: k}
	}
	got := expandPermissions([]rules.Permission{perm(other), perm(own), perm("")}, own)
	want := []types.UserIdGroupPair{{GroupId: aws.String("sg-2"), UserId: aws.String(other)}, {GroupId: aws.String("sg-2")}, {GroupId: aws.String("sg-2")}}
	if len(got) != 1 || !reflect.DeepEqual(got[0].UserIdGroupPairs, want) {
		t.Errorf("pairs %+v", got)
	}
}

func dump(ps []types.IpPermission) string {
	s := ""
	for _, p := range ps {
		s += fmt.Sprintf("{%s %d-%d v4=%d v6=%d sg=%d pl=%d} ", *p.IpProtocol, *p.FromPort, *p.ToPort, len(p.IpRanges), len(p.Ipv6Ranges), len(p.UserIdGroupPairs), len(p.PrefixListIds))
	}
	return s
}

func TestWrapError(t *testing.T) {
	tests := []struct {
		code string
		want error
	}{
		{"InvalidPermission.Duplicate", reconcile.ErrDuplicate},
		{"InvalidGroup.NotFound", reconcile.ErrGroupNotFound},
		{"RulesPerSecurityGroupLimitExceeded", reconcile.ErrRulesLimit},
		{"InvalidSecurityGroupRuleId.NotFound", reconcile.ErrNotFound},
		{"InvalidPermission.NotFound", reconcile.ErrNotFound},
		{"InvalidPrefixListID.NotFound", reconcile.ErrNotFound},
		{"UnauthorizedOperation", reconcile.ErrAccessDenied},
		{"RequestLimitExceeded", nil},
	}
	for _, tc := range tests {
		t.Run(tc.code, func(t *testing.T) {
			api := &smithy.GenericAPIError{Code: tc.code, Message: "m"}
			err := wrapError("authorize ingress on sg-1", fmt.Errorf("op: %w", api))
			for _, s := range []error{reconcile.ErrDuplicate, reconcile.ErrGroupNotFound, reconcile.ErrRulesLimit, reconcile.ErrNotFound, reconcile.ErrAccessDenied} {
				if errors.Is(err, s) != (s == tc.want) {
					t.Errorf("errors.Is(%v, %v) = %v", err, s, !(s == tc.want))
				}
			}
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != tc.code {
				t.Errorf("API error not kept: %v", err)
			}
		})
	}
}

// pagingAPI serves rules and groups in pages of MaxResults (moto ignores
// MaxResults, so paging is tested here).
type pagingAPI struct {
	API
	rules  []types.SecurityGroupRule
	groups []types.SecurityGroup
	calls  []string
}

func page[T any](items []T, token *string, max *int32, keep func(T) bool) ([]T, *string, error) {
	var sel []T
	for _, it := range items {
		if keep(it) {
			sel = append(sel, it)
		}
	}
	start := 0
	if token != nil {
		n, err := strconv.Atoi(*token)
		if err != nil {
			return nil, nil, errors.New("bad token")
		}
		start = n
	}
	n := int(aws.ToInt32(max))
	if n < 5 || n > 1000 {
		return nil, nil, fmt.Errorf("MaxResults %d out of range", n)
	}
	end := min(start+n, len(sel))
	var next *string
	if end < len(sel) {
		next = aws.String(strconv.Itoa(end))
	}
	return sel[start:end], next, nil
}

func filterValues(fs []types.Filter, name string) ([]string, error) {
	for _, f := range fs {
		if aws.ToString(f.Name) == name {
			if len(f.Values) > 200 {
				return nil, fmt.Errorf("%d filter values", len(f.Values))
			}
			return f.Values, nil
		}
	}
	return nil, errors.New("no filter " + name)
}

func (p *pagingAPI) DescribeSecurityGroupRules(_ context.Context, in *ec2.DescribeSecurityGroupRulesInput, _ ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupRulesOutput, error) {
	p.calls = append(p.calls, "rules:"+aws.ToString(in.NextToken))
	ids, err := filterValues(in.Filters, "group-id")
	if err != nil {
		return nil, err
	}
	items, next, err := page(p.rules, in.NextToken, in.MaxResults, func(r types.SecurityGroupRule) bool { return slices.Contains(ids, *r.GroupId) })
	if err != nil {
		return nil, err
	}
	return &ec2.DescribeSecurityGroupRulesOutput{SecurityGroupRules: items, NextToken: next}, nil
}

func (p *pagingAPI) DescribeSecurityGroups(_ context.Context, in *ec2.DescribeSecurityGroupsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error) {
	p.calls = append(p.calls, "groups:"+aws.ToString(in.NextToken))
	if len(in.GroupIds) > 0 {
		return nil, errors.New("GroupIds fails on missing ids; use a filter")
	}
	ids, err := filterValues(in.Filters, "group-id")
	if err != nil {
		return nil, err
	}
	items, next, err := page(p.groups, in.NextToken, in.MaxResults, func(g types.SecurityGroup) bool { return slices.Contains(ids, *g.GroupId) })
	if err != nil {
		return nil, err
	}
	return &ec2.DescribeSecurityGroupsOutput{SecurityGroups: items, NextToken: next}, nil
}

type entriesAPI struct {
	API
	entries []types.PrefixListEntry
	calls   int
}

func (e *entriesAPI) GetManagedPrefixListEntries(_ context.Context, in *ec2.GetManagedPrefixListEntriesInput, _ ...func(*ec2.Options)) (*ec2.GetManagedPrefixListEntriesOutput, error) {
	e.calls++
	if aws.ToString(in.PrefixListId) != "pl-1" {
		return nil, &smithy.GenericAPIError{Code: "InvalidPrefixListID.NotFound", Message: "m"}
	}
	items, next, err := page(e.entries, in.NextToken, in.MaxResults, func(types.PrefixListEntry) bool { return true })
	if err != nil {
		return nil, err
	}
	return &ec2.GetManagedPrefixListEntriesOutput{Entries: items, NextToken: next}, nil
}

// PrefixListEntries reads every page (moto does not page) and names a
// missing list with ErrNotFound (moto answers it with no entries).
func TestPrefixListEntriesPaging(t *testing.T) {
	api := &entriesAPI{}
	for i := range 250 {
		api.entries = append(api.entries, types.PrefixListEntry{Cidr: aws.String(fmt.Sprintf("10.%d.%d.0/24", 249-i, i))})
	}
	got, err := New(api).PrefixListEntries(context.Background(), "pl-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 250 || api.calls != 3 || got[0].String() != "10.0.249.0/24" || got[249].String() != "10.249.0.0/24" {
		t.Fatalf("%d entries in %d calls: %v … %v", len(got), api.calls, got[0], got[len(got)-1])
	}
	if _, err := New(api).PrefixListEntries(context.Background(), "pl-2"); !errors.Is(err, reconcile.ErrNotFound) || !strings.Contains(err.Error(), "prefix list pl-2") {
		t.Errorf("missing list: %v", err)
	}
}

func TestDescribePaging(t *testing.T) {
	api := &pagingAPI{}
	var ids []string
	for g := range 250 {
		id := fmt.Sprintf("sg-%04d", g)
		ids = append(ids, id)
		api.groups = append(api.groups, types.SecurityGroup{GroupId: aws.String(id), VpcId: aws.String("vpc-1"), GroupName: aws.String(id)})
		for r := range 10 {
			api.rules = append(api.rules, types.SecurityGroupRule{
				SecurityGroupRuleId: aws.String(fmt.Sprintf("sgr-%04d-%d", g, r)), GroupId: aws.String(id),
				IsEgress: aws.Bool(false), IpProtocol: aws.String("tcp"), FromPort: aws.Int32(int32(r)), ToPort: aws.Int32(int32(r)),
				CidrIpv4: aws.String("10.0.0.0/8"),
			})
		}
	}
	c := New(api)
	got, err := c.DescribeRules(context.Background(), append(ids, ids[0], "sg-missing"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2500 {
		t.Errorf("DescribeRules returned %d rules, want 2500", len(got))
	}
	// 200 groups (2000 rules, 2 pages) + 51 ids (500 rules, 1 page).
	if want := []string{"rules:", "rules:1000", "rules:"}; !reflect.DeepEqual(api.calls, want) {
		t.Errorf("calls = %v, want %v", api.calls, want)
	}
	seen := map[string]bool{}
	for _, r := range got {
		if seen[r.RuleID] {
			t.Errorf("rule %s twice", r.RuleID)
		}
		seen[r.RuleID] = true
	}

	api.calls = nil
	groups, err := c.DescribeGroups(context.Background(), append(ids, "sg-missing"))
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 250 || groups[0].GroupID != "sg-0000" || groups[249].GroupID != "sg-0249" {
		t.Errorf("DescribeGroups returned %d groups", len(groups))
	}
	if want := []string{"groups:", "groups:"}; !reflect.DeepEqual(api.calls, want) {
		t.Errorf("calls = %v, want %v", api.calls, want)
	}
}

func TestEmptyBatchesMakeNoCalls(t *testing.T) {
	api := &pagingAPI{} // any call would panic on the nil embedded API or be recorded
	c := New(api)
	ctx := context.Background()
	if err := c.Authorize(ctx, "sg-1", rules.Ingress, nil, nil); err != nil {
		t.Error(err)
	}
	if err := c.Revoke(ctx, "sg-1", rules.Egress, nil); err != nil {
		t.Error(err)
	}
	if err := c.ModifyRules(ctx, "sg-1", nil); err != nil {
		t.Error(err)
	}
	if r, err := c.DescribeRules(ctx, nil); err != nil || len(r) != 0 || len(api.calls) != 0 {
		t.Errorf("DescribeRules(nil) = %v, %v, calls %v", r, err, api.calls)
	}
}
