package reconcile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/sgrules/sgrules/pkg/rules"
)

// Many targets: one hub reconciles rule files into security groups of many
// accounts and regions. A Fleet routes each file to its target (the file's
// account and region fields) and runs one Engine per target, each on a
// view of the Source that lists only its files and on the target's scope
// of the one ledger table.

// TargetLedger is the one ledger table of every target.
type TargetLedger interface {
	// For returns the ledger scoped to one target (the home target's is
	// the single-account ledger of before).
	For(t rules.Target) Ledger
	// ListAllSources returns the source records of every scope.
	ListAllSources(ctx context.Context) (map[rules.Target][]SourceRecord, error)
}

// FleetConfig wires a Fleet.
type FleetConfig struct {
	// Home is the hub's own account and region; files without an account
	// or region field are its.
	Home rules.Target
	// AllowAccount tells the accounts a file may name (nil: only
	// Home.Account); see Config.AllowAccount.
	AllowAccount func(account string) bool
	// RegionExists and Partition as Config's: a file naming a region that
	// does not exist is invalid (routed as any invalid file).
	RegionExists func(ctx context.Context, region string) (bool, error)
	Partition    string
	// Accounts lists the accounts besides Home's that files may name
	// (TARGET_ACCOUNTS). Sweeps visit each of them in every region in use
	// (a region some target of the sweep is in),
	// even with no file or record there: rules this deployment created in
	// a target whose records were never written (a crash between the EC2
	// calls and the commit, then the file moved away) or were lost are
	// found there and cleaned up as orphans.
	Accounts []string
	// Source is every rule file (bucket prefix or directory).
	Source Source
	Ledger TargetLedger
	// Engine builds (and may cache) the engine of one target on a source
	// view and that target's ledger. It must set Config.Target, Home and
	// AllowAccount as the Fleet's. An error fails that target only.
	Engine func(ctx context.Context, t rules.Target, src Source, led Ledger) (*Engine, error)
	// Concurrency bounds the targets reconciled at once (0:
	// DefaultFleetConcurrency).
	Concurrency int
	Logger      *slog.Logger
}

// DefaultFleetConcurrency is the default bound on targets run at once.
const DefaultFleetConcurrency = 4

// Fleet reconciles the rule files of every target.
type Fleet struct {
	cfg FleetConfig
	log *slog.Logger
}

