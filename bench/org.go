package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/config"
	"github.com/sgrules/sgrules/internal/dev/apicount"
	"github.com/sgrules/sgrules/internal/dev/motoproc"
	"github.com/sgrules/sgrules/internal/fleetrt"
	"github.com/sgrules/sgrules/internal/lambda/trigger"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/testutil/motoworld"
	"github.com/sgrules/sgrules/pkg/rules"
)

// The organisation sweep: one hub (moto's default account, us-east-1)
// managing OrgOptions.Accounts member accounts in OrgOptions.Regions
// regions each, OrgOptions.Rules rules per target (the genRules workload:
// ceil(Rules/50) groups per target, referenced by id), one rule file per
// target in the hub's bucket naming its account and region. moto keeps
// the accounts apart by the credentials of `sts assume-role` into
// arn:aws:iam::ACCOUNT:role/sgrules-target and the regions by the
// endpoint's region; the hub reaches them through fleetrt.New
// (stscreds, one credentials cache per account), as the Lambda functions
// do. Nothing drifted, the whole organisation is swept twice, each time
// by a new hub (a cold execution environment: its AssumeRoles are
// counted):
//
//   - sequential: one Fleet.Reconcile(Request{All: true}) running the
//     targets one after the other (the schedule of before the fan-out);
//   - fan-out: the planner (Fleet.Survey) and its sweep messages, one
//     per target carrying the target's route, then a pool of Workers
//     goroutines each running one Fleet.Reconcile(Request{All: true,
//     Route}, only=[t]) per message, as the drift function does per SQS
//     sweep message with ScalingConfig.MaximumConcurrency = Workers (the pool
//     shares one hub, so one credentials cache: Lambda's concurrent
//     environments each have their own).
//
// Both must make, per target, at most MaxOrgEC2Reads EC2 reads and no
// EC2 or DynamoDB write, and exactly one AssumeRole per member account.

// OrgOptions sizes the organisation sweep.
type OrgOptions struct {
	Accounts int
	Regions  int // the first Regions of OrgRegions
	Rules    int // per target
	Workers  int // the fan-out's concurrency
}

// OrgRegions are the regions targets are spread over, in order.
var OrgRegions = []string{"us-east-1", "eu-west-1", "ap-southeast-2", "eu-central-1", "us-west-2", "ap-northeast-1"}

// MaxOrgEC2Reads bounds the EC2 reads of a clean sweep of one target.
const MaxOrgEC2Reads = 2

// Org scenario rows (in Report.Rows, N and Groups over the organisation).
const (
	ScOrgSetup  = "org-setup"        // apply every target's file from scratch
	ScOrgSeq    = "org-sweep-seq"    // one sequential sweep of every target
	ScOrgFanOut = "org-sweep-fanout" // planner + one sweep per target, Workers at once
)

// OrgTargetRole is the role assumed in member accounts.
const OrgTargetRole = config.DefaultTargetRole

// Org is the result of the organisation sweep.
type Org struct {
	Accounts        int      `json:"accounts"`
	Regions         []string `json:"regions"`
	Targets         int      `json:"targets"`
	RulesPerTarget  int      `json:"rulesPerTarget"`
	GroupsPerTarget int      `json:"groupsPerTarget"`
	Workers         int      `json:"workers"`
	Setup           Row      `json:"setup"`
	Sequential      OrgSweep `json:"sequential"`
	FanOut          OrgSweep `json:"fanOut"`
	// Speedup is Sequential.WallMS / FanOut.WallMS.
	Speedup float64 `json:"speedup"`
}

