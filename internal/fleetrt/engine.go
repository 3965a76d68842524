package fleetrt

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/adapters/flowsrc"
	"github.com/sgrules/sgrules/internal/adapters/policyload"
	"github.com/sgrules/sgrules/internal/adapters/ratelimit"
	"github.com/sgrules/sgrules/internal/adapters/s3source"
	"github.com/sgrules/sgrules/internal/config"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/flowlog"
	"github.com/sgrules/sgrules/pkg/rules"
)

// EngineOptions complete a config.Config for NewEngine and New.
type EngineOptions struct {
	// Source replaces the S3 source of Bucket and Prefix (the CLI's --dir).
	Source reconcile.Source
	// Holder names the caller in group leases when a request names none
	// (the CLI); the Lambda handler puts the request id in each
	// reconcile.Request instead.
	Holder string
	// SessionName names the hub's sessions in target accounts'
	// CloudTrail (default "sgrules").
	SessionName string
	Logger      *slog.Logger
	// Policy replaces the policy at PolicyKey in Bucket (the CLI's
	// --policy FILE).
	Policy reconcile.PolicyStore
	// Evidence, when set, returns the traffic evidence of a target, given
	// its AWS configuration (the CLI's --flow-logs; FLOW_LOGS_URL in the
	// reconcile function): removals of rules that carried traffic within
	// UsedWithin (0: reconcile.DefaultUsedWithin) are refused
	// (reconcile.Config.Evidence).
	Evidence   func(t rules.Target, cfg aws.Config) (reconcile.UsageEvidence, error)
	UsedWithin time.Duration
}

// policy is the guardrail policy in force: opts.Policy, or the object at
// c.PolicyKey in c.Bucket when set (absent: no policy); nil without either.
func policy(c config.Config, cfg aws.Config, opts EngineOptions) reconcile.PolicyStore {
	if opts.Policy != nil {
		return opts.Policy
	}
	if c.PolicyKey != "" && c.Bucket != "" {
		return policyload.New(s3source.New(s3.NewFromConfig(cfg, awsconfig.S3Options), c.Bucket, ""), c.PolicyKey, c.Prefix,
			policyload.Required(c.RequirePolicy), policyload.WithLogger(opts.logger()))
	}
	return nil
}

func (o EngineOptions) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

func (o EngineOptions) sessionName() string {
	if o.SessionName == "" {
		return "sgrules"
	}
	return o.SessionName
}

// NewEngine builds the engine on one AWS configuration: the S3 source of
// Bucket and Prefix (or opts.Source), the EC2 adapter behind one set of
// EC2-shaped token buckets (shared by warm invocations of a function), and
// the DynamoDB ledger in Table, and the guardrail policy (opts.Policy, or
// PolicyKey in Bucket when set: an absent object is no policy). It also returns the EC2 adapter, for
// look-ups outside the engine (group names).
func NewEngine(c config.Config, cfg aws.Config, opts EngineOptions) (*reconcile.Engine, *ec2sg.Client, error) {
	src := opts.Source
	if src == nil {
		src = withoutPolicy(c, s3source.New(s3.NewFromConfig(cfg, awsconfig.S3Options), c.Bucket, c.Prefix))
	}
	pol := policy(c, cfg, opts)
	groups := ec2sg.New(ratelimit.New(ec2.NewFromConfig(cfg), ratelimit.Defaults()))
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	eng, err := reconcile.New(reconcile.Config{
		Source:          src,
		Groups:          groups,
		Ledger:          ddbledger.New(dynamodb.NewFromConfig(cfg), c.Table, ddbledger.WithLogger(logger)),
		LedgerID:        c.Table,
		DeploymentID:    c.DeploymentID,
		Peers:           peers(c, cfg, nil, nil),
		MaxRevoke:       c.MaxRevoke,
		MaxPause:        c.MaxPause,
		ManagedGroupTag: c.ManagedGroupTag,
		Policy:          pol,
		Holder:          opts.Holder,
		Logger:          logger,
	})
	if err != nil {
		return nil, nil, err
	}
	return eng, groups, nil
}

// FlowLogsEvidence returns the traffic evidence factory of the engines
// that reads the flow logs under url (s3://BUCKET/PREFIX, checked) with
// cfg's credentials: each target's own account and region of logs, its
// interfaces and prefix lists looked up with the target's configuration
// (flowsrc.Evidence; one per engine, so one read of the logs per run).
// built, when set, is told of every reader made (the CLI reports what the
// reads found wrong).
func FlowLogsEvidence(cfg aws.Config, url string, built func(*flowsrc.Evidence)) func(rules.Target, aws.Config) (reconcile.UsageEvidence, error) {
	bucket, prefix, err := flowlog.ParseURL(url)
	s3c := s3.NewFromConfig(cfg, awsconfig.S3Options)
	return func(t rules.Target, tcfg aws.Config) (reconcile.UsageEvidence, error) {
		if err != nil {
			return nil, fmt.Errorf("flow logs %s: %w", url, err)
		}
		logs := flowsrc.NewLogs(s3c, bucket, prefix)
		logs.Accounts, logs.Regions = []string{t.Account}, []string{t.Region}
		ev := flowsrc.NewEvidence(logs, flowsrc.NewLookup(ec2.NewFromConfig(tcfg)))
		if built != nil {
			built(ev)
		}
		return ev, nil
	}
}

// peers returns the ledgers of PEER_LEDGERS (c.PeerLedgers), read only, each with a
// DynamoDB client in its region (an ARN's, or cfg's), scoped by scope
// (nil: the home target's items).
func peers(c config.Config, cfg aws.Config, opts []ddbledger.Option, scope func(*ddbledger.Ledger) reconcile.PeerLedger) []reconcile.Peer {
	out := make([]reconcile.Peer, 0, len(c.PeerLedgers))
	for _, entry := range c.PeerLedgers {
		name, region, err := config.PeerTable(entry)
		if err != nil {
			continue // Load refused it
		}
		pc := cfg
		table := name
		if region != "" {
			pc = cfg.Copy()
			pc.Region = region
			table = entry // cross-account tables are named by ARN
		}
		led := ddbledger.New(dynamodb.NewFromConfig(pc), table, opts...)
		var p reconcile.PeerLedger = led
		if scope != nil {
			p = scope(led)
		}
		out = append(out, reconcile.Peer{Table: name, Ledger: p})
	}
	return out
}
