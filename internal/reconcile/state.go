package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/sgrules/sgrules/pkg/rules"
)

// Observe: read the sources, the ledger and EC2. Nothing here decides what
// to change.

// StatusDeleted is reported (never stored) for a source that no longer
// exists and now owns nothing.
const StatusDeleted Status = "deleted"

// loaded is one source in scope: what it declares now, or, when it is
// invalid or held, what it applied before.
type loaded struct {
	key    string
	kind   SourceKind
	rec    SourceRecord
	hasRec bool
	info   ObjectInfo
	file   *rules.File
	gone   bool
	// cached: the source is unchanged since the ledger recorded it, so its
	// recorded permissions are used without reading or parsing it again.
	cached bool
	// static: the file names every group by id (nothing to resolve).
	static bool
	// resolve is the resolver the file was expanded with.
	resolve rules.Resolver

	// pending: the file moved to a target that has not accepted it yet;
	// here it keeps its record (Request.Pending).
	pending bool
	// now is the time the source was loaded at: its rules whose deadline
	// has passed then are not declared (unexpired), whatever path the
	// declaration takes (the file, its record, a kept previous state).
	now time.Time

	// Outcome of reading and expanding, fixed for the whole attempt.
	baseStatus    Status
	baseMessage   string
	baseDiags     rules.Diagnostics
	baseDesired   []rules.Permission
	baseExclusive []string

	// Per plan: the verdicts of the plan's policies may change them.
	status    Status
	diags     rules.Diagnostics
	message   string
	guard     *GuardHold
	desired   []rules.Permission
	exclusive []string
}

func (s *loaded) resetPlanState() {
	s.status, s.message, s.guard = s.baseStatus, s.baseMessage, nil
	s.diags = slices.Clone(s.baseDiags)
	s.desired, s.exclusive = unexpired(s.baseDesired, s.now), s.baseExclusive
}

// keepPrevious makes the source declare what it applied before.
func (s *loaded) keepPrevious() {
	s.desired, s.exclusive = unexpired(s.rec.Permissions, s.now), s.rec.Exclusive
}

// fieldPos locates a rule's field in the parsed file (the rule itself, or
// line 1 when the file was not parsed in this run).
func (s *loaded) fieldPos(rule, field string) rules.Pos {
	if s.file != nil {
		for _, r := range s.file.Rules {
			if r.Name == rule {
				if pos := r.FieldPos[field]; pos.Line != 0 {
					return pos
				}
				return r.Pos
			}
		}
	}
	return rules.Pos{Line: 1, Col: 1}
}