// NewFleet returns a fleet. Source, Ledger and Engine are required.
func NewFleet(cfg FleetConfig) (*Fleet, error) {
	if cfg.Source == nil || cfg.Ledger == nil || cfg.Engine == nil {
		return nil, errors.New("reconcile: FleetConfig needs Source, Ledger and Engine")
	}
	if cfg.AllowAccount == nil {
		home := cfg.Home.Account
		cfg.AllowAccount = func(a string) bool { return a == home }
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultFleetConcurrency
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Fleet{cfg: cfg, log: log}, nil
}

// Home is the hub's own target.
func (f *Fleet) Home() rules.Target { return f.cfg.Home }

// FleetResult is the outcome of a fleet run: one result per target run,
// sorted (home first).
type FleetResult struct {
	Targets []TargetResult
	// Offboarded are the targets whose ledger records name an account no
	// longer allowed (offboard.go): not run. Set by sweeps of every target.
	Offboarded []rules.Target
}

// TargetResult is the outcome in one target. Err, if set, names the
// account, the region and the cause; the other targets went on.
type TargetResult struct {
	Target rules.Target
	Result Result
	Err    error
}

// Err joins the targets' errors (nil when every target succeeded).
func (r FleetResult) Err() error {
	var errs []error
	for _, t := range r.Targets {
		if t.Err != nil {
			errs = append(errs, t.Err)
		}
	}
	return errors.Join(errs...)
}

// Sources returns the source outcomes of every target, in target order.
func (r FleetResult) Sources() []SourceResult {
	var out []SourceResult
	for _, t := range r.Targets {
		out = append(out, t.Result.Sources...)
	}
	return out
}

// TargetError is a failure in one target.
type TargetError struct {
	Target rules.Target
	Err    error
}

func (e *TargetError) Error() string {
	return fmt.Sprintf("account %s region %s: %v", e.Target.Account, e.Target.Region, e.Err)
}

func (e *TargetError) Unwrap() error { return e.Err }

// Targets returns every target named by a rule file or holding ledger
// records, sorted, home first. It reads the files whose target the
// ledger does not already tell.
func (f *Fleet) Targets(ctx context.Context) ([]rules.Target, error) {
	rt, err := f.route(ctx, Request{All: true})
	if err != nil {
		return nil, err
	}
	return rt.targets, nil
}

// routing is where a request's files go.
type routing struct {
	targets []rules.Target
	// keys per target (key requests): the keys to look at there.
	keys map[rules.Target][]string
	// listed per target (sweeps): the objects its view lists.
	listed map[rules.Target][]ObjectInfo
	// own per target: the files that are its (the others are gone there).
	own map[rules.Target]map[string]bool
	// bodies read while routing, served again by the views.
	bodies map[string]Object
	// parsed are the bodies parsed while routing (parseOnce), handed to
	// the engines with them.
	parsed map[string]parsedFile
	// moves are the files whose target changed and whose old targets still
	// hold records of them, by key.
	moves map[string]*move
	// offboarded are the targets of records in accounts no longer allowed:
	// left out of everything else here (offboard.go).
	offboarded []rules.Target
	// records are the source records of each target read while routing
	// a sweep (every record of the target; a target absent here was not
	// read): its engine's first attempt uses them instead of listing
	// them again (recordedSource).
	records map[rules.Target][]SourceRecord
}

// move is a file whose target changed: the old targets (from) let it go
// only once its new target (to) holds it applied at its current ETag.
// Until then it is pending there: each keeps what the file applied.
type move struct {
	key  string
	to   rules.Target
	from []rules.Target
	etag string
	// done: the new target accepted the file (its record, or its run now).
	done bool
	// why the move is still pending.
	why string
}

// pendingIn returns the moves still pending out of t: file key -> the
// message its old target reports.
func (rt routing) pendingIn(t rules.Target) map[string]string {
	var out map[string]string
	for _, m := range rt.moves {
		if m.done || !slices.Contains(m.from, t) {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[m.key] = fmt.Sprintf("pending move to %s: %s", m.to, m.why)
	}
	return out
}

// route decides each file's target. Sweeps list the Source once; a file
// whose ETag matches the applied record of exactly one scope is that
// scope's without reading it; other files are read once and their target
// parsed; an invalid file goes to every scope holding its record (where it
// keeps what it applied), else home. A file is also sent, as gone, to
// every other scope holding a record of it; a file that moved is a move,
// decided here from the ledger: done when its new target's record holds
// it applied at its current ETag, else pending (the old targets keep it).
func (f *Fleet) route(ctx context.Context, req Request) (routing, error) {
	home := f.cfg.Home
	rt := routing{keys: map[rules.Target][]string{}, listed: map[rules.Target][]ObjectInfo{},
		own: map[rules.Target]map[string]bool{}, bodies: map[string]Object{}, moves: map[string]*move{}}
	all, err := f.cfg.Ledger.ListAllSources(ctx)
	if err != nil {
		return rt, fmt.Errorf("list ledger sources: %w", err)
	}
	scopes := map[string][]rules.Target{} // file key -> scopes with a record
	applied := map[string][]SourceRecord{}
	recOf := map[string]map[rules.Target]SourceRecord{}
	targets := map[rules.Target]bool{home: true}
	for t, recs := range all {
		t = t.Resolve(home)
		if f.offboarded(t) {
			rt.offboarded = append(rt.offboarded, t)
			continue
		}
		targets[t] = true
		for _, r := range recs {
			if r.Kind != KindFile {
				continue
			}
			scopes[r.Key] = append(scopes[r.Key], t)
			applied[r.Key] = append(applied[r.Key], r)
			if recOf[r.Key] == nil {
				recOf[r.Key] = map[rules.Target]SourceRecord{}
			}
			recOf[r.Key][t] = r
		}
	}

	where := func(obj Object) ([]rules.Target, error) { return f.where(ctx, &rt, obj, scopes[obj.Key]) }
	add := func(key, etag string, info *ObjectInfo, to []rules.Target) {
		for _, t := range to {
			targets[t] = true
			if rt.own[t] == nil {
				rt.own[t] = map[string]bool{}
			}
			rt.own[t][key] = true
			if info != nil {
				rt.listed[t] = append(rt.listed[t], *info)
			} else {
				rt.keys[t] = append(rt.keys[t], key)
			}
		}
		// Gone in every other scope holding a record of it: a move.
		var from []rules.Target
		for _, t := range scopes[key] {
			if !slices.Contains(to, t) {
				rt.keys[t] = append(rt.keys[t], key)
				from = append(from, t)
			}
		}
		if len(from) > 0 && len(to) == 1 {
			rt.moves[key] = f.decideMove(key, etag, to[0], from, recOf[key])
		}
	}

	if req.All {
		objs, err := f.cfg.Source.List(ctx)
		if err != nil {
			return rt, fmt.Errorf("list sources: %w", err)
		}
		for i := range objs {
			o := objs[i]
			if recs := applied[o.Key]; len(recs) == 1 && recs[0].ETag == o.ETag && recs[0].Status == StatusApplied {
				add(o.Key, o.ETag, &o, scopes[o.Key])
				continue
			}
			obj, err := f.cfg.Source.Get(ctx, o.Key)
			if errors.Is(err, ErrNotFound) {
				continue // deleted since the listing: gone where recorded
			}
			if err != nil {
				return rt, fmt.Errorf("read source %s: %w", o.Key, err)
			}
			rt.bodies[o.Key] = obj
			to, err := where(obj)
			if err != nil {
				return rt, err
			}
			add(o.Key, o.ETag, &o, to)
		}
	} else {
		for _, k := range dedupe(req.Keys) {
			obj, err := f.cfg.Source.Get(ctx, k)
			switch {
			case errors.Is(err, ErrNotFound):
				to := f.recordScopes(scopes[k])
				for _, t := range to {
					targets[t] = true
					rt.keys[t] = append(rt.keys[t], k)
				}
				continue
			case err != nil:
				return rt, fmt.Errorf("read source %s: %w", k, err)
			}
			rt.bodies[k] = obj
			to, err := where(obj)
			if err != nil {
				return rt, err
			}
			add(k, obj.ETag, nil, to)
		}
	}
	if req.All {
		// Every target's records were read (a target absent from all
		// holds none): its engine need not list them again.
		rt.records = map[rules.Target][]SourceRecord{}
		for t, recs := range all {
			t = t.Resolve(home)
			rt.records[t] = append(rt.records[t], recs...)
		}
		// Every listed account in every region in use: a target that
		// holds rules of ours but no record is swept too (see Accounts).
		regions := map[string]bool{}
		for t := range targets {
			regions[t.Region] = true
		}
		for _, a := range f.cfg.Accounts {
			for r := range regions {
				if f.cfg.AllowAccount(a) {
					targets[rules.Target{Account: a, Region: r}] = true
				}
			}
		}
	}
	rt.targets = sortTargets(home, targets)
	rt.offboarded = sortTargets(home, targetSet(rt.offboarded))
	if rt.records != nil {
		for _, t := range rt.targets {
			if rt.records[t] == nil {
				rt.records[t] = []SourceRecord{}
			}
		}
	}
	return rt, nil
}

// where returns the target of a file read now, or the scopes of its
// records (recorded) when it is invalid.
func (f *Fleet) where(ctx context.Context, rt *routing, obj Object, recorded []rules.Target) ([]rules.Target, error) {
	if obj.Body == nil && obj.Size > rules.MaxFileSize {
		return f.recordScopes(recorded), nil
	}
	file, diags := rt.parseOnce(obj)
	if diags.HasErrors() || file == nil || rules.CheckAccounts(file, f.cfg.AllowAccount).HasErrors() {
		return f.recordScopes(recorded), nil
	}
	rd, err := checkRegion(ctx, file, f.cfg.RegionExists, f.cfg.Partition)
	if err != nil {
		return nil, err
	}
	if rd.HasErrors() {
		return f.recordScopes(recorded), nil
	}
	return []rules.Target{file.Target.Resolve(f.cfg.Home)}, nil
}

// TargetRoute is what a sweep of one target needs of the routing of every
// target, decided once per schedule by the planner (Survey.Routes) and
// carried by the target's sweep message: the target's own records tell
// the rest.
type TargetRoute struct {
	// Read are the files routed to the target that its own records do
	// not prove (new, changed, invalid, too large): read by its sweep. A
	// file its records hold applied at the listed ETag is its own
	// without being named here.
	Read []string `json:"read,omitempty"`
	// Moves are the files recorded in the target whose new target is
	// another: file key -> the new target.
	Moves map[string]rules.Target `json:"moves,omitempty"`
}

// routeOf is t's part of rt (Survey).
func (rt routing) routeOf(t rules.Target) *TargetRoute {
	r := &TargetRoute{}
	for k := range rt.own[t] {
		if _, read := rt.bodies[k]; read {
			r.Read = append(r.Read, k)
		}
	}
	slices.Sort(r.Read)
	for k, m := range rt.moves {
		if slices.Contains(m.from, t) {
			if r.Moves == nil {
				r.Moves = map[string]rules.Target{}
			}
			r.Moves[k] = m.to
		}
	}
	return r
}

// routeOne routes a sweep of target t alone from the planner's route r:
// it reads t's own records (one Query), lists the Source, and reads only
// the files r names and those whose record here changed since the
// planning; for each file that moved out of t, its record in the new
// target decides the move. No other target's records are read.
func (f *Fleet) routeOne(ctx context.Context, t rules.Target, r *TargetRoute) (routing, error) {
	rt := routing{keys: map[rules.Target][]string{}, listed: map[rules.Target][]ObjectInfo{},
		own: map[rules.Target]map[string]bool{t: {}}, bodies: map[string]Object{}, moves: map[string]*move{}}
	if f.offboarded(t) {
		rt.offboarded = []rules.Target{t}
		return rt, nil
	}
	rt.targets = []rules.Target{t}
	recs, err := f.cfg.Ledger.For(t).ListSources(ctx)
	if err != nil {
		return rt, fmt.Errorf("list ledger sources of %s: %w", t, err)
	}
	rt.records = map[rules.Target][]SourceRecord{t: slices.Clone(recs)}
	mine := map[string]SourceRecord{}
	for _, rec := range recs {
		if rec.Kind == KindFile {
			mine[rec.Key] = rec
		}
	}
	read := map[string]bool{}
	for _, k := range r.Read {
		read[k] = true
	}
	objs, err := f.cfg.Source.List(ctx)
	if err != nil {
		return rt, fmt.Errorf("list sources: %w", err)
	}
	own := func(o ObjectInfo) {
		rt.own[t][o.Key] = true
		rt.listed[t] = append(rt.listed[t], o)
	}
	for _, o := range objs {
		rec, recorded := mine[o.Key]
		to, moved := r.Moves[o.Key]
		switch {
		case recorded && !moved && rec.ETag == o.ETag && rec.Status == StatusApplied:
			own(o)
		case read[o.Key]:
			own(o)
		case recorded && moved && to != t:
			if err := f.moveOut(ctx, &rt, t, rec, o.Key, o.ETag, to); err != nil {
				return rt, err
			}
		case recorded:
			// Changed since the planning: route it now.
			obj, err := f.cfg.Source.Get(ctx, o.Key)
			if errors.Is(err, ErrNotFound) {
				continue // deleted since the listing: gone here
			}
			if err != nil {
				return rt, fmt.Errorf("read source %s: %w", o.Key, err)
			}
			rt.bodies[o.Key] = obj
			dest, err := f.where(ctx, &rt, obj, []rules.Target{t})
			if err != nil {
				return rt, err
			}
			switch {
			case slices.Contains(dest, t):
				own(o)
			case len(dest) == 1:
				if err := f.moveOut(ctx, &rt, t, rec, o.Key, o.ETag, dest[0]); err != nil {
					return rt, err
				}
			}
		}
		// Neither recorded here nor routed here: another target's file
		// (or one new since the planning: its event, or the next
		// schedule, routes it).
	}
	return rt, nil
}

// moveOut records in rt that the file key, recorded in t (rec), moved to
// target to: gone in t, owned there, and the move decided from its record
// there (one strongly consistent read).
func (f *Fleet) moveOut(ctx context.Context, rt *routing, t rules.Target, rec SourceRecord, key, etag string, to rules.Target) error {
	recs := map[rules.Target]SourceRecord{t: rec}
	there, ok, err := f.cfg.Ledger.For(to).GetSource(ctx, key)
	if err != nil {
		return fmt.Errorf("read the record of %s in %s: %w", key, to, err)
	}
	if ok {
		recs[to] = there
	}
	rt.keys[t] = append(rt.keys[t], key)
	if rt.own[to] == nil {
		rt.own[to] = map[string]bool{}
	}
	rt.own[to][key] = true
	rt.moves[key] = f.decideMove(key, etag, to, []rules.Target{t}, recs)
	return nil
}

// decideMove tells from the ledger whether a file's move to another
// target is done: its record there holds it applied at its current ETag.
// Otherwise it is pending, with the new target's recorded reason, or the
// one an old target recorded last (a run of the new target that failed
// records nothing there).
func (f *Fleet) decideMove(key, etag string, to rules.Target, from []rules.Target, recs map[rules.Target]SourceRecord) *move {
	m := &move{key: key, to: to, from: from, etag: etag}
	rec, ok := recs[to]
	switch {
	case ok && rec.Status == StatusApplied && rec.ETag == etag:
		m.done = true
	case ok && rec.Status != StatusApplied && rec.ETag == etag:
		m.why = notAccepted(rec.Status, rec.Message, rec.Diagnostics)
	default:
		m.why = "not yet applied there"
		prefix := fmt.Sprintf("pending move to %s: ", to)
		for _, t := range from {
			if r := recs[t]; r.Status == StatusPending && strings.HasPrefix(r.Message, prefix) {
				m.why = strings.TrimPrefix(r.Message, prefix)
			}
		}
	}
	return m
}

// notAccepted says why a target did not apply a file: its status, message
// and first errors (diagnostics as rendered; warnings are left out).
func notAccepted(st Status, msg string, diags []string) string {
	var parts, errs []string
	if msg != "" {
		parts = append(parts, msg)
	}
	for _, d := range diags {
		if !strings.Contains(d, ": warning: ") {
			errs = append(errs, d)
		}
	}
	parts = append(parts, errs[:min(len(errs), 3)]...)
	if n := len(errs) - 3; n > 0 {
		parts = append(parts, fmt.Sprintf("and %d more", n))
	}
	if len(parts) == 0 {
		return string(st) + " there"
	}
	return string(st) + " there: " + strings.Join(parts, "; ")
}

// recordScopes are the scopes holding a file's records, or home.
func (f *Fleet) recordScopes(scopes []rules.Target) []rules.Target {
	if len(scopes) == 0 {
		return []rules.Target{f.cfg.Home}
	}
	return scopes
}

// Reconcile routes the request's files to their targets and runs each
// target's engine; only, if non-empty, limits the run to those targets.
//
// A file that moved target is reconciled in both, make before break: the
// new targets of pending moves run first; a move whose new target now
// reports the file applied is done, and the old targets, run next, let
// the file go (revoke what it applied there; an old target that ran
// first, being another move's new target, lets go in one more run of
// those keys). A move not done (the file
// is invalid there, denied by policy, held, or the target failed) is
// pending: each old target keeps what the file applied and reports it
// StatusPending with the reason. Nothing is remembered between runs but
// the ledger, so a later run (an event, a sweep of either target alone)
// decides again from the records.
// One target's failure (AssumeRole denied, region disabled, throttled)
// does not stop the others: it is its TargetResult.Err. The error is for
// what every target needs (listing the files and the ledger). Inline
// (CloudFormation) sources are the home target's.
func (f *Fleet) Reconcile(ctx context.Context, req Request, only []rules.Target) (FleetResult, error) {
	ctx = WithRun(ctx) // one run over every target (run.go)
	var rt routing
	var err error
	if req.All && req.Route != nil && len(only) == 1 {
		rt, err = f.routeOne(ctx, only[0].Resolve(f.cfg.Home), req.Route)
	} else {
		rt, err = f.route(ctx, req)
	}
	if err != nil {
		return FleetResult{}, err
	}
	if req.Budget == nil {
		req.Budget = NewRunBudget() // one blast radius for every target (budget.go)
	}
	var want map[rules.Target]bool
	if len(only) > 0 {
		want = map[rules.Target]bool{}
		for _, t := range only {
			want[t.Resolve(f.cfg.Home)] = true
		}
	}
	var run []rules.Target
	for _, t := range rt.targets {
		if want != nil && !want[t] {
			continue
		}
		if !req.All && len(rt.keys[t]) == 0 && (t != f.cfg.Home || len(req.Inline) == 0) {
			continue // a key request that names nothing here
		}
		run = append(run, t)
	}
	res := FleetResult{Targets: make([]TargetResult, len(run))}
	if req.All && len(only) == 0 {
		res.Offboarded = rt.offboarded
	}
	// Two waves: the new targets of pending moves, then the others.
	first := map[rules.Target]bool{}
	for _, m := range rt.moves {
		if !m.done {
			first[m.to] = true
		}
	}
	var wave1, wave2 []int
	for i, t := range run {
		if first[t] {
			wave1 = append(wave1, i)
		} else {
			wave2 = append(wave2, i)
		}
	}
	pending := map[string]bool{}
	for k, m := range rt.moves {
		pending[k] = !m.done
	}
	f.runWave(ctx, req, rt, run, wave1, res.Targets)
	for _, i := range wave1 {
		f.settleMoves(rt, res.Targets[i])
	}
	f.runWave(ctx, req, rt, run, wave2, res.Targets)
	f.releaseLate(ctx, req, rt, run, wave1, pending, res.Targets)
	return res, nil
}

// releaseLate: a target of the first wave may also be the old target of a
// move into another target of the first wave (two files swapping
// targets). It kept that file, then pending; once the move is done, one
// more run of that key there lets the file go, and its outcome joins the
// target's.
func (f *Fleet) releaseLate(ctx context.Context, req Request, rt routing, run []rules.Target, wave1 []int, pending map[string]bool, out []TargetResult) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, f.cfg.Concurrency)
	for _, i := range wave1 {
		t := run[i]
		var keys []string
		for k, m := range rt.moves {
			if pending[k] && m.done && slices.Contains(m.from, t) {
				keys = append(keys, k)
			}
		}
		if len(keys) == 0 || out[i].Err != nil {
			continue
		}
		slices.Sort(keys)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			tr := Request{Keys: keys, DryRun: req.DryRun, AllowMassRevoke: req.AllowMassRevoke, Reason: req.Reason, Holder: req.Holder}
			tr.Moved = map[string]bool{}
			for _, k := range keys {
				tr.Moved[k] = true
			}
			r, err := f.runEngine(ctx, t, tr, rt)
			if err != nil {
				err = &TargetError{Target: t, Err: err}
				f.log.ErrorContext(ctx, "target failed", "account", t.Account, "region", t.Region, "error", err)
				out[i].Err = err
				return
			}
			out[i].Result.absorb(r)
		}()
	}
	wg.Wait()
}

