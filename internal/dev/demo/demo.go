package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sgrules/sgrules/internal/dev/lambdaemu"
	"github.com/sgrules/sgrules/internal/dev/motoproc"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/internal/strutil"
	"github.com/sgrules/sgrules/pkg/rules"
)

// The Lambda functions the demo builds and runs.
const (
	reconcilePkg = "./functions/reconcile"
	driftPkg     = "./functions/drift"
	// cliPkg is the CLI, for `sgrules usage` (built with the functions,
	// for the same Linux the emulator runs them on).
	cliPkg = "./cmd/sgrules"
)

// DefaultTimeout bounds a whole run.
const DefaultTimeout = 5 * time.Minute

// Options configure Run.
type Options struct {
	// Out receives the demo's narrative (default os.Stdout).
	Out io.Writer
	// Root is the sgrules module root, where the functions are built from
	// (default: the directory of the go.mod above the working directory).
	Root string
	// ExamplesDir holds the rule files to upload (default ROOT/examples).
	ExamplesDir string
	// RIEPath is the aws-lambda-rie binary (default $SGRULES_RIE, then
	// ROOT/bin/aws-lambda-rie, then PATH).
	RIEPath string
	// Keep leaves moto running after the demo, until ctx is cancelled, so
	// the result can be explored with the AWS CLI.
	Keep bool
	// Verbose prints the functions' logs.
	Verbose bool
	// Timeout bounds the run (default DefaultTimeout); Keep's wait is not
	// counted.
	Timeout time.Duration
}

// ErrMotoNotInstalled means moto_server is not on PATH.
var ErrMotoNotInstalled = motoproc.ErrNotInstalled

// Run runs the demo. The error says which step failed.
func Run(ctx context.Context, o Options) error {
	if err := o.setDefaults(); err != nil {
		return err
	}
	start := time.Now()
	d := &run{o: o, out: o.Out}
	runCtx, cancel := context.WithTimeout(ctx, o.Timeout)
	err := d.run(runCtx)
	timedOut := errors.Is(runCtx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
	cancel()
	success := func() {
		fmt.Fprintf(d.out, "\nDemo finished successfully in %s.\n", time.Since(start).Round(100*time.Millisecond))
	}
	if err == nil && o.Keep {
		success()
		d.keep(ctx)
	}
	d.cleanup()
	switch {
	case err == nil:
		if !o.Keep {
			success()
		}
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted; everything the demo started is stopped: %w", ctx.Err())
	case timedOut:
		return fmt.Errorf("demo did not finish within %v: %w", o.Timeout, err)
	}
	return err
}

func (o *Options) setDefaults() error {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Root == "" {
		root, err := moduleRoot()
		if err != nil {
			return err
		}
		o.Root = root
	}
	if o.ExamplesDir == "" {
		o.ExamplesDir = filepath.Join(o.Root, "examples")
	}
	return nil
}

// moduleRoot finds the sgrules module above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			strings.Contains(string(b), "module github.com/sgrules/sgrules\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("the demo builds the Lambda functions from source: run it in a clone of the sgrules repository")
		}
		dir = parent
	}
}

// run is the state of one demo run.
type run struct {
	o   Options
	out io.Writer

	tmp      string
	moto     *motoproc.Process
	fns      []*function
	c        clients
	files    []example
	groups   map[string]string // Name tag → id
	names    map[string]string // id → Name tag
	queueURL string
	queueARN string
	vpc      string // the home VPC
	// alertTopic is the drift function's ALERT_TOPIC_ARN; alertsURL the
	// queue subscribed to it.
	alertTopic, alertsURL string
	// target is the second target (another account and region).
	target *target
}

func (d *run) step(format string, args ...any) {
	fmt.Fprintf(d.out, "==> "+format+"\n", args...)
}

func (d *run) info(format string, args ...any) {
	fmt.Fprintf(d.out, "    "+format+"\n", args...)
}

