package chaos_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/adapters/policyload"
	"github.com/sgrules/sgrules/internal/adapters/s3source"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/testutil/faultproxy"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
	"github.com/sgrules/sgrules/internal/testutil/motoworld"
	"github.com/sgrules/sgrules/pkg/rules"
)

func TestMain(m *testing.M) { motoserver.Main(m) }

const (
	bucket = "rules-bucket"
	prefix = "rules/"
	table  = "ledger"
	// deployment is the first deployment's identity (DEPLOYMENT_ID),
	// not its table's name (deployments_test.go).
	deployment = "dep-a"
)

// Lease timings: short, so a lease left by a crashed run expires quickly.
const (
	leaseTTL  = 400 * time.Millisecond
	leaseWait = 3 * time.Second
)

// world is one moto state: a VPC, a few named groups, the bucket and the
// ledger table, with direct clients (no faults) for the harness.
type world struct {
	tb     testing.TB
	cfg    aws.Config
	ec2    *ec2.Client
	s3     *s3.Client
	ddb    *dynamodb.Client
	groups *ec2sg.Client
	ledger *ddbledger.Ledger
	// names[i] is the Name tag of ids[i].
	names, ids []string
	byName     map[string]string
	// policy: the engines read the guardrail policy at policyKey.
	policy bool
}

// newWorld makes a world of ngroups groups named g0, g1, … and one more
// group per name of extra.
func newWorld(tb testing.TB, srv *motoserver.Server, ngroups int, extra ...string) *world {
	tb.Helper()
	cfg := srv.Config(tb)
	cfg.Retryer = fastRetryer
	names := make([]string, ngroups, ngroups+len(extra))
	for i := range names {
		names[i] = fmt.Sprintf("g%d", i)
	}
	names = append(names, extra...)
	mw := srv.World(tb, cfg, motoworld.Spec{Groups: names, Bucket: bucket, Versioned: true, Table: table})
	return &world{tb: tb, cfg: cfg, ec2: mw.EC2, s3: mw.S3, ddb: mw.DDB,
		groups: ec2sg.New(mw.EC2), ledger: ddbledger.New(mw.DDB, table),
		names: names, ids: mw.IDs, byName: mw.Groups}
}

// fastRetryer is the production retryer shape (standard, retries throttles
// and 5xx) with tiny backoff and no retry quota, to keep tests fast.
func fastRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 5
		o.MaxBackoff = 5 * time.Millisecond
		o.RateLimiter = ratelimit.None
	})
}

// engine returns an engine whose AWS calls go through the proxy.
func (w *world) engine(p *faultproxy.Proxy, holder string, logw io.Writer) *reconcile.Engine {
	w.tb.Helper()
	cfg := w.cfg.Copy()
	cfg.BaseEndpoint = aws.String(p.URL)
	var log *slog.Logger
	if logw != nil {
		log = slog.New(slog.NewJSONHandler(logw, nil))
	}
	src := s3source.New(s3.NewFromConfig(cfg, awsconfig.S3Options), bucket, prefix)
	var pol reconcile.PolicyStore
	if w.policy {
		pol = policyload.New(src, policyKey, prefix)
	}
	eng, err := reconcile.New(reconcile.Config{
		Source:   src,
		Policy:   pol,
		Groups:   ec2sg.New(ec2.NewFromConfig(cfg)),
		Ledger:   ddbledger.New(dynamodb.NewFromConfig(cfg), table),
		LedgerID: table,
		// The identity survives ledger losses (as DEPLOYMENT_ID, the
		// stack's, does) and names the rules as the checks expect.
		DeploymentID: deployment,
		MaxRevoke:    -1,
		Holder:       holder,
		LeaseTTL:     leaseTTL,
		LeaseWait:    leaseWait,
		Logger:       log,
	})
	if err != nil {
		w.tb.Fatal(err)
	}
	return eng
}

func (w *world) put(key, body string) {
	w.tb.Helper()
	_, err := w.s3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)})
	if err != nil {
		w.tb.Fatalf("put %s: %v", key, err)
	}
}

func (w *world) remove(key string) {
	w.tb.Helper()
	_, err := w.s3.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		w.tb.Fatalf("delete %s: %v", key, err)
	}
}

// rules reads every rule of the world's groups.
func (w *world) rules() []reconcile.ActualRule {
	w.tb.Helper()
	var out []reconcile.ActualRule
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if out, err = w.groups.DescribeRules(context.Background(), w.ids); err == nil {
			return out
		}
	}
	w.tb.Fatalf("describe rules: %v", err)
	return nil
}

// handRule adds a rule outside sgrules, with tags (none: untagged), and
// returns it.
func (w *world) handRule(group string, port int32, desc string, tags map[string]string) reconcile.ActualRule {
	w.tb.Helper()
	in := &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(group),
		IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(port), ToPort: aws.Int32(port),
			IpRanges: []ec2types.IpRange{{CidrIp: aws.String("198.51.100.0/24"), Description: aws.String(desc)}}}},
	}
	if len(tags) > 0 {
		spec := ec2types.TagSpecification{ResourceType: ec2types.ResourceTypeSecurityGroupRule}
		for _, k := range slices.Sorted(maps.Keys(tags)) {
			spec.Tags = append(spec.Tags, ec2types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
		}
		in.TagSpecifications = []ec2types.TagSpecification{spec}
	}
	_, err := w.ec2.AuthorizeSecurityGroupIngress(context.Background(), in)
	if err != nil {
		w.tb.Fatalf("add rule by hand: %v", err)
	}
	for _, r := range w.rules() {
		if r.Key.GroupID == group && r.Key.FromPort == port && r.Key.Peer.Value == "198.51.100.0/24" {
			return r
		}
	}
	w.tb.Fatalf("rule added by hand not found")
	return reconcile.ActualRule{}
}