// absorb adds the outcome of a later run in the same target: its actions,
// drift corrections, policy refusals, and its sources' outcomes (replacing
// the earlier ones of the same keys).
func (r *Result) absorb(o Result) {
	r.Plan.Actions = append(r.Plan.Actions, o.Plan.Actions...)
	SortActions(r.Plan.Actions)
	r.Executed = r.Executed || o.Executed
	r.HeldCleanup += o.HeldCleanup
	r.Drift.Drifted = append(r.Drift.Drifted, o.Drift.Drifted...)
	r.Drift.Reverted += o.Drift.Reverted
	r.Policy.Rejected = append(r.Policy.Rejected, o.Policy.Rejected...)
	r.Policy.Refused = append(r.Policy.Refused, o.Policy.Refused...)
	for _, s := range o.Sources {
		if i := slices.IndexFunc(r.Sources, func(x SourceResult) bool { return x.Key == s.Key }); i >= 0 {
			r.Sources[i] = s
		} else {
			r.Sources = append(r.Sources, s)
		}
	}
}

// runWave runs the targets run[i] for i in idx, at most Concurrency at
// once, into out[i].
func (f *Fleet) runWave(ctx context.Context, req Request, rt routing, run []rules.Target, idx []int, out []TargetResult) {
	sem := make(chan struct{}, f.cfg.Concurrency)
	var wg sync.WaitGroup
	for _, i := range idx {
		t := run[i]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			r, err := f.reconcileTarget(ctx, t, req, rt)
			if err != nil {
				err = &TargetError{Target: t, Err: err}
				f.log.ErrorContext(ctx, "target failed", "account", t.Account, "region", t.Region, "error", err)
			}
			out[i] = TargetResult{Target: t, Result: r, Err: err}
		}()
	}
	wg.Wait()
}

