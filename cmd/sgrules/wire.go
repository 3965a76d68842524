package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdkconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/adapters/dirsource"
	"github.com/sgrules/sgrules/internal/adapters/flowsrc"
	"github.com/sgrules/sgrules/internal/adapters/policyload"
	"github.com/sgrules/sgrules/internal/adapters/s3source"
	"github.com/sgrules/sgrules/internal/config"
	"github.com/sgrules/sgrules/internal/fleetrt"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/internal/report/render"
	"github.com/sgrules/sgrules/pkg/flowlog"
	"github.com/sgrules/sgrules/pkg/rules"
)

// wiring holds the flags shared by the AWS commands (plan, apply, drift,
// import) and builds the adapters from them, once per run.
type wiring struct {
	bucket, prefix, dir string
	table               string
	region, endpoint    string
	maxRevoke           int
	verbose             bool
	// policy is the guardrail policy file (--policy), "" for none.
	policy string
	// Many targets (plan, apply, drift): --account and --region narrow the
	// run; the hub's region is the SDK chain's (--region when it has none).
	account, targetRole, targetAccounts string
	narrow                              bool
	// resolvedRegion is the region the AWS configuration settled on.
	resolvedRegion string
	// envErr is an environment addFileFlags could not read.
	envErr error
	// managedGroupTag is MANAGED_GROUP_TAG: only groups with it are changed.
	managedGroupTag string
	// flowLogs (--flow-logs, FLOW_LOGS_URL) and usedWithin (--used-within)
	// are the traffic evidence of plan and apply ("" for none); evidence
	// are the readers the run built, one per target.
	flowLogs, usedWithin string
	usedWindow           time.Duration
	evidenceMu           sync.Mutex
	evidence             []*flowsrc.Evidence
}

// addEvidenceFlags adds --flow-logs and --used-within (plan, apply).
func (w *wiring) addEvidenceFlags(fs *flag.FlagSet) {
	fs.StringVar(&w.flowLogs, "flow-logs", os.Getenv(envFlowLogs), "traffic evidence: where the VPC Flow Logs are delivered, s3://BUCKET/PREFIX; removing or narrowing a rule that carried traffic within --used-within is refused (env "+envFlowLogs+"; docs/usage.md)")
	fs.StringVar(&w.usedWithin, "used-within", "30d", "with --flow-logs: the window a rule's traffic counts in, days (30d), weeks (2w) or a Go duration (36h)")
}

// checkEvidence settles --flow-logs and --used-within; it returns a usage
// problem or "".
func (w *wiring) checkEvidence() string {
	d, err := config.ParseWindow(w.usedWithin)
	if err != nil {
		return "--used-within " + err.Error()
	}
	w.usedWindow = d
	if w.flowLogs == "" {
		return ""
	}
	if _, _, err := flowlog.ParseURL(w.flowLogs); err != nil {
		return "--flow-logs " + err.Error()
	}
	return ""
}

// evidenceOf returns the traffic evidence factory of the engines: the flow
// logs of each target's account and region under --flow-logs (read with
// the caller's credentials), its interfaces looked up with the target's.
func (w *wiring) evidenceOf(cfg aws.Config) func(rules.Target, aws.Config) (reconcile.UsageEvidence, error) {
	if w.flowLogs == "" {
		return nil
	}
	return fleetrt.FlowLogsEvidence(cfg, w.flowLogs, func(ev *flowsrc.Evidence) {
		w.evidenceMu.Lock()
		w.evidence = append(w.evidence, ev)
		w.evidenceMu.Unlock()
	})
}

// warnEvidence writes what the flow logs read had wrong (malformed lines,
// unreadable objects), or that there were none, to stderr.
func (w *wiring) warnEvidence(name string, stderr io.Writer) {
	w.evidenceMu.Lock()
	defer w.evidenceMu.Unlock()
	for _, ev := range w.evidence {
		st, objs := ev.Stats()
		if objs == 0 && st.Objects == 0 {
			continue
		}
		rd := render.NewUsageDoc(nil, st, flowlog.AttributionStats{}, time.Time{}, time.Time{}, nil).Read
		for _, p := range append(append([]string(nil), rd.ObjectProblems...), rd.Problems...) {
			fmt.Fprintf(stderr, "sgrules %s: flow logs: warning: %s\n", name, p)
		}
	}
}

// addAWSFlags adds --region and --endpoint-url.
func (w *wiring) addAWSFlags(fs *flag.FlagSet) {
	fs.StringVar(&w.region, "region", "", "AWS region (default: the SDK chain, AWS_REGION or the profile)")
	fs.StringVar(&w.endpoint, "endpoint-url", "", "AWS endpoint URL for every service, e.g. a local emulator (env AWS_ENDPOINT_URL, read by the SDK)")
}

