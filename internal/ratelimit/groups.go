package ratelimit

import (
	"context"
	"sort"
	"strings"

	"github.com/sgrules/sgrules/internal/ec2sg"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Config shapes the buckets of Groups.
type Config struct {
	// Mutating is the bucket of mutating calls that have no bucket of
	// their own: AuthorizeSecurityGroupEgress, RevokeSecurityGroupEgress,
	// ModifySecurityGroupRules.
	Mutating Limit
	// Ingress is the bucket of AuthorizeSecurityGroupIngress and
	// RevokeSecurityGroupIngress (EC2 gives them their own).
	Ingress Limit
	// Describe is the bucket of non-mutating calls
	// (DescribeSecurityGroups, DescribeSecurityGroupRules).
	Describe Limit
	// How the wrapped adapter splits work into calls, to take one token
	// per call: entries per authorize/revoke/modify call, values per
	// describe filter, rules or groups per describe page. Zero means the
	// ec2sg adapter's values.
	MaxEntries, MaxFilterValues, PageSize int
	// Clock is the time source (nil: SystemClock).
	Clock Clock
}

// Defaults are EC2's default bucket sizes and refill rates.
func Defaults() Config {
	return Config{
		Mutating: Limit{Burst: 50, PerSecond: 5},
		Ingress:  Limit{Burst: 50, PerSecond: 5},
		Describe: Limit{Burst: 100, PerSecond: 20},
	}
}

// Groups is a reconcile.Groups that waits for a token of the matching
// bucket before every EC2 call the wrapped adapter will make.
type Groups struct {
	next                         reconcile.Groups
	mutating, ingress, describe  *Bucket
	maxEntries, maxFilter, pageN int
}

var _ reconcile.Groups = (*Groups)(nil)

// New wraps next (usually an *ec2sg.Client) with the buckets of cfg.
func New(next reconcile.Groups, cfg Config) *Groups {
	g := &Groups{
		next:       next,
		mutating:   NewBucket(cfg.Mutating, cfg.Clock),
		ingress:    NewBucket(cfg.Ingress, cfg.Clock),
		describe:   NewBucket(cfg.Describe, cfg.Clock),
		maxEntries: cfg.MaxEntries, maxFilter: cfg.MaxFilterValues, pageN: cfg.PageSize,
	}
	if g.maxEntries <= 0 {
		g.maxEntries = ec2sg.MaxEntries
	}
	if g.maxFilter <= 0 {
		g.maxFilter = ec2sg.MaxFilterValues
	}
	if g.pageN <= 0 {
		g.pageN = ec2sg.MaxResults
	}
	return g
}

// Buckets returns the mutating, ingress and describe buckets (nil when
// unlimited), e.g. to report how many tokens are left.
func (g *Groups) Buckets() (mutating, ingress, describe *Bucket) {
	return g.mutating, g.ingress, g.describe
}

func calls(n, per int) int {
	if n <= 0 {
		return 0
	}
	return (n + per - 1) / per
}

func distinct(ids []string) int {
	set := make(map[string]bool, len(ids))
	for _, id := range ids {
		if id != "" {
			set[id] = true
		}
	}
	return len(set)
}

// extraPages charges the pages beyond the first of each call, known only
// from the result's size.
func (g *Groups) extraPages(callsMade, results int) {
	g.describe.Charge(calls(results, g.pageN) - callsMade)
}

func (g *Groups) ResolveGroups(ctx context.Context, refs []rules.GroupRef) (map[string][]string, error) {
	// As ec2sg: ids need no call; names in one call per VPC (per
	// MaxFilterValues names); tags in one call per set of tag keys.
	names := map[string]int{}
	tags := map[string]int{}
	for _, r := range refs {
		switch {
		case r.ID != "":
		case r.Name != "":
			names[r.VPCID]++
		case len(r.Tags) > 0:
			keys := make([]string, 0, len(r.Tags))
			for k := range r.Tags {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			tags[strings.Join(keys, "\x00")]++
		}
	}
	n := 0
	for _, c := range names {
		n += calls(c, g.maxFilter)
	}
	for _, c := range tags {
		n += calls(c, g.maxFilter)
	}
	if err := g.describe.Wait(ctx, n); err != nil {
		return nil, err
	}
	return g.next.ResolveGroups(ctx, refs)
}

func (g *Groups) DescribeGroups(ctx context.Context, groupIDs []string) ([]reconcile.GroupInfo, error) {
	n := calls(distinct(groupIDs), g.maxFilter)
	if err := g.describe.Wait(ctx, n); err != nil {
		return nil, err
	}
	out, err := g.next.DescribeGroups(ctx, groupIDs)
	g.extraPages(n, len(out))
	return out, err
}

func (g *Groups) DescribeRules(ctx context.Context, groupIDs []string) ([]reconcile.ActualRule, error) {
	n := calls(distinct(groupIDs), g.maxFilter)
	if err := g.describe.Wait(ctx, n); err != nil {
		return nil, err
	}
	out, err := g.next.DescribeRules(ctx, groupIDs)
	g.extraPages(n, len(out))
	return out, err
}

func (g *Groups) DescribeManagedRules(ctx context.Context, ledgerID string) ([]reconcile.ActualRule, error) {
	if err := g.describe.Wait(ctx, 1); err != nil {
		return nil, err
	}
	out, err := g.next.DescribeManagedRules(ctx, ledgerID)
	g.extraPages(1, len(out))
	return out, err
}

// bucketFor returns the bucket of authorize/revoke in dir.
func (g *Groups) bucketFor(dir rules.Direction) *Bucket {
	if dir == rules.Ingress {
		return g.ingress
	}
	return g.mutating
}

func (g *Groups) Authorize(ctx context.Context, groupID string, dir rules.Direction, perms []rules.Permission, tags map[string]string) error {
	if err := g.bucketFor(dir).Wait(ctx, calls(len(perms), g.maxEntries)); err != nil {
		return err
	}
	return g.next.Authorize(ctx, groupID, dir, perms, tags)
}

func (g *Groups) Revoke(ctx context.Context, groupID string, dir rules.Direction, ruleIDs []string) error {
	if err := g.bucketFor(dir).Wait(ctx, calls(distinct(ruleIDs), g.maxEntries)); err != nil {
		return err
	}
	return g.next.Revoke(ctx, groupID, dir, ruleIDs)
}

func (g *Groups) ModifyRules(ctx context.Context, groupID string, updates []reconcile.RuleUpdate) error {
	if err := g.mutating.Wait(ctx, calls(len(updates), g.maxEntries)); err != nil {
		return err
	}
	return g.next.ModifyRules(ctx, groupID, updates)
}