// settleMoves decides the pending moves into a target from its run: done
// when it reports the file applied, else pending with its reason.
func (f *Fleet) settleMoves(rt routing, tr TargetResult) {
	for _, m := range rt.moves {
		if m.done || m.to != tr.Target {
			continue
		}
		if tr.Err != nil {
			var te *TargetError
			if errors.As(tr.Err, &te) {
				m.why = te.Err.Error()
			} else {
				m.why = tr.Err.Error()
			}
			continue
		}
		i := slices.IndexFunc(tr.Result.Sources, func(s SourceResult) bool { return s.Key == m.key })
		if i < 0 {
			m.why = "not judged there"
			continue
		}
		s := tr.Result.Sources[i]
		if s.Status == StatusApplied {
			m.done = true
			continue
		}
		m.why = notAccepted(s.Status, s.Message, slices.Concat(s.Diagnostics.Strings(), s.Recorded))
	}
}

func (f *Fleet) reconcileTarget(ctx context.Context, t rules.Target, req Request, rt routing) (Result, error) {
	tr := req
	if !req.All {
		tr.Keys = dedupe(rt.keys[t])
	}
	if t != f.cfg.Home {
		tr.Inline = nil
	}
	tr.Moved = rt.movedOut(t)
	return f.runEngine(ctx, t, tr, rt)
}