// OrgSweep is one sweep of the organisation: the totals (Row), the
// AssumeRole calls and the calls of each target.
type OrgSweep struct {
	Row
	// TargetsSwept counts the targets run (the member targets and the
	// hub's own, which holds nothing here).
	TargetsSwept int `json:"targetsSwept"`
	AssumeRole   int `json:"assumeRole"`
	// AssumeRoleByAccount counts AssumeRole calls per member account.
	AssumeRoleByAccount map[string]int `json:"assumeRoleByAccount"`
	// MaxEC2ReadsPerTarget and MaxEC2MutatingPerTarget are the most any
	// target made.
	MaxEC2ReadsPerTarget    int           `json:"maxEC2ReadsPerTarget"`
	MaxEC2MutatingPerTarget int           `json:"maxEC2MutatingPerTarget"`
	PerTarget               []TargetCalls `json:"perTarget"`
}

// TargetCalls are the calls made on behalf of one target: its EC2 calls
// and, in the fan-out, its invocation's DynamoDB and S3 calls.
type TargetCalls struct {
	Account  string         `json:"account"`
	Region   string         `json:"region"`
	ByAction map[string]int `json:"byAction"`
	EC2Read  int            `json:"ec2Read"`
	EC2Mut   int            `json:"ec2Mutating"`
	WallMS   float64        `json:"wallMs,omitempty"`
}

// OrgScale is one size of the organisation sweep: DynamoDB items read by
// the whole sweep and per member target (the hub's own target, swept too,
// holds nothing), sequential and fan-out, beside the EC2 reads.
type OrgScale struct {
	Targets                  int     `json:"targets"`
	SeqItemsRead             int     `json:"seqItemsRead"`
	FanOutItemsRead          int     `json:"fanOutItemsRead"`
	SeqItemsReadPerTarget    float64 `json:"seqItemsReadPerTarget"`
	FanOutItemsReadPerTarget float64 `json:"fanOutItemsReadPerTarget"`
	SeqDynamoDBCalls         int     `json:"seqDynamoDBCalls"`
	FanOutDynamoDBCalls      int     `json:"fanOutDynamoDBCalls"`
	EC2Reads                 int     `json:"ec2Reads"`
	MaxEC2ReadsPerTarget     int     `json:"maxEC2ReadsPerTarget"`
	SeqWallMS, FanOutWallMS  float64 `json:"-"`
}

func scaleOf(o *Org) OrgScale {
	per := func(items, targets int) float64 { return float64(items) / float64(max(1, targets)) }
	return OrgScale{Targets: o.Targets,
		SeqItemsRead: o.Sequential.DynamoDBItemsRead, FanOutItemsRead: o.FanOut.DynamoDBItemsRead,
		SeqItemsReadPerTarget:    per(o.Sequential.DynamoDBItemsRead, o.Targets),
		FanOutItemsReadPerTarget: per(o.FanOut.DynamoDBItemsRead, o.Targets),
		SeqDynamoDBCalls:         o.Sequential.DynamoDB, FanOutDynamoDBCalls: o.FanOut.DynamoDB,
		EC2Reads: o.FanOut.EC2Read, MaxEC2ReadsPerTarget: o.FanOut.MaxEC2ReadsPerTarget,
		SeqWallMS: o.Sequential.WallMS, FanOutWallMS: o.FanOut.WallMS}
}

// orgAccount is the i-th member account id.
func orgAccount(i int) string { return fmt.Sprintf("%012d", 200000000001+i) }

func orgKey(t rules.Target) string { return fmt.Sprintf("%s%s/%s.yaml", prefix, t.Account, t.Region) }

type orgWorld struct {
	*world // the hub: counted config, counters
	opt    OrgOptions
	home   rules.Target
	// targets are the member targets, sorted.
	targets  []rules.Target
	accounts []string
	groups   int
	byTarget *targetCounter
	assumes  *assumeCounter
}

