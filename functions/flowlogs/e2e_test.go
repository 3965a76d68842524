package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/adapters/s3source"
	"github.com/sgrules/sgrules/internal/config"
	"github.com/sgrules/sgrules/internal/dev/motoproc"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/testutil/flowcorpus"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
	"github.com/sgrules/sgrules/internal/testutil/motoworld"
	"github.com/sgrules/sgrules/internal/testutil/rie"
	"github.com/sgrules/sgrules/pkg/flowlog/flowlogtest"
	"github.com/sgrules/sgrules/pkg/rules"
)

func TestMain(m *testing.M) { motoserver.Main(m, rie.RemoveBuilds) }

// The end-to-end tests run the real flow-log bootstrap under the Lambda
// Runtime Interface Emulator against moto: the labelled traffic corpus's
// world (interfaces, groups, prefix lists) with its rule files applied by
// the engine (so the ledger holds the managed rules and their ids), and
// its logs delivered to s3://flow-logs/vpc/ in the standard layout.

const (
	rulesBucket = "rules-bucket"
	logBucket   = "flow-logs"
	table       = "ledger"
	logDay      = "2025/12/01"
)

type world struct {
	t      *testing.T
	srv    *motoserver.Server
	mw     *motoworld.World
	corpus *flowlogtest.Corpus
	ids    flowlogtest.IDs
	keys   []string // the log objects
	ledger *ddbledger.Ledger
}

func newWorld(t *testing.T) *world {
	t.Helper()
	srv := motoserver.Shared(t)
	cfg := srv.Config(t)
	mw := srv.World(t, cfg, motoworld.Spec{Bucket: rulesBucket, Table: table})
	ctx := t.Context()
	corpus, err := flowlogtest.Load()
	if err != nil {
		t.Fatal(err)
	}
	ids, err := flowcorpus.Build(ctx, mw.EC2, corpus)
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range corpus.Rules {
		if _, err := mw.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(rulesBucket), Key: aws.String("rules/" + name),
			Body: strings.NewReader(ids.Expand(body))}); err != nil {
			t.Fatal(err)
		}
	}
	led := ddbledger.New(dynamodb.NewFromConfig(cfg), table)
	eng, err := reconcile.New(reconcile.Config{Source: s3source.New(mw.S3, rulesBucket, "rules/"), Groups: ec2sg.New(mw.EC2), Ledger: led, LedgerID: table})
	if err != nil {
		t.Fatal(err)
	}
	res, err := eng.Reconcile(ctx, reconcile.Request{All: true, Reason: "e2e apply"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Sources {
		if s.Status != reconcile.StatusApplied {
			t.Fatalf("%s: %s %v %s", s.Key, s.Status, s.Diagnostics.Strings(), s.Message)
		}
	}
	motoserver.CreateBucket(t, cfg, logBucket, false)
	keys, err := flowcorpus.PutLogs(ctx, s3.NewFromConfig(cfg, awsconfig.S3Options), logBucket, "vpc/", cfg.Region, logDay, corpus, ids)
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, srv: srv, mw: mw, corpus: corpus, ids: ids, keys: keys, ledger: led}
}

// function starts the real bootstrap with the template's environment.
func (w *world) function() *rie.Function {
	w.t.Helper()
	env := append(w.srv.Env(), "STATE_TABLE="+table, "AWS_LAMBDA_LOG_FORMAT=JSON")
	return rie.Start(w.t, rie.Build(w.t, "./functions/flowlogs"), env)
}

// s3Message is an SQS message carrying S3's notification of one object,
// its key URL-encoded as S3 sends it.
func s3Message(id, bucket, key string) events.SQSMessage {
	body := fmt.Sprintf(`{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventName":"ObjectCreated:Put",
"s3":{"s3SchemaVersion":"1.0","bucket":{"name":%q,"arn":"arn:aws:s3:::%s"},"object":{"key":%q,"size":1,"eTag":"x","sequencer":"0A"}}}]}`,
		bucket, bucket, url.QueryEscape(key))
	return events.SQSMessage{MessageId: id, Body: body, EventSource: "aws:sqs"}
}

