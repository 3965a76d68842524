package chaos_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/adapters/s3source"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/testutil/faultproxy"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
	"github.com/sgrules/sgrules/pkg/rules"
)

// A hub of two targets (one scenario in four): a reconcile.Fleet with its
// own ledger table (LedgerID) and files (prefix fleet/), behind its own
// fault proxy, routing each file to the home target (moto's default
// account, the world's groups) or to a second account, reached by
// sts:AssumeRole into arn:aws:iam::ACCOUNT:role/sgrules-target (moto keeps
// accounts apart by the assumed role's credentials), where the suite
// creates a VPC and groups with the same Name tags g0..g2. Its rules only
// use the peers fleetCIDRs, so it never declares a permission of the other
// deployments in the home groups. Each step it may create, change, delete
// a file or move one to the other target (half the moves refused there:
// a rule names a group of the old target by id; the old target keeps the
// file's rules, the move pending), and its events (10 % dropped)
// and sometimes a sweep run concurrently with the step's runs, under its
// own faults (STS included). At convergence each target's groups hold
// exactly what that target's files declare (nothing leaks across: the
// same Name tags resolve to each account's own groups; a refused move's
// file declares its version in force in its old target), each target's
// scope of the ledger owns exactly its files' permissions and holds their
// records only (a refused move: pending in the old target, invalid in the
// new), and one more sweep writes nothing.
const (
	fleetTable  = "ledger-fleet"
	fleetPrefix = "fleet/"
	fleetAcct   = "111122223333"
)

var fleetCIDRs = []string{"198.18.0.0/24", "198.18.1.0/24", "198.19.0.0/16"}

// fleetFile is a file of the hub and its target.
type fleetFile struct {
	f      file
	remote bool // in the second account
}

func (ff fleetFile) render() string {
	if ff.remote {
		return fmt.Sprintf("account: %q\n", fleetAcct) + ff.f.render()
	}
	return ff.f.render()
}

type fleet struct {
	s      *scenario
	rng    *rand.Rand
	p      *faultproxy.Proxy
	fl     *reconcile.Fleet
	led    *ddbledger.Ledger // direct, for the checks
	home   rules.Target
	remote rules.Target
	// the second account's groups: direct client, Name tag → id, ids, and
	// their own rules (moto's default egress)
	rgroups *ec2sg.Client
	rbyName map[string]string
	rids    []string
	rbase   []reconcile.ActualRule

	files   map[string]fleetFile
	pending []string
	nextID  int
	// refused are files whose upload is a move the new target refuses (a
	// rule names a group of the old target by id, which does not exist in
	// the new one): key -> the body uploaded. files keeps the version in
	// force: the old target keeps it, the move pending, and the new one
	// records the file invalid.
	refused map[string]string
	// off: the second account was taken out of the target accounts
	// (offboard_test.go).
	off offboarding
}