func newOrgWorld(ctx context.Context, url string, opt OrgOptions) (*orgWorld, error) {
	if opt.Regions > len(OrgRegions) {
		return nil, fmt.Errorf("at most %d regions", len(OrgRegions))
	}
	hub := &world{raw: motoproc.Config(url), counted: motoproc.Config(url), calls: &apicount.Counter{},
		timer: &opTimer{slow: traceSlow, logf: traceLogf}}
	w := &orgWorld{world: hub, opt: opt, groups: groupsFor(opt.Rules), byTarget: &targetCounter{}, assumes: &assumeCounter{}}
	hub.calls.Attach(&hub.counted)
	hub.timer.attach(&hub.counted)
	w.byTarget.attach(&hub.counted)
	w.assumes.attach(&hub.counted)
	mw, err := motoworld.Build(ctx, hub.raw, motoworld.Spec{Bucket: bucket, Table: table})
	if err != nil {
		return nil, err
	}
	hub.ec2, hub.s3 = mw.EC2, mw.S3
	stsc := sts.NewFromConfig(hub.raw)
	id, err := stsc.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return nil, err
	}
	w.home = rules.Target{Account: aws.ToString(id.Account), Region: hub.raw.Region}
	names := make([]string, w.groups)
	for i := range names {
		names[i] = groupName(i)
	}
	files := map[string][]byte{}
	for a := range opt.Accounts {
		acct := orgAccount(a)
		w.accounts = append(w.accounts, acct)
		// The member account's own credentials, uncounted: set-up.
		out, err := stsc.AssumeRole(ctx, &sts.AssumeRoleInput{
			RoleArn: aws.String("arn:aws:iam::" + acct + ":role/" + OrgTargetRole), RoleSessionName: aws.String("sgbench-setup")})
		if err != nil {
			return nil, fmt.Errorf("assume role in %s: %w", acct, err)
		}
		c := out.Credentials
		for _, region := range OrgRegions[:opt.Regions] {
			t := rules.Target{Account: acct, Region: region}
			cfg := hub.raw.Copy()
			cfg.Region = region
			cfg.Credentials = credentials.NewStaticCredentialsProvider(*c.AccessKeyId, *c.SecretAccessKey, *c.SessionToken)
			mw, err := motoworld.Build(ctx, cfg, motoworld.Spec{Groups: names})
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t, err)
			}
			b, err := orgFile(t, opt.Rules, mw.IDs)
			if err != nil {
				return nil, err
			}
			files[orgKey(t)] = b
			w.targets = append(w.targets, t)
		}
	}
	if err := hub.putFiles(ctx, files); err != nil {
		return nil, err
	}
	return w, nil
}

// orgFile is the one rule file of a target: n rules in the groups ids,
// referenced by id (as `sgrules import` writes them). A file naming its
// groups by id is static: a sweep that finds its ETag unchanged neither
// reads it nor resolves anything (by Name tag, as the other benchmarks
// do, each sweep reads it again and resolves the tags: one S3 GetObject
// and one DescribeSecurityGroups more per target).
func orgFile(t rules.Target, n int, ids []string) ([]byte, error) {
	f := &rules.File{Name: orgKey(t), Target: t}
	for _, s := range genRules(n, len(ids)) {
		r := specRule(s)
		r.SecurityGroup = rules.GroupRef{ID: ids[s.group]}
		if s.peerGroup >= 0 {
			r.SourceSecurityGroups = []rules.GroupRef{{ID: ids[s.peerGroup]}}
		}
		f.Rules = append(f.Rules, r)
	}
	b, err := rules.MarshalYAML(f)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", orgKey(t), err)
	}
	return b, nil
}

// hub is a new hub on the counted configuration: a cold execution
// environment (its own credentials caches and clients).
func (w *orgWorld) hub(ctx context.Context) (*fleetrt.Fleet, error) {
	return fleetrt.New(ctx, config.Config{Table: table, Bucket: bucket, Prefix: prefix, MaxRevoke: -1, TargetAccounts: w.accounts,
		TargetRole: OrgTargetRole}, w.counted, fleetrt.EngineOptions{Holder: "sgbench"})
}