// addEngineFlags adds the source, ledger and guard flags of plan, apply
// and drift. Defaults come from the environment, read and checked by
// internal/config as the Lambda functions read theirs.
func (w *wiring) addEngineFlags(fs *flag.FlagSet) error {
	env, err := config.CLI.Load(os.Getenv)
	if err != nil {
		return err
	}
	w.addFileFlagsFrom(fs, env)
	w.managedGroupTag = env.ManagedGroupTag
	fs.StringVar(&w.table, "table", env.Table, "DynamoDB table of the ownership ledger (env STATE_TABLE; required)")
	fs.IntVar(&w.maxRevoke, "max-revoke", env.MaxRevoke, "blast-radius guard: hold a plan that would revoke more rules than this because rules or files disappeared; -1 for no limit, 0 is refused (env MAX_REVOKE)")
	fs.BoolVar(&w.verbose, "verbose", false, "log the engine's plan and API batches to stderr")
	fs.StringVar(&w.policy, "policy", "", "check the rule files and the live rules against this guardrail policy file, as the functions check the bucket's (docs/policy.md)")
	fs.StringVar(&w.account, "account", "", "only the targets in this account (12 digits; default: every target the files and the ledger name)")
	fs.StringVar(&w.targetRole, "target-role", env.TargetRole, "role assumed in target accounts other than the caller's (env TARGET_ROLE)")
	fs.StringVar(&w.targetAccounts, "target-accounts", strings.Join(env.TargetAccounts, ","), "comma-separated accounts besides the caller's that rule files may name; a file naming another is invalid (env TARGET_ACCOUNTS)")
	w.addAWSFlags(fs)
	w.narrow = true
	fs.Lookup("region").Usage = "only the targets in this region; the ledger and files without a region field use the SDK chain's region (AWS_REGION or the profile), this one when it has none"
	return nil
}

// addFileFlags adds where the rule files are: --bucket, --prefix, --dir
// (for commands that read no ledger). An environment that does not check
// out is reported when the flags are checked.
func (w *wiring) addFileFlags(fs *flag.FlagSet) {
	env, err := config.CLI.Load(os.Getenv)
	if err != nil {
		w.envErr = err
	}
	w.addFileFlagsFrom(fs, env)
}

func (w *wiring) addFileFlagsFrom(fs *flag.FlagSet, env config.Config) {
	fs.StringVar(&w.bucket, "bucket", env.Bucket, "S3 bucket of the rule files (env SGRULES_BUCKET or RULES_BUCKET)")
	fs.StringVar(&w.prefix, "prefix", env.Prefix, `key prefix of the rule files in the bucket ("rules" is "rules/", "/" the whole bucket); with --dir, prepended to the file paths so that keys match the bucket's (env RULES_PREFIX)`)
	fs.StringVar(&w.dir, "dir", "", "read the rule files from this local directory instead of S3 (or give it as the argument)")
}

// checkSource settles where the rule files come from: --dir, a single
// directory argument, or --bucket (a directory wins over a bucket from
// the environment), and that a ledger is named. It returns a usage
// problem or "".
func (w *wiring) checkSource(fs *flag.FlagSet) string {
	if msg := w.checkFiles(fs); msg != "" {
		return msg
	}
	if w.table == "" {
		return "no ledger: set --table (or STATE_TABLE) to the DynamoDB table sgrules records ownership in"
	}
	if err := config.CheckMaxRevoke(w.maxRevoke); err != nil {
		return "--max-revoke " + strconv.Itoa(w.maxRevoke) + ": " + err.Error()
	}
	if w.account != "" {
		if _, err := config.TargetAccounts(w.account); err != nil || strings.Contains(w.account, ",") {
			return "--account " + w.account + ": want one 12-digit account id"
		}
	}
	if _, err := config.TargetAccounts(w.targetAccounts); err != nil {
		return "--target-accounts: " + err.Error()
	}
	return ""
}

// checkFiles is checkSource without the ledger (graph reads no ledger).
func (w *wiring) checkFiles(fs *flag.FlagSet) string {
	if w.envErr != nil {
		return w.envErr.Error()
	}
	args := fs.Args()
	bucketSet := false
	fs.Visit(func(f *flag.Flag) { bucketSet = bucketSet || f.Name == "bucket" })
	switch {
	case len(args) > 1:
		return "takes at most one argument, the rule directory"
	case len(args) == 1 && w.dir != "" && args[0] != w.dir:
		return "give the rule directory either as --dir or as the argument, not both"
	case len(args) == 1:
		w.dir = args[0]
	}
	if w.dir != "" && bucketSet {
		return "use --bucket or --dir, not both"
	}
	if w.dir != "" {
		w.bucket = "" // a directory wins over a bucket from the environment
		info, err := os.Stat(w.dir)
		if err != nil {
			return err.Error()
		}
		if !info.IsDir() {
			return w.dir + " is not a directory"
		}
	} else if w.bucket == "" {
		return "no rule source: set --bucket (or SGRULES_BUCKET) or --dir"
	}
	w.prefix = config.Prefix(w.prefix)
	return ""
}

