package flowsrc_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/adapters/flowsrc"
	"github.com/sgrules/sgrules/internal/dev/apicount"
	"github.com/sgrules/sgrules/internal/testutil/flowcorpus"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
	"github.com/sgrules/sgrules/pkg/flowlog"
	"github.com/sgrules/sgrules/pkg/flowlog/flowlogtest"
)

func TestMain(m *testing.M) { motoserver.Main(m) }

const bucket = "flow-logs"

type env struct {
	cfg   aws.Config
	ec2   *ec2.Client
	s3    *s3.Client
	calls *apicount.Counter
	// counted clients, for the code under test
	cec2 *ec2.Client
	cs3  *s3.Client
}

func setup(t *testing.T) *env {
	t.Helper()
	srv := motoserver.Shared(t)
	srv.Reset(t)
	cfg := srv.Config(t)
	counted, calls := cfg, &apicount.Counter{}
	calls.Attach(&counted)
	e := &env{cfg: cfg, ec2: ec2.NewFromConfig(cfg), s3: s3.NewFromConfig(cfg, awsconfig.S3Options), calls: calls,
		cec2: ec2.NewFromConfig(counted), cs3: s3.NewFromConfig(counted, awsconfig.S3Options)}
	motoserver.CreateBucket(t, cfg, bucket, false)
	return e
}

func (e *env) put(t *testing.T, key, body string) {
	t.Helper()
	if _, err := e.s3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
}

func day(s string) time.Time {
	d, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return d
}