// run runs every step; cleanup stops what it started.
func (d *run) run(ctx context.Context) error {
	if err := preflight(); err != nil {
		return err
	}
	files, skipped, err := loadExamples(d.o.ExamplesDir)
	if err != nil {
		return err
	}
	d.files = files
	rie, err := lambdaemu.Find(d.o.RIEPath, d.o.Root)
	if err != nil {
		return err
	}
	if d.tmp, err = os.MkdirTemp("", "sgrules-demo-"); err != nil {
		return err
	}

	d.step("Building the reconcile and drift functions and the CLI for linux/%s (go build -tags lambda.norpc), in the background", runtime.GOARCH)
	type built struct {
		bins map[string]string
		err  error
	}
	buildDone := make(chan built, 1)
	buildStart := time.Now()
	buildCtx, cancelBuild := context.WithCancel(ctx)
	go func() {
		bins, err := lambdaemu.Build(buildCtx, d.o.Root, d.tmp, reconcilePkg, driftPkg, cliPkg)
		buildDone <- built{bins, err}
	}()
	// On return the build is cancelled and waited for, so that cleanup does
	// not remove its directory under it.
	var bins map[string]string
	waitBuild := func() error {
		if buildDone == nil {
			return nil
		}
		b := <-buildDone
		buildDone = nil
		bins = b.bins
		return b.err
	}
	defer func() {
		cancelBuild()
		_ = waitBuild()
	}()

	if err := d.startMoto(ctx); err != nil {
		return err
	}
	if err := d.createResources(ctx); err != nil {
		return err
	}
	if err := d.createTarget(ctx); err != nil {
		return err
	}
	if err := d.uploadExamples(ctx, skipped); err != nil {
		return err
	}

	if buildDone != nil && len(buildDone) == 0 {
		// Still compiling (the first run compiles the AWS SDK): say so
		// rather than stay silent.
		d.info("waiting for the function build (running for %s)", time.Since(buildStart).Round(time.Second))
	}
	if err := waitBuild(); err != nil {
		return err
	}
	buildTime := time.Since(buildStart).Round(100 * time.Millisecond)
	env := append(d.moto.Env(),
		"STATE_TABLE="+Table, "RULES_BUCKET="+Bucket, "RULES_PREFIX="+Prefix, "MAX_REVOKE=50", "DRIFT_MODE=revert",
		"TARGET_ACCOUNTS="+TargetAccount, "TARGET_ROLE="+TargetRole, "ALERT_TOPIC_ARN="+d.alertTopic,
		"AWS_LAMBDA_LOG_FORMAT=JSON")
	env = append(env, expiryEnv()...)

	d.step("Starting the reconcile function (built in %s) under the Lambda Runtime Interface Emulator", buildTime)
	reconcileFn, err := d.startFunction(ctx, rie, "reconcile", bins[reconcilePkg], env)
	if err != nil {
		return err
	}
	if err := d.deliverEvents(ctx, reconcileFn); err != nil {
		return err
	}
	want, err := expected(d.files, d.groups)
	if err != nil {
		return err
	}
	rows, err := d.showRules(ctx, "Security group rules after the reconcile function ran")
	if err != nil {
		return err
	}
	if err := verify(rows, want, nil); err != nil {
		return fmt.Errorf("after reconcile: %w", err)
	}
	d.info("all %d declared rules are in place with their declared descriptions", len(want))
	tg := d.target
	twant, err := expected([]example{tg.file}, tg.groups)
	if err != nil {
		return err
	}
	trows, err := d.showTargetRules(ctx, "Security group rules after the reconcile function ran")
	if err != nil {
		return err
	}
	if err := verify(trows, twant, nil); err != nil {
		return fmt.Errorf("after reconcile, in %s: %w", tg.title(), err)
	}
	for _, r := range rows {
		if r.Owner == tg.file.Name {
			return fmt.Errorf("after reconcile: %s of %s is in the home account", describeRule(r, d.names), tg.file.Name)
		}
	}
	d.info("all %d rules of %s are in place there, applied with the credentials of role %s; none leaked into the home account", len(twant), tg.file.Name, TargetRole)
	if err := d.showRefused(reconcileFn, rows); err != nil {
		return err
	}
	tmp, err := d.uploadTemporary(ctx, reconcileFn)
	if err != nil {
		return err
	}

	dr, err := d.simulateDrift(ctx, rows)
	if err != nil {
		return err
	}
	tdr, err := d.simulateTargetDrift(ctx, trows)
	if err != nil {
		return err
	}
	drifted, err := snapshot(ctx, d.c, d.groups)
	if err != nil {
		return err
	}
	tdrifted, err := snapshot(ctx, tg.c, tg.groups)
	if err != nil {
		return err
	}
	d.step("Starting the drift function under the emulator and invoking it with a Scheduled Event (DRIFT_MODE=revert)")
	driftFn, err := d.startFunction(ctx, rie, "drift", bins[driftPkg], env)
	if err != nil {
		return err
	}
	if err := d.invokeDrift(ctx, driftFn); err != nil {
		return err
	}
	after, err := snapshot(ctx, d.c, d.groups)
	if err != nil {
		return err
	}
	tafter, err := snapshot(ctx, tg.c, tg.groups)
	if err != nil {
		return err
	}
	d.showDriftResult(drifted, after, dr)
	d.step("What the drift function did in %s", tg.title())
	printChanges(d.out, diffRows(tdrifted, tafter), nil, tg.names, "    ")

	d.step("Checking the final state: every declared rule present with its declared description, the hand-added rules kept")
	if err := verify(after, want, []rules.Key{dr.Unmanaged, dr.OpenSSH}); err != nil {
		return err
	}
	d.info("converged: %d declared rules in place, 2 unmanaged rules left alone (1 reported as a policy violation)", len(want))
	if err := verify(tafter, twant, nil); err != nil {
		return fmt.Errorf("in %s: %w", tg.title(), err)
	}
	for _, r := range []row{tdr.Deleted, tdr.Edited} {
		if !slices.ContainsFunc(tafter, func(a row) bool { return a.Key == r.Key && a.Description == r.Description }) {
			return fmt.Errorf("in %s: %s not put back", tg.title(), describeRule(r, tg.names))
		}
	}
	d.info("converged in %s too: %d declared rules in place", tg.title(), len(twant))

	if err := d.showAttribution(ctx, driftFn, d.alertsURL); err != nil {
		return err
	}
	cli, cenv := bins[cliPkg], cliEnv(d.moto.Env())
	if err := d.showHistory(ctx, cli, cenv, Prefix+"web.yaml#web-https-rule", alicePrincipal); err != nil {
		return err
	}
	if err := d.showUsage(ctx, cli, cenv); err != nil {
		return err
	}
	if err := d.fireSchedule(ctx, driftFn, tmp); err != nil {
		return err
	}
	return d.showHistory(ctx, cli, cenv, tmp.file.Key()+"#ssh-alice", "expired")
}