// movedOut are the files sent to t as gone that another target owns: they
// moved, they are not gone (Request.Moved).
func (rt routing) movedOut(t rules.Target) map[string]bool {
	var out map[string]bool
	for _, k := range rt.keys[t] {
		if rt.own[t][k] {
			continue
		}
		for o, own := range rt.own {
			if o != t && own[k] {
				if out == nil {
					out = map[string]bool{}
				}
				out[k] = true
				break
			}
		}
	}
	return out
}

// runEngine runs tr on target t's engine, on its view of the Source, with
// the moves still pending out of t.
func (f *Fleet) runEngine(ctx context.Context, t rules.Target, tr Request, rt routing) (Result, error) {
	v := &view{src: f.cfg.Source, objs: rt.listed[t], bodies: rt.bodies, parsed: rt.parsed, own: rt.own[t]}
	if recs, ok := rt.records[t]; ok && tr.All {
		v.recs, v.hasRecs = slices.Clone(recs), true
	}
	tr.Pending = rt.pendingIn(t)
	eng, err := f.cfg.Engine(ctx, t, v, f.cfg.Ledger.For(t))
	if err != nil {
		return Result{}, err
	}
	return eng.Reconcile(ctx, tr)
}

// view is one target's part of the Source: it lists only that target's
// files and serves the bodies the Fleet has read already.
type view struct {
	src    Source
	objs   []ObjectInfo
	bodies map[string]Object
	parsed map[string]parsedFile
	own    map[string]bool
	// recs are the target's source records read routing it, handed once
	// (takeRecords).
	mu      sync.Mutex
	recs    []SourceRecord
	hasRecs bool
}