// load reads every source the request names: from the Source (unless the
// ledger shows it unchanged and static during a sweep), or inline; parses,
// resolves group references in one batch, and expands. It also returns the
// keys of every source known to the ledger or the Source.
// With noCache (a policy in force) every file is read.
// It also returns what resolving read of the groups it found, and what
// the ledger records of a sweep that it does not load declare (unloaded).
func (e *Engine) load(ctx context.Context, req Request, noCache bool) ([]*loaded, map[string]bool, *unloaded, []GroupInfo, error) {
	byKey := map[string]*loaded{}
	var skipped []SourceRecord
	known := map[string]bool{}
	now := e.cfg.Now()
	get := func(key string, kind SourceKind) *loaded {
		s, ok := byKey[key]
		if !ok {
			s = &loaded{key: key, kind: kind, now: now}
			byKey[key] = s
		}
		return s
	}

	listed := map[string]ObjectInfo{}
	if req.All {
		if e.cfg.Source != nil {
			objs, err := e.cfg.Source.List(ctx)
			if err != nil {
				return nil, nil, nil, nil, fmt.Errorf("list sources: %w", err)
			}
			for _, o := range objs {
				listed[o.Key] = o
				known[o.Key] = true
				get(o.Key, KindFile)
			}
		}
		recs, ok := []SourceRecord(nil), false
		if rs, is := e.cfg.Source.(recordedSource); is {
			recs, ok = rs.takeRecords() // the Fleet read them routing the sweep
		}
		if !ok {
			var err error
			if recs, err = e.cfg.Ledger.ListSources(ctx); err != nil {
				return nil, nil, nil, nil, fmt.Errorf("list ledger sources: %w", err)
			}
		}
		for _, r := range recs {
			known[r.Key] = true
			if r.Kind == KindFile && e.cfg.Source == nil {
				skipped = append(skipped, r)
				continue // a CloudFormation-only engine does not judge files
			}
			if r.Kind == KindCFN && r.Status == StatusUnknown {
				skipped = append(skipped, r)
				continue // its declaration is lost until CloudFormation sends it again
			}
			s := get(r.Key, r.Kind)
			s.rec, s.hasRec = r, true
		}
	}
	for _, k := range req.Keys {
		get(k, KindFile)
	}
	for k := range req.Inline {
		get(k, KindCFN)
	}
	outside := newUnloaded(now)
	for _, r := range skipped {
		if byKey[r.Key] == nil {
			outside.add(r)
		}
	}
	for _, s := range byKey {
		if s.hasRec {
			continue
		}
		if req.refresh != nil {
			if rec, ok := req.refresh.recs[s.key]; ok {
				s.rec, s.hasRec = rec, true // a sibling, read checking it
				continue
			}
		}
		rec, ok, err := e.cfg.Ledger.GetSource(ctx, s.key)
		if err != nil {
			return nil, nil, nil, nil, fmt.Errorf("read ledger source %s: %w", s.key, err)
		}
		s.rec, s.hasRec = rec, ok
	}

	keys := sortedKeys(byKey)
	for _, k := range keys {
		if err := e.read(ctx, req, byKey[k], listed, noCache); err != nil {
			return nil, nil, nil, nil, err
		}
	}
	resolve, found, err := e.resolver(ctx, byKey, keys)
	if err != nil {
		return nil, nil, nil, nil, err
	}

	out := make([]*loaded, 0, len(keys))
	for _, k := range keys {
		s := byKey[k]
		if s.file != nil {
			s.static, s.resolve = len(s.file.Refs()) == 0, resolve
			perms, excl, diags := rules.ExpandAt(s.file, s.key, resolve, now)
			s.baseDiags = append(s.baseDiags, diags...)
			if diags.HasErrors() {
				s.baseStatus = StatusInvalid
			} else {
				rules.SortPermissions(perms)
				s.baseDesired, s.baseExclusive = perms, excl
			}
		}
		if s.baseStatus != StatusApplied {
			// Invalid (or recorded invalid): keep what it applied before.
			s.baseDesired, s.baseExclusive = s.rec.Permissions, s.rec.Exclusive
		}
		if s.gone && !s.hasRec {
			continue // never seen, already gone: nothing to do
		}
		s.resetPlanState()
		out = append(out, s)
	}
	return out, known, outside, found, nil
}

// resolver resolves every name and tag reference of every parsed file in
// one batch (one DescribeSecurityGroups per distinct set of filters).
// With a GroupInfoResolver it also returns the groups the calls found.
func (e *Engine) resolver(ctx context.Context, byKey map[string]*loaded, keys []string) (rules.Resolver, []GroupInfo, error) {
	var refs []rules.GroupRef
	seen := map[string]bool{}
	for _, k := range keys {
		if f := byKey[k].file; f != nil {
			for _, r := range f.Refs() {
				if !seen[r.String()] {
					seen[r.String()] = true
					refs = append(refs, r)
				}
			}
		}
	}
	resolved := map[string][]string{}
	var found []GroupInfo
	if len(refs) > 0 {
		var err error
		if gr, ok := e.cfg.Groups.(GroupInfoResolver); ok {
			resolved, found, err = gr.ResolveGroupsInfo(ctx, refs)
		} else {
			resolved, err = e.cfg.Groups.ResolveGroups(ctx, refs)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("resolve %d group references: %w", len(refs), err)
		}
	}
	return func(g rules.GroupRef) []string {
		if g.IsID() {
			return []string{g.ID}
		}
		return resolved[g.String()]
	}, found, nil
}