// awsConfig loads the shared AWS configuration with the flag overrides.
func (w *wiring) awsConfig(ctx context.Context) (aws.Config, error) {
	var opts []func(*sdkconfig.LoadOptions) error
	if w.region != "" && !w.narrow {
		opts = append(opts, sdkconfig.WithRegion(w.region))
	}
	if w.endpoint != "" {
		opts = append(opts, sdkconfig.WithBaseEndpoint(w.endpoint))
	}
	cfg, err := awsconfig.Load(ctx, opts...)
	if err != nil {
		return aws.Config{}, err
	}
	if cfg.Region == "" && w.narrow {
		cfg.Region = w.region
	}
	if cfg.Region == "" {
		return aws.Config{}, errors.New("no AWS region: set --region or AWS_REGION")
	}
	w.resolvedRegion = cfg.Region
	return cfg, nil
}

// fleet builds the hub: the caller's account (sts:GetCallerIdentity) and
// region are home; other accounts are reached through --target-role.
func (w *wiring) fleet(ctx context.Context, stderr io.Writer) (*fleetrt.Fleet, error) {
	cfg, err := w.awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	src := w.source(cfg)
	logger := slog.New(slog.DiscardHandler)
	if w.verbose {
		logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	host, _ := os.Hostname()
	accounts, _ := config.TargetAccounts(w.targetAccounts) // checked by checkSource
	c := config.Config{Table: w.table, Bucket: w.bucket, Prefix: w.prefix, MaxRevoke: w.maxRevoke, ManagedGroupTag: w.managedGroupTag,
		TargetAccounts: accounts, TargetRole: w.targetRole, TargetExternalID: os.Getenv(config.EnvTargetExternalID)}
	var pol reconcile.PolicyStore
	if w.policy != "" {
		pol = policyload.File(w.policy, w.prefix)
	}
	return fleetrt.New(ctx, c, cfg, fleetrt.EngineOptions{
		Source:      src,
		Policy:      pol,
		Evidence:    w.evidenceOf(cfg),
		UsedWithin:  w.usedWindow,
		Holder:      fmt.Sprintf("sgrules-cli/%s/%d/%d", host, os.Getpid(), time.Now().UnixNano()),
		SessionName: "sgrules-cli",
		Logger:      logger,
	})
}

// only is the targets --account and --region leave, or nil for every
// target (nothing narrowed). The second result is false when the flags
// narrow the run to no target at all.
func (w *wiring) only(ctx context.Context, fl *fleetrt.Fleet) ([]rules.Target, bool, error) {
	if w.account == "" && w.region == "" {
		return nil, true, nil
	}
	all, err := fl.Targets(ctx)
	if err != nil {
		return nil, false, err
	}
	var out []rules.Target
	for _, t := range all {
		if (w.account == "" || t.Account == w.account) && (w.region == "" || t.Region == w.region) {
			out = append(out, t)
		}
	}
	if len(out) == len(all) {
		return nil, true, nil // every target: no narrowing
	}
	return out, len(out) > 0, nil
}

// targetRun is one target of a CLI run, with the names of its groups.
type targetRun struct {
	reconcile.TargetResult
	names, pauses map[string]string
}

// runFleet runs req over the targets --account and --region leave. It
// prints what failed (a target: its account, region and cause) and
// returns the runs of the targets that did not fail, and whether any
// failed; ok is false when nothing could run (exit 1, printed).
func (w *wiring) runFleet(ctx context.Context, name string, req reconcile.Request, msg string, stderr io.Writer) (runs []targetRun, single, failed, ok bool) {
	fl, err := w.fleet(ctx, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "sgrules %s: %v\n", name, w.explain(err))
		return nil, false, true, false
	}
	stop := progress(stderr, msg)
	only, any, err := w.only(ctx, fl)
	var res reconcile.FleetResult
	if err == nil && any {
		res, err = fl.Reconcile(ctx, req, only)
	}
	stop()
	if err != nil {
		fmt.Fprintf(stderr, "sgrules %s: %v\n", name, w.explain(err))
		return nil, false, true, false
	}
	if !any {
		fmt.Fprintf(stderr, "sgrules %s: no target in account %q region %q (home is %s)\n", name, w.account, w.region, fl.Home())
		return nil, false, false, true
	}
	for _, t := range res.Offboarded {
		fmt.Fprintf(stderr, "sgrules %s: %s\n", name, offboardedNote(t))
	}
	for _, t := range res.Targets {
		if t.Err != nil {
			fmt.Fprintf(stderr, "sgrules %s: %v\n", name, fl.Explain(w.explain(t.Err)))
			failed = true
			continue
		}
		r := targetRun{TargetResult: t}
		if groups, err := fl.Groups(t.Target); err == nil {
			r.names, r.pauses = groupNames(ctx, groups, report.GroupIDs(t.Result))
		}
		runs = append(runs, r)
	}
	single = len(res.Targets) == 1 && res.Targets[0].Target == fl.Home()
	return runs, single, failed, true
}