func runOrg(ctx context.Context, url string, opt OrgOptions, logf func(string, ...any)) (*Org, error) {
	w, err := newOrgWorld(ctx, url, opt)
	if err != nil {
		return nil, err
	}
	nt := len(w.targets)
	org := &Org{Accounts: opt.Accounts, Regions: OrgRegions[:opt.Regions], Targets: nt, RulesPerTarget: opt.Rules,
		GroupsPerTarget: w.groups, Workers: opt.Workers}
	n, g := nt*opt.Rules, nt*w.groups

	// Set-up: every file applied from scratch by one hub.
	fl, err := w.hub(ctx)
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(w.targets))
	for i, t := range w.targets {
		keys[i] = orgKey(t)
	}
	var setup reconcile.FleetResult
	m, err := measure(w.world, func() error {
		var err error
		setup, err = fl.Reconcile(ctx, reconcile.Request{Keys: keys, Reason: "bench " + ScOrgSetup}, nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ScOrgSetup, err)
	}
	if err := checkOrgResults(setup.Targets, w.targets, false); err != nil {
		return nil, fmt.Errorf("%s: %w", ScOrgSetup, err)
	}
	for _, tr := range setup.Targets {
		if got := tr.Result.Plan.Count(reconcile.ActAuthorize); got != opt.Rules {
			return nil, fmt.Errorf("%s: %s authorized %d rules, want %d", ScOrgSetup, tr.Target, got, opt.Rules)
		}
	}
	org.Setup = row(n, g, ScOrgSetup, "sgrules", m)
	org.Setup.Authorize = n
	logf("  %-16s %d targets: ec2=%d (mut %d) ddb=%d (writes %d) s3=%d sts=%d %.0fms", ScOrgSetup, nt, org.Setup.EC2,
		org.Setup.EC2Mutating, org.Setup.DynamoDB, org.Setup.DynamoDBWrites, org.Setup.S3, m.counts.ByAction["STS.AssumeRole"], org.Setup.WallMS)

	// One sequential sweep of every target.
	seq, err := w.sweepSequential(ctx, n, g)
	if err != nil {
		return nil, err
	}
	logOrgSweep(logf, seq)
	// The fan-out.
	fan, err := w.sweepFanOut(ctx, n, g)
	if err != nil {
		return nil, err
	}
	logOrgSweep(logf, fan)
	org.Sequential, org.FanOut = *seq, *fan
	if fan.WallMS > 0 {
		org.Speedup = seq.WallMS / fan.WallMS
	}
	return org, nil
}

func logOrgSweep(logf func(string, ...any), s *OrgSweep) {
	logf("  %-16s %d targets: ec2=%d (mut %d, read %d; per target at most %d reads, %d mutating) ddb=%d (writes %d) s3=%d AssumeRole=%d %.0fms  [%s]",
		s.Scenario, s.TargetsSwept, s.EC2, s.EC2Mutating, s.EC2Read, s.MaxEC2ReadsPerTarget, s.MaxEC2MutatingPerTarget,
		s.DynamoDB, s.DynamoDBWrites, s.S3, s.AssumeRole, s.WallMS, strings.Join(topOps(s.MSByAction, 4), " "))
}

