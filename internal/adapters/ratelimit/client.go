package ratelimit

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
)

// Config shapes the buckets of a Client.
type Config struct {
	// Mutating is the bucket of mutating calls that have no bucket of
	// their own: AuthorizeSecurityGroupEgress, RevokeSecurityGroupEgress,
	// ModifySecurityGroupRules.
	Mutating Limit
	// Ingress is the bucket of AuthorizeSecurityGroupIngress and
	// RevokeSecurityGroupIngress (EC2 gives them their own).
	Ingress Limit
	// Describe is the bucket of non-mutating calls
	// (DescribeSecurityGroups, DescribeSecurityGroupRules, and the prefix
	// list reads).
	Describe Limit
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

// Client is an ec2sg.API that takes one token of the matching bucket
// before every call it passes to the wrapped client, so every EC2 call the
// adapter makes (each page of a describe, each batch) waits exactly once,
// whatever the adapter's batching.
type Client struct {
	next                        ec2sg.API
	mutating, ingress, describe *Bucket
}

var _ ec2sg.API = (*Client)(nil)

// New wraps next (usually an *ec2.Client) with the buckets of cfg.
func New(next ec2sg.API, cfg Config) *Client {
	return &Client{
		next:     next,
		mutating: NewBucket(cfg.Mutating, cfg.Clock),
		ingress:  NewBucket(cfg.Ingress, cfg.Clock),
		describe: NewBucket(cfg.Describe, cfg.Clock),
	}
}

// Buckets returns the mutating, ingress and describe buckets (nil when
// unlimited), e.g. to report how many tokens are left.
func (c *Client) Buckets() (mutating, ingress, describe *Bucket) {
	return c.mutating, c.ingress, c.describe
}

func (c *Client) DescribeManagedPrefixLists(ctx context.Context, in *ec2.DescribeManagedPrefixListsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeManagedPrefixListsOutput, error) {
	if err := c.describe.Wait(ctx, 1); err != nil {
		return nil, err
	}
	return c.next.DescribeManagedPrefixLists(ctx, in, optFns...)
}

func (c *Client) GetManagedPrefixListEntries(ctx context.Context, in *ec2.GetManagedPrefixListEntriesInput, optFns ...func(*ec2.Options)) (*ec2.GetManagedPrefixListEntriesOutput, error) {
	if err := c.describe.Wait(ctx, 1); err != nil {
		return nil, err
	}
	return c.next.GetManagedPrefixListEntries(ctx, in, optFns...)
}

func (c *Client) DescribeSecurityGroups(ctx context.Context, in *ec2.DescribeSecurityGroupsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error) {
	if err := c.describe.Wait(ctx, 1); err != nil {
		return nil, err
	}
	return c.next.DescribeSecurityGroups(ctx, in, optFns...)
}

func (c *Client) DescribeSecurityGroupRules(ctx context.Context, in *ec2.DescribeSecurityGroupRulesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupRulesOutput, error) {
	if err := c.describe.Wait(ctx, 1); err != nil {
		return nil, err
	}
	return c.next.DescribeSecurityGroupRules(ctx, in, optFns...)
}

func (c *Client) AuthorizeSecurityGroupIngress(ctx context.Context, in *ec2.AuthorizeSecurityGroupIngressInput, optFns ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error) {
	if err := c.ingress.Wait(ctx, 1); err != nil {
		return nil, err
	}
	return c.next.AuthorizeSecurityGroupIngress(ctx, in, optFns...)
}

func (c *Client) RevokeSecurityGroupIngress(ctx context.Context, in *ec2.RevokeSecurityGroupIngressInput, optFns ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupIngressOutput, error) {
	if err := c.ingress.Wait(ctx, 1); err != nil {
		return nil, err
	}
	return c.next.RevokeSecurityGroupIngress(ctx, in, optFns...)
}

func (c *Client) AuthorizeSecurityGroupEgress(ctx context.Context, in *ec2.AuthorizeSecurityGroupEgressInput, optFns ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupEgressOutput, error) {
	if err := c.mutating.Wait(ctx, 1); err != nil {
		return nil, err
	}
	return c.next.AuthorizeSecurityGroupEgress(ctx, in, optFns...)
}

func (c *Client) RevokeSecurityGroupEgress(ctx context.Context, in *ec2.RevokeSecurityGroupEgressInput, optFns ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupEgressOutput, error) {
	if err := c.mutating.Wait(ctx, 1); err != nil {
		return nil, err
	}
	return c.next.RevokeSecurityGroupEgress(ctx, in, optFns...)
}

func (c *Client) ModifySecurityGroupRules(ctx context.Context, in *ec2.ModifySecurityGroupRulesInput, optFns ...func(*ec2.Options)) (*ec2.ModifySecurityGroupRulesOutput, error) {
	if err := c.mutating.Wait(ctx, 1); err != nil {
		return nil, err
	}
	return c.next.ModifySecurityGroupRules(ctx, in, optFns...)
}

func (c *Client) CreateTags(ctx context.Context, in *ec2.CreateTagsInput, optFns ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
	t, ok := c.next.(ec2sg.TagAPI)
	if !ok {
		return nil, errors.New("ratelimit: the wrapped EC2 client cannot tag")
	}
	if err := c.mutating.Wait(ctx, 1); err != nil {
		return nil, err
	}
	return t.CreateTags(ctx, in, optFns...)
}

func (c *Client) DeleteTags(ctx context.Context, in *ec2.DeleteTagsInput, optFns ...func(*ec2.Options)) (*ec2.DeleteTagsOutput, error) {
	t, ok := c.next.(ec2sg.TagAPI)
	if !ok {
		return nil, errors.New("ratelimit: the wrapped EC2 client cannot tag")
	}
	if err := c.mutating.Wait(ctx, 1); err != nil {
		return nil, err
	}
	return t.DeleteTags(ctx, in, optFns...)
}