// heading introduces one target's part of the output when a run has
// several targets (or another than home).
func heading(w io.Writer, format string, t rules.Target) {
	switch format {
	case "markdown":
		fmt.Fprintf(w, "## account %s, region %s\n\n", t.Account, t.Region)
	default:
		fmt.Fprintf(w, "== account %s / region %s ==\n", t.Account, t.Region)
	}
}

// targetDoc is one target of a JSON document over several targets.
func targetDoc(r targetRun, doc any) report.TargetDoc {
	d := report.NewTargetDoc(r.TargetResult)
	d.Result = doc
	return d
}

// source is the rule files: the directory under the prefix, or the bucket.
func (w *wiring) source(cfg aws.Config) reconcile.Source {
	if w.dir != "" {
		return prefixSource{inner: dirsource.New(w.dir), prefix: w.prefix}
	}
	return s3source.New(s3.NewFromConfig(cfg, awsconfig.S3Options), w.bucket, w.prefix)
}

// prefixSource presents a directory's files under a key prefix, so that
// "web.yaml" in the directory is "rules/web.yaml", the key the same file
// has in the bucket: the ledger then records one owner whichever way the
// file arrives, and a sweep from the directory does not take the bucket's
// files for deleted ones.
type prefixSource struct {
	inner  reconcile.Source
	prefix string
}

func (p prefixSource) List(ctx context.Context) ([]reconcile.ObjectInfo, error) {
	objs, err := p.inner.List(ctx)
	for i := range objs {
		objs[i].Key = p.prefix + objs[i].Key
	}
	return objs, err
}

func (p prefixSource) Get(ctx context.Context, key string) (reconcile.Object, error) {
	rel, ok := strings.CutPrefix(key, p.prefix)
	if !ok {
		return reconcile.Object{}, fmt.Errorf("%s: outside prefix %q: %w", key, p.prefix, reconcile.ErrNotFound)
	}
	obj, err := p.inner.Get(ctx, rel)
	obj.Key = key
	return obj, err
}

// groupNames returns a readable name per group id (Name tag, else group
// name) and the sgrules:pause-until tag of paused groups, with one
// DescribeGroups call. Names are a nicety: on error there are none.
func groupNames(ctx context.Context, groups reconcile.Groups, ids []string) (names, pauses map[string]string) {
	names, pauses = map[string]string{}, map[string]string{}
	if len(ids) == 0 {
		return names, pauses
	}
	infos, err := groups.DescribeGroups(ctx, ids)
	if err != nil {
		return names, pauses
	}
	for _, g := range infos {
		switch {
		case g.Tags["Name"] != "":
			names[g.GroupID] = g.Tags["Name"]
		case g.Name != "":
			names[g.GroupID] = g.Name
		}
		if v, ok := g.Tags[reconcile.TagPause]; ok {
			if t, err := time.Parse(time.RFC3339, v); err == nil && t.After(time.Now()) {
				pauses[g.GroupID] = v
			}
		}
	}
	return names, pauses
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// useColor: colour only on a terminal, never with NO_COLOR set
// (https://no-color.org) or TERM=dumb.
func useColor(w io.Writer) bool {
	return isTerminal(w) && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
}

// progress shows a spinner line with elapsed time on stderr while slow
// work runs, only when stderr is a terminal; the returned function
// clears it.
func progress(stderr io.Writer, msg string) (stop func()) {
	if !isTerminal(stderr) {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		frames := `|/-\`
		start := time.Now()
		t := time.NewTicker(120 * time.Millisecond)
		defer t.Stop()
		shown := false
		for i := 0; ; i++ {
			select {
			case <-done:
				if shown {
					fmt.Fprint(stderr, "\r\x1b[K")
				}
				return
			case <-t.C:
			}
			// Quick runs (under half a second) show nothing.
			if time.Since(start) >= 500*time.Millisecond {
				fmt.Fprintf(stderr, "\r%c %s %.1fs", frames[i%len(frames)], msg, time.Since(start).Seconds())
				shown = true
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// checkOutput validates --output table|json.
func checkOutput(name, output string, stderr io.Writer) bool {
	if output == "table" || output == "json" {
		return true
	}
	fmt.Fprintf(stderr, "sgrules %s: --output must be table or json, got %q\n", name, output)
	return false
}
