package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/dev/lambdaemu"
	"github.com/sgrules/sgrules/internal/dev/motoproc"
	"github.com/sgrules/sgrules/internal/testutil/motoworld"
	"github.com/sgrules/sgrules/pkg/rules"
)

// The load scenario (issue 24, "Under load"): a sync of changed rule files
// delivered as S3 notifications through SQS, in batches, to several
// reconcile functions at once, each a real bootstrap under the Lambda
// Runtime Interface Emulator.
const (
	// LoadFilesPerGroup: files i, i+1, i+2 of the sync (i divisible by 3)
	// declare their rules in one group, as a team's files share its group;
	// a group's files then arrive in different batches (the queue does not
	// keep upload order) and their runs meet on the group's lease.
	LoadFilesPerGroup = 3
	// LoadBatchSize is the SQS event source mapping's default batch size.
	LoadBatchSize = 10
	// loadMaxReceives is the queue's redrive policy: a message received
	// this often goes to the dead-letter queue (lost work, an error).
	loadMaxReceives = 10
	loadPrefix      = "rules/load/"
	loadQueueARN    = "arn:aws:sqs:" + motoproc.Region + ":123456789012:sgrules-rules-events"
)

// LoadOptions sizes the load scenario.
type LoadOptions struct {
	// Files is the number of changed files of the sync (0: skip).
	Files int
	// Functions is the number of reconcile functions running at once, one
	// emulator instance each (the emulator serves one request at a time).
	Functions int
	// Seed orders the queue (the order S3 notifications reach SQS and the
	// poller's batches are not the upload order).
	Seed uint64
	// InOrder keeps the queue in upload order (key order) instead: a
	// group's files then share a batch except where a batch ends.
	InOrder bool
	// Bootstrap is the reconcile function's binary for the host (empty:
	// built from ./functions/reconcile of the module around the working
	// directory); RIE the emulator (empty: lambdaemu.Find).
	Bootstrap, RIE string
}

// Load is the outcome of the load scenario.
type Load struct {
	Files     int `json:"files"`
	Functions int `json:"functions"`
	// InOrder: the queue held the notifications in upload order, not
	// shuffled.
	InOrder   bool `json:"inOrder,omitempty"`
	BatchSize int  `json:"batchSize"`
	Groups    int  `json:"groups"`
	// ChangedRules: each file has one rule changed in place and one
	// replaced by another (2 per file).
	ChangedRules int `json:"changedRules"`
	// TouchedPairs are the (group, direction) pairs whose rules changed:
	// both directions of every group. EC2MutatingLimit is the least
	// mutating calls the sync needs were each group's files in one run:
	// per group one ModifySecurityGroupRules (the ingress rules changed
	// in place) and one authorize and one revoke (egress), 3 per group,
	// under the bound of 2 per touched pair.
	TouchedPairs     int `json:"touchedPairs"`
	EC2Mutating      int `json:"ec2Mutating"`
	EC2MutatingLimit int `json:"ec2MutatingLimit"`
	// MaxCallsPerPair is the most mutating calls one pair received.
	MaxCallsPerPair int `json:"maxCallsPerPair"`
	// PairRuns is, summed over the touched pairs, the number of
	// invocations that wrote the pair; SplitPairs the pairs written by
	// more than one (the group's files came in different batches; runs
	// that overlap in time meet on the group's lease). RunLimit is the
	// limit of the sync as delivered: what each of those invocations
	// needs on the pair (ingress 1, egress 2), summed.
	PairRuns   int `json:"pairRuns"`
	SplitPairs int `json:"splitPairs"`
	RunLimit   int `json:"runLimit"`
	// MaxCallsPerPairRun is the most mutating calls one invocation made on
	// one pair (at most 2: one authorize and one revoke, or one modify).
	MaxCallsPerPairRun int `json:"maxCallsPerPairRun"`
	// Modified, Authorized and Revoked count the rules all Modify calls
	// named, the permissions all Authorize calls carried and the rule ids
	// all Revoke calls named: each equal to Files when nothing was done
	// twice. FailedMutating are mutating calls EC2 refused (a duplicate
	// would be one).
	Modified       int `json:"modified"`
	Authorized     int `json:"authorized"`
	Revoked        int `json:"revoked"`
	FailedMutating int `json:"failedMutating"`
	// LeaseRefusals are lease transactions refused because another
	// invocation held a group's lease (each followed by a backoff and a
	// new try within the lease wait); AttemptsLostToLease the engine
	// attempts that gave up waiting (ErrLeaseHeld) and were planned again;
	// AttemptsLostOther those lost to another race (a conditional ledger
	// write). BatchFallbacks are batches whose one run failed and that were
	// retried message by message.
	// Retries are the attempts the contention cost, AttemptsLostToLease
	// + AttemptsLostOther + BatchFallbacks; Bound is the limit the sync
	// is held to: 2 mutating calls per touched pair, plus, per retry, what
	// one run of a batch can write (2 calls on each direction of the group
	// of each of its LoadBatchSize files).
	Retries             int `json:"retries"`
	Bound               int `json:"bound"`
	LeaseRefusals       int `json:"leaseRefusals"`
	AttemptsLostToLease int `json:"attemptsLostToLease"`
	AttemptsLostOther   int `json:"attemptsLostOther"`
	BatchFallbacks      int `json:"batchFallbacks"`
	// Invocations are the batches delivered; Redelivered the messages
	// delivered again (reported as batch item failures, or their whole
	// invocation failed); FunctionErrors invocations that failed as a
	// whole.
	Invocations    int `json:"invocations"`
	Redelivered    int `json:"redelivered"`
	FunctionErrors int `json:"functionErrors"`
	// ByAction counts the functions' calls during the sync, keyed
	// "Service.Operation".
	ByAction map[string]int `json:"byAction"`
	// WallMS is the sync from the first delivery to the last answer;
	// SetupMS the set-up (groups, first version applied by one function).
	WallMS  float64 `json:"wallMs"`
	SetupMS float64 `json:"setupMs"`
}

