package ec2sg

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/strutil"
	"github.com/sgrules/sgrules/pkg/rules"
)

// API is the part of the EC2 client the adapter uses; *ec2.Client
// satisfies it.
type API interface {
	DescribeSecurityGroups(ctx context.Context, in *ec2.DescribeSecurityGroupsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
	DescribeSecurityGroupRules(ctx context.Context, in *ec2.DescribeSecurityGroupRulesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupRulesOutput, error)
	AuthorizeSecurityGroupIngress(ctx context.Context, in *ec2.AuthorizeSecurityGroupIngressInput, optFns ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error)
	AuthorizeSecurityGroupEgress(ctx context.Context, in *ec2.AuthorizeSecurityGroupEgressInput, optFns ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupEgressOutput, error)
	RevokeSecurityGroupIngress(ctx context.Context, in *ec2.RevokeSecurityGroupIngressInput, optFns ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupIngressOutput, error)
	RevokeSecurityGroupEgress(ctx context.Context, in *ec2.RevokeSecurityGroupEgressInput, optFns ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupEgressOutput, error)
	ModifySecurityGroupRules(ctx context.Context, in *ec2.ModifySecurityGroupRulesInput, optFns ...func(*ec2.Options)) (*ec2.ModifySecurityGroupRulesOutput, error)
	DescribeManagedPrefixLists(ctx context.Context, in *ec2.DescribeManagedPrefixListsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeManagedPrefixListsOutput, error)
	GetManagedPrefixListEntries(ctx context.Context, in *ec2.GetManagedPrefixListEntriesInput, optFns ...func(*ec2.Options)) (*ec2.GetManagedPrefixListEntriesOutput, error)
}

var (
	_ API                         = (*ec2.Client)(nil)
	_ reconcile.Groups            = (*Client)(nil)
	_ reconcile.RuleAuthorizer    = (*Client)(nil)
	_ reconcile.GroupInfoResolver = (*Client)(nil)
)

// Limits of one call.
const (
	// MaxFilterValues is the number of values per describe filter (EC2
	// documents 200).
	MaxFilterValues = 200
	// MaxResults is the page size asked of describe calls (EC2's maximum).
	MaxResults = 1000
	// MaxEntries bounds the permission entries (one per peer) of one
	// authorize call, and the rule ids of one revoke or modify call. EC2
	// documents no per-call limit, but a group can never hold more than
	// 1000 rules per direction (the maximum rules quota), so in practice
	// every batch is one call.
	MaxEntries = 1000
)

// Client implements reconcile.Groups.
type Client struct {
	api     API
	account string // the account of api's credentials ("" when not told)
}

// Option configures a Client.
type Option func(*Client)

// WithAccount tells the client the account its credentials are in. A
// group peer in another account (Peer.Account) is written with that
// account as UserId; reading back, a referenced group whose UserId is not
// id gets Peer.Account = UserId (one in id: none). Without it, the owner
// of the rule's group (GroupOwnerId, when EC2 reports it) stands for the
// client's account.
func WithAccount(id string) Option { return func(c *Client) { c.account = id } }

// New returns a Client on api (usually ec2.NewFromConfig(cfg)).
func New(api API, opts ...Option) *Client {
	c := &Client{api: api}
	for _, o := range opts {
		o(c)
	}
	return c
}

// DescribeRules returns every rule of the given groups, both directions,
// sorted by key.
func (c *Client) DescribeRules(ctx context.Context, groupIDs []string) ([]reconcile.ActualRule, error) {
	var out []reconcile.ActualRule
	for _, chunk := range chunks(strutil.SortedUnique(groupIDs), MaxFilterValues) {
		rs, err := c.describeRules(ctx, []types.Filter{{Name: aws.String("group-id"), Values: chunk}})
		if err != nil {
			return nil, fmt.Errorf("describe rules of %d groups: %w", len(chunk), err)
		}
		out = append(out, rs...)
	}
	sortRules(out)
	return out, nil
}

// DescribeManagedRules returns every rule tagged sgrules:ledger with one
// of ledgerIDs (created by that deployment), in any group, with one
// filtered call (and its pages).
func (c *Client) DescribeManagedRules(ctx context.Context, ledgerIDs ...string) ([]reconcile.ActualRule, error) {
	ids := strutil.SortedUnique(ledgerIDs)
	out, err := c.describeRules(ctx, []types.Filter{{Name: aws.String("tag:" + reconcile.TagLedger), Values: ids}})
	if err != nil {
		return nil, fmt.Errorf("describe rules tagged %s=%s: %w", reconcile.TagLedger, strings.Join(ids, ","), err)
	}
	sortRules(out)
	return out, nil
}

// describeRules follows every page of one filtered DescribeSecurityGroupRules.
func (c *Client) describeRules(ctx context.Context, filters []types.Filter) ([]reconcile.ActualRule, error) {
	var out []reconcile.ActualRule
	in := &ec2.DescribeSecurityGroupRulesInput{Filters: filters, MaxResults: aws.Int32(MaxResults)}
	for {
		page, err := c.api.DescribeSecurityGroupRules(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, r := range page.SecurityGroupRules {
			ar, err := flattenRule(r, c.account)
			if err != nil {
				return nil, err
			}
			out = append(out, ar)
		}
		if aws.ToString(page.NextToken) == "" {
			return out, nil
		}
		in.NextToken = page.NextToken
	}
}

func sortRules(rs []reconcile.ActualRule) {
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].Key != rs[j].Key {
			return rs[i].Key.Less(rs[j].Key)
		}
		return rs[i].RuleID < rs[j].RuleID
	})
}

