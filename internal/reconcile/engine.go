package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
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
}

// New returns an engine. Groups and Ledger are required; Source may be nil
// when only inline sources (CloudFormation) are reconciled.
func New(cfg Config) (*Engine, error) {
	if cfg.Groups == nil || cfg.Ledger == nil {
		return nil, errors.New("reconcile: Groups and Ledger are required")
	}
	if cfg.MaxRevoke == 0 {
		cfg.MaxRevoke = DefaultMaxRevoke
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
}

// DriftReport is what a run found changed outside sgrules.
type DriftReport struct {
	GroupsChecked int `json:"groupsChecked"`
	// Drifted lists the corrections; those in paused groups have Paused
	// set and are never executed.
	Drifted   []Action `json:"drifted"`
	Reverted  int      `json:"reverted"`
	Unmanaged int      `json:"unmanaged"`
	// Paused groups carry a future sgrules:pause-until tag: their drift is
	// reported, not reverted.
	Paused []string `json:"paused,omitempty"`
}

// maxAttempts bounds re-planning when the state changes under us.
const maxAttempts = 3

// Reconcile makes EC2 match the sources the request names. Invalid sources
// are reported in the result (terminal, not an error); an error means the
// run could not finish and is worth retrying.
func (e *Engine) Reconcile(ctx context.Context, req Request) (Result, error) {
	// Sources EC2 refused for the group's rules quota: waiting will not
	// make room, so they keep what they applied before and the rest of the
	// request goes on.
	quota := map[string]*quotaError{}
	var lastErr error
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		// Every attempt reads everything again: after a lost race, the
		// sources' ledger records may have changed too.
		srcs, err := e.load(ctx, req)
		if err != nil {
			return Result{}, err
		}
		for _, s := range srcs {
			if qe := quota[s.key]; qe != nil {
				s.rejectQuota(qe)
			}
		}
		res, err := e.run(ctx, req, srcs)
		if err == nil {
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

// quotaError: EC2 refused an authorization because the group would exceed
// its rules quota. It names the sources that declared the refused rules.
type quotaError struct {
	group   string
	dir     rules.Direction
	count   int
	sources map[string]bool
	err     error
}

func (q *quotaError) Error() string {
	return fmt.Sprintf("authorize %d %s rules in %s: %v", q.count, q.dir, q.group, q.err)
}

func (q *quotaError) Unwrap() error { return q.err }

// state is what the engine read for one attempt.
type state struct {
	groups    map[string]bool
	owned     []OwnedPermission
	actual    []ActualRule
	exclusive map[string]bool
	paused    map[string]bool
}

// errGroupsGrew: the state changed between planning and taking leases.
var errGroupsGrew = errors.New("the groups to change grew while taking leases")

// isRace tells errors worth re-planning at once: another writer got there
// first. Anything else is returned (Lambda retries the invocation).
func isRace(err error) bool {
	return errors.Is(err, ErrConflict) || errors.Is(err, ErrLeaseHeld) || errors.Is(err, errGroupsGrew)
}

func (e *Engine) run(ctx context.Context, req Request, srcs []*loaded) (res Result, err error) {
	for _, s := range srcs {
		s.resetPlanState()
	}
	st, err := e.readState(ctx, req, srcs)
	if err != nil {
		return Result{}, err
	}
	out, heldCleanup, err := e.plan(ctx, req, srcs, st)
	if err != nil {
		return Result{}, err
	}
	records := e.sourceRecords(srcs)
	if req.DryRun || (len(out.plan.Actions) == 0 && len(out.put) == 0 && len(out.del) == 0) {
		res = e.result(srcs, st, out, heldCleanup, false)
		if !req.DryRun && !records.Empty() {
			if err := e.cfg.Ledger.Write(ctx, records); err != nil {
				return res, fmt.Errorf("record sources: %w", err)
			}
		}
		e.logPlan(ctx, req, res)
		return res, nil
	}

	// Something to change: take the leases of the groups involved, then
	// read again and plan again under them, so a concurrent run cannot
	// make us revoke what it has just claimed.
	lockGroups := planGroups(out)
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
	for _, s := range srcs {
		s.resetPlanState()
	}
	st, err = e.readState(ctx, req, srcs)
	if err != nil {
		return Result{}, err
	}
	out, heldCleanup, err = e.plan(ctx, req, srcs, st)
	if err != nil {
		return Result{}, err
	}
	if !subset(planGroups(out), lockGroups) {
		return Result{}, errGroupsGrew
	}
	if err := e.execute(ctx, &out); err != nil {
		return Result{}, err
	}
	commit := e.sourceRecords(srcs)
	commit.Put, commit.Delete = out.put, out.del
	if err := e.cfg.Ledger.Write(ctx, commit); err != nil {
		return Result{}, fmt.Errorf("record owned rules: %w", err)
	}
	res = e.result(srcs, st, out, heldCleanup, true)
	e.logPlan(ctx, req, res)
	return res, nil
}

// readState reads the ledger and EC2 for the groups in scope.
func (e *Engine) readState(ctx context.Context, req Request, srcs []*loaded) (state, error) {
	st := state{groups: map[string]bool{}, exclusive: map[string]bool{}, paused: map[string]bool{}}
	complete := req.All
	var restrict map[string]bool
	if len(req.Groups) > 0 {
		restrict = setOf(req.Groups)
	}
	add := func(g string) {
		if restrict == nil || restrict[g] {
			st.groups[g] = true
		}
	}
	for _, s := range srcs {
		for _, p := range s.desired {
			add(p.Key.GroupID)
		}
		for _, p := range s.rec.Permissions {
			add(p.Key.GroupID)
		}
		for _, g := range s.exclusive {
			add(g)
			if restrict == nil || restrict[g] {
				st.exclusive[g] = true
			}
		}
	}
	var err error
	if complete && restrict == nil {
		st.owned, err = e.cfg.Ledger.AllPermissions(ctx)
		if err != nil {
			return st, fmt.Errorf("read ledger: %w", err)
		}
		for _, o := range st.owned {
			add(o.Key.GroupID)
		}
		tagged, err := e.cfg.Groups.DescribeManagedRules(ctx)
		if err != nil {
			return st, fmt.Errorf("find rules tagged %s: %w", TagManaged, err)
		}
		for _, r := range tagged {
			add(r.Key.GroupID)
		}
	} else {
		// A source's groups, or the groups a sweep is restricted to.
		ids := st.groups
		if complete {
			ids = restrict
		}
		st.owned, err = e.cfg.Ledger.GroupPermissions(ctx, sortedKeys(ids))
		if err != nil {
			return st, fmt.Errorf("read ledger: %w", err)
		}
		for _, o := range st.owned {
			add(o.Key.GroupID)
		}
	}
	ids := sortedKeys(st.groups)
	if len(ids) == 0 {
		return st, nil
	}
	st.actual, err = e.cfg.Groups.DescribeRules(ctx, ids)
	if err != nil {
		return st, fmt.Errorf("read rules of %d groups: %w", len(ids), err)
	}
	if req.HonorPause {
		infos, err := e.cfg.Groups.DescribeGroups(ctx, ids)
		if err != nil {
			return st, fmt.Errorf("read groups: %w", err)
		}
		now := e.cfg.Now()
		for _, g := range infos {
			if v, ok := g.Tags[TagPause]; ok {
				if t, err := time.Parse(time.RFC3339, v); err == nil && t.After(now) {
					st.paused[g.GroupID] = true
				}
			}
		}
	}
	return st, nil
}

// plan diffs, applies the blast-radius guard and the group existence check
// (both may turn sources back to what they applied before, and plan again),
// and sets paused groups aside.
func (e *Engine) plan(ctx context.Context, req Request, srcs []*loaded, st state) (diffOutput, int, error) {
	in := diffInput{
		scope:      map[string][]rules.Permission{},
		scopeRules: map[string]map[string]bool{},
		complete:   req.All && len(req.Groups) == 0,
		groups:     st.groups,
		owned:      st.owned,
		actual:     st.actual,
		exclusive:  st.exclusive,
	}
	fill := func() {
		for _, s := range srcs {
			in.scope[s.key] = s.desired
			names := map[string]bool{}
			for _, p := range s.desired {
				names[p.Owner.Rule] = true
			}
			in.scopeRules[s.key] = names
		}
	}
	fill()
	out := diff(in)

	// Groups that do not exist: sources declaring rules in them (or
	// referencing them as peers) are invalid.
	if missing, err := e.missingGroups(ctx, out); err != nil {
		return out, 0, err
	} else if len(missing) > 0 {
		needsMissing := func(a Action) bool {
			return a.Kind == ActAuthorize && (missing[a.Key.GroupID] ||
				(a.Key.Peer.Kind == rules.PeerGroup && missing[a.Key.Peer.Value]))
		}
		bad := map[rules.Key]bool{}
		for _, a := range out.plan.Actions {
			if needsMissing(a) {
				bad[a.Key] = true
			}
		}
		for _, s := range srcs {
			s.rejectMissingGroups(bad)
		}
		fill()
		out = dropActions(diff(in), needsMissing)
	}

	// Blast-radius guard.
	heldCleanup := 0
	if !req.AllowMassRevoke && e.cfg.MaxRevoke >= 0 {
		losses, bySource := 0, map[string]int{}
		for _, a := range out.plan.Actions {
			if a.Loss {
				losses++
				bySource[a.LossSource]++
			}
		}
		if losses > e.cfg.MaxRevoke {
			for _, s := range srcs {
				if n := bySource[s.key]; n > 0 {
					s.hold(fmt.Sprintf("plan holds: it would revoke %d permissions in this run (%d from this source), over the limit MAX_REVOKE=%d; raise MAX_REVOKE or run 'sgrules apply --allow-mass-revoke' if this is intended",
						losses, n, e.cfg.MaxRevoke))
				}
			}
			fill()
			out = diff(in)
			before := len(out.plan.Actions)
			out = dropActions(out, func(a Action) bool { return a.Loss && a.LossSource == "" })
			heldCleanup = before - len(out.plan.Actions)
		}
	}

	// Paused groups: report their drift, change nothing there.
	if len(st.paused) > 0 {
		var pausedDrift []Action
		for _, a := range out.plan.Actions {
			if st.paused[a.Key.GroupID] && a.Drift {
				a.Paused = true
				pausedDrift = append(pausedDrift, a)
			}
		}
		out = dropActions(out, func(a Action) bool { return st.paused[a.Key.GroupID] })
		out.pausedDrift = pausedDrift
	}
	return out, heldCleanup, nil
}

// dropActions removes matching actions and the ledger writes of their keys.
func dropActions(out diffOutput, drop func(Action) bool) diffOutput {
	dropped := map[rules.Key]bool{}
	kept := out.plan.Actions[:0:0]
	for _, a := range out.plan.Actions {
		if drop(a) {
			dropped[a.Key] = true
			continue
		}
		kept = append(kept, a)
	}
	out.plan.Actions = kept
	out.put = slices.DeleteFunc(slices.Clone(out.put), func(o OwnedPermission) bool { return dropped[o.Key] })
	out.del = slices.DeleteFunc(slices.Clone(out.del), func(o OwnedPermission) bool { return dropped[o.Key] })
	return out
}

// missingGroups returns the groups (targets and peers) that new rules
// need and that do not exist. It reads EC2 only when there is something
// to authorize.
func (e *Engine) missingGroups(ctx context.Context, out diffOutput) (map[string]bool, error) {
	need := map[string]bool{}
	for _, a := range out.plan.Actions {
		if a.Kind != ActAuthorize {
			continue
		}
		need[a.Key.GroupID] = true
		if a.Key.Peer.Kind == rules.PeerGroup {
			need[a.Key.Peer.Value] = true
		}
	}
	if len(need) == 0 {
		return nil, nil
	}
	infos, err := e.cfg.Groups.DescribeGroups(ctx, sortedKeys(need))
	if err != nil {
		return nil, fmt.Errorf("check groups exist: %w", err)
	}
	for _, g := range infos {
		delete(need, g.GroupID)
	}
	return need, nil
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
	return sortedKeys(set)
}

type batchKey struct {
	group string
	dir   rules.Direction
}

// execute runs the plan make-before-break: every authorization of every
// group first, then description updates, then revocations; each batched
// per group and direction.
func (e *Engine) execute(ctx context.Context, out *diffOutput) error {
	auth := map[batchKey][]rules.Permission{}
	authOwners := map[batchKey]map[string]bool{}
	upd := map[string][]DescriptionUpdate{}
	rev := map[batchKey][]string{}
	for _, a := range out.plan.Actions {
		bk := batchKey{a.Key.GroupID, a.Key.Direction}
		switch a.Kind {
		case ActAuthorize:
			owner := rules.Owner{}
			if len(a.Owners) > 0 {
				owner = rules.Owner{Source: ownerSource(a.Owners[0]), Rule: ownerRule(a.Owners[0])}
			}
			auth[bk] = append(auth[bk], rules.Permission{Key: a.Key, Description: a.Description, Owner: owner})
			if authOwners[bk] == nil {
				authOwners[bk] = map[string]bool{}
			}
			for _, o := range a.Owners {
				authOwners[bk][ownerSource(o)] = true
			}
		case ActUpdate:
			upd[a.Key.GroupID] = append(upd[a.Key.GroupID], DescriptionUpdate{RuleID: a.RuleID, Key: a.Key, Description: a.Description})
		case ActRevoke:
			rev[bk] = append(rev[bk], a.RuleID)
		}
	}

	authorized := map[string]bool{}
	authBatches := sortedBatches(auth)
	if err := e.forEach(ctx, len(authBatches), func(ctx context.Context, i int) error {
		err := e.authorize(ctx, authBatches[i], auth[authBatches[i]])
		var qe *quotaError
		if errors.As(err, &qe) {
			maps.Copy(qe.sources, authOwners[authBatches[i]])
		}
		return err
	}); err != nil {
		return err
	}
	for _, bk := range authBatches {
		authorized[bk.group] = true
	}
	if len(authorized) > 0 {
		// Read back the ids of the new rules: Authorize's response is not
		// to be trusted for them (and moto returns only one).
		actual, err := e.cfg.Groups.DescribeRules(ctx, sortedKeys(authorized))
		if err != nil {
			return fmt.Errorf("read back new rules: %w", err)
		}
		got := map[rules.Key]ActualRule{}
		for _, a := range actual {
			got[a.Key] = a
		}
		for i, p := range out.put {
			if p.RuleID != "" {
				continue
			}
			a, ok := got[p.Key]
			if !ok {
				return fmt.Errorf("read back new rules: %s not found after authorize", p.Key)
			}
			out.put[i].RuleID = a.RuleID
			if a.Description != p.Description {
				// Some EC2 implementations drop the description of
				// group-referencing rules on authorize: set it in place now
				// rather than leave drift for the next run.
				upd[p.Key.GroupID] = append(upd[p.Key.GroupID], DescriptionUpdate{RuleID: a.RuleID, Key: p.Key, Description: p.Description})
			}
		}
	}
	updGroups := sortedKeys(upd)
	if err := e.forEach(ctx, len(updGroups), func(ctx context.Context, i int) error {
		g, us := updGroups[i], upd[updGroups[i]]
		if err := e.cfg.Groups.UpdateDescriptions(ctx, g, us); err != nil {
			return fmt.Errorf("update descriptions: %w", err)
		}
		e.log.InfoContext(ctx, "ec2 batch", "op", "update-descriptions", "group", g, "rules", len(us))
		return nil
	}); err != nil {
		return err
	}
	// Only now, with every new rule in place, revoke.
	revBatches := sortedBatches(rev)
	return e.forEach(ctx, len(revBatches), func(ctx context.Context, i int) error {
		return e.revoke(ctx, revBatches[i], rev[revBatches[i]])
	})
}

// forEach runs fn for 0..n-1 on at most Config.Concurrency goroutines. The
// first error cancels the others' context and is returned once all have
// stopped, so a phase never overlaps the next one.
func (e *Engine) forEach(ctx context.Context, n int, fn func(context.Context, int) error) error {
	if n == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	sem := make(chan struct{}, e.cfg.Concurrency)
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := fn(ctx, i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
				cancel()
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		// Cancelled from outside before every batch started.
		return fmt.Errorf("execute: %w", context.Cause(ctx))
	}
	return first
}

func (e *Engine) authorize(ctx context.Context, bk batchKey, perms []rules.Permission) error {
	tags := map[string]string{TagManaged: "true"}
	if src := commonSource(perms); src != "" {
		tags[TagOwner] = truncate(src, 256)
	}
	err := e.cfg.Groups.Authorize(ctx, bk.group, bk.dir, perms, tags)
	if errors.Is(err, ErrDuplicate) {
		// Someone created some of them since we read: keep the rest. The
		// ones that exist are adopted by the next read.
		actual, rerr := e.cfg.Groups.DescribeRules(ctx, []string{bk.group})
		if rerr != nil {
			return fmt.Errorf("re-read %s after duplicate: %w", bk.group, rerr)
		}
		have := map[rules.Key]bool{}
		for _, a := range actual {
			have[a.Key] = true
		}
		rest := slices.DeleteFunc(slices.Clone(perms), func(p rules.Permission) bool { return have[p.Key] })
		err = nil
		if len(rest) > 0 {
			err = e.cfg.Groups.Authorize(ctx, bk.group, bk.dir, rest, tags)
		}
		perms = rest
	}
	if errors.Is(err, ErrRulesLimit) {
		qe := &quotaError{group: bk.group, dir: bk.dir, count: len(perms), sources: map[string]bool{}, err: err}
		for _, p := range perms {
			qe.sources[p.Owner.Source] = true
		}
		return qe
	}
	if err != nil {
		return fmt.Errorf("authorize: %w", err)
	}
	e.log.InfoContext(ctx, "ec2 batch", "op", "authorize", "group", bk.group, "direction", bk.dir, "rules", len(perms))
	return nil
}

func (e *Engine) revoke(ctx context.Context, bk batchKey, ids []string) error {
	err := e.cfg.Groups.Revoke(ctx, bk.group, bk.dir, ids)
	if errors.Is(err, ErrNotFound) {
		// Some are already gone: revoke those still there.
		actual, rerr := e.cfg.Groups.DescribeRules(ctx, []string{bk.group})
		if rerr != nil {
			return fmt.Errorf("re-read %s after not found: %w", bk.group, rerr)
		}
		have := map[string]bool{}
		for _, a := range actual {
			have[a.RuleID] = true
		}
		ids = slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return !have[id] })
		err = nil
		if len(ids) > 0 {
			err = e.cfg.Groups.Revoke(ctx, bk.group, bk.dir, ids)
		}
	}
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	e.log.InfoContext(ctx, "ec2 batch", "op", "revoke", "group", bk.group, "direction", bk.dir, "rules", len(ids))
	return nil
}

func commonSource(perms []rules.Permission) string {
	src := ""
	for i, p := range perms {
		if i == 0 {
			src = p.Owner.Source
		} else if p.Owner.Source != src {
			return "multiple"
		}
	}
	return src
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func sortedBatches[V any](m map[batchKey]V) []batchKey {
	out := make([]batchKey, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].group != out[j].group {
			return out[i].group < out[j].group
		}
		return out[i].dir < out[j].dir
	})
	return out
}

