package chaos_test

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/adapters/policyload"
	"github.com/sgrules/sgrules/internal/adapters/s3source"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/testutil/faultproxy"
	"github.com/sgrules/sgrules/pkg/rules"
)

// A second deployment sharing the account, the region and the groups: its
// own ledger table (and LedgerID), its own files (prefix other/ of the
// bucket), its own engine behind its own fault proxy. Its rules use the
// peers otherCIDRs and, for half of them, permissions of the first
// deployment's files (shared permissions, deployments_test.go). Each step
// it may change a file, and its events and
// sometimes a complete sweep run concurrently with the step's runs of the
// first deployment.
//
// Its policy (otherPolicy, at otherPolicyKey) has `enforce: revoke` and
// denies ingress from 10.0.0.0/8, which the first deployment's rules open
// (its own, from otherCIDRs, never do); a file it never changes (otherExclusiveKey) declares one
// of the groups exclusive, with the group's default egress. Rules of the
// first deployment violating that policy, or in that group, are the
// other's to report, never to revoke or modify: check fails a call of
// either deployment naming a rule the other created (its sgrules:ledger
// tag), and rules added by hand stay out of the exclusive group (the other
// would rightly revoke them).
const (
	otherTable        = "ledger-other"
	otherPrefix       = "other/"
	otherPolicyKey    = "policy/other.yaml"
	otherExclusiveKey = otherPrefix + "exclusive.yaml"
	otherPolicy       = `enforce: revoke
deny:
  - id: no-ten
    message: no ingress from 10/8
    type: ingress
    cidrs: [10.0.0.0/8]
`
)

var otherCIDRs = []string{"100.64.0.0/24", "100.64.1.0/24", "100.64.2.0/24", "100.64.3.0/24", "100.100.0.0/16"}

type other struct {
	s       *scenario
	rng     *rand.Rand
	p       *faultproxy.Proxy
	eng     *reconcile.Engine
	led     *ddbledger.Ledger
	files   map[string]file
	pending []string
	// id is its identity; twin: its table has the first's table's name,
	// in another region (deployments_test.go).
	id   string
	twin bool
	// before is its files before this step's change (protectShared).
	before map[string]string
	// excl is the id of the group the file at otherExclusiveKey declares
	// exclusive, exclusive that file's body.
	excl, exclusive string
	nextID          int

	// busy is set while the deployment's runs are in flight; snapshot is
	// its tagged rules when it last went idle (under s.mu).
	busy     bool
	snapshot map[string]reconcile.ActualRule
}

func newOther(s *scenario, p *faultproxy.Proxy) *other {
	w := s.w
	ol := newOtherLedger(s)
	cfg := w.cfg.Copy()
	cfg.BaseEndpoint = aws.String(p.URL)
	src := s3source.New(s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }), bucket, otherPrefix)
	w.put(otherPolicyKey, otherPolicy)
	eng, err := reconcile.New(reconcile.Config{
		Source:       src,
		Policy:       policyload.New(src, otherPolicyKey, otherPrefix),
		Groups:       ec2sg.New(ec2.NewFromConfig(cfg)),
		Ledger:       ddbledger.New(dynamodb.NewFromConfig(ol.regional(cfg)), ol.table),
		LedgerID:     ol.table,
		DeploymentID: ol.proposed,
		MaxRevoke:    -1,
		Holder:       fmt.Sprintf("O-%d", s.seed),
		LeaseTTL:     leaseTTL,
		LeaseWait:    leaseWait,
	})
	if err != nil {
		w.tb.Fatal(err)
	}
	o := &other{s: s, rng: rand.New(rand.NewPCG(s.seed, 0x07e4)), p: p, eng: eng,
		led: ol.led, id: ol.id, twin: ol.twin, files: map[string]file{}}
	name := fmt.Sprintf("g%d", o.rng.IntN(groupsPerWorld))
	o.excl = w.byName[name]
	var b strings.Builder
	fmt.Fprintf(&b, "exclusiveGroups:\n  - {tags: {Name: %s}}\nrules:\n", name)
	for i, r := range s.base {
		if r.Key.GroupID != o.excl {
			continue
		}
		peer := map[string]string{"cidr4:0.0.0.0/0": "cidrBlocks: [0.0.0.0/0]", "cidr6:::/0": `ipv6CidrBlocks: ["::/0"]`}[r.Key.Peer.String()]
		if r.Key.Direction != rules.Egress || r.Key.Protocol != "-1" || peer == "" {
			w.tb.Fatalf("seed %d: unexpected own rule %s of group %s", s.seed, r.Key, name)
		}
		fmt.Fprintf(&b, "  egress%d:\n    securityGroup: {tags: {Name: %s}}\n    type: egress\n    protocol: \"-1\"\n    %s\n", i, name, peer)
	}
	o.exclusive = b.String()
	w.put(otherExclusiveKey, o.exclusive)
	o.pending = append(o.pending, otherExclusiveKey)
	o.snap()
	return o
}

func (o *other) ruleBody() string {
	r := o.rng
	if body, ok := o.sharedBody(); ok {
		return body
	}
	var b strings.Builder
	fmt.Fprintf(&b, "    securityGroup: {tags: {Name: g%d}}\n", r.IntN(groupsPerWorld))
	fmt.Fprintf(&b, "    type: %s\n", pick(r, "ingress", "egress"))
	switch pick(r, "tcp", "tcp", "udp", "icmp", "-1") {
	case "tcp", "udp":
		port := pick(r, int32(22), 80, 443, 5432)
		fmt.Fprintf(&b, "    protocol: %s\n    fromPort: %d\n    toPort: %d\n", pick(r, "tcp", "udp"), port, port)
	case "icmp":
		b.WriteString("    protocol: icmp\n    fromPort: 8\n    toPort: -1\n")
	default:
		b.WriteString("    protocol: \"-1\"\n")
	}
	fmt.Fprintf(&b, "    cidrBlocks: [%s]\n", pick(r, otherCIDRs...))
	if d := pick(r, descs...); d != "" {
		fmt.Fprintf(&b, "    description: %q\n", "other "+d)
	}
	return b.String()
}

