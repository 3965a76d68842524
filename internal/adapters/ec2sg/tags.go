package ec2sg

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/sgrules/sgrules/internal/strutil"
)

// TagAPI is the part of the EC2 client that tags existing rules (claims
// of adopted rules, their release); *ec2.Client and the ratelimit client
// satisfy it.
type TagAPI interface {
	CreateTags(ctx context.Context, in *ec2.CreateTagsInput, optFns ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
	DeleteTags(ctx context.Context, in *ec2.DeleteTagsInput, optFns ...func(*ec2.Options)) (*ec2.DeleteTagsOutput, error)
}

var _ TagAPI = (*ec2.Client)(nil)

// maxTagResources bounds the resources of one CreateTags or DeleteTags
// call.
const maxTagResources = 1000

var errNoTagAPI = errors.New("the EC2 client cannot tag rules (no CreateTags/DeleteTags)")

// TagRules adds tags to existing rules of a group.
func (c *Client) TagRules(ctx context.Context, groupID string, ruleIDs []string, tags map[string]string) error {
	t, ok := c.api.(TagAPI)
	if !ok {
		return wrapError("tag rules in "+groupID, errNoTagAPI)
	}
	for _, ids := range chunks(strutil.SortedUnique(ruleIDs), maxTagResources) {
		if _, err := t.CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids, Tags: expandTags(tags, false)}); err != nil {
			return wrapError("tag rules in "+groupID, err)
		}
	}
	return nil
}

// UntagRules removes tags from rules of a group: a tag with a value only
// where the rule has that value, one with "" whatever its value.
func (c *Client) UntagRules(ctx context.Context, groupID string, ruleIDs []string, tags map[string]string) error {
	t, ok := c.api.(TagAPI)
	if !ok {
		return wrapError("untag rules in "+groupID, errNoTagAPI)
	}
	for _, ids := range chunks(strutil.SortedUnique(ruleIDs), maxTagResources) {
		if _, err := t.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: ids, Tags: expandTags(tags, true)}); err != nil {
			return wrapError("untag rules in "+groupID, err)
		}
	}
	return nil
}

// expandTags turns tags into EC2 tags, sorted by key; with anyValue, an
// empty value is left out (DeleteTags then deletes the key whatever its
// value).
func expandTags(tags map[string]string, anyValue bool) []types.Tag {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]types.Tag, 0, len(keys))
	for _, k := range keys {
		t := types.Tag{Key: aws.String(k)}
		if v := tags[k]; v != "" || !anyValue {
			t.Value = aws.String(v)
		}
		out = append(out, t)
	}
	return out
}

// TagGroups adds tags to security groups, many groups per call.
func (c *Client) TagGroups(ctx context.Context, groupIDs []string, tags map[string]string) error {
	t, ok := c.api.(TagAPI)
	if !ok {
		return wrapError("tag groups", errNoTagAPI)
	}
	for _, ids := range chunks(strutil.SortedUnique(groupIDs), maxTagResources) {
		if _, err := t.CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids, Tags: expandTags(tags, false)}); err != nil {
			return wrapError(fmt.Sprintf("tag %d security groups", len(ids)), err)
		}
	}
	return nil
}

// UntagGroups removes the tags with these keys (whatever their value) from
// security groups, many groups per call.
func (c *Client) UntagGroups(ctx context.Context, groupIDs []string, keys []string) error {
	t, ok := c.api.(TagAPI)
	if !ok {
		return wrapError("untag groups", errNoTagAPI)
	}
	tags := map[string]string{}
	for _, k := range keys {
		tags[k] = ""
	}
	for _, ids := range chunks(strutil.SortedUnique(groupIDs), maxTagResources) {
		if _, err := t.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: ids, Tags: expandTags(tags, true)}); err != nil {
			return wrapError(fmt.Sprintf("untag %d security groups", len(ids)), err)
		}
	}
	return nil
}