// DescribeGroups returns the groups that exist among groupIDs, sorted by
// id. It filters on group-id rather than passing GroupIds, which fails the
// whole call when one id is missing.
func (c *Client) DescribeGroups(ctx context.Context, groupIDs []string) ([]reconcile.GroupInfo, error) {
	var out []reconcile.GroupInfo
	for _, chunk := range chunks(strutil.SortedUnique(groupIDs), MaxFilterValues) {
		groups, err := c.findGroups(ctx, []types.Filter{{Name: aws.String("group-id"), Values: chunk}})
		if err != nil {
			return nil, fmt.Errorf("describe %d groups: %w", len(chunk), err)
		}
		out = append(out, groups...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GroupID < out[j].GroupID })
	return out, nil
}

// findGroups runs one filtered DescribeSecurityGroups over all pages.
func (c *Client) findGroups(ctx context.Context, filters []types.Filter) ([]reconcile.GroupInfo, error) {
	var out []reconcile.GroupInfo
	in := &ec2.DescribeSecurityGroupsInput{Filters: filters, MaxResults: aws.Int32(MaxResults)}
	for {
		page, err := c.api.DescribeSecurityGroups(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, g := range page.SecurityGroups {
			gi, err := flattenGroup(g, c.account)
			if err != nil {
				return nil, err
			}
			out = append(out, gi)
		}
		if aws.ToString(page.NextToken) == "" {
			return out, nil
		}
		in.NextToken = page.NextToken
	}
}

// ResolveGroups resolves references with as few calls as possible: id
// references without a call, all name references of one VPC in one call
// (filters vpc-id and group-name), and one call per set of tag keys
// (filters tag:K with every value asked for). Matches are checked again client-side. Every reference
// is a key of the result; its ids are sorted (none when nothing matches).
func (c *Client) ResolveGroups(ctx context.Context, refs []rules.GroupRef) (map[string][]string, error) {
	out, _, err := c.ResolveGroupsInfo(ctx, refs)
	return out, err
}

// ResolveGroupsInfo is ResolveGroups also returning what the calls read of
// every group they found (reconcile.GroupInfoResolver).
func (c *Client) ResolveGroupsInfo(ctx context.Context, refs []rules.GroupRef) (map[string][]string, []reconcile.GroupInfo, error) {
	var found []reconcile.GroupInfo
	out, err := c.resolveGroups(ctx, refs, func(gs []reconcile.GroupInfo) { found = append(found, gs...) })
	return out, found, err
}

func (c *Client) resolveGroups(ctx context.Context, refs []rules.GroupRef, seen func([]reconcile.GroupInfo)) (map[string][]string, error) {
	out := make(map[string][]string, len(refs))
	namesByVPC := map[string][]string{}
	tagRefs := map[string]rules.GroupRef{}
	for _, r := range refs {
		switch {
		case r.ID != "":
			out[r.String()] = []string{r.ID}
		case r.Name != "":
			out[r.String()] = []string{}
			namesByVPC[r.VPCID] = append(namesByVPC[r.VPCID], r.Name)
		case len(r.Tags) > 0:
			out[r.String()] = []string{}
			tagRefs[r.String()] = r
		default:
			return nil, errors.New("resolve groups: empty group reference")
		}
	}
	for _, vpc := range slices.Sorted(maps.Keys(namesByVPC)) {
		for _, names := range chunks(strutil.SortedUnique(namesByVPC[vpc]), MaxFilterValues) {
			filters := []types.Filter{{Name: aws.String("group-name"), Values: names}}
			if vpc != "" {
				filters = append(filters, types.Filter{Name: aws.String("vpc-id"), Values: []string{vpc}})
			}
			groups, err := c.findGroups(ctx, filters)
			if err != nil {
				return nil, fmt.Errorf("resolve groups by name in %s: %w", vpcLabel(vpc), err)
			}
			seen(groups)
			for _, g := range groups {
				if vpc != "" && g.VPCID != vpc {
					continue
				}
				ref := rules.GroupRef{Name: g.Name, VPCID: vpc}.String()
				if ids, ok := out[ref]; ok {
					out[ref] = append(ids, g.GroupID)
				}
			}
		}
	}
	// Tag references with the same tag keys share calls: one filter per
	// key carrying every value asked for (matched exactly client-side).
	byKeys := map[string][]rules.GroupRef{}
	for _, k := range slices.Sorted(maps.Keys(tagRefs)) {
		r := tagRefs[k]
		ks := strings.Join(slices.Sorted(maps.Keys(r.Tags)), "\x00")
		byKeys[ks] = append(byKeys[ks], r)
	}
	for _, ks := range slices.Sorted(maps.Keys(byKeys)) {
		refs := byKeys[ks]
		for _, chunk := range chunks(refs, MaxFilterValues) {
			values := map[string]map[string]bool{}
			for _, r := range chunk {
				for tk, tv := range r.Tags {
					if values[tk] == nil {
						values[tk] = map[string]bool{}
					}
					values[tk][tv] = true
				}
			}
			var filters []types.Filter
			for _, tk := range slices.Sorted(maps.Keys(values)) {
				filters = append(filters, types.Filter{Name: aws.String("tag:" + tk), Values: slices.Sorted(maps.Keys(values[tk]))})
			}
			groups, err := c.findGroups(ctx, filters)
			if err != nil {
				return nil, fmt.Errorf("resolve groups by tags %s: %w", strings.ReplaceAll(ks, "\x00", ","), err)
			}
			seen(groups)
			for _, r := range chunk {
				for _, g := range groups {
					if hasTags(g.Tags, r.Tags) {
						out[r.String()] = append(out[r.String()], g.GroupID)
					}
				}
			}
		}
	}
	for k, ids := range out {
		slices.Sort(ids)
		out[k] = slices.Compact(ids)
	}
	return out, nil
}

// Authorize creates perms in groupID in one call per MaxEntries entries,
// tagging every new rule with tags. Permissions with equal keys are sent
// once (the first description wins).
func (c *Client) Authorize(ctx context.Context, groupID string, dir rules.Direction, perms []rules.Permission, tags map[string]string) error {
	_, err := c.AuthorizeRules(ctx, groupID, dir, perms, tags)
	return err
}

// AuthorizeRules is Authorize returning the rules EC2 reports it created
// (each response's SecurityGroupRules), for the engine to learn their ids
// without describing the group again.
func (c *Client) AuthorizeRules(ctx context.Context, groupID string, dir rules.Direction, perms []rules.Permission, tags map[string]string) ([]reconcile.ActualRule, error) {
	var created []reconcile.ActualRule
	err := c.authorize(ctx, groupID, dir, perms, tags, func(rs []types.SecurityGroupRule) error {
		for _, r := range rs {
			ar, err := flattenRule(r, c.account)
			if err != nil {
				return fmt.Errorf("authorize %s on %s: %w", dir, groupID, err)
			}
			created = append(created, ar)
		}
		return nil
	})
	return created, err
}

func (c *Client) authorize(ctx context.Context, groupID string, dir rules.Direction, perms []rules.Permission, tags map[string]string,
	report func([]types.SecurityGroupRule) error) error {
	for _, p := range perms {
		if p.Key.GroupID != groupID || p.Key.Direction != dir {
			return fmt.Errorf("authorize %s on %s: permission %s belongs elsewhere", dir, groupID, p.Key)
		}
		if err := checkPeer(p); err != nil {
			return fmt.Errorf("authorize %s on %s: %w", dir, groupID, err)
		}
	}
	var specs []types.TagSpecification
	if len(tags) > 0 {
		spec := types.TagSpecification{ResourceType: types.ResourceTypeSecurityGroupRule}
		for _, k := range slices.Sorted(maps.Keys(tags)) {
			spec.Tags = append(spec.Tags, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
		}
		specs = []types.TagSpecification{spec}
	}
	for _, chunk := range chunks(dedupePermissions(perms), MaxEntries) {
		ipPerms := expandPermissions(chunk, c.account)
		var err error
		var created []types.SecurityGroupRule
		switch dir {
		case rules.Ingress:
			var out *ec2.AuthorizeSecurityGroupIngressOutput
			out, err = c.api.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
				GroupId: aws.String(groupID), IpPermissions: ipPerms, TagSpecifications: specs,
			})
			if out != nil {
				created = out.SecurityGroupRules
			}
		case rules.Egress:
			var out *ec2.AuthorizeSecurityGroupEgressOutput
			out, err = c.api.AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{
				GroupId: aws.String(groupID), IpPermissions: ipPerms, TagSpecifications: specs,
			})
			if out != nil {
				created = out.SecurityGroupRules
			}
		default:
			return fmt.Errorf("authorize on %s: direction %q", groupID, dir)
		}
		if err != nil {
			return wrapError("authorize "+string(dir)+" on "+groupID, err)
		}
		if err := report(created); err != nil {
			return err
		}
	}
	return nil
}

