package config

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/adapters/ratelimit"
	"github.com/sgrules/sgrules/internal/adapters/s3source"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Fleet is the wiring of one hub across its targets: its identity, the
// reconcile.Fleet of every target, and the clients of each target, built
// on first use and kept for the execution environment (one credentials
// cache per account, one rate-limited EC2 client per target).
type Fleet struct {
	*reconcile.Fleet
	// Partition is the hub's partition (Home() its account and region).
	Partition string
	home      rules.Target
	Ledger    *ddbledger.Ledger
	// Source is every rule file.
	Source reconcile.Source

	c      Config
	cfg    aws.Config
	opts   EngineOptions
	stsAPI stscreds.AssumeRoleAPIClient

	mu     sync.Mutex
	creds  map[string]aws.CredentialsProvider
	groups map[rules.Target]*ec2sg.Client
}

// NewFleet builds the hub on its own AWS configuration: one
// sts:GetCallerIdentity tells its account and partition (the region is
// cfg's). Targets in other accounts are reached through the role
// TargetRole there (stscreds, with TargetExternalID when set), wrapped
// in a credentials cache; the hub's own account uses cfg's credentials.
// Only the hub's account and TargetAccounts may be named by rule files.
func (c Config) NewFleet(ctx context.Context, cfg aws.Config, opts EngineOptions) (*Fleet, error) {
	stsc := sts.NewFromConfig(cfg)
	id, err := stsc.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return nil, fmt.Errorf("who am I (sts:GetCallerIdentity): %w", err)
	}
	partition := "aws"
	if a, err := arn.Parse(aws.ToString(id.Arn)); err == nil {
		partition = a.Partition
	}
	if c.TargetRole == "" {
		c.TargetRole = DefaultTargetRole
	}
	home := rules.Target{Account: aws.ToString(id.Account), Region: cfg.Region}
	f := &Fleet{home: home, Partition: partition, c: c, cfg: cfg, opts: opts, stsAPI: stsc,
		creds: map[string]aws.CredentialsProvider{}, groups: map[rules.Target]*ec2sg.Client{}}
	f.Source = opts.Source
	if f.Source == nil {
		f.Source = s3source.New(s3.NewFromConfig(cfg, awsconfig.S3Options), c.Bucket, c.Prefix)
	}
	f.Ledger = ddbledger.New(dynamodb.NewFromConfig(cfg), c.Table, ddbledger.WithLogger(opts.logger()), ddbledger.WithHome(home))
	f.Fleet, err = reconcile.NewFleet(reconcile.FleetConfig{
		Home: home, AllowAccount: f.AllowAccount, Source: f.Source, Ledger: f.Ledger, Logger: opts.logger(),
		Engine: func(_ context.Context, t rules.Target, src reconcile.Source, led reconcile.Ledger) (*reconcile.Engine, error) {
			return f.engine(t, src, led)
		},
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// AllowAccount: the hub's own account and TargetAccounts.
func (f *Fleet) AllowAccount(account string) bool {
	return account == f.home.Account || slices.Contains(f.c.TargetAccounts, account)
}

// RoleARN is the role assumed in a target account.
func (f *Fleet) RoleARN(account string) string {
	return fmt.Sprintf("arn:%s:iam::%s:role/%s", f.Partition, account, strings.TrimPrefix(f.c.TargetRole, "/"))
}

// HomeEngine is the home target's engine on the whole Source: the
// CloudFormation custom resource's (inline sources are the hub's).
func (f *Fleet) HomeEngine() (*reconcile.Engine, error) {
	return f.engine(f.home, f.Source, f.Ledger.For(f.home))
}

// Groups returns the EC2 adapter of a target (built once).
func (f *Fleet) Groups(t rules.Target) (*ec2sg.Client, error) {
	t = t.Resolve(f.home)
	if !f.AllowAccount(t.Account) {
		return nil, fmt.Errorf("account %s is not a target account (%s)", t.Account, EnvTargetAccounts)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if g, ok := f.groups[t]; ok {
		return g, nil
	}
	cfg := f.cfg.Copy()
	cfg.Region = t.Region
	if t.Account != f.home.Account {
		p, ok := f.creds[t.Account]
		if !ok {
			arn := f.RoleARN(t.Account)
			p = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(f.stsAPI, arn, func(o *stscreds.AssumeRoleOptions) {
				o.RoleSessionName = f.opts.sessionName()
				if f.c.TargetExternalID != "" {
					o.ExternalID = aws.String(f.c.TargetExternalID)
				}
			}))
			f.creds[t.Account] = p
		}
		cfg.Credentials = p
	}
	g := ec2sg.New(ratelimit.New(ec2.NewFromConfig(cfg), ratelimit.Defaults()), ec2sg.WithAccount(t.Account))
	f.groups[t] = g
	return g, nil
}

func (f *Fleet) engine(t rules.Target, src reconcile.Source, led reconcile.Ledger) (*reconcile.Engine, error) {
	groups, err := f.Groups(t)
	if err != nil {
		return nil, err
	}
	return reconcile.New(reconcile.Config{
		Source:       src,
		Groups:       groups,
		Ledger:       led,
		LedgerID:     f.c.Table,
		MaxRevoke:    f.c.MaxRevoke,
		Holder:       f.opts.Holder,
		Logger:       f.opts.logger().With("account", t.Account, "region", t.Region),
		Target:       t,
		Home:         f.home,
		AllowAccount: f.AllowAccount,
	})
}

// Explain turns an AWS error of a target into a sentence naming what to
// check (the trust of the target role), or returns err.
func (f *Fleet) Explain(err error) error {
	var te *reconcile.TargetError
	if errors.As(err, &te) && te.Target.Account != f.home.Account && strings.Contains(err.Error(), "AccessDenied") {
		return fmt.Errorf("%w (can the hub assume %s? deploy template-target.yaml there)", err, f.RoleARN(te.Target.Account))
	}
	return err
}

// ShardGroups lists the groups a target's ledger owns rules in (the
// drift planner shards a target with many).
func (f *Fleet) ShardGroups(ctx context.Context, t rules.Target) ([]string, error) {
	owned, err := f.Ledger.For(t).AllPermissions(ctx)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, o := range owned {
		ids = append(ids, o.Key.GroupID)
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}