// read fills one source's content or cached state.
func (e *Engine) read(ctx context.Context, req Request, s *loaded, listed map[string]ObjectInfo, noCache bool) error {
	s.baseStatus = StatusApplied
	if in, ok := req.Inline[s.key]; ok {
		s.kind = KindCFN
		s.baseDiags = append(s.baseDiags, in.Diagnostics...)
		switch {
		case in.Diagnostics.HasErrors():
			s.baseStatus = StatusInvalid
		case in.File == nil:
			s.gone = true
		default:
			s.file = in.File
		}
		return nil
	}
	if s.kind == KindCFN {
		// A custom resource seen by a sweep: it only changes through
		// CloudFormation, so its record is its declaration.
		s.cached = true
		s.baseStatus = s.rec.Status
		s.baseDesired, s.baseExclusive = s.rec.Permissions, s.rec.Exclusive
		return nil
	}
	if e.cfg.Source == nil {
		return fmt.Errorf("source %s: no rule source configured", s.key)
	}
	if why, ok := req.Pending[s.key]; ok && s.hasRec {
		// Moved, not yet accepted where it goes: it keeps its record here
		// (make before break), whatever the file says now.
		s.pending, s.baseStatus, s.baseMessage = true, StatusPending, why
		return nil
	}
	if req.All {
		info, ok := listed[s.key]
		if !ok {
			s.gone = true
			return nil
		}
		// Level-based means the current file and the current EC2 state:
		// only an applied file that names its groups by id depends on its
		// content alone. Invalid files are read again (their invalidity
		// may have come from EC2: a missing group, a quota), and so are
		// files whose names and tags must be resolved again.
		if !noCache && s.hasRec && s.rec.ETag == info.ETag && s.rec.Status == StatusApplied && s.rec.Static {
			s.cached, s.static, s.info = true, true, info
			s.baseDesired, s.baseExclusive = s.rec.Permissions, s.rec.Exclusive
			return nil
		}
	}
	obj, ok := Object{}, false
	if req.refresh != nil {
		obj, ok = req.refresh.objs[s.key] // a sibling, read checking it
	}
	var err error
	if !ok {
		obj, err = e.cfg.Source.Get(ctx, s.key)
	}
	if errors.Is(err, ErrNotFound) {
		s.gone = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("read source %s: %w", s.key, err)
	}
	s.info = obj.ObjectInfo
	if obj.Body == nil && obj.Size > rules.MaxFileSize {
		s.baseStatus = StatusInvalid
		s.baseDiags = append(s.baseDiags, rules.Diagnostic{File: s.key, Line: 1, Col: 1, Severity: rules.SeverityError,
			Msg: fmt.Sprintf("file is %d bytes; the limit is %d (1 MiB)", obj.Size, rules.MaxFileSize)})
		return nil
	}
	var f *rules.File
	var diags rules.Diagnostics
	parsed := false
	if ps, ok := e.cfg.Source.(parsedSource); ok {
		f, diags, parsed = ps.parsedBody(obj) // the Fleet parsed it routing it
	}
	if !parsed {
		f, diags = parseFile(s.key, obj.Body)
	}
	s.baseDiags = append(s.baseDiags, diags...)
	if diags.HasErrors() || f == nil {
		s.baseStatus = StatusInvalid
		return nil
	}
	if diags := rules.CheckAccounts(f, e.cfg.AllowAccount); diags.HasErrors() {
		// Whoever can write a file can reach only the listed accounts: the
		// file is invalid wherever it was applied, and changes nothing.
		s.baseDiags = append(s.baseDiags, diags...)
		s.baseStatus = StatusInvalid
		return nil
	}
	diags, err = checkRegion(ctx, f, e.cfg.RegionExists, e.cfg.Partition)
	if err != nil {
		return err
	}
	if diags.HasErrors() {
		// Nothing can be written in a region that does not exist: the
		// file is invalid, and keeps what it applied where it was.
		s.baseDiags = append(s.baseDiags, diags...)
		s.baseStatus = StatusInvalid
		return nil
	}
	if f.Target.Resolve(e.cfg.Home) != e.cfg.Target {
		// Another target's file: gone from this one (a file that moved
		// is revoked here and applied in its new target).
		s.gone = true
		return nil
	}
	s.file = f
	return nil
}

// parseFile is rules.Parse (a variable: tests count the parses of a run).
var parseFile = rules.Parse