// sweepSequential runs one Fleet.Reconcile(All) over every target, one
// target at a time, on a new hub. The reconcile.Fleet is built here on
// the hub's source, EC2 clients and credentials (fleetrt.Fleet exposes
// neither FleetConfig.Concurrency nor its ledger: the ledger is a new
// ddbledger on the same table and home), with the engines' EC2 ports
// labelled with their target so that each target's calls are counted
// apart.
func (w *orgWorld) sweepSequential(ctx context.Context, n, g int) (*OrgSweep, error) {
	hub, err := w.hub(ctx)
	if err != nil {
		return nil, err
	}
	// The hub learns who it is on first use (Groups needs it): not measured.
	if _, err := hub.Targets(ctx); err != nil {
		return nil, err
	}
	if hub.Home() != w.home {
		return nil, fmt.Errorf("hub is %s, want %s", hub.Home(), w.home)
	}
	led := ddbledger.New(dynamodb.NewFromConfig(w.counted), table, ddbledger.WithHome(w.home))
	fl, err := reconcile.NewFleet(reconcile.FleetConfig{
		Home: w.home, AllowAccount: hub.AllowAccount, Source: hub.Source, Ledger: led, Concurrency: 1,
		Engine: func(_ context.Context, t rules.Target, src reconcile.Source, led reconcile.Ledger) (*reconcile.Engine, error) {
			groups, err := hub.Groups(t)
			if err != nil {
				return nil, err
			}
			return reconcile.New(reconcile.Config{Source: src, Groups: labelled{t: t, g: groups}, Ledger: led, LedgerID: table,
				MaxRevoke: -1, Holder: "sgbench", Target: t, Home: w.home, AllowAccount: hub.AllowAccount})
		},
	})
	if err != nil {
		return nil, err
	}
	w.byTarget.reset()
	w.assumes.reset()
	var res reconcile.FleetResult
	m, err := measure(w.world, func() error {
		var err error
		res, err = fl.Reconcile(ctx, reconcile.Request{All: true, Reason: "bench " + ScOrgSeq}, nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ScOrgSeq, err)
	}
	return w.sweepResult(ScOrgSeq, n, g, m, res.Targets, nil)
}

// sweepFanOut plans (planSweeps) and runs one Fleet.Reconcile(All,
// Route, only=[t]) per sweep message, Workers at once, on a new hub.
func (w *orgWorld) sweepFanOut(ctx context.Context, n, g int) (*OrgSweep, error) {
	hub, err := w.hub(ctx)
	if err != nil {
		return nil, err
	}
	w.byTarget.reset()
	w.assumes.reset()
	var results []reconcile.TargetResult
	wall := map[rules.Target]time.Duration{}
	m, err := measure(w.world, func() error {
		msgs, err := planSweeps(ctx, hub)
		if err != nil {
			return fmt.Errorf("plan: %w", err)
		}
		jobs := make(chan *trigger.Sweep)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range max(1, w.opt.Workers) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for sw := range jobs {
					t := rules.Target{Account: sw.Account, Region: sw.Region}
					t0 := time.Now()
					req := reconcile.Request{All: true, Groups: sw.Groups, Route: trigger.ExpandRoute(sw.Route), Reason: "bench " + ScOrgFanOut}
					res, err := hub.Reconcile(withTarget(ctx, t), req, []rules.Target{t})
					d := time.Since(t0)
					mu.Lock()
					wall[t] = d
					if err != nil {
						results = append(results, reconcile.TargetResult{Target: t, Err: err})
					} else {
						results = append(results, res.Targets...)
					}
					mu.Unlock()
				}
			}()
		}
		for _, sw := range msgs {
			jobs <- sw
		}
		close(jobs)
		wg.Wait()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ScOrgFanOut, err)
	}
	return w.sweepResult(ScOrgFanOut, n, g, m, results, wall)
}

// planSweeps is the drift function's schedule (handler: plan, then the
// SQS batches): the planner's Survey, one sweep message per target
// carrying the target's route (trigger.FlattenRoute), as SQS delivers it
// (trigger.Decode of an SQS event), each to be run with its route
// (trigger.ExpandRoute).
func planSweeps(ctx context.Context, hub *fleetrt.Fleet) ([]*trigger.Sweep, error) {
	survey, err := hub.Survey(ctx)
	if err != nil {
		return nil, err
	}
	var sqs events.SQSEvent
	for i, t := range survey.Targets {
		sw := trigger.Sweep{Account: t.Account, Region: t.Region, Run: "sgbench", Route: trigger.FlattenRoute(survey.Routes[t])}
		sqs.Records = append(sqs.Records, events.SQSMessage{MessageId: fmt.Sprint(i), EventSource: "aws:sqs", Body: sw.Body()})
	}
	raw, err := json.Marshal(sqs)
	if err != nil {
		return nil, err
	}
	ev, err := trigger.Decode(raw)
	if err != nil {
		return nil, err
	}
	if ev.Kind != trigger.KindSweep || len(ev.Messages) != len(survey.Targets) {
		return nil, fmt.Errorf("%d sweep messages decoded as %s with %d messages", len(survey.Targets), ev.Kind, len(ev.Messages))
	}
	out := make([]*trigger.Sweep, len(ev.Messages))
	for i, m := range ev.Messages {
		if m.Err != nil || m.Sweep == nil {
			return nil, fmt.Errorf("sweep message %s: %v", m.ID, m.Err)
		}
		out[i] = m.Sweep
	}
	return out, nil
}

