package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/adapters/flowsrc"
	"github.com/sgrules/sgrules/internal/config"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/internal/report/render"
	"github.com/sgrules/sgrules/pkg/flowlog"
	"github.com/sgrules/sgrules/pkg/rules"
)

// envFlowLogs is where the flow logs are (s3://BUCKET/PREFIX).
const envFlowLogs = "FLOW_LOGS_URL"

func init() {
	register(&command{
		name:    "usage",
		summary: "show which rules carried traffic, from VPC Flow Logs",
		usage: `Usage: sgrules usage --flow-logs s3://BUCKET/PREFIX [flags] [DIR]

Reads the VPC Flow Logs delivered to S3 over a window (--since, ending
--until) and credits every accepted flow to the managed rules that allow
it, then prints every managed rule with its file, rule name, rule id,
group, peer, flows, bytes and last seen, or "no traffic in the window".
How flows are attributed, which log format to choose and the limits are
in docs/usage.md.

The managed rules are the rule files' (DIR, or --bucket), resolved
against EC2, with their rule ids from the ledger (--table or
STATE_TABLE); without a table, from the live rule with the same
permission. A declared permission no rule carries is "not applied".
With a ledger, the traffic counters the flow-log function keeps there
over the window are added (docs/usage.md): a rule's flows and bytes are
the larger of the logs' and the counters' (they may have counted the
same objects), its last seen the latest.
Only the caller's account and region are read: files of other targets
are skipped (said on stderr), and only the logs of that account and
region are listed (…/AWSLogs/ACCOUNT/vpcflowlogs/REGION/YYYY/MM/DD/).

Malformed lines and unreadable log objects are counted and reported,
never fatal.

Exit status: 0 success; 1 an invalid rule file or an AWS error; 2 usage
error.

Examples:
  sgrules usage --flow-logs s3://my-flow-logs/vpc --table sgrules-ledger ./rules
  sgrules usage --flow-logs s3://my-flow-logs --since 90d --bucket my-rules
  sgrules usage --flow-logs s3://my-flow-logs --output json ./rules | jq '.rules[] | select(.lastSeen == null)'
  sgrules usage --flow-logs s3://my-flow-logs --since 7d --until 2025-12-02 ./rules
`,
		run: runUsage,
	})
}

// usageRun is what the usage and unused commands settled from their
// flags.
type usageRun struct {
	w                      wiring
	flowLogs, since, until *string
	flowBucket, flowPrefix string
	from, to               time.Time
	output                 string
	skippedTargets         []string
}

// addFlags adds the flags usage and unused share; since is the default
// window.
func (u *usageRun) addFlags(fs *flag.FlagSet, since string) {
	u.w.addFileFlags(fs)
	u.w.addAWSFlags(fs)
	fs.StringVar(&u.w.table, "table", os.Getenv(config.EnvStateTable), "the ledger table, for the rule ids; without it, the ids of the live rules with the same permission (env STATE_TABLE)")
	u.flowLogs = fs.String("flow-logs", os.Getenv(envFlowLogs), "where the VPC Flow Logs are delivered: s3://BUCKET/PREFIX, PREFIX being the flow log's destination prefix (env "+envFlowLogs+")")
	u.since = fs.String("since", since, "the window's length, ending --until: days (30d), weeks (2w) or a Go duration (36h)")
	u.until = fs.String("until", "", "the window's end: RFC 3339 (2025-12-02T15:04:05Z) or a date (2025-12-02, its midnight UTC); default now")
	fs.StringVar(&u.output, "output", "text", "output format: text or json")
}

// check settles the flags after parsing; it returns a usage problem or "".
func (u *usageRun) check(fs *flag.FlagSet) string {
	if u.output != "text" && u.output != "json" {
		return fmt.Sprintf("--output must be text or json, got %q", u.output)
	}
	if *u.flowLogs == "" {
		return "no flow logs: set --flow-logs s3://BUCKET/PREFIX (or " + envFlowLogs + ")"
	}
	var err error
	if u.flowBucket, u.flowPrefix, err = flowlog.ParseURL(*u.flowLogs); err != nil {
		return "--flow-logs " + err.Error()
	}
	length, err := config.ParseWindow(*u.since)
	if err != nil {
		return "--since " + err.Error()
	}
	u.to = time.Now().UTC()
	if *u.until != "" {
		if u.to, err = parseUntil(*u.until); err != nil {
			return "--until " + err.Error()
		}
	}
	u.from = u.to.Add(-length)
	return u.w.checkFiles(fs)
}

