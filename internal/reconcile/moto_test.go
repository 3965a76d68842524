package reconcile_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/adapters/s3source"
	"github.com/sgrules/sgrules/internal/dev/apicount"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
	"github.com/sgrules/sgrules/internal/testutil/motoworld"
	"github.com/sgrules/sgrules/pkg/rules"
)

func TestMain(m *testing.M) { motoserver.Main(m) }

// exampleGroups are the Name tags the files in examples/ reference.
var exampleGroups = []string{"admin", "alb", "analytics-db", "api-gateway", "app", "cache", "database", "dev",
	"nat", "order-service", "payment-service", "shared-db", "user-service", "vpn", "web"}

type world struct {
	t      *testing.T
	cfg    aws.Config
	calls  *apicount.Counter
	ec2    *ec2.Client
	s3     *s3.Client
	groups map[string]string // Name tag → id
	eng    *reconcile.Engine
	bucket string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	srv := motoserver.Shared(t)
	w := &world{t: t, cfg: srv.Config(t), calls: &apicount.Counter{}, bucket: "rules-bucket"}
	w.groups = srv.World(t, w.cfg, motoworld.Spec{Groups: exampleGroups, Bucket: w.bucket, Versioned: true, Table: "ledger"}).Groups
	w.calls.Attach(&w.cfg)
	w.ec2 = ec2.NewFromConfig(w.cfg)
	w.s3 = s3.NewFromConfig(w.cfg, awsconfig.S3Options)
	eng, err := reconcile.New(reconcile.Config{
		Source:   s3source.New(w.s3, w.bucket, "rules/"),
		Groups:   ec2sg.New(w.ec2),
		Ledger:   ddbledger.New(dynamodb.NewFromConfig(w.cfg), "ledger"),
		LedgerID: "ledger",
	})
	if err != nil {
		t.Fatal(err)
	}
	w.eng = eng
	return w
}

func (w *world) put(key string, body []byte) {
	w.t.Helper()
	if _, err := w.s3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &w.bucket, Key: &key, Body: bytes.NewReader(body)}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) remove(key string) {
	w.t.Helper()
	if _, err := w.s3.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: &w.bucket, Key: &key}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) reconcile(req reconcile.Request) reconcile.Result {
	w.t.Helper()
	res, err := w.eng.Reconcile(context.Background(), req)
	if err != nil {
		w.t.Fatalf("reconcile: %v", err)
	}
	return res
}

// rules returns every rule of every example group as sorted key strings.
func (w *world) rules() []string {
	w.t.Helper()
	ids := make([]string, 0, len(w.groups))
	for _, id := range w.groups {
		ids = append(ids, id)
	}
	actual, err := ec2sg.New(ec2.NewFromConfig(w.cfg)).DescribeRules(context.Background(), ids)
	if err != nil {
		w.t.Fatal(err)
	}
	out := make([]string, len(actual))
	for i, a := range actual {
		out[i] = a.Key.String() + " " + a.Description
	}
	sort.Strings(out)
	return out
}

// expected expands example files with the world's groups.
func (w *world) expected(files map[string][]byte) []string {
	w.t.Helper()
	resolve := func(g rules.GroupRef) []string {
		if g.IsID() {
			return []string{g.ID}
		}
		return []string{w.groups[g.Tags["Name"]]}
	}
	var out []string
	for key, body := range files {
		f, diags := rules.Parse(key, body)
		if diags.HasErrors() {
			w.t.Fatalf("%s: %v", key, diags.Err())
		}
		perms, _, diags := rules.Expand(f, key, resolve)
		if diags.HasErrors() {
			w.t.Fatalf("%s: %v", key, diags.Err())
		}
		for _, p := range perms {
			out = append(out, p.Key.String()+" "+p.Description)
		}
	}
	sort.Strings(out)
	return out
}

func loadExamples(t *testing.T) map[string][]byte {
	t.Helper()
	paths, _ := filepath.Glob("../../examples/*.*")
	files := map[string][]byte{}
	for _, p := range paths {
		if !rules.IsRuleFile(p) || strings.Contains(p, "raw-group-id") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files["rules/"+filepath.Base(p)] = b
	}
	if len(files) < 5 {
		t.Fatalf("found only %d example files", len(files))
	}
	return files
}

func without(all, remove []string) []string {
	drop := map[string]int{}
	for _, r := range remove {
		drop[r]++
	}
	var out []string
	for _, a := range all {
		if drop[a] > 0 {
			drop[a]--
			continue
		}
		out = append(out, a)
	}
	return out
}

// union adds b to a; an entry of b replaces the entry of a with the same
// key (an adopted rule takes the declared description).
func union(a, b []string) []string {
	byKey := map[string]string{}
	for _, x := range append(append([]string{}, a...), b...) {
		k, _, _ := strings.Cut(x, " ")
		byKey[k] = x
	}
	out := make([]string, 0, len(byKey))
	for _, x := range byKey {
		out = append(out, x)
	}
	sort.Strings(out)
	return out
}

func diffLines(got, want []string) string {
	var b strings.Builder
	for _, x := range without(got, want) {
		b.WriteString("+ " + x + "\n")
	}
	for _, x := range without(want, got) {
		b.WriteString("- " + x + "\n")
	}
	return b.String()
}

