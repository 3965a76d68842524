package reconcile

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/sgrules/sgrules/pkg/rules"
)

// Engine reconciles rule sources into EC2. It is safe for concurrent use;
// runs touching the same groups are serialised by ledger leases.
type Engine struct {
	cfg Config
	log *slog.Logger

	idMu sync.Mutex
	id   string // the deployment's identity, once read from the ledger
}

// New returns an engine. Groups and Ledger are required; Source may be nil
// when only inline sources (CloudFormation) are reconciled.
func New(cfg Config) (*Engine, error) {
	if cfg.Groups == nil || cfg.Ledger == nil {
		return nil, errors.New("reconcile: Groups and Ledger are required")
	}
	if cfg.LedgerID == "" {
		return nil, errors.New("reconcile: LedgerID is required (the ledger table's name)")
	}
	if err := CheckDeploymentID(cfg.DeploymentID); cfg.DeploymentID != "" && err != nil {
		return nil, fmt.Errorf("reconcile: %w", err)
	}
	if cfg.MaxRevoke == 0 {
		cfg.MaxRevoke = DefaultMaxRevoke
	}
	if cfg.MaxPause == 0 {
		cfg.MaxPause = DefaultMaxPause
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = 2 * time.Minute
	}
	if cfg.LeaseWait == 0 {
		cfg.LeaseWait = 30 * time.Second
	}
	if cfg.Holder == "" {
		cfg.Holder = "sgrules-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Target = cfg.Target.Resolve(cfg.Home)
	if cfg.AllowAccount == nil {
		home := cfg.Home.Account
		cfg.AllowAccount = func(a string) bool { return a == home }
	}
	if cfg.UsedWithin <= 0 {
		cfg.UsedWithin = DefaultUsedWithin
	}
	if cfg.History == nil {
		cfg.History, _ = cfg.Ledger.(HistoryLog)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{cfg: cfg, log: log}, nil
}

// Result is the outcome of one run.
type Result struct {
	// Plan is what the run decided (and, unless DryRun, executed).
	Plan Plan
	// Sources are the outcomes per source in scope, sorted by key.
	Sources []SourceResult
	// Drift summarises corrections of changes made outside sgrules.
	Drift DriftReport
	// Executed is true when EC2 and the ledger were changed.
	Executed bool
	// HeldCleanup counts exclusive-group or orphan revocations skipped by
	// the blast-radius guard.
	HeldCleanup int
	// Policy is what the guardrail policy found (zero without one).
	Policy PolicyReport
	// Usage is what the traffic evidence check refused and let go (zero
	// without Config.Evidence).
	Usage UsageReport
	// Quota warns of groups the plan leaves with more rules than EC2's
	// default quota, counted as EC2 counts them.
	Quota []QuotaWarning
	// Gone are the rule files that declared permissions here and are gone
	// (deleted, moved to another target, or not in the directory
	// planned), sorted: their rules are revoked unless the guard holds
	// them.
	Gone []string
	// Attributed are the drifted events of the history that this run
	// (a CloudTrail event's: Request.Caller) completed with its caller:
	// drift an earlier run reverted without knowing who made it.
	Attributed []HistoryEvent
}

// QuotaWarning: after the plan, Group would have Rules rules of Family
// ("IPv4" or "IPv6") in Direction, over rules.QuotaPerGroup. The quota can
// be raised; EC2 refuses what exceeds the account's actual quota, and the
// sources asking for it are then invalid.
type QuotaWarning struct {
	Group     string
	Direction rules.Direction
	Family    string
	Rules     int
}

// DriftReport is what a run found changed outside sgrules.
type DriftReport struct {
	GroupsChecked int
	// Drifted lists the corrections; those in paused groups have Paused
	// set and are never executed.
	Drifted []Action
	// Reverted counts the corrections executed (actions, not rules: a
	// modified rule is put back by two).
	Reverted  int
	Unmanaged int
	// Paused groups carry a future sgrules:pause-until tag and had drift:
	// it is reported, not reverted.
	Paused []string
	// PauseTooLong are the groups whose sgrules:pause-until tag lies
	// further ahead than Config.MaxPause: not paused (their drift is
	// corrected as anywhere else), reported so the tag is fixed.
	PauseTooLong []string
}

// maxAttempts bounds re-planning when the state changes under us.
const maxAttempts = 3

// Reconcile makes EC2 match the sources the request names. Invalid sources
// are reported in the result (terminal, not an error); an error means the
// run could not finish and is worth retrying.
//
// Each attempt runs the phases in order: observe (sources, ledger, EC2),
// plan, lock the groups to change, observe and plan again under the locks,
// apply to EC2, commit to the ledger.
func (e *Engine) Reconcile(ctx context.Context, req Request) (Result, error) {
	ctx = WithRun(ctx)
	// Sources EC2 refused for the group's rules quota: waiting will not
	// make room, so they keep what they applied before and the rest of the
	// request goes on.
	quota := map[string]*quotaError{}
	// Siblings whose changes an attempt made in EC2 without recording
	// them (its commit lost a race): the next attempts load them again
	// whatever their records say (refresh.go).
	resync := map[string]bool{}
	var lastErr error
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		res, err := e.attempt(ctx, req, quota, resync)
		if err == nil {
			res.Attributed = e.completeHistory(ctx, req, res)
			return res, nil
		}
		var qe *quotaError
		switch {
		case errors.As(err, &qe):
			for k := range qe.sources {
				quota[k] = qe
			}
		case !isRace(err):
			return res, err
		}
		lastErr = err
		e.log.WarnContext(ctx, "re-planning", "attempt", attempt, "err", err)
	}
	return Result{}, lastErr
}

// errGroupsGrew: the state changed between planning and taking leases.
var errGroupsGrew = errors.New("the groups to change grew while taking leases")

// errRefreshChanged: under the leases, a sibling file the run refreshes
// (refresh.go) was recorded again by another run, or changed the outcome
// of the plan made again.
var errRefreshChanged = errors.New("a sibling file the run refreshes changed under the leases")

// isRace tells errors worth re-planning at once: another writer got there
// first. Anything else is returned (Lambda retries the invocation).
func isRace(err error) bool {
	return errors.Is(err, ErrConflict) || errors.Is(err, ErrLeaseHeld) || errors.Is(err, errGroupsGrew) || errors.Is(err, errRefreshChanged)
}

func (e *Engine) attempt(ctx context.Context, req Request, quota map[string]*quotaError, resync map[string]bool) (Result, error) {
	// Observe. Every attempt reads everything again: after a lost race,
	// the sources' ledger records may have changed too.
	id, err := e.identity(ctx, req.DryRun)
	if err != nil {
		return Result{}, err
	}
	pol, err := e.loadPolicy(ctx)
	if err != nil {
		return Result{}, err
	}
	srcs, known, outside, found, err := e.load(ctx, req, pol.noCache())
	if err != nil {
		return Result{}, err
	}
	srcs = dropUnrefreshed(req, srcs)
	at := &attempt{req: req, srcs: srcs, known: known, outside: outside, quota: quota, policy: pol, id: id, found: found}
	if err := e.observe(ctx, at); err != nil {
		return Result{}, err
	}
	p, err := e.plan(ctx, at)
	if err != nil {
		return Result{}, err
	}
	if refreshChanged(req, srcs) {
		return e.attempt(ctx, withoutSiblings(req), quota, resync)
	}
	if with, ok := e.withSiblings(ctx, at, p, resync); ok {
		return e.attempt(ctx, with, quota, resync)
	}
	if req.DryRun || (len(p.plan.Actions) == 0 && len(p.put) == 0 && len(p.del) == 0 && len(p.claims) == 0) {
		// The records first: they settle the status of deleted sources.
		records := e.sourceRecords(srcs)
		res := e.result(at, p, false)
		res.Policy, res.Usage = p.policy, p.usage
		if !req.DryRun && !records.Empty() {
			if err := e.cfg.Ledger.Write(ctx, records); err != nil {
				return res, fmt.Errorf("record sources: %w", err)
			}
		}
		if !req.DryRun {
			e.recordHistory(ctx, e.historyOf(at, p, e.cfg.Now().UTC(), false))
		}
		if !req.DryRun {
			if err := e.markExclusive(ctx, at); err != nil {
				return res, err
			}
			e.clearIntents(ctx, settledIntents(at, p.diffOutput))
		}
		e.logPlan(ctx, req, res)
		return res, nil
	}

	// Lock the groups involved, then observe and plan again under the
	// leases, so a concurrent run cannot make us revoke what it has just
	// claimed.
	lockGroups := planGroups(p.diffOutput)
	holder := e.cfg.Holder
	if req.Holder != "" {
		holder = req.Holder
	}
	unlock, err := e.cfg.Ledger.Lock(ctx, lockGroups, holder, e.cfg.LeaseTTL, e.cfg.LeaseWait)
	if err != nil {
		return Result{}, fmt.Errorf("lock groups: %w", err)
	}
	defer func() {
		if uerr := unlock(context.WithoutCancel(ctx)); uerr != nil {
			e.log.WarnContext(ctx, "release group leases", "err", uerr)
		}
	}()
	stale, err := e.observeLocked(ctx, at, lockGroups)
	if err != nil {
		return Result{}, err
	}
	if stale {
		// Another run committed in these groups since the first read:
		// perhaps a sibling's own run, with newer content than it had.
		if err := e.siblingsRecorded(ctx, req, srcs); err != nil {
			return Result{}, err
		}
		if p, err = e.plan(ctx, at); err != nil {
			return Result{}, err
		}
		if !subset(planGroups(p.diffOutput), lockGroups) {
			return Result{}, errGroupsGrew
		}
		if refreshChanged(req, srcs) {
			return Result{}, errRefreshChanged
		}
	}

	// Write ahead what is about to be authorized, then apply, then commit.
	intents := intentsOf(p.diffOutput, e.cfg.Now())
	if len(intents) > 0 {
		if err := e.cfg.Ledger.RecordIntents(ctx, intents); err != nil {
			return Result{}, fmt.Errorf("record intents: %w", err)
		}
	}
	if req.refresh != nil {
		for k := range req.refresh.objs {
			resync[k] = true
		}
	}
	if err := e.execute(ctx, &p.diffOutput); err != nil {
		return Result{}, fmt.Errorf("apply plan: %w", err)
	}
	e.recordHistory(ctx, e.historyOf(at, p, e.cfg.Now().UTC(), true))
	if err := e.markExclusive(ctx, at); err != nil {
		return Result{}, err
	}
	commit := e.sourceRecords(srcs)
	commit.Put, commit.Delete = p.put, p.del
	if err := e.cfg.Ledger.Write(ctx, commit); err != nil {
		return Result{}, fmt.Errorf("record owned rules: %w", err)
	}
	done := settledIntents(at, p.diffOutput)
	for _, it := range intents {
		done = append(done, it.Key)
	}
	e.clearIntents(ctx, done)
	res := e.result(at, p, true)
	res.Policy, res.Usage = p.policy, p.usage
	e.logPlan(ctx, req, res)
	return res, nil
}

// observe reads the ledger and EC2 for the sources as they are declared.
func (e *Engine) observe(ctx context.Context, at *attempt) error {
	for _, s := range at.srcs {
		s.resetPlanState()
	}
	st, err := e.readState(ctx, at.req, at.srcs, at.id, at.found, at.policy != nil)
	if err != nil {
		return err
	}
	at.st = st
	return nil
}

// observeLocked runs under the leases of the groups the plan writes
// (locked). Every sgrules run changing those groups holds their leases
// until its commit is written, and every EC2 change it makes to a rule in
// them is committed to the ledger items of those groups (or, after a
// crash, left with an intent or as a rule nobody owns, which the next
// sweep settles). So the ledger items of the locked groups, read again
// now (strongly consistent), tell whether the first read could be stale:
// unchanged, the plan stands as made; changed (another run committed
// there since), EC2 and the ledger of the locked groups only are read
// again and the plan is made again. It reports whether the state was read
// again.
func (e *Engine) observeLocked(ctx context.Context, at *attempt, locked []string) (bool, error) {
	owned, err := e.cfg.Ledger.GroupPermissions(ctx, locked)
	if err != nil {
		return false, fmt.Errorf("read ledger under the leases: %w", err)
	}
	in := setOf(locked)
	var before, others []OwnedPermission
	for _, o := range at.st.owned {
		if in[o.Key.GroupID] {
			before = append(before, o)
		} else {
			others = append(others, o)
		}
	}
	if sameVersions(before, owned) {
		return false, nil
	}
	actual, err := e.cfg.Groups.DescribeRules(ctx, locked)
	if err != nil {
		return false, fmt.Errorf("read rules of %d groups under the leases: %w", len(locked), err)
	}
	st := &at.st
	st.owned = append(others, owned...)
	st.actual = slices.DeleteFunc(st.actual, func(a ActualRule) bool { return in[a.Key.GroupID] })
	st.actual = append(st.actual, actual...)
	if at.req.All {
		intents, err := e.cfg.Ledger.Intents(ctx, locked)
		if err != nil {
			return false, fmt.Errorf("read ledger intents under the leases: %w", err)
		}
		st.intents = slices.DeleteFunc(st.intents, func(it Intent) bool { return in[it.Key.GroupID] })
		st.intents = append(st.intents, intents...)
	}
	return true, nil
}

// sameVersions reports whether two reads of the ledger hold the same
// items at the same versions.
func sameVersions(a, b []OwnedPermission) bool {
	if len(a) != len(b) {
		return false
	}
	type item struct {
		rule    string
		version int64
	}
	m := make(map[rules.Key]item, len(a))
	for _, o := range a {
		m[o.Key] = item{o.RuleID, o.Version}
	}
	for _, o := range b {
		if x, ok := m[o.Key]; !ok || x != (item{o.RuleID, o.Version}) {
			return false
		}
	}
	return true
}

func planGroups(out diffOutput) []string {
	set := map[string]bool{}
	for _, a := range out.plan.Actions {
		set[a.Key.GroupID] = true
	}
	for _, o := range out.put {
		set[o.Key.GroupID] = true
	}
	for _, o := range out.del {
		set[o.Key.GroupID] = true
	}
	for _, a := range out.claims {
		set[a.Key.GroupID] = true
	}
	return sortedKeys(set)
}

func (e *Engine) logPlan(ctx context.Context, req Request, res Result) {
	p := res.Plan
	e.log.InfoContext(ctx, "plan",
		"reason", req.Reason, "dryRun", req.DryRun, "executed", res.Executed,
		"sources", len(res.Sources), "groups", res.Drift.GroupsChecked,
		"authorize", p.Count(ActAuthorize), "revoke", p.Count(ActRevoke), "update", p.Count(ActUpdate),
		"adopt", p.Count(ActAdopt), "forget", p.Count(ActForget),
		"conflicts", len(p.Conflicts), "unmanaged", len(p.Unmanaged), "drifted", len(res.Drift.Drifted),
		"refused", len(res.Policy.Refused))
	if len(res.Policy.Refused) > 0 {
		refused := make([]string, len(res.Policy.Refused))
		for i, r := range res.Policy.Refused {
			refused[i] = r.String()
		}
		e.log.WarnContext(ctx, "writes refused by the guardrail policy", "policy", res.Policy.Name, "refused", refused)
	}
	if len(res.Usage.Refused) > 0 {
		refused := make([]string, len(res.Usage.Refused))
		for i, r := range res.Usage.Refused {
			refused[i] = r.String()
		}
		e.log.WarnContext(ctx, "removals of rules that carried traffic refused", "since", res.Usage.Since, "refused", refused)
	}
	for _, c := range p.ExclusiveConflicts {
		e.log.ErrorContext(ctx, "exclusive group of several deployments", "group", c.GroupID, "deployments", c.Deployments, "message", c.String())
	}
	for _, c := range p.UnverifiedClaims {
		e.log.WarnContext(ctx, "unverified claim of another deployment", "rule", c.Rule.RuleID, "group", c.Rule.Key.GroupID,
			"deployments", c.Deployments, "honoured", c.Honoured, "message", c.String())
	}
	for _, s := range res.Sources {
		if s.Status != StatusApplied {
			e.log.WarnContext(ctx, "source not applied", "source", s.Key, "status", s.Status,
				"message", s.Message, "diagnostics", s.Diagnostics.Strings())
		}
	}
}

func subset(xs, of []string) bool {
	set := setOf(of)
	for _, x := range xs {
		if !set[x] {
			return false
		}
	}
	return true
}

// intentsOf are the write-ahead intents of the plan's authorizations and
// claims: a crash before the commit leaves a rule carrying this
// deployment's tag or claim that only the intent proves its own.
func intentsOf(out diffOutput, now time.Time) []Intent {
	var its []Intent
	for _, a := range out.plan.Actions {
		if a.Kind == ActAuthorize {
			its = append(its, Intent{Key: a.Key, At: now.UTC()})
		}
	}
	for _, a := range out.claims {
		its = append(its, Intent{Key: a.Key, At: now.UTC()})
	}
	return its
}

// settledIntents are the intents a sweep read that prove nothing any more
// once its plan is committed: every one but those of a rule carrying this
// deployment's tag or claim that the ledger still does not hold and the
// plan neither revokes nor releases (an orphan revocation held back). A
// released rule carries neither any more.
func settledIntents(at *attempt, out diffOutput) []rules.Key {
	if len(at.st.intents) == 0 {
		return nil
	}
	owned := map[rules.Key]bool{}
	for _, o := range at.st.owned {
		owned[o.Key] = true
	}
	for _, o := range out.del {
		delete(owned, o.Key)
	}
	for _, o := range out.put {
		owned[o.Key] = true
	}
	revoked := map[string]bool{}
	for _, a := range out.plan.Actions {
		if a.Kind == ActRevoke || a.Kind == ActRelease {
			revoked[a.RuleID] = true
		}
	}
	pending := map[rules.Key]bool{}
	for _, a := range at.st.actual {
		if at.id != "" && (a.Tags[TagLedger] == at.id || a.Tags[TagClaimPrefix+at.id] != "") && !owned[a.Key] && !revoked[a.RuleID] {
			pending[a.Key] = true
		}
	}
	var keys []rules.Key
	for _, it := range at.st.intents {
		if !pending[it.Key] {
			keys = append(keys, it.Key)
		}
	}
	return keys
}

// clearIntentsTimeout bounds clearIntents once the run's own context is
// done.
const clearIntentsTimeout = 20 * time.Second

// clearIntents deletes settled intents. It runs after the commit, so it
// does not stop with the run's context (a run that reached its deadline
// while clearing left some chunks behind, which the next sweep then
// deleted: chaos seed 20263366); it has its own bound. A failure is only
// logged: a lingering intent is cleared by the next sweep (or expires),
// and proves ownership only of a rule that also carries this deployment's
// tag.
func (e *Engine) clearIntents(ctx context.Context, keys []rules.Key) {
	if len(keys) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), clearIntentsTimeout)
	defer cancel()
	if err := e.cfg.Ledger.ClearIntents(ctx, keys); err != nil {
		e.log.WarnContext(ctx, "clear ledger intents", "intents", len(keys), "err", err)
	}
}