// loadGroupName is group g of the load scenario.
func loadGroupName(g int) string { return fmt.Sprintf("load-g%03d", g) }

func loadFileKey(i int) string { return fmt.Sprintf("%sf-%03d.yaml", loadPrefix, i) }

// loadRule is one rule of a load file.
type loadRule struct {
	name string
	spec
}

// loadSpec is the two rules of file i in version v (1 before the sync, 2
// after), in group i/LoadFilesPerGroup, each with a CIDR peer of the
// file's own: an ingress rule "in" whose port the sync changes (changed in
// place: ModifySecurityGroupRules), and an egress rule the sync replaces
// by another ("out-1" becomes "out-2", on another port: an authorize and a
// revoke).
func loadSpec(i, v int) []loadRule {
	port := int32(1000 + i)
	if v == 2 {
		port += 30000
	}
	g := i / LoadFilesPerGroup
	return []loadRule{
		{"in", spec{group: g, dir: rules.Ingress, port: port, cidr: fmt.Sprintf("10.%d.%d.0/24", i/256, i%256), peerGroup: -1, desc: fmt.Sprintf("load file %d in", i)}},
		{fmt.Sprintf("out-%d", v), spec{group: g, dir: rules.Egress, port: port, cidr: fmt.Sprintf("10.%d.%d.0/24", 128+i/256, i%256), peerGroup: -1, desc: fmt.Sprintf("load file %d out", i)}},
	}
}

func loadFile(i, v int) ([]byte, error) {
	f := &rules.File{Name: loadFileKey(i)}
	for _, r := range loadSpec(i, v) {
		rule := specRule(r.spec)
		rule.Name = r.name
		rule.SecurityGroup = rules.GroupRef{Tags: map[string]string{"Name": loadGroupName(r.group)}}
		f.Rules = append(f.Rules, rule)
	}
	return rules.MarshalYAML(f)
}

// loadKey is the permission of a spec once group names are ids.
func loadKey(s spec, ids []string) rules.Key {
	return rules.Key{GroupID: ids[s.group], Direction: s.dir, Protocol: rules.ProtoTCP, FromPort: s.port, ToPort: s.port,
		Peer: rules.Peer{Kind: rules.PeerCIDR4, Value: netip.MustParsePrefix(s.cidr).String()}}
}

// sqsMessage is one queued S3 notification.
type sqsMessage struct {
	id       string
	body     string
	receives int
}