// Revoke removes rules by id, in one call per MaxEntries ids. A missing
// group means everything is already gone (nil).
func (c *Client) Revoke(ctx context.Context, groupID string, dir rules.Direction, ruleIDs []string) error {
	for _, ids := range chunks(strutil.SortedUnique(ruleIDs), MaxEntries) {
		var err error
		switch dir {
		case rules.Ingress:
			_, err = c.api.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{
				GroupId: aws.String(groupID), SecurityGroupRuleIds: ids,
			})
		case rules.Egress:
			_, err = c.api.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{
				GroupId: aws.String(groupID), SecurityGroupRuleIds: ids,
			})
		default:
			return fmt.Errorf("revoke on %s: direction %q", groupID, dir)
		}
		if errorCode(err) == "InvalidGroup.NotFound" {
			return nil
		}
		if err != nil {
			return wrapError("revoke "+string(dir)+" on "+groupID, err)
		}
	}
	return nil
}

// ModifyRules changes rules in place, by rule id, with one
// ModifySecurityGroupRules call (per MaxEntries updates): protocol, ports,
// peer (of the same kind) and description. Each update restates the whole
// rule from its new key, as the API requires; the rule keeps its id and
// tags, and EC2 applies the call atomically.
func (c *Client) ModifyRules(ctx context.Context, groupID string, updates []reconcile.RuleUpdate) error {
	for _, chunk := range chunks(updates, MaxEntries) {
		in := &ec2.ModifySecurityGroupRulesInput{GroupId: aws.String(groupID)}
		for _, u := range chunk {
			if u.Key.GroupID != groupID {
				return fmt.Errorf("modify rules in %s: rule %s belongs to %s", groupID, u.RuleID, u.Key.GroupID)
			}
			in.SecurityGroupRules = append(in.SecurityGroupRules, types.SecurityGroupRuleUpdate{
				SecurityGroupRuleId: aws.String(u.RuleID),
				SecurityGroupRule:   expandRuleRequest(u.Key, u.Description),
			})
		}
		if _, err := c.api.ModifySecurityGroupRules(ctx, in); err != nil {
			return wrapError("modify rules in "+groupID, err)
		}
	}
	return nil
}