// result assembles the outcome.
func (e *Engine) result(srcs []*loaded, st state, out diffOutput, heldCleanup int, executed bool) Result {
	res := Result{Plan: out.plan, Executed: executed, HeldCleanup: heldCleanup}
	ruleIDs := map[string][]string{}
	owned := map[rules.Key]OwnedPermission{}
	for _, o := range st.owned {
		owned[o.Key] = o
	}
	for _, o := range out.del {
		delete(owned, o.Key)
	}
	for _, o := range out.put {
		owned[o.Key] = o
	}
	keys := slices.Collect(maps.Keys(owned))
	sort.Slice(keys, func(i, j int) bool { return keys[i].Less(keys[j]) })
	for _, k := range keys {
		o := owned[k]
		seen := map[string]bool{}
		for owner := range o.Owners {
			src := ownerSource(owner)
			if !seen[src] && o.RuleID != "" {
				seen[src] = true
				ruleIDs[src] = append(ruleIDs[src], o.RuleID)
			}
		}
	}
	for _, s := range srcs {
		res.Sources = append(res.Sources, SourceResult{Key: s.key, Status: s.status, Diagnostics: s.diags,
			Message: s.message, RuleIDs: ruleIDs[s.key]})
	}
	res.Drift.GroupsChecked = len(st.groups)
	res.Drift.Unmanaged = len(out.plan.Unmanaged)
	res.Drift.Paused = sortedKeys(st.paused)
	for _, a := range out.plan.Actions {
		if a.Drift {
			res.Drift.Drifted = append(res.Drift.Drifted, a)
			if executed {
				res.Drift.Reverted++
			}
		}
	}
	res.Drift.Drifted = append(res.Drift.Drifted, out.pausedDrift...)
	return res
}

func (e *Engine) logPlan(ctx context.Context, req Request, res Result) {
	p := res.Plan
	e.log.InfoContext(ctx, "plan",
		"reason", req.Reason, "dryRun", req.DryRun, "executed", res.Executed,
		"sources", len(res.Sources), "groups", res.Drift.GroupsChecked,
		"authorize", p.Count(ActAuthorize), "revoke", p.Count(ActRevoke), "update", p.Count(ActUpdate),
		"adopt", p.Count(ActAdopt), "forget", p.Count(ActForget),
		"conflicts", len(p.Conflicts), "unmanaged", len(p.Unmanaged), "drifted", len(res.Drift.Drifted))
	for _, s := range res.Sources {
		if s.Status != StatusApplied {
			e.log.WarnContext(ctx, "source not applied", "source", s.Key, "status", s.Status,
				"message", s.Message, "diagnostics", s.Diagnostics.Strings())
		}
	}
}

func setOf(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
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