func newFleet(s *scenario, p *faultproxy.Proxy) *fleet {
	w := s.w
	tb := w.tb
	ctx := context.Background()
	motoserver.CreateTable(tb, w.cfg, fleetTable)
	id, err := sts.NewFromConfig(w.cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		tb.Fatal(err)
	}
	home := rules.Target{Account: aws.ToString(id.Account), Region: w.cfg.Region}
	remote := rules.Target{Account: fleetAcct, Region: w.cfg.Region}
	roleARN := "arn:aws:iam::" + fleetAcct + ":role/sgrules-target"

	// The second account's world, built with its own credentials.
	out, err := sts.NewFromConfig(w.cfg).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("chaos")})
	if err != nil {
		tb.Fatal(err)
	}
	rcfg := w.cfg.Copy()
	c := out.Credentials
	rcfg.Credentials = credentials.NewStaticCredentialsProvider(*c.AccessKeyId, *c.SecretAccessKey, *c.SessionToken)
	vpc := motoserver.CreateVPC(tb, rcfg)
	f := &fleet{s: s, rng: rand.New(rand.NewPCG(s.seed, 0xf1ee7)), p: p, home: home, remote: remote,
		led: ddbledger.New(w.ddb, fleetTable, ddbledger.WithHome(home)), rbyName: map[string]string{}, files: map[string]fleetFile{}, refused: map[string]string{}}
	for _, n := range w.names {
		gid := motoserver.CreateGroup(tb, rcfg, vpc, n+"-sg", map[string]string{"Name": n})
		f.rbyName[n] = gid
		f.rids = append(f.rids, gid)
	}
	f.rgroups = ec2sg.New(ec2.NewFromConfig(rcfg), ec2sg.WithAccount(fleetAcct))
	f.rbase = f.remoteRules()

	// The hub: every call through the proxy, the second account's through
	// the assumed role.
	hub := w.cfg.Copy()
	hub.BaseEndpoint = aws.String(p.URL)
	stsAPI := sts.NewFromConfig(hub)
	creds := aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsAPI, roleARN, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = "chaos-hub"
	}))
	allow := func(a string) bool { return a == home.Account || (a == fleetAcct && !f.off.done.Load()) }
	holder := fmt.Sprintf("F-%d", s.seed)
	var mu sync.Mutex
	groups := map[rules.Target]*ec2sg.Client{}
	fl, err := reconcile.NewFleet(reconcile.FleetConfig{
		Home: home, AllowAccount: allow, Accounts: []string{fleetAcct},
		Source: s3source.New(s3.NewFromConfig(hub, awsconfig.S3Options), bucket, fleetPrefix),
		Ledger: ddbledger.New(dynamodb.NewFromConfig(hub), fleetTable, ddbledger.WithHome(home)),
		Engine: func(_ context.Context, t rules.Target, src reconcile.Source, led reconcile.Ledger) (*reconcile.Engine, error) {
			if !allow(t.Account) { // as fleetrt.Fleet's adapters refuse it
				return nil, fmt.Errorf("account %s is not a target account", t.Account)
			}
			mu.Lock()
			g, ok := groups[t]
			if !ok {
				cfg := hub.Copy()
				if t.Account != home.Account {
					cfg.Credentials = creds
				}
				g = ec2sg.New(ec2.NewFromConfig(cfg), ec2sg.WithAccount(t.Account))
				groups[t] = g
			}
			mu.Unlock()
			return reconcile.New(reconcile.Config{Source: src, Groups: g, Ledger: led, LedgerID: fleetTable, DeploymentID: fleetTable, MaxRevoke: -1,
				Holder: holder, LeaseTTL: leaseTTL, LeaseWait: leaseWait, Target: t, Home: home, AllowAccount: allow})
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	f.fl = fl
	return f
}

func (f *fleet) remoteRules() []reconcile.ActualRule {
	var out []reconcile.ActualRule
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if out, err = f.rgroups.DescribeRules(context.Background(), f.rids); err == nil {
			return out
		}
	}
	f.s.w.tb.Fatalf("describe the second account's rules: %v", err)
	return nil
}

func (f *fleet) ruleBody() string {
	r := f.rng
	var b strings.Builder
	fmt.Fprintf(&b, "    securityGroup: {tags: {Name: g%d}}\n", r.IntN(groupsPerWorld))
	fmt.Fprintf(&b, "    type: %s\n", pick(r, "ingress", "egress"))
	switch pick(r, "tcp", "tcp", "udp", "-1") {
	case "tcp", "udp":
		port := pick(r, int32(22), 80, 443, 5432, 8080)
		fmt.Fprintf(&b, "    protocol: %s\n    fromPort: %d\n    toPort: %d\n", pick(r, "tcp", "udp"), port, port)
	default:
		b.WriteString("    protocol: \"-1\"\n")
	}
	fmt.Fprintf(&b, "    cidrBlocks: [%s]\n", pick(r, fleetCIDRs...))
	if d := pick(r, descs...); d != "" {
		fmt.Fprintf(&b, "    description: %q\n", "fleet "+d)
	}
	return b.String()
}

// valid: parses and expands (no permission twice in the file).
func (f *fleet) valid(key string, ff fleetFile) bool {
	_, err := expandWith(key, ff.render(), f.byName(ff.remote))
	return err == nil
}

func (f *fleet) byName(remote bool) map[string]string {
	if remote {
		return f.rbyName
	}
	return f.s.w.byName
}

// fileOp creates, changes (one rule replaced or added), deletes a file or
// moves it to the other target.
func (f *fleet) fileOp() {
	if f.offboard() {
		return
	}
	keys := sortedFileKeys(f.files)
	op := "create"
	if len(keys) > 0 {
		op = pick(f.rng, "create", "create", "update", "update", "move", "move", "delete")
	}
	if op == "move" && f.off.done.Load() {
		op = "update"
	}
	if len(keys) >= 4 && op == "create" {
		op = "update"
	}
	w := f.s.w
	var key string
	switch op {
	case "create":
		f.nextID++
		key = fmt.Sprintf("%sh%d.yaml", fleetPrefix, f.nextID)
		for {
			ff := fleetFile{f: file{rules: map[string]string{}}, remote: f.rng.IntN(2) == 0 && !f.off.done.Load()}
			for i := 0; i < 1+f.rng.IntN(3); i++ {
				f.nextID++
				ff.f.rules[fmt.Sprintf("h%d", f.nextID)] = f.ruleBody()
			}
			if f.valid(key, ff) {
				f.files[key] = ff
				break
			}
		}
		f.s.logf("fleet: create %s (remote %v)", key, f.files[key].remote)
	case "update", "move":
		key = pick(f.rng, keys...)
		if op == "move" && f.refused[key] == "" && f.rng.IntN(2) == 0 && f.refuseMove(key) {
			return
		}
		delete(f.refused, key)
		for {
			ff := fleetFile{f: file{rules: map[string]string{}}, remote: f.files[key].remote}
			for n, b := range f.files[key].f.rules {
				ff.f.rules[n] = b
			}
			if op == "move" {
				ff.remote = !ff.remote
			} else {
				names := sortedFileKeys(ff.f.rules)
				if f.rng.IntN(2) == 0 {
					delete(ff.f.rules, pick(f.rng, names...))
				}
				f.nextID++
				ff.f.rules[fmt.Sprintf("h%d", f.nextID)] = f.ruleBody()
			}
			if f.valid(key, ff) {
				f.files[key] = ff
				break
			}
		}
		f.s.logf("fleet: %s %s (remote %v)", op, key, f.files[key].remote)
	case "delete":
		key = pick(f.rng, keys...)
		delete(f.files, key)
		delete(f.refused, key)
		w.remove(key)
		f.pending = append(f.pending, key)
		f.s.logf("fleet: delete %s", key)
		return
	}
	w.put(key, f.files[key].render())
	f.pending = append(f.pending, key)
}

// refuseMove uploads a move of key that its new target refuses: the file
// moved, plus a rule naming a group of the old target by id. The version
// in force is applied first, without faults, so that the old target has
// something to keep; false (nothing uploaded) if that run fails.
func (f *fleet) refuseMove(key string) bool {
	ff := f.files[key]
	f.p.Set(faultproxy.Faults{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := f.fl.Reconcile(ctx, reconcile.Request{Keys: []string{key}, Reason: "settle"}, nil)
	if err == nil {
		err = res.Err()
	}
	tg := f.home
	if ff.remote {
		tg = f.remote
	}
	applied := false
	for _, tr := range res.Targets {
		for _, sr := range tr.Result.Sources {
			if tr.Target == tg && sr.Key == key && sr.Status == reconcile.StatusApplied {
				applied = true
			}
		}
	}
	if err != nil || !applied {
		f.s.logf("fleet: settle %s before a refused move: %v (applied %v)", key, err, applied)
		return false
	}
	moved := fleetFile{f: file{rules: map[string]string{}}, remote: !ff.remote}
	for n, b := range ff.f.rules {
		moved.f.rules[n] = b
	}
	f.nextID++
	_, rest, _ := strings.Cut(f.ruleBody(), "\n")
	oldGroup := f.byName(ff.remote)[fmt.Sprintf("g%d", f.rng.IntN(groupsPerWorld))]
	moved.f.rules[fmt.Sprintf("h%d", f.nextID)] = "    securityGroup: " + oldGroup + "\n" + rest
	f.refused[key] = moved.render()
	f.s.w.put(key, f.refused[key])
	f.pending = append(f.pending, key)
	f.s.logf("fleet: refused move of %s (to remote %v: names %s)", key, moved.remote, oldGroup)
	f.s.mu.Lock()
	f.s.tot.refusedMoves++
	f.s.mu.Unlock()
	return true
}

// records tells what the ledger scope of one target must hold besides
// the records of its files: for each refused move, the old target a
// record pending (keeping the version in force) and the new one a
// record invalid (owning nothing). It returns the file keys with a record
// and the status expected of those not applied.
func (f *fleet) records(remote bool) (map[string]string, map[string]reconcile.Status) {
	files := f.content(remote)
	status := map[string]reconcile.Status{}
	for key := range f.refused {
		if f.files[key].remote == remote {
			status[key] = reconcile.StatusPending
		} else {
			files[key] = f.refused[key]
			status[key] = reconcile.StatusInvalid
		}
	}
	return files, status
}

// plan draws what the hub runs in this step: its pending events (10 %
// dropped) in one request, and sometimes a complete sweep, under its own
// faults.
func (f *fleet) plan() ([]reconcile.Request, faultproxy.Faults) {
	var keys []string
	for _, k := range f.pending {
		if f.rng.IntN(10) > 0 {
			keys = append(keys, k)
		}
	}
	f.pending = nil
	var reqs []reconcile.Request
	if len(keys) > 0 {
		reqs = append(reqs, reconcile.Request{Keys: keys, Reason: "event"})
	}
	if f.rng.IntN(3) == 0 {
		reqs = append(reqs, reconcile.Request{All: true, Reason: "sweep"})
	}
	f.rng.Shuffle(len(reqs), func(i, j int) { reqs[i], reqs[j] = reqs[j], reqs[i] })
	return reqs, drawFaults(f.rng)
}

// reconcile runs one request on the hub; a failure of any target is a
// failed run.
func (f *fleet) reconcile(req reconcile.Request) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := f.fl.Reconcile(ctx, req, nil)
	if err == nil {
		err = res.Err()
	}
	s := f.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tot.runs++
	s.tot.fleetRuns++
	if req.All {
		s.tot.sweeps++
	}
	if err != nil {
		s.tot.failedRuns++
	}
	return err
}

// start runs reqs on a goroutine; wait returns its log lines.
func (f *fleet) start(reqs []reconcile.Request) (wait func() []string) {
	var log []string
	var wg sync.WaitGroup
	wg.Go(func() {
		for _, req := range reqs {
			err := f.reconcile(req)
			log = append(log, fmt.Sprintf("  fleet: run %v: %v", describe(req), err))
		}
	})
	return func() []string {
		wg.Wait()
		return log
	}
}

// content returns the files of one target.
func (f *fleet) content(remote bool) map[string]string {
	out := map[string]string{}
	for k, ff := range f.files {
		if ff.remote == remote {
			out[k] = ff.render()
		}
	}
	return out
}

// desire is what the files of one target declare.
func (f *fleet) desire(remote bool) declared {
	d := declared{}
	for key, body := range f.content(remote) {
		perms, err := expandWith(key, body, f.byName(remote))
		if err != nil {
			f.s.t.Fatalf("%s: %v\n%s", key, err, body)
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

// finalSweep converges the hub without faults.
func (f *fleet) finalSweep() error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = f.reconcile(reconcile.Request{All: true, Reason: "final sweep"}); err == nil {
			return nil
		}
		f.s.logf("fleet: final sweep %d: %v", attempt+1, err)
	}
	return err
}

// checkRemote checks the second account after the final sweeps: its
// groups hold exactly what its files declare plus their own rules, and
// its scope of the ledger owns exactly that and holds the records of its
// files only. (The home target is checked with the other deployments' home
// rules, by the caller.)
func (f *fleet) checkRemote(ctx context.Context) {
	s := f.s
	if f.off.done.Load() {
		f.checkOffboarded(ctx)
		return
	}
	actual := f.remoteRules()
	d := f.desire(true)
	for _, v := range ec2Violations(actual, d, f.rbase) {
		s.violate("second account, after the final sweeps: %s", v)
	}
	ids := map[rules.Key]string{}
	for _, a := range actual {
		ids[a.Key] = a.RuleID
	}
	files, status := f.records(true)
	vs, err := ledgerViolations(ctx, f.led.For(f.remote), d, files, status, ids)
	if err != nil {
		s.t.Fatalf("seed %d: read the fleet's ledger: %v", s.seed, err)
	}
	for _, v := range vs {
		s.violate("fleet, second account: %s", v)
	}
}