func (o *other) newFile(key string) file {
	for {
		f := file{rules: map[string]string{}}
		for i := 0; i < 1+o.rng.IntN(3); i++ {
			o.nextID++
			f.rules[fmt.Sprintf("o%d", o.nextID)] = o.ruleBody()
		}
		if o.s.valid(key, f) {
			return f
		}
	}
}

// fileOp creates, changes (one rule replaced) or deletes one file.
func (o *other) fileOp() {
	o.before = o.content()
	keys := sortedFileKeys(o.files)
	op := "create"
	if len(keys) > 0 {
		op = pick(o.rng, "create", "update", "update", "delete")
	}
	if len(keys) >= 3 && op == "create" {
		op = "update"
	}
	var key string
	switch op {
	case "create":
		o.nextID++
		key = fmt.Sprintf("%sf%d.yaml", otherPrefix, o.nextID)
		o.files[key] = o.newFile(key)
	case "update":
		key = pick(o.rng, keys...)
		for {
			f := file{rules: map[string]string{}}
			for n, b := range o.files[key].rules {
				f.rules[n] = b
			}
			f.rules[pick(o.rng, sortedFileKeys(f.rules)...)] = o.ruleBody()
			if o.s.valid(key, f) {
				o.files[key] = f
				break
			}
		}
	case "delete":
		key = pick(o.rng, keys...)
		delete(o.files, key)
		o.s.w.remove(key)
	}
	if f, ok := o.files[key]; ok {
		o.s.w.put(key, f.render())
	}
	o.pending = append(o.pending, key)
	o.s.logf("other deployment: %s %s", op, key)
}

func sortedFileKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// plan draws, on the caller's goroutine, what the deployment runs in this
// step: its pending events (10 % dropped) in one request, and sometimes a
// complete sweep, under its own faults.
func (o *other) plan() ([]reconcile.Request, faultproxy.Faults) {
	var keys []string
	for _, k := range o.pending {
		if o.rng.IntN(10) > 0 {
			keys = append(keys, k)
		}
	}
	o.pending = nil
	var reqs []reconcile.Request
	if len(keys) > 0 {
		reqs = append(reqs, reconcile.Request{Keys: keys, Reason: "event"})
	}
	if o.rng.IntN(3) == 0 {
		reqs = append(reqs, reconcile.Request{All: true, Reason: "sweep"})
	}
	o.rng.Shuffle(len(reqs), func(i, j int) { reqs[i], reqs[j] = reqs[j], reqs[i] })
	return reqs, drawFaults(o.rng)
}

// start runs reqs on a goroutine; wait returns its log lines.
func (o *other) start(reqs []reconcile.Request) (wait func() []string) {
	o.s.mu.Lock()
	o.busy = true
	o.s.mu.Unlock()
	var log []string
	var wg sync.WaitGroup
	wg.Go(func() {
		for _, req := range reqs {
			err := o.s.reconcile(o.eng, req)
			log = append(log, fmt.Sprintf("other deployment: run %v: %v", describe(req), err))
		}
	})
	return func() []string {
		wg.Wait()
		o.snap()
		return log
	}
}

// snap records the deployment's tagged rules and marks it idle.
func (o *other) snap() {
	m := map[string]reconcile.ActualRule{}
	for _, r := range o.s.w.rules() {
		if r.Tags[reconcile.TagLedger] == o.id {
			m[r.RuleID] = r
		}
	}
	o.s.mu.Lock()
	o.snapshot, o.busy = m, false
	o.s.mu.Unlock()
}

// idleRules returns the snapshot when the deployment is idle.
func (o *other) idleRules() (map[string]reconcile.ActualRule, bool) {
	o.s.mu.Lock()
	defer o.s.mu.Unlock()
	return o.snapshot, !o.busy
}

func (o *other) content() map[string]string {
	out := make(map[string]string, len(o.files)+1)
	for k, f := range o.files {
		out[k] = f.render()
	}
	out[otherExclusiveKey] = o.exclusive
	return out
}

// finalSweep converges the deployment without faults.
func (o *other) finalSweep() error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = o.s.reconcile(o.eng, reconcile.Request{All: true, Reason: "final sweep"}); err == nil {
			return nil
		}
		o.s.logf("other deployment: final sweep %d: %v", attempt+1, err)
	}
	return err
}

// ruleIDRe matches the form fields naming rule ids in Revoke… and
// ModifySecurityGroupRules calls.
var ruleIDRe = regexp.MustCompile(`^SecurityGroupRuleId\.\d+$|^SecurityGroupRule\.\d+\.SecurityGroupRuleId$`)

// namedRuleIDs returns the rule ids a mutating EC2 call names.
func namedRuleIDs(c faultproxy.Call) []string {
	v, err := url.ParseQuery(string(c.Body))
	if err != nil {
		return nil
	}
	var out []string
	for k, vs := range v {
		if ruleIDRe.MatchString(k) {
			out = append(out, vs...)
		}
	}
	sort.Strings(out)
	return out
}