// parsedSource is a Source that may hold a body already parsed in this
// run (the Fleet's view of a target): each file is parsed once per run.
type parsedSource interface {
	parsedBody(obj Object) (*rules.File, rules.Diagnostics, bool)
}

// recordedSource is a Source that may hold the target's source records,
// read in this run by the Fleet routing a sweep: each is listed once per
// run (the first attempt's; a later one reads them again).
type recordedSource interface {
	takeRecords() ([]SourceRecord, bool)
}

// state is what the engine read of the ledger and EC2 for one plan.
type state struct {
	groups    map[string]bool
	owned     []OwnedPermission
	actual    []ActualRule
	exclusive map[string]bool
	// intents are the ledger's write-ahead intents (sweeps only): the
	// proof that a rule carrying this deployment's tag, which the ledger
	// does not hold, was created by it (a crash came before the commit).
	intents []Intent
	// info caches DescribeGroups answers for the attempt (nil: the group
	// does not exist).
	info map[string]*GroupInfo
	// pauseTooLong are the groups whose pause tag is beyond MaxPause.
	pauseTooLong map[string]bool
	// prefixLists caches DescribePrefixLists answers for the attempt (nil:
	// the list does not exist).
	prefixLists map[string]*PrefixListInfo
	// entries caches the prefix list entries the policy read in the
	// attempt (prefixlists.go).
	entries map[string]*listEntries
}

// readState reads the ledger and EC2 for the groups in scope.
// found are the groups resolving the files' references read: their facts
// for the attempt.
// With full (a policy in force), the rules of every group are described.
func (e *Engine) readState(ctx context.Context, req Request, srcs []*loaded, id string, found []GroupInfo, full bool) (state, error) {
	st := state{groups: map[string]bool{}, exclusive: map[string]bool{}, info: map[string]*GroupInfo{}}
	for _, g := range found {
		st.info[g.GroupID] = &g
	}
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
	var tagged []ActualRule // a sweep's: every rule tagged with the identity
	// A sweep reads the other rules with their groups when EC2 lists them
	// (GroupInfoResolver) and no policy judges every rule of the groups
	// (full: it needs their ids and tags).
	_, lists := e.cfg.Groups.(GroupInfoResolver)
	sweep := req.All && restrict == nil && id != "" && lists && !full
	if req.All && restrict == nil {
		st.owned, err = e.cfg.Ledger.AllPermissions(ctx)
		if err != nil {
			return st, fmt.Errorf("read ledger: %w", err)
		}
		for _, o := range st.owned {
			add(o.Key.GroupID)
		}
		if id != "" {
			tagged, err = e.cfg.Groups.DescribeManagedRules(ctx, id, e.cfg.LedgerID)
			if err != nil {
				return st, fmt.Errorf("find rules tagged %s=%s: %w", TagLedger, id, err)
			}
			for _, r := range tagged {
				add(r.Key.GroupID)
			}
		}
		if st.intents, err = e.cfg.Ledger.Intents(ctx, nil); err != nil {
			return st, fmt.Errorf("read ledger intents: %w", err)
		}
		// A rule a crashed run claimed is found by its intent only
		// (it does not carry this deployment's TagLedger).
		for _, it := range st.intents {
			add(it.Key.GroupID)
		}
	} else {
		// A source's groups, or the groups a sweep is restricted to.
		ids := st.groups
		if req.All {
			ids = restrict
		}
		st.owned, err = e.cfg.Ledger.GroupPermissions(ctx, sortedKeys(ids))
		if err != nil {
			return st, fmt.Errorf("read ledger: %w", err)
		}
		for _, o := range st.owned {
			add(o.Key.GroupID)
		}
		if req.All {
			if st.intents, err = e.cfg.Ledger.Intents(ctx, sortedKeys(ids)); err != nil {
				return st, fmt.Errorf("read ledger intents: %w", err)
			}
		}
	}
	ids := sortedKeys(st.groups)
	if len(ids) == 0 {
		return st, nil
	}
	if sweep {
		if err := e.groupInfo(ctx, &st, st.groups); err != nil {
			return st, err
		}
		if known(st.info, ids) {
			st.actual, err = e.sweepRules(ctx, &st, srcs, tagged, ids)
			return st, err
		}
	}
	st.actual, err = e.cfg.Groups.DescribeRules(ctx, ids)
	if err != nil {
		return st, fmt.Errorf("read rules of %d groups: %w", len(ids), err)
	}
	return st, nil
}