// preflight checks the programs the demo needs, before it starts anything.
func preflight() error {
	if _, err := exec.LookPath(motoproc.Binary); err != nil {
		return fmt.Errorf("%w (the demo uses it as a local AWS emulator)", motoproc.ErrNotInstalled)
	}
	if _, err := exec.LookPath("go"); err != nil {
		return errors.New("go not found on PATH: the demo builds the Lambda functions from source (install Go 1.26 or newer)")
	}
	return nil
}

func (d *run) startMoto(ctx context.Context) error {
	d.step("Starting moto_server, a local AWS emulator, on a free loopback port")
	p, err := motoproc.StartProcess(ctx)
	if err != nil {
		return err
	}
	d.moto = p
	d.c = newClients(p.URL)
	d.info("moto_server is listening on %s", p.URL)
	return nil
}

func (d *run) createResources(ctx context.Context) error {
	names, err := groupNames(d.files)
	if err != nil {
		return err
	}
	d.step("Creating a VPC and %d security groups the examples reference by tag Name: %s", len(names), strings.Join(names, ", "))
	vpc, groups, err := createGroups(ctx, d.c, names)
	if err != nil {
		return err
	}
	d.vpc = vpc
	d.groups = groups
	d.names = make(map[string]string, len(groups))
	for name, id := range groups {
		d.names[id] = name
	}
	d.info("VPC %s; groups named NAME-sg, e.g. %s-sg = %s", vpc, names[0], groups[names[0]])

	d.step("Creating versioned bucket s3://%s, notifying SQS queue %s of objects created or removed under %s", Bucket, Queue, Prefix)
	if d.queueURL, d.queueARN, err = createQueue(ctx, d.c); err != nil {
		return err
	}
	if err := createBucket(ctx, d.c, d.queueARN); err != nil {
		return err
	}
	d.step("Creating the ownership ledger, DynamoDB table %s", Table)
	if err := createTable(ctx, d.c); err != nil {
		return err
	}
	d.step("Creating the expiry schedule group %s (EventBridge Scheduler) and the alert topic %s, a queue subscribed", ExpiryGroup, AlertTopic)
	if err := createScheduleGroup(ctx, d.c); err != nil {
		return err
	}
	d.alertTopic, d.alertsURL, err = createAlerts(ctx, d.c)
	return err
}