// takeRecords returns, the first time only, the target's source records
// the Fleet read routing this run: the engine's first attempt lists them
// no more; a later attempt (after a lost race) reads them again.
func (v *view) takeRecords() ([]SourceRecord, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	recs, ok := v.recs, v.hasRecs
	v.recs, v.hasRecs = nil, false
	return recs, ok
}

func (v *view) List(context.Context) ([]ObjectInfo, error) { return slices.Clone(v.objs), nil }

func (v *view) Get(ctx context.Context, key string) (Object, error) {
	if !v.own[key] {
		return Object{}, fmt.Errorf("%s: another target's file: %w", key, ErrNotFound)
	}
	if obj, ok := v.bodies[key]; ok {
		return obj, nil
	}
	return v.src.Get(ctx, key)
}

// getSibling reads any file, routed here or not: a run refreshing a
// sibling (refresh.go) checks its target as it loads it.
func (v *view) getSibling(ctx context.Context, key string) (Object, error) {
	if obj, ok := v.bodies[key]; ok {
		return obj, nil
	}
	return v.src.Get(ctx, key)
}

// parsedFile is a file parsed once in a run, for the ETag it had then.
type parsedFile struct {
	etag  string
	file  *rules.File
	diags rules.Diagnostics
}

// parseOnce parses a body read while routing and keeps the outcome for
// the engine of its target (parsedSource).
func (rt *routing) parseOnce(obj Object) (*rules.File, rules.Diagnostics) {
	file, diags := parseFile(obj.Key, obj.Body)
	if rt.parsed == nil {
		rt.parsed = map[string]parsedFile{}
	}
	rt.parsed[obj.Key] = parsedFile{etag: obj.ETag, file: file, diags: diags}
	return file, diags
}

// parsedBody returns what the Fleet parsed of obj in this run.
func (v *view) parsedBody(obj Object) (*rules.File, rules.Diagnostics, bool) {
	p, ok := v.parsed[obj.Key]
	if !ok || p.etag != obj.ETag {
		return nil, nil, false
	}
	return p.file, p.diags, true
}

// sortTargets sorts targets, home first.
func sortTargets(home rules.Target, set map[rules.Target]bool) []rules.Target {
	out := make([]rules.Target, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b rules.Target) int {
		switch {
		case a == home:
			return -1
		case b == home:
			return 1
		}
		return cmp.Or(cmp.Compare(a.Account, b.Account), cmp.Compare(a.Region, b.Region))
	})
	return out
}

func dedupe(xs []string) []string {
	out := slices.Clone(xs)
	slices.Sort(out)
	return slices.Compact(out)
}
