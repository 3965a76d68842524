package fleetrt

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/adapters/ratelimit"
	"github.com/sgrules/sgrules/internal/adapters/s3source"
	"github.com/sgrules/sgrules/internal/config"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Fleet is the wiring of one hub across its targets: its identity, the
// reconcile.Fleet of every target, and the clients of each target, built
// on first use and kept for the execution environment (one credentials
// cache per account, one rate-limited EC2 client per target).
//
// The hub's identity is asked on first use, not when the Fleet is built,
// so that a function's init calls no AWS API.
type Fleet struct {
	// Source is every rule file.
	Source reconcile.Source

	ready bool
	fleet *reconcile.Fleet
	// policy is the guardrail policy of every target (nil: none).
	policy    reconcile.PolicyStore
	partition string
	home      rules.Target
	ledger    *ddbledger.Ledger

	c      config.Config
	cfg    aws.Config
	opts   EngineOptions
	caller *awsconfig.Caller

	mu     sync.Mutex
	groups map[rules.Target]*ec2sg.Client

	regions *RegionCheck
}

// New builds the hub of c on its own AWS configuration: on first use, one
// sts:GetCallerIdentity tells its account and partition (the region is
// cfg's). Targets in other accounts are reached through the role
// TargetRole there (awsconfig.Caller: stscreds, with TargetExternalID when
// set, one credentials cache per account); the hub's own account uses
// cfg's credentials.
// Only the hub's account and TargetAccounts may be named by rule files.
func New(_ context.Context, c config.Config, cfg aws.Config, opts EngineOptions) (*Fleet, error) {
	if c.TargetRole == "" {
		c.TargetRole = config.DefaultTargetRole
	}
	f := &Fleet{c: c, cfg: cfg, opts: opts, groups: map[rules.Target]*ec2sg.Client{},
		caller: awsconfig.NewCaller(cfg, awsconfig.AssumeRole{Role: c.TargetRole, ExternalID: c.TargetExternalID, SessionName: opts.sessionName()})}
	f.regions = NewRegionCheck(cfg)
	f.Source = opts.Source
	if f.Source == nil {
		f.Source = withoutPolicy(c, s3source.New(s3.NewFromConfig(cfg, awsconfig.S3Options), c.Bucket, c.Prefix))
	}
	f.policy = policy(c, cfg, opts)
	if f.opts.UsedWithin == 0 {
		f.opts.UsedWithin = c.UsedWithin
	}
	return f, nil
}

// init asks who the hub is (once: a failure is tried again on the next
// use) and builds the ledger and the fleet on the answer.
func (f *Fleet) init(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ready {
		return nil
	}
	id, err := f.caller.Identify(ctx)
	if err != nil {
		return err
	}
	f.partition = id.Partition
	f.home = rules.Target{Account: id.Account, Region: f.cfg.Region}
	f.ledger = ddbledger.New(dynamodb.NewFromConfig(f.cfg), f.c.Table, ddbledger.WithLogger(f.opts.logger()), ddbledger.WithHome(f.home))
	f.fleet, err = reconcile.NewFleet(reconcile.FleetConfig{
		Home: f.home, AllowAccount: f.AllowAccount, Accounts: f.c.TargetAccounts, Source: f.Source, Ledger: f.ledger, Logger: f.opts.logger(),
		RegionExists: f.regions.Exists, Partition: f.partition,
		Engine: func(_ context.Context, t rules.Target, src reconcile.Source, led reconcile.Ledger) (*reconcile.Engine, error) {
			return f.engine(t, src, led)
		},
	})
	if err != nil {
		return err
	}
	f.ready = true
	return nil
}

// Reconcile is reconcile.Fleet.Reconcile.
func (f *Fleet) Reconcile(ctx context.Context, req reconcile.Request, only []rules.Target) (reconcile.FleetResult, error) {
	if err := f.init(ctx); err != nil {
		return reconcile.FleetResult{}, err
	}
	return f.fleet.Reconcile(ctx, req, only)
}

// Targets is reconcile.Fleet.Targets.
func (f *Fleet) Targets(ctx context.Context) ([]rules.Target, error) {
	if err := f.init(ctx); err != nil {
		return nil, err
	}
	return f.fleet.Targets(ctx)
}

