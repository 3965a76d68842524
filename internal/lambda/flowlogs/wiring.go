package flowlogs

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/flowsrc"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Options is what Setup needs of the function's configuration
// (config.Flowlogs: STATE_TABLE; TARGET_ACCOUNTS, TARGET_ROLE,
// TARGET_EXTERNAL_ID as for the other functions); main translates it, so
// this package does not depend on the configuration's package.
type Options struct {
	Table            string
	TargetAccounts   []string
	TargetRole       string // role name (a leading "/" is dropped); required
	TargetExternalID string
}

// Setup builds the function's handler from o on cfg. No AWS call is
// made before the first object: the hub's identity
// (sts:GetCallerIdentity) is asked then, once.
func Setup(o Options, cfg aws.Config, logger *slog.Logger) *Handler {
	h := &hub{cfg: cfg, table: o.Table, accounts: o.TargetAccounts, logger: logger, ec2: map[rules.Target]flowsrc.EC2API{},
		// The target role can also write security group rules: this
		// session may only describe.
		caller: awsconfig.NewCaller(cfg, awsconfig.AssumeRole{Role: o.TargetRole, ExternalID: o.TargetExternalID,
			SessionName: "sgrules-flowlogs", Policy: sessionPolicy})}
	return &Handler{S3: s3.NewFromConfig(cfg, awsconfig.S3Options), Ledger: h, Targets: h, Logger: logger}
}

// sessionPolicy narrows the target role's session to what counting needs.
const sessionPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ec2:DescribeNetworkInterfaces","ec2:GetManagedPrefixListEntries"],"Resource":"*"}]}`

// hub is the deployment's identity, its ledger and the EC2 clients of its
// targets, built on first use and kept for the execution environment.
type hub struct {
	cfg      aws.Config
	table    string
	accounts []string
	logger   *slog.Logger
	caller   *awsconfig.Caller
	mu       sync.Mutex
	ready    bool
	home     rules.Target
	ledger   *ddbledger.Ledger
	ec2      map[rules.Target]flowsrc.EC2API
}

func (h *hub) init(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ready {
		return nil
	}
	id, err := h.caller.Identify(ctx)
	if err != nil {
		return err
	}
	h.home = rules.Target{Account: id.Account, Region: h.cfg.Region}
	h.ledger = ddbledger.New(dynamodb.NewFromConfig(h.cfg), h.table, ddbledger.WithLogger(h.logger), ddbledger.WithHome(h.home),
		ddbledger.WithoutUpgrade()) // its role cannot: the reconcile and drift functions upgrade the table
	h.ready = true
	return nil
}

// EC2 implements Targets: the hub's account with the function's own
// credentials, a target account through TARGET_ROLE there.
func (h *hub) EC2(ctx context.Context, t rules.Target) (flowsrc.EC2API, error) {
	if err := h.init(ctx); err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if t.Account != h.home.Account && !slices.Contains(h.accounts, t.Account) {
		return nil, fmt.Errorf("%s: %w", t.Account, ErrNotTarget)
	}
	if c, ok := h.ec2[t]; ok {
		return c, nil
	}
	c := ec2.NewFromConfig(h.caller.Config(t)) // the SDK retries throttles; Describe calls are few and batched
	h.ec2[t] = c
	return c, nil
}

// GroupPermissions implements Ledger.
func (h *hub) GroupPermissions(ctx context.Context, t rules.Target, groupIDs []string) ([]reconcile.OwnedPermission, error) {
	if err := h.init(ctx); err != nil {
		return nil, err
	}
	return h.ledger.For(t).GroupPermissions(ctx, groupIDs)
}

// AddCounters implements Ledger.
func (h *hub) AddCounters(ctx context.Context, t rules.Target, obj ddbledger.ObjectID, day time.Time, counts []ddbledger.RuleCounter) (bool, error) {
	if err := h.init(ctx); err != nil {
		return false, err
	}
	return h.ledger.CountersFor(t).Add(ctx, obj, day, counts)
}