// loadQueue is the SQS queue between the bucket and the functions: a
// poller takes up to LoadBatchSize visible messages; a failed message is
// visible again at once (the visibility timeout, shortened).
type loadQueue struct {
	mu       sync.Mutex
	msgs     []*sqsMessage
	inFlight int
	dead     []*sqsMessage
}

// take returns the next batch, or nil with done when the queue is empty and
// nothing is in flight.
func (q *loadQueue) take() (batch []*sqsMessage, done bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.msgs) == 0 {
		return nil, q.inFlight == 0
	}
	n := min(LoadBatchSize, len(q.msgs))
	batch, q.msgs = q.msgs[:n:n], q.msgs[n:]
	q.inFlight++
	for _, m := range batch {
		m.receives++
	}
	return batch, false
}

// settle ends a delivery: the failed messages are visible again (or dead
// after loadMaxReceives receives).
func (q *loadQueue) settle(failed []*sqsMessage) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.inFlight--
	for _, m := range failed {
		if m.receives >= loadMaxReceives {
			q.dead = append(q.dead, m)
			continue
		}
		q.msgs = append(q.msgs, m)
	}
}

// s3Notification is the body S3 sends to the queue for one upload (the key
// URL-encoded, as S3 does).
func s3Notification(key string, seq int) string {
	ev := map[string]any{"Records": []any{map[string]any{
		"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": motoproc.Region,
		"eventTime": time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), "eventName": "ObjectCreated:Put",
		"s3": map[string]any{
			"s3SchemaVersion": "1.0", "configurationId": "sgrules-rules-events",
			"bucket": map[string]any{"name": bucket, "arn": "arn:aws:s3:::" + bucket},
			"object": map[string]any{"key": url.QueryEscape(key), "sequencer": fmt.Sprintf("%016X", seq)},
		},
	}}}
	b, _ := json.Marshal(ev)
	return string(b)
}

// sqsEvent is the invocation payload of a batch, as the SQS event source
// mapping sends it.
func sqsEvent(batch []*sqsMessage) ([]byte, error) {
	ev := events.SQSEvent{}
	for _, m := range batch {
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId: m.id, ReceiptHandle: m.id + "#" + fmt.Sprint(m.receives), Body: m.body,
			Attributes:     map[string]string{"ApproximateReceiveCount": fmt.Sprint(m.receives), "SentTimestamp": "1772446531000"},
			EventSource:    "aws:sqs",
			EventSourceARN: loadQueueARN, AWSRegion: motoproc.Region,
		})
	}
	return json.Marshal(ev)
}