func (d *run) uploadExamples(ctx context.Context, skipped []string) error {
	pol, err := os.ReadFile(filepath.Join(d.o.ExamplesDir, "policy", "sgrules.yaml"))
	if err != nil {
		return fmt.Errorf("read the example policy: %w", err)
	}
	d.step("Uploading the guardrail policy examples/policy/sgrules.yaml to s3://%s/%s (POLICY_KEY): no SSH or RDP from the internet, no broad ranges, …", Bucket, PolicyKey)
	if err := putObject(ctx, d.c, PolicyKey, pol); err != nil {
		return err
	}
	names := make([]string, len(d.files))
	for i, e := range d.files {
		names[i] = e.Name
	}
	d.step("Uploading %d example rule files to s3://%s/%s: %s", len(d.files), Bucket, Prefix, strings.Join(names, ", "))
	for _, s := range skipped {
		d.info("skipped %s: it references a group by id, which exists only in the account it was written for", s)
	}
	if err := upload(ctx, d.c, d.files); err != nil {
		return err
	}
	d.info("and %s, which opens SSH to the internet: the policy must refuse it", refusedFile.Name)
	if err := upload(ctx, d.c, []example{refusedFile}); err != nil {
		return err
	}
	d.info("and %s, which names account: \"%s\" and region: %s at its top: its groups live there", d.target.file.Name, TargetAccount, TargetRegion)
	return upload(ctx, d.c, []example{d.target.file})
}

// refusedFile violates the example policy (no-world-ssh).
var refusedFile = example{Name: "open-ssh.yaml", Body: []byte(`rules:
  ssh-from-anywhere:
    securityGroup: {tags: {Name: admin}}
    type: ingress
    protocol: tcp
    fromPort: 22
    toPort: 22
    cidrBlocks: [0.0.0.0/0]
    description: SSH from anywhere
`)}