// sweepResult checks a clean sweep and builds its report.
func (w *orgWorld) sweepResult(sc string, n, g int, m measured, results []reconcile.TargetResult,
	wall map[rules.Target]time.Duration) (*OrgSweep, error) {
	slices.SortFunc(results, func(a, b reconcile.TargetResult) int { return strings.Compare(a.Target.String(), b.Target.String()) })
	if err := checkOrgResults(results, append([]rules.Target{w.home}, w.targets...), true); err != nil {
		return nil, fmt.Errorf("%s: %w", sc, err)
	}
	s := &OrgSweep{Row: row(n, g, sc, "sgrules", m), TargetsSwept: len(results), AssumeRoleByAccount: w.assumes.snapshot()}
	s.AssumeRole = s.ByAction["STS.AssumeRole"]
	perTarget := w.byTarget.snapshot()
	for _, tr := range results {
		c := classify(perTarget[tr.Target])
		tc := TargetCalls{Account: tr.Target.Account, Region: tr.Target.Region, ByAction: c.ByAction, EC2Read: c.EC2Read,
			EC2Mut: c.EC2Mutating, WallMS: float64(wall[tr.Target].Microseconds()) / 1000}
		s.PerTarget = append(s.PerTarget, tc)
		s.MaxEC2ReadsPerTarget = max(s.MaxEC2ReadsPerTarget, tc.EC2Read)
		s.MaxEC2MutatingPerTarget = max(s.MaxEC2MutatingPerTarget, tc.EC2Mut)
		if tr.Result.Drift.GroupsChecked != w.groupsOf(tr.Target) {
			return nil, fmt.Errorf("%s: %s checked %d groups, want %d", sc, tr.Target, tr.Result.Drift.GroupsChecked, w.groupsOf(tr.Target))
		}
	}
	// The checks of a clean organisation sweep.
	var bad []string
	for _, tc := range s.PerTarget {
		if tc.EC2Read > MaxOrgEC2Reads {
			bad = append(bad, fmt.Sprintf("%s/%s made %d EC2 reads (at most %d): %v", tc.Account, tc.Region, tc.EC2Read, MaxOrgEC2Reads, tc.ByAction))
		}
	}
	if s.MaxEC2MutatingPerTarget != 0 || s.EC2Mutating != 0 {
		bad = append(bad, fmt.Sprintf("%d mutating EC2 calls", s.EC2Mutating))
	}
	if s.DynamoDBWrites != 0 {
		bad = append(bad, fmt.Sprintf("%d DynamoDB writes", s.DynamoDBWrites))
	}
	// Every EC2 call must be some target's.
	sumEC2 := 0
	for _, tc := range s.PerTarget {
		sumEC2 += classify(tc.ByAction).EC2
	}
	if sumEC2 != s.EC2 {
		bad = append(bad, fmt.Sprintf("%d EC2 calls, %d of them counted under a target", s.EC2, sumEC2))
	}
	for _, a := range w.accounts {
		if s.AssumeRoleByAccount[a] != 1 {
			bad = append(bad, fmt.Sprintf("%d AssumeRole calls into %s (want 1)", s.AssumeRoleByAccount[a], a))
		}
	}
	if s.AssumeRole != len(w.accounts) {
		bad = append(bad, fmt.Sprintf("%d AssumeRole calls (want one per account: %d)", s.AssumeRole, len(w.accounts)))
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%s, nothing drifted: %s", sc, strings.Join(bad, "; "))
	}
	return s, nil
}