// testMessage is the s3:TestEvent S3 sends when the notification is set.
func testMessage(id string) events.SQSMessage {
	return events.SQSMessage{MessageId: id, EventSource: "aws:sqs",
		Body: `{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2025-12-01T00:00:00.000Z","Bucket":"flow-logs","RequestId":"R","HostId":"H"}`}
}

// invoke sends a batch and returns the batch failures' message ids and
// the JSON log lines the function wrote during the invocation.
func (w *world) invoke(fn *rie.Function, msgs ...events.SQSMessage) ([]string, []map[string]any) {
	w.t.Helper()
	payload, err := json.Marshal(events.SQSEvent{Records: msgs})
	if err != nil {
		w.t.Fatal(err)
	}
	before := len(fn.Logs())
	out := fn.Invoke(w.t, payload)
	var resp events.SQSEventResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		w.t.Fatalf("response %s: %v", out, err)
	}
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	var lines []map[string]any
	for _, l := range strings.Split(fn.Logs()[before:], "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["message"] != nil {
			lines = append(lines, m)
		}
	}
	return failed, lines
}

// results reads the counters of every managed permission over the day,
// for flowlogtest.Check (a permission without counters: no traffic).
func (w *world) results() []flowlogtest.Result {
	w.t.Helper()
	ctx := w.t.Context()
	owned, err := w.ledger.AllPermissions(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	var groups []string
	for _, o := range owned {
		groups = append(groups, o.Key.GroupID)
	}
	sort.Strings(groups)
	day := time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)
	counts, err := w.ledger.CountersFor(rules.Target{}).Read(ctx, groups, day, day)
	if err != nil {
		w.t.Fatal(err)
	}
	byKey := map[string]ddbledger.RuleCounter{}
	for _, c := range counts {
		byKey[c.Key.String()] = c
	}
	var out []flowlogtest.Result
	for _, o := range owned {
		c := byKey[o.Key.String()]
		if c.RuleID != "" && c.RuleID != o.RuleID {
			w.t.Errorf("%s: counted for rule %s, the ledger has %s", o.Key, c.RuleID, o.RuleID)
		}
		for owner := range o.Owners {
			r := flowlogtest.Result{Source: strings.TrimPrefix(owner.Source, "rules/"), Rule: owner.Rule, Peer: o.Key.Peer.String(),
				Flows: c.Flows, Bytes: c.Bytes, AmbiguousFlows: c.AmbiguousFlows, HasAmbiguous: true, HasPeer: true}
			if !c.Last.IsZero() {
				last := c.Last
				r.LastSeen = &last
			}
			if c.LastPeer.IsValid() {
				r.LastPeer = c.LastPeer.String()
			}
			out = append(out, r)
		}
	}
	return out
}