// TestCorpus reads the labelled corpus from S3 (gzip objects in the
// standard layout) and attributes it with interfaces and prefix lists
// looked up in moto: 100% agreement with the labels, no false "unused".
// A second attribution with the same Lookup makes no EC2 call (cached).
func TestCorpus(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	corpus, err := flowlogtest.Load()
	if err != nil {
		t.Fatal(err)
	}
	ids, err := flowcorpus.Build(ctx, e.ec2, corpus)
	if err != nil {
		t.Fatal(err)
	}
	region := e.cfg.Region
	if _, err := flowcorpus.PutLogs(ctx, e.s3, bucket, "vpc/", region, "2025/12/01", corpus, ids); err != nil {
		t.Fatal(err)
	}
	// Outside the window, and not a log object: neither is read.
	e.put(t, flowcorpus.LogPrefix("vpc/", region)+"2025/11/30/old.log.gz", "not read")
	e.put(t, flowcorpus.LogPrefix("vpc/", region)+"2025/12/01/manifest.json", "{}")

	managed, err := corpus.Managed(ids)
	if err != nil {
		t.Fatal(err)
	}
	logs := flowsrc.NewLogs(e.cs3, bucket, "vpc/")
	ag := flowlog.NewAggregator(day("2025-12-01"), day("2025-12-02"))
	objs, err := logs.Read(ctx, ag, day("2025-12-01"), day("2025-12-01").Add(23*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != len(corpus.Logs) {
		t.Errorf("read %d objects %v, want %d", len(objs), objs, len(corpus.Logs))
	}
	lk := flowsrc.NewLookup(e.cec2)
	rep, err := flowlog.Attribute(ctx, ag.Flows(), managed, lk)
	if err != nil {
		t.Fatal(err)
	}
	var results []flowlogtest.Result
	for _, u := range rep.Rules {
		results = append(results, flowlogtest.FromUsage(u))
	}
	for _, d := range corpus.Check(results, ids) {
		t.Error(d)
	}
	for _, d := range corpus.CheckStats(ag.Stats(), rep.Stats) {
		t.Error(d)
	}
	// One call by interface ids, one by peer addresses, one per prefix list.
	calls := e.calls.Snapshot()
	if calls["EC2.DescribeNetworkInterfaces"] != 2 || calls["EC2.GetManagedPrefixListEntries"] != 1 {
		t.Errorf("calls %v", calls)
	}
	e.calls.Reset()
	if _, err := flowlog.Attribute(ctx, ag.Flows(), managed, lk); err != nil {
		t.Fatal(err)
	}
	if n := e.calls.Sum("EC2", func(string) bool { return true }); n != 0 {
		t.Errorf("second attribution made %d EC2 calls: %v", n, e.calls.Snapshot())
	}
}

// TestList: the window's days are listed, in every account and region
// under the prefix, or only those asked for; the prefix may also name one
// account and region.
func TestList(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	keys := []string{
		"AWSLogs/111111111111/vpcflowlogs/eu-west-1/2025/11/30/a.log.gz",
		"AWSLogs/111111111111/vpcflowlogs/eu-west-1/2025/12/01/b.log.gz",
		"AWSLogs/111111111111/vpcflowlogs/eu-west-1/2025/12/01/13/hourly.log.gz",
		"AWSLogs/111111111111/vpcflowlogs/eu-west-1/2025/12/02/c.log",
		"AWSLogs/111111111111/vpcflowlogs/eu-west-1/2025/12/03/d.log.gz",
		"AWSLogs/111111111111/vpcflowlogs/us-east-1/2025/12/01/e.log.gz",
		"AWSLogs/222222222222/vpcflowlogs/eu-west-1/2025/12/02/f.log.gz",
		"AWSLogs/222222222222/vpcflowlogs/eu-west-1/2025/12/02/f.parquet",
		"AWSLogs/222222222222/elasticloadbalancing/eu-west-1/2025/12/02/g.log.gz",
	}
	for _, k := range keys {
		e.put(t, k, "x")
		e.put(t, "deep/prefix/"+k, "x")
	}
	from, to := day("2025-12-01"), day("2025-12-02").Add(time.Hour)
	for _, tc := range []struct {
		name              string
		prefix            string
		regions, accounts []string
		want              []string
	}{
		{"whole bucket", "", nil, nil, []string{keys[2], keys[1], keys[3], keys[5], keys[6]}},
		{"destination prefix", "deep/prefix/", nil, nil, []string{keys[2], keys[1], keys[3], keys[5], keys[6]}},
		{"one region", "", []string{"eu-west-1"}, nil, []string{keys[2], keys[1], keys[3], keys[6]}},
		{"one account", "deep/prefix/", nil, []string{"222222222222"}, []string{keys[6]}},
		{"prefix naming account and region", "AWSLogs/111111111111/vpcflowlogs/us-east-1/", nil, nil, []string{keys[5]}},
		{"AWSLogs itself", "deep/prefix/AWSLogs/", []string{"us-east-1"}, nil, []string{keys[5]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := flowsrc.NewLogs(e.cs3, bucket, tc.prefix)
			l.Regions, l.Accounts = tc.regions, tc.accounts
			objs, err := l.List(ctx, from, to)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range objs {
				got = append(got, strings.TrimPrefix(o.Key, "deep/prefix/"))
			}
			want := tc.want
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %q\nwant %q", got, want)
			}
		})
	}
	if _, err := flowsrc.NewLogs(e.cs3, bucket, "").List(ctx, to, from); err == nil {
		t.Error("a window ending before it starts was accepted")
	}
}

// TestLookupBatches: interface ids are asked 200 a call; ids that no
// longer exist are left out, not an error; each id is asked once.
func TestLookupBatches(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	corpus, err := flowlogtest.Load()
	if err != nil {
		t.Fatal(err)
	}
	ids, err := flowcorpus.Build(ctx, e.ec2, corpus)
	if err != nil {
		t.Fatal(err)
	}
	var ask []string
	for i := 0; i < 250; i++ {
		ask = append(ask, fmt.Sprintf("eni-%017x", i))
	}
	ask = append(ask, ids["eni:web2"])
	lk := flowsrc.NewLookup(e.cec2)
	got, err := lk.Interfaces(ctx, ask)
	if err != nil {
		t.Fatal(err)
	}
	in, ok := got[ids["eni:web2"]]
	if len(got) != 1 || !ok {
		t.Fatalf("got %v", got)
	}
	wantGroups := []string{ids["sg:admin"], ids["sg:web"]}
	if wantGroups[0] > wantGroups[1] {
		wantGroups[0], wantGroups[1] = wantGroups[1], wantGroups[0]
	}
	if !reflect.DeepEqual(in.Groups, wantGroups) || len(in.Addrs) != 1 || in.Addrs[0].String() != "10.0.1.11/32" || in.VPCID != ids["vpc"] {
		t.Errorf("interface %+v", in)
	}
	if n := e.calls.Snapshot()["EC2.DescribeNetworkInterfaces"]; n != 2 {
		t.Errorf("%d calls for 251 ids, want 2", n)
	}
	if _, err := lk.Interfaces(ctx, ask[:10]); err != nil {
		t.Fatal(err)
	}
	if n := e.calls.Snapshot()["EC2.DescribeNetworkInterfaces"]; n != 2 {
		t.Errorf("cached ids asked again: %d calls", n)
	}
}

// TestReadCountsBadObjects: a broken object is counted and the others are
// read.
func TestReadCountsBadObjects(t *testing.T) {
	e := setup(t)
	root := "AWSLogs/111111111111/vpcflowlogs/eu-west-1/2025/12/01/"
	e.put(t, root+"a.log.gz", "\x1f\x8bnot gzip at all")
	e.put(t, root+"b.log", flowlog.DefaultFormat+"\n2 1 eni-a 10.0.0.1 10.0.0.2 1 22 6 1 1 1 2 ACCEPT OK\n")
	ag := flowlog.NewAggregator(time.Time{}, time.Time{})
	objs, err := flowsrc.NewLogs(e.cs3, bucket, "").Read(context.Background(), ag, day("2025-12-01"), day("2025-12-01"))
	if err != nil {
		t.Fatal(err)
	}
	st := ag.Stats()
	if len(objs) != 2 || st.Objects != 2 || st.BadObjects != 1 || st.Accepted != 1 ||
		len(st.BadObjectErrors) != 1 || !strings.Contains(st.BadObjectErrors[0], "s3://flow-logs/"+root+"a.log.gz") {
		t.Errorf("objects %v stats %+v", objs, st)
	}
}

// TestReadNextDayFolder: records of the window's last minutes delivered
// into the next day's folder are read; the records after the window in
// that object are not counted.
func TestReadNextDayFolder(t *testing.T) {
	e := setup(t)
	end := time.Date(2025, 12, 1, 23, 30, 0, 0, time.UTC)
	in := end.Add(-10 * time.Minute).Unix()
	after := end.Add(50 * time.Minute).Unix()
	e.put(t, "AWSLogs/111111111111/vpcflowlogs/eu-west-1/2025/12/02/late.log", fmt.Sprintf("%s\n2 1 eni-a 10.0.0.1 10.0.0.2 1 22 6 1 1 %d %d ACCEPT OK\n2 1 eni-a 10.0.0.1 10.0.0.2 1 22 6 1 1 %d %d ACCEPT OK\n",
		flowlog.DefaultFormat, in, in+60, after, after+60))
	ag := flowlog.NewAggregator(day("2025-12-01"), end)
	objs, err := flowsrc.NewLogs(e.cs3, bucket, "").Read(context.Background(), ag, day("2025-12-01"), end)
	if err != nil {
		t.Fatal(err)
	}
	if st := ag.Stats(); len(objs) != 1 || st.Accepted != 1 || st.OutsideWindow != 1 {
		t.Errorf("objects %v stats %+v", objs, st)
	}
}