// groupsOf is the number of groups a target holds rules in (the hub's
// own target holds none).
func (w *orgWorld) groupsOf(t rules.Target) int {
	if t == w.home {
		return 0
	}
	return w.groups
}

// checkOrgResults checks that exactly want were run, without error, and
// (clean) planned nothing.
func checkOrgResults(got []reconcile.TargetResult, want []rules.Target, clean bool) error {
	seen := map[rules.Target]bool{}
	for _, tr := range got {
		if tr.Err != nil {
			return fmt.Errorf("target %s: %w", tr.Target, tr.Err)
		}
		if seen[tr.Target] {
			return fmt.Errorf("target %s run twice", tr.Target)
		}
		seen[tr.Target] = true
		for _, s := range tr.Result.Sources {
			if s.Status != reconcile.StatusApplied {
				return fmt.Errorf("target %s: source %s %s: %s %v", tr.Target, s.Key, s.Status, s.Message, s.Diagnostics.Strings())
			}
		}
		if clean && len(tr.Result.Plan.Actions) != 0 {
			return fmt.Errorf("target %s: nothing drifted, yet %d actions", tr.Target, len(tr.Result.Plan.Actions))
		}
	}
	for _, t := range want {
		if !seen[t] {
			return fmt.Errorf("target %s not run (ran %d targets)", t, len(got))
		}
	}
	if len(seen) != len(want) {
		return fmt.Errorf("ran %d targets, want %d", len(seen), len(want))
	}
	return nil
}

// targetKey is the context key of the target a call is made for.
type targetKey struct{}

func withTarget(ctx context.Context, t rules.Target) context.Context {
	return context.WithValue(ctx, targetKey{}, t)
}

// targetCounter counts the calls made with a target in their context,
// per target and "Service.Operation".
type targetCounter struct {
	mu     sync.Mutex
	counts map[rules.Target]map[string]int
}

func (c *targetCounter) attach(cfg *aws.Config) {
	cfg.APIOptions = append(cfg.APIOptions, func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("sgbench/bytarget",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if t, ok := ctx.Value(targetKey{}).(rules.Target); ok {
					c.add(t, awsmiddleware.GetServiceID(ctx)+"."+awsmiddleware.GetOperationName(ctx))
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	})
}

func (c *targetCounter) add(t rules.Target, op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[rules.Target]map[string]int{}
	}
	if c.counts[t] == nil {
		c.counts[t] = map[string]int{}
	}
	c.counts[t][op]++
}

func (c *targetCounter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts = nil
}

func (c *targetCounter) snapshot() map[rules.Target]map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[rules.Target]map[string]int{}
	for t, m := range c.counts {
		out[t] = maps.Clone(m)
	}
	return out
}

// assumeCounter counts sts:AssumeRole calls per account of the role.
type assumeCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

func (c *assumeCounter) attach(cfg *aws.Config) {
	cfg.APIOptions = append(cfg.APIOptions, func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("sgbench/assumerole",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if p, ok := in.Parameters.(*sts.AssumeRoleInput); ok {
					// arn:PARTITION:iam::ACCOUNT:role/NAME
					parts := strings.SplitN(aws.ToString(p.RoleArn), ":", 6)
					acct := aws.ToString(p.RoleArn)
					if len(parts) == 6 {
						acct = parts[4]
					}
					c.mu.Lock()
					if c.counts == nil {
						c.counts = map[string]int{}
					}
					c.counts[acct]++
					c.mu.Unlock()
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	})
}

func (c *assumeCounter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts = nil
}

func (c *assumeCounter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.counts)
}