// identity returns the deployment's identity: the one stored in the
// ledger, stored first (Config.DeploymentID, or a random one) when there
// is none. A dry run only reads: "" when none is stored yet (nothing was
// created under one).
func (e *Engine) identity(ctx context.Context, readOnly bool) (string, error) {
	e.idMu.Lock()
	defer e.idMu.Unlock()
	if e.id != "" {
		return e.id, nil
	}
	proposed := ""
	if !readOnly {
		proposed = e.cfg.DeploymentID
		if proposed == "" {
			proposed = NewDeploymentID()
		}
	}
	id, err := e.cfg.Ledger.DeploymentID(ctx, proposed)
	if err != nil {
		return "", fmt.Errorf("read the deployment identity: %w", err)
	}
	if id != "" {
		if err := CheckDeploymentID(id); err != nil {
			return "", fmt.Errorf("the ledger's deployment identity: %w", err)
		}
	}
	e.id = id
	return id, nil
}

// ruleTagLedger is the TagLedger value of the rules this engine creates.
func (e *Engine) ruleTagLedger() string {
	e.idMu.Lock()
	defer e.idMu.Unlock()
	return e.id
}

// MaxDeploymentIDLen bounds a deployment identity: it is a tag value, and
// part of a claim tag's key (at most 128 characters).
const MaxDeploymentIDLen = 64

// CheckDeploymentID tells whether id can be a deployment identity: 1 to
// MaxDeploymentIDLen letters, digits and "-_.".
func CheckDeploymentID(id string) error {
	if id == "" || len(id) > MaxDeploymentIDLen {
		return fmt.Errorf("deployment identity %q: want 1 to %d characters", id, MaxDeploymentIDLen)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("deployment identity %q: only letters, digits and -_. are allowed", id)
		}
	}
	return nil
}

// NewDeploymentID returns a random identity (a version 4 UUID).
func NewDeploymentID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