func runUsage(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(commands["usage"], stderr)
	var u usageRun
	u.addFlags(fs, "30d")
	if code, done := parseFlags(fs, interleave(fs, args), stdout); done {
		return code
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "sgrules usage: "+format+"\n", a...)
		return code
	}
	if msg := u.check(fs); msg != "" {
		return fail(exitUsage, "%s", msg)
	}
	res, err := u.run(ctx, stderr)
	if err != nil {
		return fail(exitFail, "%v", err)
	}
	doc := render.NewUsageDoc(res.usage, res.read, res.attr, u.from, u.to, res.names)
	u.warn("usage", doc.Read, stderr)
	if u.output == "json" {
		err = report.JSON(stdout, doc)
	} else {
		err = render.UsageText(stdout, doc)
	}
	if err != nil {
		return fail(exitFail, "%v", err)
	}
	return exitOK
}

// warn writes the skipped files and the read problems to stderr.
func (u *usageRun) warn(name string, rd render.UsageRead, stderr io.Writer) {
	for _, s := range u.skippedTargets {
		fmt.Fprintf(stderr, "sgrules %s: skipped %s: it reads the caller's account and region only\n", name, s)
	}
	for _, p := range append(append([]string(nil), rd.ObjectProblems...), rd.Problems...) {
		fmt.Fprintf(stderr, "sgrules %s: warning: %s\n", name, p)
	}
}

// usageResult is what a run found: the usage of every managed permission
// (the unapplied ones with none), the counts, and the lookup it used.
type usageResult struct {
	usage  []flowlog.Usage
	names  map[string]string
	read   flowlog.Stats
	attr   flowlog.AttributionStats
	lookup *flowsrc.Lookup
	ec2    *ec2.Client
	// flows are the window's accepted flows, by interface.
	flows map[flowlog.FlowKey]*flowlog.Counter
}

// run reads the files, the ledger and the logs, and attributes.
func (u *usageRun) run(ctx context.Context, stderr io.Writer) (usageResult, error) {
	cfg, err := u.w.awsConfig(ctx)
	if err != nil {
		return usageResult{}, err
	}
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return usageResult{}, fmt.Errorf("who am I (sts:GetCallerIdentity): %w", err)
	}
	home := rules.Target{Account: aws.ToString(id.Account), Region: cfg.Region}

	files, keys, err := readFiles(ctx, u.w.source(cfg), stderr)
	if err != nil {
		return usageResult{}, err
	}
	var homeFiles []*rules.File
	var homeKeys []string
	for i, f := range files {
		if t := f.Target.Resolve(home); t != home {
			u.skippedTargets = append(u.skippedTargets, fmt.Sprintf("%s (target %s)", keys[i], t))
			continue
		}
		homeFiles, homeKeys = append(homeFiles, f), append(homeKeys, keys[i])
	}
	ec2c := ec2.NewFromConfig(cfg)
	groups := ec2sg.New(ec2c)
	var refs []rules.GroupRef
	for _, f := range homeFiles {
		refs = append(refs, f.Refs()...)
	}
	resolved, err := groups.ResolveGroups(ctx, refs)
	if err != nil {
		return usageResult{}, err
	}
	perms, _, err := expandAll(homeFiles, homeKeys, func(g rules.GroupRef) []string { return resolved[g.String()] }, stderr)
	if err != nil {
		return usageResult{}, err
	}
	ids, err := u.ruleIDs(ctx, cfg, groups, perms)
	if err != nil {
		return usageResult{}, err
	}
	var managed []flowlog.Rule
	var unapplied []flowlog.Usage
	for _, p := range perms {
		r := flowlog.Rule{Key: p.Key, RuleID: ids[p.Key], Owner: p.Owner}
		if r.RuleID == "" {
			unapplied = append(unapplied, flowlog.Usage{Rule: r})
			continue
		}
		managed = append(managed, r)
	}

	stop := progress(stderr, "reading flow logs")
	defer stop()
	logs := flowsrc.NewLogs(s3.NewFromConfig(cfg, awsconfig.S3Options), u.flowBucket, u.flowPrefix)
	logs.Accounts, logs.Regions = []string{home.Account}, []string{home.Region}
	ag := flowlog.NewAggregator(u.from, u.to)
	if _, err := logs.Read(ctx, ag, u.from, u.to); err != nil {
		return usageResult{}, err
	}
	lk := flowsrc.NewLookup(ec2c)
	rep, err := flowlog.Attribute(ctx, ag.Flows(), managed, lk)
	if err != nil {
		return usageResult{}, err
	}
	if u.w.table != "" {
		// What the flow-log function counted in the ledger over the window.
		if err := u.addCounters(ctx, cfg, rep.Rules); err != nil {
			return usageResult{}, err
		}
	}
	scope := map[string]bool{}
	for _, p := range perms {
		scope[p.Key.GroupID] = true
	}
	groupIDs := make([]string, 0, len(scope))
	for g := range scope {
		groupIDs = append(groupIDs, g)
	}
	sort.Strings(groupIDs)
	names, _ := groupNames(ctx, groups, groupIDs) // a nicety: none on error
	return usageResult{usage: append(rep.Rules, unapplied...), names: names, read: ag.Stats(), attr: rep.Stats, lookup: lk, flows: ag.Flows(), ec2: ec2c}, nil
}