// labelled is a target's EC2 port that puts the target in the context of
// every call (for targetCounter).
type labelled struct {
	t rules.Target
	g reconcile.Groups
}

var (
	_ reconcile.Groups            = labelled{}
	_ reconcile.RuleAuthorizer    = labelled{}
	_ reconcile.GroupInfoResolver = labelled{}
)

func (l labelled) ResolveGroups(ctx context.Context, refs []rules.GroupRef) (map[string][]string, error) {
	return l.g.ResolveGroups(withTarget(ctx, l.t), refs)
}

func (l labelled) DescribeGroups(ctx context.Context, ids []string) ([]reconcile.GroupInfo, error) {
	return l.g.DescribeGroups(withTarget(ctx, l.t), ids)
}

func (l labelled) DescribeRules(ctx context.Context, ids []string) ([]reconcile.ActualRule, error) {
	return l.g.DescribeRules(withTarget(ctx, l.t), ids)
}

func (l labelled) Authorize(ctx context.Context, id string, dir rules.Direction, perms []rules.Permission, tags map[string]string) error {
	return l.g.Authorize(withTarget(ctx, l.t), id, dir, perms, tags)
}

func (l labelled) Revoke(ctx context.Context, id string, dir rules.Direction, ruleIDs []string) error {
	return l.g.Revoke(withTarget(ctx, l.t), id, dir, ruleIDs)
}

func (l labelled) ModifyRules(ctx context.Context, id string, updates []reconcile.RuleUpdate) error {
	return l.g.ModifyRules(withTarget(ctx, l.t), id, updates)
}

func (l labelled) TagRules(ctx context.Context, id string, ruleIDs []string, tags map[string]string) error {
	return l.g.TagRules(withTarget(ctx, l.t), id, ruleIDs, tags)
}

func (l labelled) UntagRules(ctx context.Context, id string, ruleIDs []string, tags map[string]string) error {
	return l.g.UntagRules(withTarget(ctx, l.t), id, ruleIDs, tags)
}

func (l labelled) TagGroups(ctx context.Context, ids []string, tags map[string]string) error {
	return l.g.TagGroups(withTarget(ctx, l.t), ids, tags)
}

func (l labelled) UntagGroups(ctx context.Context, ids []string, keys []string) error {
	return l.g.UntagGroups(withTarget(ctx, l.t), ids, keys)
}

func (l labelled) DescribeManagedRules(ctx context.Context, ledgerIDs ...string) ([]reconcile.ActualRule, error) {
	return l.g.DescribeManagedRules(withTarget(ctx, l.t), ledgerIDs...)
}

func (l labelled) AuthorizeRules(ctx context.Context, id string, dir rules.Direction, perms []rules.Permission, tags map[string]string) ([]reconcile.ActualRule, error) {
	if ra, ok := l.g.(reconcile.RuleAuthorizer); ok {
		return ra.AuthorizeRules(withTarget(ctx, l.t), id, dir, perms, tags)
	}
	return nil, l.g.Authorize(withTarget(ctx, l.t), id, dir, perms, tags)
}

func (l labelled) ResolveGroupsInfo(ctx context.Context, refs []rules.GroupRef) (map[string][]string, []reconcile.GroupInfo, error) {
	if gr, ok := l.g.(reconcile.GroupInfoResolver); ok {
		return gr.ResolveGroupsInfo(withTarget(ctx, l.t), refs)
	}
	ids, err := l.g.ResolveGroups(withTarget(ctx, l.t), refs)
	return ids, nil, err
}

func (l labelled) PrefixListEntries(ctx context.Context, id string) ([]netip.Prefix, error) {
	return l.g.PrefixListEntries(withTarget(ctx, l.t), id)
}

func (l labelled) DescribePrefixLists(ctx context.Context, ids []string) ([]reconcile.PrefixListInfo, error) {
	return l.g.DescribePrefixLists(withTarget(ctx, l.t), ids)
}