// TestCorpusThroughFunction: the corpus's objects, each notified in its
// own message (keys URL-encoded) with S3's test event among them, are
// counted by the function; the counters in the ledger agree with the
// labels (100%, no false "unused"); the broken object and the malformed
// lines are counted and reported, not failures. Delivering the same
// batch again adds nothing.
func TestCorpusThroughFunction(t *testing.T) {
	w := newWorld(t)
	fn := w.function()
	var msgs []events.SQSMessage
	for i, k := range w.keys {
		msgs = append(msgs, s3Message(fmt.Sprintf("m%d", i), logBucket, k))
	}
	msgs = append(msgs, testMessage("test"))

	failed, lines := w.invoke(fn, msgs...)
	if len(failed) != 0 {
		t.Fatalf("batch failures %v\n%s", failed, fn.Logs())
	}
	for _, d := range w.corpus.Check(w.results(), w.ids) {
		t.Error(d)
	}
	var objects, bad, malformed, counted float64
	var unreadable []string
	for _, l := range lines {
		if l["FlowLogObjects"] == nil {
			continue
		}
		objects += l["FlowLogObjects"].(float64)
		bad += l["FlowLogBadObjects"].(float64)
		malformed += l["FlowLogMalformedLines"].(float64)
		if l["counted"] == true {
			counted++
		}
		if strings.Contains(l["message"].(string), "unreadable") {
			unreadable = append(unreadable, l["key"].(string)+": "+fmt.Sprint(l["error"]))
		}
	}
	want := w.corpus.Expected.Read
	if int64(objects) != want.Objects || int64(bad) != want.BadObjects || int64(malformed) != want.Malformed || len(unreadable) != int(want.BadObjects) {
		t.Errorf("reported objects %v bad %v malformed %v unreadable %q; want %+v\n%s", objects, bad, malformed, unreadable, want, fn.Logs())
	}
	if counted == 0 {
		t.Errorf("no object counted\n%s", fn.Logs())
	}

	// SQS delivers the same messages again (a timeout, a lost delete).
	failed, lines = w.invoke(fn, msgs...)
	if len(failed) != 0 {
		t.Fatalf("redelivery: batch failures %v", failed)
	}
	for _, d := range w.corpus.Check(w.results(), w.ids) {
		t.Error("after redelivery: " + d)
	}
	again := 0
	for _, l := range lines {
		if strings.Contains(fmt.Sprint(l["message"]), "already counted") {
			again++
		}
	}
	if again != int(counted) {
		t.Errorf("redelivery: %d objects said already counted, want %v", again, counted)
	}
}

// TestBatchItemFailures: a message whose object cannot be read for an
// AWS reason (the bucket does not exist) is returned for redelivery; the
// other messages of the batch succeed: a log of an account that is not a
// target, a key that is not a flow log, a body that is no S3 event, a
// deleted object.
func TestBatchItemFailures(t *testing.T) {
	w := newWorld(t)
	fn := w.function()
	region := motoproc.Region
	failed, lines := w.invoke(fn,
		s3Message("gone-bucket", "no-such-bucket", w.keys[0]),
		s3Message("ok", logBucket, w.keys[len(w.keys)-1]),
		s3Message("other-account", logBucket, "vpc/AWSLogs/999999999999/vpcflowlogs/"+region+"/2025/12/01/x.log.gz"),
		s3Message("not-a-log", logBucket, "vpc/AWSLogs/123456789012/vpcflowlogs/"+region+"/2025/12/01/x.parquet"),
		s3Message("deleted", logBucket, "vpc/AWSLogs/123456789012/vpcflowlogs/"+region+"/2025/12/01/deleted file.log.gz"),
		events.SQSMessage{MessageId: "garbage", Body: "hello", EventSource: "aws:sqs"},
	)
	if strings.Join(failed, " ") != "gone-bucket" {
		t.Errorf("batch failures %v, want [gone-bucket]\n%s", failed, fn.Logs())
	}
	var msgs []string
	for _, l := range lines {
		msgs = append(msgs, fmt.Sprint(l["message"], " ", l["key"]))
	}
	all := strings.Join(msgs, "\n")
	for _, s := range []string{"its account is not a target account", "not a flow-log object", "no longer exists vpc/AWSLogs/123456789012/vpcflowlogs/" + region + "/2025/12/01/deleted file.log.gz",
		"cannot be decoded", "flow-log message failed"} {
		if !strings.Contains(all, s) {
			t.Errorf("logs lack %q:\n%s", s, all)
		}
	}
	if !bytes.Contains([]byte(all), []byte("flow-log object counted")) {
		t.Errorf("the good object was not counted:\n%s", all)
	}
}

