package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schedtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/adapters/expirysched"
	"github.com/sgrules/sgrules/internal/adapters/s3source"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/testutil/faultproxy"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
	"github.com/sgrules/sgrules/pkg/rules"
)

// The expiry scenarios (issue 26): files of temporary rules whose
// deadlines fall near a scenario clock (some already past when the file is
// uploaded, some exactly at the clock, some moved, dropped or made
// permanent), the clock advanced between steps, the target's EventBridge
// Scheduler schedule kept after every run as the functions keep it
// (reconcile.KeepExpiry with the real adapter, on moto), schedules deleted
// underneath, a schedule "firing" (a sweep of the target, then Scheduler's
// delete) once the clock passes its minute, and the drift schedule's
// sweeps; events shuffled, duplicated and dropped, runs concurrent and
// under faults like the main scenarios.
//
// Oracles:
//   - no expired rule is ever authorized: every permission of every
//     Authorize call is declared, at the scenario clock, by a rule of the
//     bucket whose deadline has not passed (the clock stands still while a
//     step's runs go);
//   - 0 expired rules alive after the next sweep: after every sweep that
//     succeeds (a schedule's or the drift schedule's), no rule sgrules
//     created is left that the bucket does not declare at the clock;
//   - after the last deadline and a final sweep without faults, EC2 is
//     exactly the groups' own rules, the rules added by hand and what the
//     bucket declares; the schedule is gone; another sweep writes nothing.
//
// CHAOS_SCENARIOS and CHAOS_SEED are the main suite's (make chaos runs
// -run TestChaos, which matches this test); the bounded run (make test)
// plays defaultExpiryScenarios.

const (
	defaultExpiryScenarios = 4
	expiryStepsPerScenario = 8
	expiryScheduleGroup    = "sgrules"
	expiryAccount          = "123456789012" // moto's
	expiryDriftARN         = "arn:aws:lambda:us-east-1:123456789012:function:sgrules-drift"
	expiryRoleARN          = "arn:aws:iam::123456789012:role/sgrules-expiry"
)

// expiryStart is the scenario clock's start; each scenario adds seconds.
var expiryStart = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

type expiryTotals struct {
	scenarios, steps, runs, failedRuns, concurrent, files, expiredOnUpload, expiredAtClock, moved, madePermanent int
	lost, fired, driftSweeps, midRunAdvances, sweepChecks, authorizeChecks, authorizedKeys, revokedExpired       int
	violations                                                                                                   []string
}

func TestChaosExpiry(t *testing.T) {
	n := envInt("CHAOS_SCENARIOS", defaultExpiryScenarios)
	base := uint64(envInt("CHAOS_SEED", defaultSeed))
	srv := motoserver.Shared(t)
	start := time.Now()
	tot := &expiryTotals{}
	pa := faultproxy.Start(t, srv.URL, base)
	pb := faultproxy.Start(t, srv.URL, base+1)
	for i := 0; i < n; i++ {
		seed := base + uint64(i)
		s := newExpiryScenario(t, srv, seed, pa, pb, tot)
		s.run()
		tot.scenarios++
		if len(s.violations) > 0 {
			tot.violations = append(tot.violations, s.violations...)
			t.Errorf("expiry scenario seed %d: %d violations (replay: CHAOS_SEED=%d CHAOS_SCENARIOS=1 go test -v -run TestChaosExpiry ./internal/dev/chaos)\n%s\nhistory:\n%s",
				seed, len(s.violations), seed, strings.Join(s.violations, "\n"), strings.Join(s.history, "\n"))
			if len(tot.violations) > 20 {
				break
			}
		}
	}
	t.Logf("chaos expiry: %d scenarios (seeds %d..%d), %d steps, %d reconcile runs (%d failed, %d concurrent pairs), "+
		"%d temporary files (%d rules expired on upload, %d expiring exactly at the clock, %d deadlines moved, %d made permanent), "+
		"%d schedules deleted underneath, %d schedules fired, %d drift-schedule sweeps, %d clock moves during a run, %d sweeps checked (%d rules they revoked), "+
		"%d authorize calls checked (%d permissions), %d violations, %s",
		tot.scenarios, base, base+uint64(tot.scenarios)-1, tot.steps, tot.runs, tot.failedRuns, tot.concurrent,
		tot.files, tot.expiredOnUpload, tot.expiredAtClock, tot.moved, tot.madePermanent,
		tot.lost, tot.fired, tot.driftSweeps, tot.midRunAdvances, tot.sweepChecks, tot.revokedExpired, tot.authorizeChecks, tot.authorizedKeys, len(tot.violations), time.Since(start).Round(time.Millisecond))
}

