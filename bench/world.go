package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/adapters/s3source"
	"github.com/sgrules/sgrules/internal/dev/apicount"
	"github.com/sgrules/sgrules/internal/dev/motoproc"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/testutil/motoworld"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Workload shape.
const (
	// RulesPerGroup sizes G = ceil(N/RulesPerGroup), under moto's 60 rules
	// per group and direction even while a port change holds old and new.
	RulesPerGroup = 50
	// NumFiles is the number of rule files; removing one removes 10%.
	NumFiles = 10
	// EgressSlots: of the (up to) 50 rules of a group, one in this many
	// is egress (10 egress, 40 ingress per full group).
	EgressSlots = 5
	// GroupPeerSlot: in one group in GroupPeerGroups, the rule at this
	// slot has a security-group peer; every other rule has a CIDR peer.
	GroupPeerSlot   = 25
	GroupPeerGroups = 10

	bucket = "bench-rules"
	prefix = "rules/"
	table  = "ledger"
)

// spec is one generated rule: one permission (one peer).
type spec struct {
	i         int
	group     int
	dir       rules.Direction
	port      int32
	cidr      string
	peerGroup int // index of the peer group, or -1
	desc      string
}

func groupsFor(n int) int { return max(1, (n+RulesPerGroup-1)/RulesPerGroup) }

func fileOf(i, n int) int { return i * NumFiles / n }

func fileKey(f int) string { return fmt.Sprintf("%sfile-%02d.yaml", prefix, f) }

func groupName(g int) string { return fmt.Sprintf("bench-g%03d", g) }

// genRules makes n rules spread over g groups round-robin: rule i goes to
// group i%g at slot i/g.
func genRules(n, g int) []spec {
	out := make([]spec, n)
	for i := range out {
		s := spec{i: i, group: i % g, dir: rules.Ingress, port: int32(10000 + i), peerGroup: -1,
			desc: fmt.Sprintf("bench rule %d", i)}
		slot := i / g
		if slot%EgressSlots == EgressSlots-1 {
			s.dir = rules.Egress
		}
		if slot == GroupPeerSlot && s.group%GroupPeerGroups == 0 {
			s.peerGroup = (s.group + 1) % g
		} else {
			s.cidr = fmt.Sprintf("10.%d.%d.0/24", (i/256)%256, i%256)
		}
		out[i] = s
	}
	return out
}

// changed returns the specs after changing 10% of them, spread over
// groups and directions: alternately the port (a replacement) or the
// description (in place).
func changed(specs []spec, g int) []spec {
	out := append([]spec(nil), specs...)
	for i := range out {
		switch isChanged(i, g) {
		case "port":
			out[i].port += 20000
		case "desc":
			out[i].desc += " (changed)"
		}
	}
	return out
}

// isChanged tells how changed alters rule i of a workload over g groups:
// "port", "desc" or "". One slot in ten of every group changes (5 rules of
// 50), at slots that differ from group to group so that both directions
// change.
func isChanged(i, g int) string {
	slot := i / g
	if (slot+i%g)%10 != 3 {
		return ""
	}
	if (slot/10)%2 == 0 {
		return "port"
	}
	return "desc"
}

// renderFiles renders the specs into NumFiles rule files (file f holds the
// f-th tenth of the rules), groups referenced by Name tag.
func renderFiles(specs []spec, n int, skip map[int]bool) (map[string][]byte, error) {
	byFile := map[int]*rules.File{}
	for _, s := range specs {
		f := fileOf(s.i, n)
		if skip[f] {
			continue
		}
		if byFile[f] == nil {
			byFile[f] = &rules.File{Name: fileKey(f)}
		}
		byFile[f].Rules = append(byFile[f].Rules, specRule(s))
	}
	out := map[string][]byte{}
	for f, file := range byFile {
		b, err := rules.MarshalYAML(file)
		if err != nil {
			return nil, fmt.Errorf("render %s: %w", fileKey(f), err)
		}
		out[fileKey(f)] = b
	}
	return out, nil
}