// runLoad runs the load scenario against the moto server at motoURL.
func runLoad(ctx context.Context, motoURL string, opt LoadOptions, logf func(string, ...any)) (*Load, error) {
	if opt.Files < 1 || opt.Functions < 1 {
		return nil, fmt.Errorf("%d files, %d functions", opt.Files, opt.Functions)
	}
	t0 := time.Now()
	rie, err := lambdaemu.Find(opt.RIE, moduleRoot())
	if err != nil {
		return nil, err
	}
	bin := opt.Bootstrap
	if bin == "" {
		root := moduleRoot()
		if root == "" {
			return nil, errors.New("no go.mod above the working directory to build ./functions/reconcile in")
		}
		dir, err := os.MkdirTemp("", "sgbench-load-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		bins, err := lambdaemu.Build(ctx, root, dir, "./functions/reconcile")
		if err != nil {
			return nil, err
		}
		bin = bins["./functions/reconcile"]
	}

	g := (opt.Files + LoadFilesPerGroup - 1) / LoadFilesPerGroup
	names := make([]string, g)
	for i := range names {
		names[i] = loadGroupName(i)
	}
	raw := motoproc.Config(motoURL)
	mw, err := motoworld.Build(ctx, raw, motoworld.Spec{Groups: names, Bucket: bucket, Table: table})
	if err != nil {
		return nil, err
	}
	w := &world{s3: mw.S3}
	put := func(v int) error {
		files := map[string][]byte{}
		for i := range opt.Files {
			b, err := loadFile(i, v)
			if err != nil {
				return err
			}
			files[loadFileKey(i)] = b
		}
		return w.putFiles(ctx, files)
	}

	// One counting proxy in front of moto per function: every call it
	// forwards belongs to the invocation that function is running.
	fns := make([]*lambdaemu.Function, opt.Functions)
	proxies := make([]*loadProxy, opt.Functions)
	defer func() {
		for i := range fns {
			if fns[i] != nil {
				fns[i].Stop()
			}
			if proxies[i] != nil {
				proxies[i].Close()
			}
		}
	}()
	for i := range fns {
		if proxies[i], err = newLoadProxy(motoURL); err != nil {
			return nil, err
		}
		env := []string{
			"AWS_ENDPOINT_URL=" + proxies[i].URL, "AWS_REGION=" + motoproc.Region, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
			"AWS_EC2_METADATA_DISABLED=true", "AWS_LAMBDA_LOG_FORMAT=JSON",
			"STATE_TABLE=" + table, "RULES_BUCKET=" + bucket, "RULES_PREFIX=" + prefix, "MAX_REVOKE=-1",
		}
		if fns[i], err = lambdaemu.Start(ctx, rie, bin, env); err != nil {
			return nil, fmt.Errorf("function %d: %w", i, err)
		}
	}

	// Set-up: the first version, applied by a scheduled sweep of function 0
	// (which also runs its init); the others start on their first batch.
	if err := put(1); err != nil {
		return nil, err
	}
	setup := &loadCalls{}
	proxies[0].use(setup)
	status, body, err := fns[0].Invoke(ctx, []byte(`{"version":"0","id":"load-setup","detail-type":"Scheduled Event","source":"aws.events",`+
		`"account":"123456789012","time":"2026-12-07T00:00:00Z","region":"`+motoproc.Region+`","resources":["arn:aws:events:`+motoproc.Region+`:123456789012:rule/sgrules-sweep"],"detail":{}}`))
	if err != nil || status != 200 || strings.Contains(string(body), `"errorMessage"`) {
		return nil, fmt.Errorf("set-up sweep: status %d, %v: %s\n%s", status, err, body, fns[0].Logs())
	}
	ids := mw.IDs
	if err := checkLoad(ctx, mw, opt.Files, 1); err != nil {
		return nil, fmt.Errorf("set-up: %w", err)
	}
	before, err := ec2sg.New(mw.EC2).DescribeRules(ctx, ids)
	if err != nil {
		return nil, err
	}
	dirs := map[string]string{}
	for _, r := range before {
		dirs[r.RuleID] = string(r.Key.Direction)
	}
	for _, p := range proxies {
		p.dirs.Store(&dirs)
	}
	setupMS := float64(time.Since(t0).Microseconds()) / 1000
	logf("load: set-up %.1f s: %d groups, %d rules (%d files); the sync: %d files to %d functions", setupMS/1000, g, 2*opt.Files, opt.Files, opt.Files, opt.Functions)

	// The sync: every file changes; S3 notifies the queue once per upload.
	if err := put(2); err != nil {
		return nil, err
	}
	q := &loadQueue{}
	for i := range opt.Files {
		q.msgs = append(q.msgs, &sqsMessage{id: fmt.Sprintf("load-msg-%04d", i), body: s3Notification(loadFileKey(i), i+1)})
	}
	if !opt.InOrder {
		rng := rand.New(rand.NewPCG(opt.Seed, 24))
		rng.Shuffle(len(q.msgs), func(a, b int) { q.msgs[a], q.msgs[b] = q.msgs[b], q.msgs[a] })
	}

	var (
		mu   sync.Mutex
		runs []*loadCalls
		out  = &Load{Files: opt.Files, Functions: opt.Functions, InOrder: opt.InOrder, BatchSize: LoadBatchSize, Groups: g, ChangedRules: 2 * opt.Files}
		errs []error
	)
	start := time.Now()
	var wg sync.WaitGroup
	for fi := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				batch, done := q.take()
				if done {
					return
				}
				if batch == nil {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				calls := &loadCalls{}
				proxies[fi].use(calls)
				failed, lg, err := deliver(ctx, fns[fi], batch)
				proxies[fi].use(nil)
				mu.Lock()
				runs = append(runs, calls)
				out.Invocations++
				out.Redelivered += len(failed)
				out.LeaseRefusals += calls.leaseRefusals
				out.AttemptsLostToLease += lg.lostLease
				out.AttemptsLostOther += lg.lostOther
				out.BatchFallbacks += lg.fallbacks
				if err != nil {
					out.FunctionErrors++
					logf("load: function %d: %v", fi, err)
				}
				mu.Unlock()
				q.settle(failed)
			}
		}()
	}
	wg.Wait()
	out.WallMS = float64(time.Since(start).Microseconds()) / 1000
	out.SetupMS = setupMS
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(q.dead) > 0 {
		errs = append(errs, fmt.Errorf("%d messages went to the dead-letter queue after %d receives (first: %s)", len(q.dead), loadMaxReceives, q.dead[0].body))
	}

	// Calls: per pair over all invocations, and per invocation.
	pairs := map[loadPair]int{}
	pairRuns := map[loadPair]int{}
	out.ByAction = map[string]int{}
	for _, c := range runs {
		for k, v := range c.byAction {
			out.ByAction[k] += v
		}
		for p, v := range c.pairs {
			pairs[p] += v
			pairRuns[p]++
			out.MaxCallsPerPairRun = max(out.MaxCallsPerPairRun, v)
		}
		out.EC2Mutating += c.mutating
		out.Modified += c.modified
		out.Authorized += c.authorized
		out.Revoked += c.revoked
		out.FailedMutating += c.failedMutating
	}
	// What one run needs on a pair: the ingress rule changed in place (a
	// modify), the egress rule replaced (an authorize and a revoke).
	needs := map[string]int{string(rules.Ingress): 1, string(rules.Egress): 2}
	touched := map[loadPair]bool{}
	for i := range opt.Files {
		for _, r := range loadSpec(i, 2) {
			touched[loadPair{group: ids[r.group], dir: string(r.dir)}] = true
		}
	}
	out.TouchedPairs = len(touched)
	for p, v := range pairs {
		if !touched[p] {
			errs = append(errs, fmt.Errorf("%d mutating calls on %s %s, which the sync does not change", v, p.group, p.dir))
		}
		out.MaxCallsPerPair = max(out.MaxCallsPerPair, v)
	}
	for p := range touched {
		out.EC2MutatingLimit += needs[p.dir]
		out.PairRuns += pairRuns[p]
		out.RunLimit += needs[p.dir] * pairRuns[p]
		if pairRuns[p] > 1 {
			out.SplitPairs++
		}
	}
	if out.Modified != opt.Files || out.Authorized != opt.Files || out.Revoked != opt.Files || out.FailedMutating != 0 {
		errs = append(errs, fmt.Errorf("modified %d rules, authorized %d permissions, revoked %d rules (%d calls refused); want each of the %d files' changes made once",
			out.Modified, out.Authorized, out.Revoked, out.FailedMutating, opt.Files))
	}
	// The bound: a run writing a group also applies the group's other
	// files that changed (the engine's sibling refresh), so the first run
	// writing a pair writes all its changes; only a retry writes again.
	out.Retries = out.AttemptsLostToLease + out.AttemptsLostOther + out.BatchFallbacks
	out.Bound = 2*out.TouchedPairs + out.Retries*2*2*LoadBatchSize
	if out.EC2Mutating > out.Bound {
		errs = append(errs, fmt.Errorf("%d EC2 mutating calls, want at most %d (2 per touched group and direction, %d pairs, plus %d per retry, %d retries)",
			out.EC2Mutating, out.Bound, out.TouchedPairs, 2*2*LoadBatchSize, out.Retries))
	}
	// A batch whose one run failed (3 attempts lost) is retried message by
	// message: its messages' runs may each write a pair once more.
	if perRun := 2 * (1 + out.BatchFallbacks*(LoadBatchSize-1)); out.MaxCallsPerPairRun > perRun {
		errs = append(errs, fmt.Errorf("an invocation made %d mutating calls on one group and direction, want at most %d", out.MaxCallsPerPairRun, perRun))
	}
	if err := checkLoad(ctx, mw, opt.Files, 2); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return out, errors.Join(errs...)
	}
	return out, nil
}