// Home is the hub's account and region (zero before the first use).
func (f *Fleet) Home() rules.Target {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.home
}

// AllowAccount: the hub's own account and TargetAccounts.
func (f *Fleet) AllowAccount(account string) bool {
	return account == f.home.Account || slices.Contains(f.c.TargetAccounts, account)
}

// RoleARN is the role assumed in a target account.
func (f *Fleet) RoleARN(account string) string { return f.caller.RoleARN(account) }

// HomeEngine is the home target's engine on the whole Source, built on
// first use: the CloudFormation custom resource's (inline sources are
// the hub's).
func (f *Fleet) HomeEngine() HomeEngine { return HomeEngine{f} }

// HomeEngine reconciles in the hub's own target.
type HomeEngine struct{ f *Fleet }

// Reconcile runs req on the home target's engine.
func (h HomeEngine) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	if err := h.f.init(ctx); err != nil {
		return reconcile.Result{}, err
	}
	eng, err := h.f.engine(h.f.home, h.f.Source, h.f.ledger.For(h.f.home))
	if err != nil {
		return reconcile.Result{}, err
	}
	return eng.Reconcile(ctx, req)
}

// Groups returns the EC2 adapter of a target (built once).
func (f *Fleet) Groups(t rules.Target) (*ec2sg.Client, error) {
	t = t.Resolve(f.home)
	if !f.AllowAccount(t.Account) {
		return nil, fmt.Errorf("account %s is not a target account (%s)", t.Account, config.EnvTargetAccounts)
	}
	return f.groupsOf(t), nil
}

// groupsOf is Groups without the check (offboarding reaches accounts no
// longer allowed).
func (f *Fleet) groupsOf(t rules.Target) *ec2sg.Client {
	f.mu.Lock()
	defer f.mu.Unlock()
	if g, ok := f.groups[t]; ok {
		return g
	}
	cfg := f.caller.Config(t)
	g := ec2sg.New(ratelimit.New(ec2.NewFromConfig(cfg), ratelimit.Defaults()), ec2sg.WithAccount(t.Account))
	f.groups[t] = g
	return g
}

func (f *Fleet) engine(t rules.Target, src reconcile.Source, led reconcile.Ledger) (*reconcile.Engine, error) {
	groups, err := f.Groups(t)
	if err != nil {
		return nil, err
	}
	// Traffic evidence (docs/usage.md): the ledger's counters, which the
	// flow-log function writes, when FLOW_LOGS_URL says flow logs are
	// ingested (the functions); with the flow logs read by the caller
	// (the CLI's --flow-logs), those and the counters together.
	var evidence reconcile.UsageEvidence
	if f.opts.Evidence != nil {
		logs, err := f.opts.Evidence(t.Resolve(f.home), f.caller.Config(t.Resolve(f.home)))
		if err != nil {
			return nil, err
		}
		evidence = reconcile.CombineEvidence(logs, f.ledger.Evidence())
	} else if f.c.FlowLogs != "" {
		evidence = f.ledger.Evidence()
	}
	return reconcile.New(reconcile.Config{
		Source:       src,
		Groups:       groups,
		Ledger:       led,
		LedgerID:     f.c.Table,
		DeploymentID: f.c.DeploymentID,
		Peers: peers(f.c, f.cfg, []ddbledger.Option{ddbledger.WithHome(f.home)},
			func(l *ddbledger.Ledger) reconcile.PeerLedger { return l.For(t) }),
		MaxRevoke:       f.c.MaxRevoke,
		MaxPause:        f.c.MaxPause,
		ManagedGroupTag: f.c.ManagedGroupTag,
		Policy:          f.policy,
		Holder:          f.opts.Holder,
		Logger:          f.opts.logger().With("account", t.Account, "region", t.Region),
		Target:          t,
		Home:            f.home,
		AllowAccount:    f.AllowAccount,
		RegionExists:    f.regions.Exists,
		Partition:       f.partition,
		Evidence:        evidence,
		UsedWithin:      f.opts.UsedWithin,
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
	if err := f.init(ctx); err != nil {
		return nil, err
	}
	owned, err := f.ledger.For(t).AllPermissions(ctx)
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