// expiryClock is the scenario clock: it moves between steps only.
type expiryClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *expiryClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *expiryClock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// tempRule is one rule of a temporary file: a TCP permission on a port of
// its own range (7000-7039, no other file of the suite uses it) from a
// CIDR, on a group named by id or by tag, with a deadline or none.
type tempRule struct {
	group    int  // index in the world's groups
	byID     bool // securityGroup: sg-… (a sweep declares the file from its ledger record) or {tags: …} (read again)
	egress   bool
	port     int32
	cidr     string
	expires  time.Time // zero: permanent
	describe string
}

type tempFile map[string]tempRule

var tempCIDRs = []string{"198.18.0.0/24", "198.18.1.0/24", "198.18.2.7/32"}

type expiryScenario struct {
	t      *testing.T
	seed   uint64
	rng    *rand.Rand
	w      *world
	clk    *expiryClock
	pa, pb *faultproxy.Proxy
	engA   *reconcile.Engine
	engB   *reconcile.Engine
	sched  *expirysched.Scheduler
	api    *scheduler.Client
	led    *ddbledger.Ledger // WithHome, for KeepExpiry
	home   rules.Target
	tot    *expiryTotals

	files   map[string]tempFile
	nextID  int
	pending []string
	hand    map[string]reconcile.ActualRule
	base    []reconcile.ActualRule

	mu         sync.Mutex
	step       int
	violations []string
	history    []string
	// advanceAt counts down the DynamoDB writes until the clock moves by
	// advanceBy (0: not armed); advanced is by how much it moved.
	advanceAt           int
	advanceBy, advanced time.Duration
	// lastDeadline is the latest deadline any version of any file gave a
	// permission (zero: some version declared it without one).
	lastDeadline map[rules.Key]time.Time
}

func newExpiryScenario(t *testing.T, srv *motoserver.Server, seed uint64, pa, pb *faultproxy.Proxy, tot *expiryTotals) *expiryScenario {
	w := newWorld(t, srv, groupsPerWorld)
	for _, p := range []*faultproxy.Proxy{pa, pb} {
		p.Reset()
	}
	pa.Reseed(seed ^ 0xe1)
	pb.Reseed(seed ^ 0xe2)
	rng := rand.New(rand.NewPCG(seed, 0xe4f1))
	s := &expiryScenario{t: t, seed: seed, rng: rng, w: w, pa: pa, pb: pb, tot: tot,
		clk:   &expiryClock{now: expiryStart.Add(time.Duration(rng.IntN(3600)) * time.Second)},
		files: map[string]tempFile{}, hand: map[string]reconcile.ActualRule{}, lastDeadline: map[rules.Key]time.Time{},
		home: rules.Target{Account: expiryAccount, Region: w.cfg.Region}}
	s.engA = s.engine(pa, fmt.Sprintf("A-%d", seed))
	s.engB = s.engine(pb, fmt.Sprintf("B-%d", seed))
	s.led = ddbledger.New(w.ddb, table, ddbledger.WithHome(s.home))
	s.api = scheduler.NewFromConfig(w.cfg)
	if _, err := s.api.CreateScheduleGroup(context.Background(), &scheduler.CreateScheduleGroupInput{Name: aws.String(expiryScheduleGroup)}); err != nil {
		var conflict *schedtypes.ConflictException
		if !errors.As(err, &conflict) {
			t.Fatalf("create schedule group: %v", err)
		}
	}
	sc, err := expirysched.New(s.api, expirysched.Config{Group: expiryScheduleGroup, TargetARN: expiryDriftARN, RoleARN: expiryRoleARN})
	if err != nil {
		t.Fatal(err)
	}
	s.sched = sc
	s.base = w.rules()
	return s
}