// showRefused finds the reconcile function's report of the refused file
// and checks that none of its rules reached EC2.
func (d *run) showRefused(fn *function, rows []row) error {
	d.step("The policy refused %s: the reconcile function logged it invalid, nothing of it was applied", refusedFile.Name)
	key := refusedFile.Key()
	var diags []string
	for _, l := range fn.logLines() {
		var m struct {
			Key         string   `json:"key"`
			Diagnostics []string `json:"diagnostics"`
		}
		if i := strings.Index(l, "{"); i >= 0 {
			l = l[i:]
		}
		// (The handler's "message" attribute, the source's message,
		// shadows the log message: match on the key.)
		if json.Unmarshal([]byte(l), &m) == nil && m.Key == key && len(m.Diagnostics) > 0 {
			diags = m.Diagnostics
		}
	}
	refused := false
	for _, dg := range diags {
		if strings.Contains(dg, "violates policy ") {
			d.info("%s", dg)
			refused = true
		}
	}
	if !refused {
		return fmt.Errorf("the policy did not refuse %s (diagnostics %q)", key, diags)
	}
	for _, r := range rows {
		if r.Key.FromPort == 22 && r.Key.Peer.Value == "0.0.0.0/0" {
			return fmt.Errorf("the refused rule %s reached EC2", r.Key)
		}
	}
	return nil
}

func (d *run) startFunction(ctx context.Context, rie, name, bootstrap string, env []string) (*function, error) {
	f, err := startFunction(ctx, rie, name, bootstrap, env)
	if err != nil {
		return nil, err
	}
	d.fns = append(d.fns, f)
	return f, nil
}

func (d *run) deliverEvents(ctx context.Context, fn *function) error {
	d.step("Delivering the S3 events from SQS queue %s to the reconcile function, as a Lambda event source mapping would", Queue)
	err := deliver(ctx, d.c, d.queueURL, d.queueARN, fn, func(n int, b batchResult) {
		d.info("%s", describeBatch(n, b))
	})
	d.functionLogs(fn)
	if err != nil {
		return err
	}
	if s := planSummary(fn.logLines()); s != "" {
		d.info("the function logged %s", s)
	}
	return nil
}

func (d *run) showRules(ctx context.Context, title string) ([]row, error) {
	rows, err := snapshot(ctx, d.c, d.groups)
	if err != nil {
		return nil, err
	}
	d.step("%s (%d rules in %d groups)", title, len(rows), len(d.groups))
	printRules(d.out, rows, d.names, "    ")
	return rows, nil
}

func (d *run) simulateDrift(ctx context.Context, rows []row) (drift, error) {
	dr, err := chooseDrift(rows, d.groups)
	if err != nil {
		return dr, err
	}
	d.step("Simulating drift: changing rules by hand, as someone in the EC2 console would")
	d.info("deleting a managed rule:   %s", describeRule(dr.Deleted, d.names))
	d.info("editing a description:     %s, description now %q", describeRule(dr.Edited, d.names), editedDescription)
	d.info("adding an unmanaged rule:  %s, %q", describeRule(row{Group: d.names[dr.Unmanaged.GroupID], Key: dr.Unmanaged}, d.names), unmanagedDescription)
	d.info("adding a policy violation: %s, %q", describeRule(row{Group: d.names[dr.OpenSSH.GroupID], Key: dr.OpenSSH}, d.names), openSSHDescription)
	return dr, applyDrift(ctx, d.c, dr)
}

// describeRule renders a rule in one phrase: "web ingress tcp 443 from
// 0.0.0.0/0 (sgr-…)".
func describeRule(r row, names map[string]string) string {
	dir := "from"
	if r.Key.Direction == rules.Egress {
		dir = "to"
	}
	s := fmt.Sprintf("%s %s %s %s %s %s", r.Group, r.Key.Direction, protocolText(r.Key.Protocol), portsText(r.Key), dir, peerText(r.Key.Peer, names))
	if r.RuleID != "" {
		s += " (" + r.RuleID + ")"
	}
	return s
}