// wipeLedger deletes every item of the ledger table (scan + delete):
// ownership records, source records and leases.
func (w *world) wipeLedger() int {
	w.tb.Helper()
	ctx := context.Background()
	n := 0
	p := dynamodb.NewScanPaginator(w.ddb, &dynamodb.ScanInput{TableName: aws.String(table), ProjectionExpression: aws.String("pk, sk")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			w.tb.Fatalf("scan ledger: %v", err)
		}
		for _, it := range page.Items {
			if _, err := w.ddb.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table),
				Key: map[string]ddbtypes.AttributeValue{"pk": it["pk"], "sk": it["sk"]}}); err != nil {
				w.tb.Fatalf("delete ledger item: %v", err)
			}
			n++
		}
	}
	return n
}

// owners returns the ledger's owner sources of every owned key.
func (w *world) owners() map[rules.Key]map[string]bool {
	w.tb.Helper()
	out := map[rules.Key]map[string]bool{}
	for _, o := range w.owned() {
		m := map[string]bool{}
		for owner := range o.Owners {
			m[owner.Source] = true
		}
		out[o.Key] = m
	}
	return out
}

// owned reads every permission the ledger holds.
func (w *world) owned() []reconcile.OwnedPermission {
	w.tb.Helper()
	var owned []reconcile.OwnedPermission
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if owned, err = w.ledger.AllPermissions(context.Background()); err == nil {
			break
		}
	}
	if err != nil {
		w.tb.Fatalf("read ledger: %v", err)
	}
	return owned
}

// recordedOwners returns the files the ledger records as owners of a rule
// in EC2: the owners of the permission of its key, and those of any
// permission recorded with its rule id under another key. The latter is a
// rule changed in place (ModifySecurityGroupRules keeps the id) by a run
// whose commit was lost: the ledger still holds it under its old key, and
// the engine goes on treating it as that record's rule (drifted), which
// its owners' runs put back or revoke.
func recordedOwners(owned []reconcile.OwnedPermission, r reconcile.ActualRule) map[string]bool {
	out := map[string]bool{}
	for _, o := range owned {
		if o.Key != r.Key && (o.RuleID == "" || o.RuleID != r.RuleID) {
			continue
		}
		for owner := range o.Owners {
			out[owner.Source] = true
		}
	}
	return out
}

func ownerSource(owner string) string {
	if i := strings.LastIndexByte(owner, '#'); i >= 0 {
		return owner[:i]
	}
	return owner
}

// declared is what a set of files declares: key → owner → description.
type declared map[rules.Key]map[string]string

// desire parses and expands files with the world's groups; every file
// must be valid.
func (w *world) desire(files map[string]string) declared {
	w.tb.Helper()
	d := declared{}
	for key, body := range files {
		perms, err := w.expand(key, body)
		if err != nil {
			w.tb.Fatalf("%s: %v\n%s", key, err, body)
		}
		for _, p := range perms {
			if d[p.Key] == nil {
				d[p.Key] = map[string]string{}
			}
			d[p.Key][p.Owner.String()] = p.Description
		}
	}
	return d
}

func (w *world) expand(key, body string) ([]rules.Permission, error) {
	return expandWith(key, body, w.byName)
}

// expandWith parses and expands a file with the groups of byName (Name tag
// → id).
func expandWith(key, body string, byName map[string]string) ([]rules.Permission, error) {
	f, diags := rules.Parse(key, []byte(body))
	if diags.HasErrors() {
		return nil, diags.Err()
	}
	perms, _, diags := rules.Expand(f, key, func(g rules.GroupRef) []string {
		if g.IsID() {
			return []string{g.ID}
		}
		if id, ok := byName[g.Tags["Name"]]; ok {
			return []string{id}
		}
		return nil
	})
	if diags.HasErrors() {
		return nil, diags.Err()
	}
	return perms, nil
}

// sourcesOf returns the sources declaring k.
func (d declared) sourcesOf(k rules.Key) map[string]bool {
	out := map[string]bool{}
	for owner := range d[k] {
		out[ownerSource(owner)] = true
	}
	return out
}

// description is the winning description: the lexically first owner's.
func (d declared) description(k rules.Key) string {
	owners := make([]string, 0, len(d[k]))
	for o := range d[k] {
		owners = append(owners, o)
	}
	sort.Strings(owners)
	return d[k][owners[0]]
}

// lines renders rules as sorted "key description" lines.
func lines(rs []reconcile.ActualRule) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Key.String() + " " + r.Description
	}
	sort.Strings(out)
	return out
}

func diffLines(got, want []string) string {
	count := func(xs []string) map[string]int {
		m := map[string]int{}
		for _, x := range xs {
			m[x]++
		}
		return m
	}
	g, wm := count(got), count(want)
	var b bytes.Buffer
	for _, x := range got {
		if wm[x] > 0 {
			wm[x]--
			continue
		}
		b.WriteString("  + " + x + "\n")
	}
	for _, x := range want {
		if g[x] > 0 {
			g[x]--
			continue
		}
		b.WriteString("  - " + x + "\n")
	}
	return b.String()
}