// engine is world.engine with the scenario clock.
func (s *expiryScenario) engine(p *faultproxy.Proxy, holder string) *reconcile.Engine {
	cfg := s.w.cfg.Copy()
	cfg.BaseEndpoint = aws.String(p.URL)
	eng, err := reconcile.New(reconcile.Config{
		Source:       s3source.New(s3.NewFromConfig(cfg, awsconfig.S3Options), bucket, prefix),
		Groups:       ec2sg.New(ec2.NewFromConfig(cfg)),
		Ledger:       ddbledger.New(dynamodb.NewFromConfig(cfg), table),
		LedgerID:     table,
		DeploymentID: table,
		MaxRevoke:    -1,
		Holder:       holder,
		LeaseTTL:     leaseTTL,
		LeaseWait:    leaseWait,
		Now:          s.clk.Now,
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return eng
}

func (s *expiryScenario) logf(format string, args ...any) {
	s.history = append(s.history, fmt.Sprintf("  [step %d, %s] ", s.step, s.clk.Now().Format("15:04:05"))+fmt.Sprintf(format, args...))
}

func (s *expiryScenario) violate(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.violations = append(s.violations, fmt.Sprintf("seed %d step %d: ", s.seed, s.step)+fmt.Sprintf(format, args...))
}

// deadline draws a deadline around the clock: past, exactly now, within
// the next steps, far ahead, or none.
func (s *expiryScenario) deadline() time.Time {
	now := s.clk.Now()
	switch s.rng.IntN(8) {
	case 0:
		s.tot.expiredOnUpload++
		return now.Add(-time.Duration(1+s.rng.IntN(600)) * time.Second)
	case 1:
		s.tot.expiredAtClock++
		return now
	case 2:
		return time.Time{}
	case 3:
		return now.Add(2 * time.Hour)
	default:
		return now.Add(time.Duration(5+s.rng.IntN(600)) * time.Second)
	}
}

func (s *expiryScenario) newRule() tempRule {
	return tempRule{group: s.rng.IntN(groupsPerWorld), byID: s.rng.IntN(2) == 0, egress: s.rng.IntN(4) == 0,
		port: 7000 + int32(s.rng.IntN(40)), cidr: pick(s.rng, tempCIDRs...), expires: s.deadline(),
		describe: pick(s.rng, "incident", "vendor", "debug")}
}

func (s *expiryScenario) render(f tempFile) string {
	var b strings.Builder
	b.WriteString("rules:\n")
	for _, name := range sortedFileKeys(f) {
		r := f[name]
		g := fmt.Sprintf("{tags: {Name: g%d}}", r.group)
		if r.byID {
			g = s.w.ids[r.group]
		}
		typ := "ingress"
		if r.egress {
			typ = "egress"
		}
		fmt.Fprintf(&b, "  %s:\n    securityGroup: %s\n    type: %s\n    protocol: tcp\n    fromPort: %d\n    toPort: %d\n    cidrBlocks: [%s]\n    description: %q\n",
			name, g, typ, r.port, r.port, r.cidr, r.describe)
		if !r.expires.IsZero() {
			fmt.Fprintf(&b, "    expiresAt: %s\n", rules.FormatExpiresAt(r.expires))
		}
	}
	return b.String()
}

// expandAt parses and expands a file at now with the world's groups.
func (s *expiryScenario) expandAt(key, body string, now time.Time) ([]rules.Permission, error) {
	f, diags := rules.Parse(key, []byte(body))
	if diags.HasErrors() {
		return nil, diags.Err()
	}
	perms, _, diags := rules.ExpandAt(f, key, func(g rules.GroupRef) []string {
		if g.IsID() {
			return []string{g.ID}
		}
		if id, ok := s.w.byName[g.Tags["Name"]]; ok {
			return []string{id}
		}
		return nil
	}, now)
	if diags.HasErrors() {
		return nil, diags.Err()
	}
	return perms, nil
}

// declaredAt is what the bucket declares at now.
func (s *expiryScenario) declaredAt(now time.Time) map[rules.Key]bool {
	out := map[rules.Key]bool{}
	for key, f := range s.files {
		perms, err := s.expandAt(key, s.render(f), now)
		if err != nil {
			s.t.Fatalf("seed %d: %s: %v", s.seed, key, err)
		}
		for _, p := range perms {
			out[p.Key] = true
		}
	}
	return out
}

func (s *expiryScenario) valid(key string, f tempFile) bool {
	_, err := s.expandAt(key, s.render(f), s.clk.Now())
	return err == nil
}

func (s *expiryScenario) fileOp() {
	keys := sortedFileKeys(s.files)
	op := "create"
	if len(keys) > 0 {
		op = pick(s.rng, "create", "update", "update", "update", "delete")
	}
	if len(keys) >= 3 && op == "create" {
		op = "update"
	}
	var key string
	switch op {
	case "create":
		key = fmt.Sprintf("%stmp-%d.yaml", prefix, s.next())
		for {
			f := tempFile{}
			for i := 0; i < 1+s.rng.IntN(3); i++ {
				f[fmt.Sprintf("t%d", s.next())] = s.newRule()
			}
			if s.valid(key, f) {
				s.files[key] = f
				break
			}
		}
		s.tot.files++
		s.logf("create %s:\n%s", key, s.render(s.files[key]))
	case "update":
		key = pick(s.rng, keys...)
		for {
			f := tempFile{}
			for n, r := range s.files[key] {
				f[n] = r
			}
			names := sortedFileKeys(f)
			victim := pick(s.rng, names...)
			r := f[victim]
			var what string
			switch x := s.rng.IntN(5); {
			case x == 0:
				f[fmt.Sprintf("t%d", s.next())] = s.newRule()
				what = "add a rule"
			case x == 1 && len(f) > 1:
				delete(f, victim)
				what = "drop " + victim
			case x == 2 && !r.expires.IsZero():
				r.expires = time.Time{}
				f[victim] = r
				s.tot.madePermanent++
				what = victim + " made permanent"
			default:
				r.expires = s.deadline()
				f[victim] = r
				s.tot.moved++
				what = victim + " deadline moved"
			}
			if s.valid(key, f) {
				s.files[key] = f
				s.logf("update %s: %s:\n%s", key, what, s.render(f))
				break
			}
		}
	case "delete":
		key = pick(s.rng, keys...)
		delete(s.files, key)
		s.w.remove(key)
		s.pending = append(s.pending, key)
		s.logf("delete %s", key)
		return
	}
	s.w.put(key, s.render(s.files[key]))
	s.pending = append(s.pending, key)
	s.noteDeclared(key)
}

// noteDeclared records the deadlines a file version gives its
// permissions: a ledger record of an earlier version, or of a file
// deleted while its delete has not been committed yet, may declare them
// until a sweep reads the bucket again.
func (s *expiryScenario) noteDeclared(key string) {
	perms, err := s.expandAt(key, s.render(s.files[key]), time.Unix(0, 0))
	if err != nil {
		s.t.Fatalf("seed %d: %s: %v", s.seed, key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range perms {
		last, seen := s.lastDeadline[p.Key]
		switch {
		case p.ExpiresAt.IsZero():
			s.lastDeadline[p.Key] = time.Time{}
		case !seen || !last.IsZero() && p.ExpiresAt.After(last):
			s.lastDeadline[p.Key] = p.ExpiresAt
		}
	}
}

func (s *expiryScenario) next() int { s.nextID++; return s.nextID }

var (
	ipPermRe = regexp.MustCompile(`^IpPermissions\.(\d+)\.(IpProtocol|FromPort|ToPort)$`)
	ipCIDRRe = regexp.MustCompile(`^IpPermissions\.(\d+)\.IpRanges\.\d+\.CidrIp$`)
)

// authorizedKeys decodes the permissions of an Authorize call.
func authorizedKeys(c faultproxy.Call) []rules.Key {
	v, err := url.ParseQuery(string(c.Body))
	if err != nil {
		return nil
	}
	dir := rules.Ingress
	if c.Action == "AuthorizeSecurityGroupEgress" {
		dir = rules.Egress
	}
	type perm struct {
		proto    string
		from, to int32
		cidrs    []string
	}
	perms := map[string]*perm{}
	get := func(i string) *perm {
		if perms[i] == nil {
			perms[i] = &perm{}
		}
		return perms[i]
	}
	for k, vs := range v {
		if m := ipPermRe.FindStringSubmatch(k); m != nil {
			p := get(m[1])
			switch m[2] {
			case "IpProtocol":
				p.proto = vs[0]
			case "FromPort":
				n, _ := strconv.Atoi(vs[0])
				p.from = int32(n)
			case "ToPort":
				n, _ := strconv.Atoi(vs[0])
				p.to = int32(n)
			}
		}
		if m := ipCIDRRe.FindStringSubmatch(k); m != nil {
			get(m[1]).cidrs = append(get(m[1]).cidrs, vs[0])
		}
	}
	var out []rules.Key
	for _, p := range perms {
		for _, c := range p.cidrs {
			out = append(out, rules.Key{GroupID: v.Get("GroupId"), Direction: dir, Protocol: p.proto, FromPort: p.from, ToPort: p.to,
				Peer: rules.Peer{Kind: rules.PeerCIDR4, Value: c}})
		}
	}
	return out
}

// checkAuthorize is the proxies' Before: every permission an Authorize
// call writes must be declared, at the clock, by a rule not expired.
func (s *expiryScenario) checkAuthorize(c faultproxy.Call) {
	if c.Service != faultproxy.EC2 || !strings.HasPrefix(c.Action, "AuthorizeSecurityGroup") {
		return
	}
	now := s.clk.Now()
	declared := s.declaredAt(now)
	keys := authorizedKeys(c)
	s.mu.Lock()
	s.tot.authorizeChecks++
	s.tot.authorizedKeys += len(keys)
	s.mu.Unlock()
	for _, k := range keys {
		if declared[k] {
			continue
		}
		// Not declared by the bucket now: the engine may still act on a
		// ledger record of an earlier version (an event it has not seen,
		// a commit cut short) until a sweep; but never on a deadline that
		// has passed.
		s.mu.Lock()
		last, ever := s.lastDeadline[k]
		s.mu.Unlock()
		switch {
		case !ever:
			s.violate("%s of %s at %s: never declared", c.Action, k, now.Format(time.RFC3339))
		case !last.IsZero() && !now.Before(last):
			s.violate("%s of %s at %s: every rule that ever declared it expired, the last at %s", c.Action, k, now.Format(time.RFC3339), last.Format(time.RFC3339))
		}
	}
}

// sweepChecked runs a sweep; when it succeeds, no rule sgrules created
// that the bucket does not declare at the clock may be left.
func (s *expiryScenario) sweepChecked(eng *reconcile.Engine, reason string) error {
	before := s.w.rules()
	err := s.reconcile(eng, reconcile.Request{All: true, Reason: reason})
	s.logf("%s: %v", reason, err)
	if err != nil {
		return err
	}
	s.keepSchedule()
	s.tot.sweepChecks++
	declared := s.declaredAt(s.clk.Now())
	alive := map[rules.Key]bool{}
	for _, r := range s.w.rules() {
		alive[r.Key] = true
		if s.ours(r) && !declared[r.Key] {
			s.violate("after %s at %s: %s (%s, expires-at tag %q) is alive, declared by no rule alive at the clock",
				reason, s.clk.Now().Format(time.RFC3339), r.Key, r.RuleID, r.Tags[reconcile.TagExpiresAt])
		}
	}
	for _, r := range before {
		if s.ours(r) && !alive[r.Key] {
			s.tot.revokedExpired++
		}
	}
	return nil
}

// ours tells whether r is a rule sgrules created (not a group's own, not
// one added by hand).
func (s *expiryScenario) ours(r reconcile.ActualRule) bool {
	if _, ok := s.hand[r.RuleID]; ok {
		return false
	}
	return !slices.ContainsFunc(s.base, func(b reconcile.ActualRule) bool { return b.RuleID == r.RuleID })
}

func (s *expiryScenario) reconcile(eng *reconcile.Engine, req reconcile.Request) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := eng.Reconcile(ctx, req)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tot.runs++
	if err != nil {
		s.tot.failedRuns++
	}
	return err
}

// keepSchedule keeps the target's schedule as the functions do after a
// run (a failure is logged by them and changes nothing else).
func (s *expiryScenario) keepSchedule() {
	if err := reconcile.KeepExpiry(context.Background(), s.led, s.sched, []rules.Target{s.home}, s.clk.Now()); err != nil {
		s.logf("keep schedule: %v", err)
	}
}

// schedule returns the target's schedule's time, if there is one.
func (s *expiryScenario) schedule() (time.Time, bool) {
	out, err := s.api.GetSchedule(context.Background(), &scheduler.GetScheduleInput{GroupName: aws.String(expiryScheduleGroup),
		Name: aws.String(expirysched.Name(s.home.Account, s.home.Region))})
	var nf *schedtypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return time.Time{}, false
	}
	if err != nil {
		s.t.Fatalf("seed %d: get schedule: %v", s.seed, err)
	}
	expr := aws.ToString(out.ScheduleExpression)
	at, err := time.Parse("2006-01-02T15:04:05", strings.TrimSuffix(strings.TrimPrefix(expr, "at("), ")"))
	if err != nil {
		s.t.Fatalf("seed %d: schedule expression %q: %v", s.seed, expr, err)
	}
	return at, true
}

func (s *expiryScenario) deleteSchedule() {
	if _, err := s.api.DeleteSchedule(context.Background(), &scheduler.DeleteScheduleInput{GroupName: aws.String(expiryScheduleGroup),
		Name: aws.String(expirysched.Name(s.home.Account, s.home.Region))}); err != nil {
		var nf *schedtypes.ResourceNotFoundException
		if !errors.As(err, &nf) {
			s.t.Fatalf("seed %d: delete schedule: %v", s.seed, err)
		}
	}
}

// deliver sends the pending events (shuffled, some duplicated, some
// dropped) in one or two runs, maybe concurrently, under faults, then
// keeps the schedule.
func (s *expiryScenario) deliver() {
	r := s.rng
	reqs := eventRequests(r, s.pending, s.logf)
	s.pending = nil
	s.pa.Set(drawFaults(r))
	s.pb.Set(drawFaults(r))
	defer func() {
		s.pa.Set(faultproxy.Faults{})
		s.pb.Set(faultproxy.Faults{})
	}()
	if len(reqs) == 2 && r.IntN(2) == 0 {
		s.tot.concurrent++
		runPair(s.engA, s.engB, reqs, s.reconcile, s.logf)
		s.keepSchedule()
		return
	}
	for _, req := range reqs {
		eng := pick(r, s.engA, s.engB)
		// In one run in three the clock moves at one of the run's
		// DynamoDB writes (the lease, the intents): a permission planned
		// before its deadline may have passed it at the Authorize.
		if r.IntN(3) == 0 {
			by := time.Duration(10+r.IntN(110)) * time.Second
			if next := s.nextDeadline(); !next.IsZero() && r.IntN(2) == 0 {
				by = next.Sub(s.clk.Now()) + time.Duration(r.IntN(3))*time.Second // just past it
			}
			s.armAdvance(1+r.IntN(4), by)
		}
		err := s.reconcile(eng, req)
		if by := s.disarmAdvance(); by > 0 {
			s.logf("the clock moved %s during the run", by)
		}
		s.logf("run %v: %v", describe(req), err)
		if err == nil {
			s.keepSchedule()
		}
	}
}

// nextDeadline is the earliest deadline of the bucket after the clock
// (zero: none).
func (s *expiryScenario) nextDeadline() time.Time {
	now := s.clk.Now()
	var next time.Time
	for _, f := range s.files {
		for _, r := range f {
			if r.expires.After(now) && (next.IsZero() || r.expires.Before(next)) {
				next = r.expires
			}
		}
	}
	return next
}

// armAdvance makes the n-th DynamoDB write from now move the clock by d.
// Only a run alone may be armed: another run reading the clock between
// its check and its write would see time move under it.
func (s *expiryScenario) armAdvance(n int, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceAt, s.advanceBy, s.advanced = n, d, 0
}

// disarmAdvance disarms the advance and returns by how much the clock
// moved.
func (s *expiryScenario) disarmAdvance() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	moved := s.advanced
	s.advanceAt, s.advanceBy, s.advanced = 0, 0, 0
	return moved
}

// before is the proxies' Before: the armed clock move, then the check of
// Authorize calls.
func (s *expiryScenario) before(c faultproxy.Call) {
	if c.Service == faultproxy.DynamoDB && c.Mutating {
		s.mu.Lock()
		if s.advanceAt > 0 {
			s.advanceAt--
			if s.advanceAt == 0 {
				s.clk.Add(s.advanceBy)
				s.advanced = s.advanceBy
				s.tot.midRunAdvances++
			}
		}
		s.mu.Unlock()
	}
	s.checkAuthorize(c)
}

// tick advances the clock; a schedule whose minute has come fires: the
// drift function sweeps the target (Scheduler retries a failed
// invocation: up to three tries here, the first two under faults) and
// Scheduler deletes the schedule.
func (s *expiryScenario) tick() {
	by := time.Duration(pick(s.rng, 0, 10, 30, 60, 120, 300)) * time.Second
	at, ok := s.schedule()
	if ok && s.rng.IntN(2) == 0 { // to the schedule's minute
		by = max(at.Sub(s.clk.Now())+time.Duration(s.rng.IntN(30))*time.Second, 0)
	}
	now := s.clk.Add(by)
	if !ok || at.After(now) {
		return
	}
	s.tot.fired++
	s.logf("schedule at %s fires", at.Format("15:04:05"))
	s.deleteSchedule()
	for attempt := 0; attempt < 3; attempt++ {
		if attempt < 2 {
			s.pa.Set(drawFaults(s.rng))
		}
		err := s.sweepChecked(s.engA, "the schedule's sweep")
		s.pa.Set(faultproxy.Faults{})
		if err == nil {
			return
		}
	}
}

func (s *expiryScenario) run() {
	s.pa.Before(s.before)
	s.pb.Before(s.before)
	defer func() {
		s.pa.Before(nil)
		s.pb.Before(nil)
	}()
	for s.step = 1; s.step <= expiryStepsPerScenario; s.step++ {
		s.tot.steps++
		if s.rng.IntN(6) == 0 {
			g := pick(s.rng, s.w.ids...)
			hr := s.w.handRule(g, int32(9000+len(s.hand)), fmt.Sprintf("by hand %d", len(s.hand)), nil)
			s.hand[hr.RuleID] = hr
			s.logf("hand rule %s", hr.Key)
		}
		for i := 0; i < 1+s.rng.IntN(2); i++ {
			s.fileOp()
		}
		s.deliver()
		if s.rng.IntN(3) == 0 {
			s.deleteSchedule()
			s.tot.lost++
			s.logf("schedule deleted underneath")
		}
		s.tick()
		if s.rng.IntN(4) == 0 {
			s.tot.driftSweeps++
			s.pa.Set(drawFaults(s.rng))
			_ = s.sweepChecked(s.engA, "the drift schedule's sweep")
			s.pa.Set(faultproxy.Faults{})
		}
	}
	s.step = 0
	s.converge()
}

// converge moves the clock past every deadline, sweeps without faults and
// checks EC2 is exactly what the bucket declares, the schedule is gone,
// and one more sweep writes nothing.
func (s *expiryScenario) converge() {
	s.clk.Add(3 * time.Hour)
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = s.sweepChecked(s.engA, "final sweep"); err == nil {
			break
		}
	}
	if err != nil {
		s.violate("final sweep failed without faults: %v", err)
		return
	}
	want := s.declaredAt(s.clk.Now())
	var keep []reconcile.ActualRule
	keep = append(keep, s.base...)
	for _, h := range s.hand {
		keep = append(keep, h)
	}
	var missing []string
	have := map[rules.Key]bool{}
	for _, r := range s.w.rules() {
		have[r.Key] = true
	}
	for k := range want {
		if !have[k] {
			missing = append(missing, k.String())
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		s.violate("after the final sweep, %s declared but missing", m)
	}
	for _, b := range keep {
		if !have[b.Key] {
			s.violate("after the final sweep, %s (the group's own or added by hand) is gone", b.Key)
		}
	}
	if at, ok := s.schedule(); ok {
		s.violate("after the last deadline, a schedule at %s is left", at)
	}
	before := s.pa.Stats().Mutating
	if err := s.reconcile(s.engA, reconcile.Request{All: true, Reason: "idle sweep"}); err != nil {
		s.violate("idle sweep: %v", err)
	}
	if n := s.pa.Stats().Mutating - before; n != 0 {
		s.violate("the sweep after convergence made %d mutating calls", n)
	}
}