func (d *run) invokeDrift(ctx context.Context, fn *function) error {
	body, err := fn.invoke(ctx, scheduledEvent(time.Now()))
	d.functionLogs(fn)
	if err != nil {
		return err
	}
	var resp struct {
		Kind    string `json:"kind"`
		Error   string `json:"error"`
		Sources []struct {
			Key    string
			Status string
		} `json:"sources"`
		Drift   *report.Report `json:"drift"`
		Targets []struct {
			Account string         `json:"account"`
			Region  string         `json:"region"`
			Error   string         `json:"error"`
			Drift   *report.Report `json:"drift"`
		} `json:"targets"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return fmt.Errorf("drift function answered %s: %w", body, err)
	}
	if resp.Error != "" {
		return fmt.Errorf("drift function: %s", resp.Error)
	}
	statuses := map[string]int{}
	for _, s := range resp.Sources {
		statuses[s.Status]++
	}
	var parts []string
	for st, n := range statuses {
		parts = append(parts, fmt.Sprintf("%d %s", n, st))
	}
	sort.Strings(parts)
	d.info("the function answered: %s event, %d sources (%s)", resp.Kind, len(resp.Sources), strings.Join(parts, ", "))
	if s := planSummary(fn.logLines()); s != "" {
		d.info("the function logged %s", s)
	}
	// One report per target (the response's drift when it ran in one).
	reps := []*report.Report{resp.Drift}
	if len(resp.Targets) > 0 {
		reps = reps[:0]
	}
	for _, t := range resp.Targets {
		if t.Error != "" {
			return fmt.Errorf("drift function, account %s region %s: %s", t.Account, t.Region, t.Error)
		}
		if t.Drift == nil {
			return fmt.Errorf("drift function: no drift report for account %s region %s", t.Account, t.Region)
		}
		d.info("account %s, %s: %d %s drifted, %d reverted, %d %s checked", t.Account, t.Region,
			t.Drift.Detected, strutil.Plural(t.Drift.Detected, "rule"), t.Drift.Reverted, t.Drift.GroupsChecked, strutil.Plural(t.Drift.GroupsChecked, "group"))
		reps = append(reps, t.Drift)
	}
	var violations []report.Violation
	for _, r := range reps {
		if r != nil {
			violations = append(violations, r.Violations...)
		}
	}
	if len(violations) == 0 {
		return errors.New("the drift function reported no policy violation for the hand-made SSH rule")
	}
	for _, v := range violations {
		d.info("policy violation %s: %s %s %s violates %s", v.Action, d.names[v.Group], v.Direction, v.Rule, strings.Join(v.Policies, ", "))
	}
	return nil
}

func (d *run) showDriftResult(before, after []row, dr drift) {
	d.step("What the drift function did (rules before and after its run)")
	var keep []row
	for _, r := range after {
		if r.Key == dr.Unmanaged {
			keep = append(keep, r)
		}
	}
	printChanges(d.out, diffRows(before, after), keep, d.names, "    ")
}

// functionLogs prints a function's logs when Verbose is set.
func (d *run) functionLogs(fn *function) {
	if !d.o.Verbose {
		return
	}
	d.info("--- %s function output so far ---", fn.name)
	for _, l := range fn.logLines() {
		d.info("%s", l)
	}
}

// keep waits, with moto running, until ctx is cancelled.
func (d *run) keep(ctx context.Context) {
	fmt.Fprintf(d.out, "\n==> moto_server keeps running at %s; press Ctrl-C to stop it. For example:\n", d.moto.URL)
	d.info("export AWS_ENDPOINT_URL=%s AWS_DEFAULT_REGION=%s AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test", d.moto.URL, Region)
	d.info("aws ec2 describe-security-group-rules --output table")
	d.info("aws s3 ls s3://%s/%s", Bucket, Prefix)
	d.info("aws dynamodb scan --table-name %s", Table)
	<-ctx.Done()
}

// cleanup stops the functions and moto and removes the builds.
func (d *run) cleanup() {
	if len(d.fns) == 0 && d.moto == nil && d.tmp == "" {
		return
	}
	d.step("Stopping moto_server and the Lambda emulators, removing the builds")
	for _, f := range d.fns {
		f.Stop()
	}
	if d.moto != nil {
		d.moto.Stop()
	}
	if d.tmp != "" {
		os.RemoveAll(d.tmp)
	}
}