// baseline is the rules moto gives new groups (default egress), and an
// unmanaged rule added by hand.
func (w *world) baseline() []string {
	w.t.Helper()
	_, err := w.ec2.AuthorizeSecurityGroupIngress(context.Background(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(w.groups["web"]),
		IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(2222), ToPort: aws.Int32(2222),
			IpRanges: []ec2types.IpRange{{CidrIp: aws.String("192.0.2.0/24"), Description: aws.String("added by hand")}}}},
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return w.rules()
}

func TestExamplesAgainstMoto(t *testing.T) {
	w := newWorld(t)
	files := loadExamples(t)
	base := w.baseline()
	for k, b := range files {
		w.put(k, b)
	}
	want := union(base, w.expected(files))

	res := w.reconcile(reconcile.Request{All: true, Reason: "test"})
	for _, s := range res.Sources {
		if s.Status != reconcile.StatusApplied {
			t.Fatalf("%s: %s %v %s", s.Key, s.Status, s.Diagnostics.Strings(), s.Message)
		}
	}
	if got := w.rules(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("rules after apply differ:\n%s", diffLines(got, want))
	}
	mutating := w.calls.Sum("EC2", apicount.IsEC2Mutating)
	groupsTouched := len(res.Plan.Groups())
	if mutating > 2*groupsTouched {
		t.Errorf("%d mutating EC2 calls for %d groups: want at most one per group and direction", mutating, groupsTouched)
	}
	t.Logf("apply examples: %d permissions, %d groups, calls: %s", len(res.Plan.Actions), groupsTouched, w.calls)

	// A second apply, event-style and sweep-style, changes nothing.
	w.calls.Reset()
	keys := make([]string, 0, len(files))
	for k := range files {
		keys = append(keys, k)
	}
	w.reconcile(reconcile.Request{Keys: keys})
	w.reconcile(reconcile.Request{All: true})
	if n := w.calls.Sum("EC2", apicount.IsEC2Mutating); n != 0 {
		t.Errorf("second apply made %d mutating EC2 calls: %s", n, w.calls)
	}
	if n := w.calls.Sum("DynamoDB", apicount.IsDynamoDBWrite); n != 0 {
		t.Errorf("second apply made %d ledger writes: %s", n, w.calls)
	}

	// Remove a file: exactly its permissions go.
	w.remove("rules/vpn.yaml")
	w.reconcile(reconcile.Request{Keys: []string{"rules/vpn.yaml"}})
	want = without(want, w.expected(map[string][]byte{"rules/vpn.yaml": files["rules/vpn.yaml"]}))
	if got := w.rules(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("after removing vpn.yaml:\n%s", diffLines(got, want))
	}

	// Remove one rule from a file: exactly that rule goes.
	admin := files["rules/admin.yaml"]
	f, _ := rules.Parse("rules/admin.yaml", admin)
	if len(f.Rules) < 2 {
		t.Fatalf("admin.yaml has %d rules", len(f.Rules))
	}
	dropped := f.Rules[0]
	f.Rules = f.Rules[1:]
	smaller, err := rules.MarshalYAML(f)
	if err != nil {
		t.Fatal(err)
	}
	w.put("rules/admin.yaml", smaller)
	w.reconcile(reconcile.Request{Keys: []string{"rules/admin.yaml"}})
	one := &rules.File{Name: "x", Rules: []rules.Rule{dropped}}
	oneYAML, _ := rules.MarshalYAML(one)
	want = without(want, w.expected(map[string][]byte{"rules/admin.yaml": oneYAML}))
	if got := w.rules(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("after removing rule %s:\n%s", dropped.Name, diffLines(got, want))
	}

	// A bad file beside a good one: the bad one changes nothing of its own,
	// the good one is applied.
	w.put("rules/web.yaml", bytes.Replace(files["rules/web.yaml"], []byte("toPort: 443"), []byte("toPort: 70000"), 1))
	good := []byte("rules:\n  dns:\n    securityGroup: {tags: {Name: cache}}\n    type: ingress\n    protocol: udp\n    fromPort: 53\n    toPort: 53\n    cidrBlocks: [10.53.0.0/16]\n    description: DNS\n")
	w.put("rules/new.yaml", good)
	res = w.reconcile(reconcile.Request{Keys: []string{"rules/web.yaml", "rules/new.yaml"}})
	for _, s := range res.Sources {
		if s.Key == "rules/web.yaml" && (s.Status != reconcile.StatusInvalid || !strings.Contains(strings.Join(s.Diagnostics.Strings(), "\n"), "rules/web.yaml:")) {
			t.Fatalf("bad file: %+v", s)
		}
		if s.Key == "rules/new.yaml" && s.Status != reconcile.StatusApplied {
			t.Fatalf("good file: %+v", s)
		}
	}
	want = union(want, w.expected(map[string][]byte{"rules/new.yaml": good}))
	if got := w.rules(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("after bad + good file:\n%s", diffLines(got, want))
	}
	// The invalid status is recorded in the ledger, with the diagnostics.
	led := ddbledger.New(dynamodb.NewFromConfig(w.cfg), "ledger")
	rec, ok, err := led.GetSource(context.Background(), "rules/web.yaml")
	if err != nil || !ok || rec.Status != reconcile.StatusInvalid || len(rec.Diagnostics) == 0 {
		t.Fatalf("ledger record of the bad file: %+v %v %v", rec, ok, err)
	}
}