// specRule is the rule of a spec, groups referenced by Name tag.
func specRule(s spec) rules.Rule {
	r := rules.Rule{
		Name:          fmt.Sprintf("r%05d", s.i),
		SecurityGroup: rules.GroupRef{Tags: map[string]string{"Name": groupName(s.group)}},
		Direction:     s.dir, Protocol: rules.ProtoTCP, FromPort: s.port, ToPort: s.port,
		Description: s.desc,
	}
	if s.peerGroup >= 0 {
		r.SourceSecurityGroups = []rules.GroupRef{{Tags: map[string]string{"Name": groupName(s.peerGroup)}}}
	} else {
		r.CIDRBlocks = []netip.Prefix{netip.MustParsePrefix(s.cidr)}
	}
	return r
}

// world is one moto state: a VPC, G groups, the bucket and the ledger.
type world struct {
	raw     aws.Config // not counted: set-up and hand-made drift
	counted aws.Config
	calls   *apicount.Counter
	timer   *opTimer
	ec2     *ec2.Client // not counted
	s3      *s3.Client  // not counted
	groups  []string    // group ids by index
}

func newWorld(ctx context.Context, url string, g int) (*world, error) {
	w := &world{raw: motoproc.Config(url), counted: motoproc.Config(url), calls: &apicount.Counter{}, timer: &opTimer{slow: traceSlow, logf: traceLogf}}
	w.calls.Attach(&w.counted)
	w.timer.attach(&w.counted)
	names := make([]string, g)
	for i := range names {
		names[i] = groupName(i)
	}
	mw, err := motoworld.Build(ctx, w.raw, motoworld.Spec{Groups: names, Bucket: bucket, Table: table})
	if err != nil {
		return nil, err
	}
	w.ec2, w.s3, w.groups = mw.EC2, mw.S3, mw.IDs
	return w, nil
}

// engine builds the engine on counted clients, as the Lambda functions do.
func (w *world) engine() (*reconcile.Engine, error) {
	return reconcile.New(reconcile.Config{
		Source:    s3source.New(s3.NewFromConfig(w.counted, awsconfig.S3Options), bucket, prefix),
		Groups:    ec2sg.New(ec2.NewFromConfig(w.counted)),
		Ledger:    ddbledger.New(dynamodb.NewFromConfig(w.counted), table),
		LedgerID:  table,
		MaxRevoke: -1, // the workloads revoke 10% on purpose
		Holder:    "sgbench",
	})
}

func (w *world) putFiles(ctx context.Context, files map[string][]byte) error {
	for k, b := range files {
		if _, err := w.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: bytes.NewReader(b)}); err != nil {
			return fmt.Errorf("put %s: %w", k, err)
		}
	}
	return nil
}

func (w *world) deleteFile(ctx context.Context, key string) error {
	_, err := w.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	return err
}

// revokeByHand deletes rules by id with uncounted calls, one call per
// group and direction: drift made outside sgrules.
func (w *world) revokeByHand(ctx context.Context, rs []reconcile.ActualRule) error {
	type gd struct {
		g string
		d rules.Direction
	}
	by := map[gd][]string{}
	for _, r := range rs {
		k := gd{r.Key.GroupID, r.Key.Direction}
		by[k] = append(by[k], r.RuleID)
	}
	c := ec2sg.New(w.ec2)
	for k, ids := range by {
		if err := c.Revoke(ctx, k.g, k.d, ids); err != nil {
			return err
		}
	}
	return nil
}

// managedRules lists the rules sgrules created in the world's groups
// (uncounted): those tagged sgrules:managed (their sgrules:ledger tag is
// the deployment's identity, not the table's name).
func (w *world) managedRules(ctx context.Context) ([]reconcile.ActualRule, error) {
	all, err := ec2sg.New(w.ec2).DescribeRules(ctx, w.groups)
	if err != nil {
		return nil, err
	}
	var out []reconcile.ActualRule
	for _, r := range all {
		if r.Tags[reconcile.TagManaged] == "true" {
			out = append(out, r)
		}
	}
	return out, nil
}

// everyHundredth picks 1% (at least one) of xs, spread evenly.
func everyHundredth[T any](xs []T) []T {
	var out []T
	step := max(1, len(xs)/max(1, len(xs)/100))
	for i := 0; i < len(xs) && len(out) < max(1, len(xs)/100); i += step {
		out = append(out, xs[i])
	}
	return out
}

func isModify(op string) bool { return strings.HasPrefix(op, "Modify") }