// deliver invokes fn with one batch and returns the messages to deliver
// again: the batch item failures, or the whole batch when the invocation
// failed.
func deliver(ctx context.Context, fn *lambdaemu.Function, batch []*sqsMessage) ([]*sqsMessage, loadLog, error) {
	payload, err := sqsEvent(batch)
	if err != nil {
		return batch, loadLog{}, err
	}
	before := len(fn.Logs())
	status, body, err := fn.Invoke(ctx, payload)
	lg := parseLoadLog(fn.Logs()[before:])
	if err != nil {
		return batch, lg, err
	}
	var resp events.SQSEventResponse
	if status != 200 || strings.Contains(string(body), `"errorMessage"`) || json.Unmarshal(body, &resp) != nil {
		return batch, lg, fmt.Errorf("invocation failed: status %d: %s", status, body)
	}
	var failed []*sqsMessage
	for _, f := range resp.BatchItemFailures {
		i := slices.IndexFunc(batch, func(m *sqsMessage) bool { return m.id == f.ItemIdentifier })
		if i < 0 {
			return batch, lg, fmt.Errorf("batch item failure names %q, not in the batch", f.ItemIdentifier)
		}
		failed = append(failed, batch[i])
	}
	return failed, lg, nil
}

// loadLog is what one invocation's log lines tell of races.
type loadLog struct {
	lostLease, lostOther, fallbacks int
}

