package awsconfig

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/sgrules/sgrules/pkg/rules"
)

// AssumeRole says how a Caller reaches another account: the role there
// and the session it opens.
type AssumeRole struct {
	Role        string // role name (a leading "/" is dropped); the same in every account
	ExternalID  string // sent when set
	SessionName string // names the session in the target account's CloudTrail
	Policy      string // a session policy narrowing the role, when set
}

// Identity is who a Caller is.
type Identity struct {
	Account   string
	Partition string // "aws" when the caller's ARN does not parse
}

// Caller is the principal of one AWS configuration: it answers who it is
// (sts:GetCallerIdentity, asked once) and hands out the configuration of
// a target: its own credentials in its own account, the role of
// AssumeRole's (stscreds, one credentials cache per account, kept) in
// another. It is safe for concurrent use.
type Caller struct {
	cfg  aws.Config
	sts  *sts.Client
	role AssumeRole

	mu    sync.Mutex
	id    *Identity
	creds map[string]aws.CredentialsProvider
}

// NewCaller returns the Caller of cfg. It calls no AWS API.
func NewCaller(cfg aws.Config, role AssumeRole) *Caller {
	role.Role = strings.TrimPrefix(role.Role, "/")
	return &Caller{cfg: cfg, sts: sts.NewFromConfig(cfg), role: role, creds: map[string]aws.CredentialsProvider{}}
}

// Identify asks who the caller is, once: a failure is asked again on the
// next call.
func (c *Caller) Identify(ctx context.Context) (Identity, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.id != nil {
		return *c.id, nil
	}
	out, err := c.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return Identity{}, fmt.Errorf("who am I (sts:GetCallerIdentity): %w", err)
	}
	id := Identity{Account: aws.ToString(out.Account), Partition: partitionOf(aws.ToString(out.Arn))}
	c.id = &id
	return id, nil
}

// partitionOf is the partition of a principal's ARN ("aws" when it does
// not parse).
func partitionOf(s string) string {
	if a, err := arn.Parse(s); err == nil && a.Partition != "" {
		return a.Partition
	}
	return "aws"
}

// RoleARN is the role assumed in account, in the caller's partition
// (Identify first).
func (c *Caller) RoleARN(account string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.roleARN(account)
}

func (c *Caller) roleARN(account string) string {
	var partition string
	if c.id != nil {
		partition = c.id.Partition
	}
	return fmt.Sprintf("arn:%s:iam::%s:role/%s", partition, account, c.role.Role)
}

// Config is the AWS configuration of target t: the caller's in t's
// region, with the assumed role's credentials when t is in another
// account than the caller's. Identify first: before it, every account is
// another.
func (c *Caller) Config(t rules.Target) aws.Config {
	cfg := c.cfg.Copy()
	cfg.Region = t.Region
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.id != nil && t.Account == c.id.Account {
		return cfg
	}
	p, ok := c.creds[t.Account]
	if !ok {
		p = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(c.sts, c.roleARN(t.Account), func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = c.role.SessionName
			if c.role.ExternalID != "" {
				o.ExternalID = aws.String(c.role.ExternalID)
			}
			if c.role.Policy != "" {
				o.Policy = aws.String(c.role.Policy)
			}
		}))
		c.creds[t.Account] = p
	}
	cfg.Credentials = p
	return cfg
}