// known reports whether the rules of every group that exists among ids
// were read with it (GroupInfo.RulesKnown).
func known(info map[string]*GroupInfo, ids []string) bool {
	for _, g := range ids {
		if gi := info[g]; gi != nil && !gi.RulesKnown {
			return false
		}
	}
	return true
}

// sweepRules are the rules of a sweep's groups, each rule of the
// deployment read once: the rules tagged with its identity (tagged, read
// in every group at once), the other rules of a group as its description
// lists them (GroupInfo.Rules: key and description, no id or tags), and
// the rules of the groups where one of those may need acting on described
// again (one DescribeRules of those groups): an exclusive group, or a
// rule not tagged ours whose key a source declares or declared, the
// ledger holds (a rule adopted, created by others) or an intent names.
// A clean sweep describes no group again.
func (e *Engine) sweepRules(ctx context.Context, st *state, srcs []*loaded, tagged []ActualRule, ids []string) ([]ActualRule, error) {
	ours := map[rules.Key]bool{}
	for _, r := range tagged {
		ours[r.Key] = true
	}
	interest := map[rules.Key]bool{}
	for _, s := range srcs {
		for _, ps := range [][]rules.Permission{s.desired, s.baseDesired, s.rec.Permissions} {
			for _, p := range ps {
				interest[p.Key] = true
			}
		}
	}
	for _, o := range st.owned {
		interest[o.Key] = true
	}
	for _, it := range st.intents {
		interest[it.Key] = true
	}
	var out []ActualRule
	describe := map[string]bool{}
	for _, g := range ids {
		gi := st.info[g]
		if gi == nil {
			continue // gone: no rules
		}
		need := st.exclusive[g]
		for _, r := range gi.Rules {
			need = need || !ours[r.Key] && interest[r.Key]
		}
		if need {
			describe[g] = true
			continue
		}
		for _, r := range gi.Rules {
			if !ours[r.Key] {
				out = append(out, r)
			}
		}
	}
	for _, r := range tagged {
		if st.groups[r.Key.GroupID] && !describe[r.Key.GroupID] {
			out = append(out, r)
		}
	}
	if len(describe) > 0 {
		rs, err := e.cfg.Groups.DescribeRules(ctx, sortedKeys(describe))
		if err != nil {
			return nil, fmt.Errorf("read rules of %d groups: %w", len(describe), err)
		}
		out = append(out, rs...)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Key.Less(out[j].Key) || out[i].Key == out[j].Key && out[i].RuleID < out[j].RuleID
	})
	return out, nil
}

// groupInfo returns what EC2 knows of the groups, reading only those not
// read before in this attempt (one DescribeGroups call).
func (e *Engine) groupInfo(ctx context.Context, st *state, ids map[string]bool) error {
	var need []string
	for id := range ids {
		if _, ok := st.info[id]; !ok {
			need = append(need, id)
		}
	}
	if len(need) == 0 {
		return nil
	}
	slices.Sort(need)
	infos, err := e.cfg.Groups.DescribeGroups(ctx, need)
	if err != nil {
		return fmt.Errorf("read %d groups: %w", len(need), err)
	}
	for _, id := range need {
		st.info[id] = nil
	}
	for _, g := range infos {
		st.info[g.GroupID] = &g
	}
	return nil
}

// paused reports whether the group's sgrules:pause-until tag is in the
// future, and no further than maxPause (negative: no cap). A tag further
// ahead pauses nothing: it is noted in st.pauseTooLong, reported.
func (st *state) paused(group string, now time.Time, maxPause time.Duration) bool {
	g := st.info[group]
	if g == nil {
		return false
	}
	v, ok := g.Tags[TagPause]
	if !ok {
		return false
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil || !t.After(now) {
		return false
	}
	if maxPause >= 0 && t.Sub(now) > maxPause {
		if st.pauseTooLong == nil {
			st.pauseTooLong = map[string]bool{}
		}
		st.pauseTooLong[group] = true
		return false
	}
	return true
}

func setOf(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}