// parseLoadLog reads the function's JSON log lines (the emulator's own
// lines are not JSON and are passed over): each "re-planning" line is an
// engine attempt lost to a race; its error names a held lease or another
// race.
func parseLoadLog(s string) loadLog {
	var lg loadLog
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var rec struct {
			Msg string `json:"msg"`
			Err string `json:"err"`
		}
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		switch {
		case rec.Msg == "re-planning" && strings.Contains(rec.Err, "group lease held"):
			lg.lostLease++
		case rec.Msg == "re-planning":
			lg.lostOther++
		case strings.HasPrefix(rec.Msg, "batch run failed"):
			lg.fallbacks++
		}
	}
	return lg
}

// checkLoad compares EC2 and the ledger with version v of the files: the
// managed rules of the groups are exactly the files' rules, and the ledger
// holds each of them once, owned by its file and rule.
func checkLoad(ctx context.Context, mw *motoworld.World, files, v int) error {
	want := map[rules.Key]rules.Owner{}
	for i := range files {
		for _, r := range loadSpec(i, v) {
			want[loadKey(r.spec, mw.IDs)] = rules.Owner{Source: loadFileKey(i), Rule: r.name}
		}
	}
	var errs []error
	actual, err := ec2sg.New(mw.EC2).DescribeRules(ctx, mw.IDs)
	if err != nil {
		return err
	}
	seen := map[rules.Key]int{}
	for _, r := range actual {
		if r.Tags["sgrules:managed"] != "true" {
			continue
		}
		seen[r.Key]++
		if _, ok := want[r.Key]; !ok {
			errs = append(errs, fmt.Errorf("EC2 has %s, which no file declares", r.Key))
		}
	}
	for k := range want {
		if seen[k] != 1 {
			errs = append(errs, fmt.Errorf("EC2 has %s %d times, want once", k, seen[k]))
		}
	}
	owned, err := ddbledger.New(dynamodb.NewFromConfig(mw.Config), table).AllPermissions(ctx)
	if err != nil {
		return err
	}
	inLedger := map[rules.Key]int{}
	for _, o := range owned {
		inLedger[o.Key]++
		w, ok := want[o.Key]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("the ledger owns %s, which no file declares", o.Key))
		case len(o.Owners) != 1:
			errs = append(errs, fmt.Errorf("the ledger gives %s %d owners, want %s", o.Key, len(o.Owners), w))
		default:
			if _, ok := o.Owners[w]; !ok {
				errs = append(errs, fmt.Errorf("the ledger gives %s owners %v, want %s", o.Key, o.Owners, w))
			}
		}
	}
	for k := range want {
		if inLedger[k] != 1 {
			errs = append(errs, fmt.Errorf("the ledger holds %s %d times, want once", k, inLedger[k]))
		}
	}
	if len(errs) > 10 {
		errs = append(errs[:10], fmt.Errorf("and %d more", len(errs)-10))
	}
	return errors.Join(errs...)
}

// moduleRoot is the directory of the go.mod around the working directory
// ("" when there is none).
func moduleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}