// TestTargetAccountCounted: the logs of a target account (TARGET_ACCOUNTS)
// are counted with the target role there, against that target's ledger,
// and land in its counters, not the hub's.
func TestTargetAccountCounted(t *testing.T) {
	const target = "111122223333"
	srv := motoserver.Shared(t)
	hub := srv.Config(t)
	mw := srv.World(t, hub, motoworld.Spec{Bucket: rulesBucket, Table: table})
	ctx := t.Context()
	tcfg := motoserver.AsAccount(t, hub, target, config.DefaultTargetRole)
	tec2 := ec2.NewFromConfig(tcfg)
	corpus, err := flowlogtest.Load()
	if err != nil {
		t.Fatal(err)
	}
	ids, err := flowcorpus.Build(ctx, tec2, corpus)
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range corpus.Rules {
		if _, err := mw.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(rulesBucket), Key: aws.String("rules/" + name),
			Body: strings.NewReader("account: \"" + target + "\"\n" + ids.Expand(body))}); err != nil {
			t.Fatal(err)
		}
	}
	home := rules.Target{Account: "123456789012", Region: motoproc.Region}
	tgt := rules.Target{Account: target, Region: motoproc.Region}
	led := ddbledger.New(dynamodb.NewFromConfig(hub), table, ddbledger.WithHome(home))
	eng, err := reconcile.New(reconcile.Config{Source: s3source.New(mw.S3, rulesBucket, "rules/"), Groups: ec2sg.New(tec2, ec2sg.WithAccount(target)),
		Ledger: led.For(tgt), LedgerID: table, Target: tgt, Home: home, AllowAccount: func(a string) bool { return a == target || a == home.Account }})
	if err != nil {
		t.Fatal(err)
	}
	res, err := eng.Reconcile(ctx, reconcile.Request{All: true, Reason: "e2e apply"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Sources {
		if s.Status != reconcile.StatusApplied {
			t.Fatalf("%s: %s %v %s", s.Key, s.Status, s.Diagnostics.Strings(), s.Message)
		}
	}
	motoserver.CreateBucket(t, hub, logBucket, false)
	var msgs []events.SQSMessage
	for n, body := range corpus.Logs {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write([]byte(ids.Expand(body))); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		key := "vpc/AWSLogs/" + target + "/vpcflowlogs/" + motoproc.Region + "/" + logDay + "/" + target + "_vpcflowlogs_" + n + ".gz"
		if _, err := mw.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(logBucket), Key: aws.String(key), Body: bytes.NewReader(buf.Bytes())}); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, s3Message(n, logBucket, key))
	}
	fn := rie.Start(t, rie.Build(t, "./functions/flowlogs"), append(srv.Env(), "STATE_TABLE="+table, "AWS_LAMBDA_LOG_FORMAT=JSON",
		"TARGET_ACCOUNTS="+target, "TARGET_ROLE="+config.DefaultTargetRole))
	w := &world{t: t, srv: srv, mw: mw, corpus: corpus, ids: ids}
	if failed, _ := w.invoke(fn, msgs...); len(failed) != 0 {
		t.Fatalf("batch failures %v\n%s", failed, fn.Logs())
	}

	owned, err := led.For(tgt).AllPermissions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var groups []string
	for _, o := range owned {
		groups = append(groups, o.Key.GroupID)
	}
	day := time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)
	counts, err := led.CountersFor(tgt).Read(ctx, groups, day, day)
	if err != nil {
		t.Fatal(err)
	}
	var flows int64
	for _, c := range counts {
		flows += c.Flows
	}
	var want int64
	for _, r := range corpus.Expected.Rules {
		want += r.Flows
	}
	if len(counts) == 0 || flows != want {
		t.Errorf("target counters: %d rules, %d flows; want %d flows\n%s", len(counts), flows, want, fn.Logs())
	}
	if homeCounts, err := led.CountersFor(home).Read(ctx, groups, day, day); err != nil || len(homeCounts) != 0 {
		t.Errorf("hub counters %v %v, want none", homeCounts, err)
	}
}