// PrefixListEntries returns the CIDRs of the current version of one
// managed prefix list (GetManagedPrefixListEntries, all pages), sorted. A
// list that does not exist is an error wrapping reconcile.ErrNotFound, one
// the credentials may not read wraps reconcile.ErrAccessDenied.
func (c *Client) PrefixListEntries(ctx context.Context, id string) ([]netip.Prefix, error) {
	in := &ec2.GetManagedPrefixListEntriesInput{PrefixListId: aws.String(id), MaxResults: aws.Int32(100)}
	var out []netip.Prefix
	for {
		page, err := c.api.GetManagedPrefixListEntries(ctx, in)
		if err != nil {
			return nil, wrapError("read the entries of prefix list "+id, err)
		}
		for _, e := range page.Entries {
			pfx, err := netip.ParsePrefix(aws.ToString(e.Cidr))
			if err != nil {
				return nil, fmt.Errorf("read the entries of prefix list %s: entry %q: %w", id, aws.ToString(e.Cidr), err)
			}
			out = append(out, pfx.Masked())
		}
		if aws.ToString(page.NextToken) == "" {
			break
		}
		in.NextToken = page.NextToken
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return out, nil
}

// wrapError wraps err once with what failed and, where the EC2 code has a
// meaning for the engine, the matching sentinel.
func wrapError(what string, err error) error {
	var sentinel error
	switch errorCode(err) {
	case "InvalidPermission.Duplicate":
		sentinel = reconcile.ErrDuplicate
	case "InvalidGroup.NotFound":
		sentinel = reconcile.ErrGroupNotFound
	case "RulesPerSecurityGroupLimitExceeded":
		sentinel = reconcile.ErrRulesLimit
	case "InvalidSecurityGroupRuleId.NotFound", "InvalidPermission.NotFound", "InvalidPrefixListID.NotFound", "InvalidPrefixListId.NotFound":
		sentinel = reconcile.ErrNotFound
	case "UnauthorizedOperation", "AccessDenied", "AccessDeniedException":
		sentinel = reconcile.ErrAccessDenied
	}
	if sentinel != nil {
		return fmt.Errorf("%s: %w: %w", what, sentinel, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// flattenGroup converts a described group, its rules included
// (IpPermissions, IpPermissionsEgress: one ActualRule per peer, without
// id or tags), with the account rules are seen from as in flattenRule.
func flattenGroup(g types.SecurityGroup, account string) (reconcile.GroupInfo, error) {
	gi := reconcile.GroupInfo{
		GroupID:    aws.ToString(g.GroupId),
		VPCID:      aws.ToString(g.VpcId),
		Name:       aws.ToString(g.GroupName),
		Tags:       flattenTags(g.Tags),
		RulesKnown: true,
	}
	if account == "" {
		account = aws.ToString(g.OwnerId)
	}
	for _, d := range []struct {
		egress bool
		perms  []types.IpPermission
	}{{false, g.IpPermissions}, {true, g.IpPermissionsEgress}} {
		for _, ip := range d.perms {
			rs, err := flattenIPPermission(gi.GroupID, d.egress, ip, account)
			if err != nil {
				return gi, err
			}
			gi.Rules = append(gi.Rules, rs...)
		}
	}
	sortRules(gi.Rules)
	return gi, nil
}

// flattenIPPermission converts one IpPermission of a group into one rule
// per peer, each through flattenRule (same normalisation).
func flattenIPPermission(group string, egress bool, ip types.IpPermission, account string) ([]reconcile.ActualRule, error) {
	base := types.SecurityGroupRule{GroupId: aws.String(group), IsEgress: aws.Bool(egress),
		IpProtocol: ip.IpProtocol, FromPort: ip.FromPort, ToPort: ip.ToPort}
	var rs []types.SecurityGroupRule
	for _, r := range ip.IpRanges {
		x := base
		x.CidrIpv4, x.Description = r.CidrIp, r.Description
		rs = append(rs, x)
	}
	for _, r := range ip.Ipv6Ranges {
		x := base
		x.CidrIpv6, x.Description = r.CidrIpv6, r.Description
		rs = append(rs, x)
	}
	for _, r := range ip.PrefixListIds {
		x := base
		x.PrefixListId, x.Description = r.PrefixListId, r.Description
		rs = append(rs, x)
	}
	for _, r := range ip.UserIdGroupPairs {
		x := base
		x.ReferencedGroupInfo = &types.ReferencedSecurityGroup{GroupId: r.GroupId, UserId: r.UserId}
		x.Description = r.Description
		rs = append(rs, x)
	}
	out := make([]reconcile.ActualRule, 0, len(rs))
	for _, r := range rs {
		ar, err := flattenRule(r, account)
		if err != nil {
			return nil, fmt.Errorf("group %s: %w", group, err)
		}
		ar.Tags = nil
		out = append(out, ar)
	}
	return out, nil
}

func flattenTags(tags []types.Tag) map[string]string {
	if len(tags) == 0 {
		return nil
	}
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func hasTags(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

func vpcLabel(vpc string) string {
	if vpc == "" {
		return "any vpc"
	}
	return vpc
}

func chunks[T any](s []T, n int) [][]T {
	var out [][]T
	for len(s) > 0 {
		k := min(n, len(s))
		out = append(out, s[:k])
		s = s[k:]
	}
	return out
}

// DescribePrefixLists returns the managed prefix lists among ids, with as
// few filtered DescribeManagedPrefixLists calls as the filter limit allows
// (and their pages). A list owned by "AWS" is AWS-managed.
func (c *Client) DescribePrefixLists(ctx context.Context, ids []string) ([]reconcile.PrefixListInfo, error) {
	var out []reconcile.PrefixListInfo
	for _, chunk := range chunks(strutil.SortedUnique(ids), MaxFilterValues) {
		in := &ec2.DescribeManagedPrefixListsInput{
			Filters:    []types.Filter{{Name: aws.String("prefix-list-id"), Values: chunk}},
			MaxResults: aws.Int32(100),
		}
		for {
			page, err := c.api.DescribeManagedPrefixLists(ctx, in)
			if err != nil {
				return nil, wrapError(fmt.Sprintf("describe %d prefix lists", len(chunk)), err)
			}
			for _, pl := range page.PrefixLists {
				out = append(out, reconcile.PrefixListInfo{ID: aws.ToString(pl.PrefixListId), MaxEntries: int(aws.ToInt32(pl.MaxEntries)),
					AddressFamily: aws.ToString(pl.AddressFamily), AWSManaged: aws.ToString(pl.OwnerId) == "AWS"})
			}
			if aws.ToString(page.NextToken) == "" {
				break
			}
			in.NextToken = page.NextToken
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