// ruleIDs maps each permission to the id of the rule that carries it:
// from the ledger when there is one (what sgrules applied or adopted),
// else from the live rules of the groups.
func (u *usageRun) ruleIDs(ctx context.Context, cfg aws.Config, groups *ec2sg.Client, perms []rules.Permission) (map[rules.Key]string, error) {
	set := map[string]bool{}
	for _, p := range perms {
		set[p.Key.GroupID] = true
	}
	scope := make([]string, 0, len(set))
	for g := range set {
		scope = append(scope, g)
	}
	sort.Strings(scope)
	ids := map[rules.Key]string{}
	if len(scope) == 0 {
		return ids, nil
	}
	if u.w.table != "" {
		owned, err := ddbledger.New(dynamodb.NewFromConfig(cfg), u.w.table).GroupPermissions(ctx, scope)
		if err != nil {
			return nil, fmt.Errorf("read the ledger %s: %w", u.w.table, err)
		}
		for _, o := range owned {
			ids[o.Key] = o.RuleID
		}
		return ids, nil
	}
	actual, err := groups.DescribeRules(ctx, scope)
	if err != nil {
		return nil, err
	}
	for _, a := range actual {
		ids[a.Key] = a.RuleID
	}
	return ids, nil
}

// addCounters folds the ledger's traffic counters of the window (written
// by the flow-log function: docs/usage.md) into the usage read from the
// logs. The two may have counted the same objects, so a rule's flows and
// bytes are the larger of the two, never their sum; first and last seen
// the earliest and the latest. Counters are kept per day: a day's whose
// last flow is before the window adds nothing, one overlapping its start
// counts whole.
func (u *usageRun) addCounters(ctx context.Context, cfg aws.Config, usage []flowlog.Usage) error {
	var groups []string
	for _, us := range usage {
		groups = append(groups, us.Key.GroupID)
	}
	if len(groups) == 0 {
		return nil
	}
	counts, err := ddbledger.New(dynamodb.NewFromConfig(cfg), u.w.table).CountersFor(rules.Target{}).Read(ctx, groups, u.from, u.to)
	if err != nil {
		return fmt.Errorf("read the ledger %s: %w", u.w.table, err)
	}
	byID, byKey := map[string]ddbledger.RuleCounter{}, map[rules.Key]ddbledger.RuleCounter{}
	for _, c := range counts {
		if !c.Last.IsZero() && c.Last.Before(u.from) {
			continue
		}
		byKey[c.Key] = c
		if c.RuleID != "" {
			byID[c.RuleID] = c
		}
	}
	for i := range usage {
		us := &usage[i]
		c, ok := byID[us.RuleID]
		if !ok {
			if c, ok = byKey[us.Key]; !ok {
				continue
			}
		}
		if c.Flows > us.Flows {
			us.Flows, us.AmbiguousFlows = c.Flows, c.AmbiguousFlows
		}
		us.Bytes = max(us.Bytes, c.Bytes)
		if !c.First.IsZero() && (us.First.IsZero() || c.First.Before(us.First)) {
			us.First = c.First
		}
		switch {
		case c.Last.After(us.Last):
			us.Last, us.LastPeer = c.Last, c.LastPeer
		case !us.LastPeer.IsValid():
			us.LastPeer = c.LastPeer
		}
	}
	return nil
}

// parseUntil reads an RFC 3339 time or a date (its midnight UTC).
func parseUntil(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q: want RFC 3339 (2025-12-02T15:04:05Z) or a date (2025-12-02)", s)
}
