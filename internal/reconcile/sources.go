package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/sgrules/sgrules/pkg/rules"
)

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

	// Outcome of reading and expanding, fixed for the whole run.
	baseStatus    Status
	baseDiags     rules.Diagnostics
	baseDesired   []rules.Permission
	baseExclusive []string

	// Per planning attempt (the guard and the group check may change them).
	status    Status
	diags     rules.Diagnostics
	message   string
	desired   []rules.Permission
	exclusive []string
}

func (s *loaded) resetPlanState() {
	s.status, s.message = s.baseStatus, ""
	s.diags = slices.Clone(s.baseDiags)
	s.desired, s.exclusive = s.baseDesired, s.baseExclusive
}

// keepPrevious makes the source declare what it applied before.
func (s *loaded) keepPrevious() {
	s.desired, s.exclusive = s.rec.Permissions, s.rec.Exclusive
}

func (s *loaded) hold(msg string) {
	s.status, s.message = StatusHeld, msg
	s.keepPrevious()
}

// rejectMissingGroups marks the source invalid when a permission it newly
// declares needs a group that does not exist.
func (s *loaded) rejectMissingGroups(bad map[rules.Key]bool) {
	if s.status != StatusApplied {
		return
	}
	var diags rules.Diagnostics
	for _, p := range s.desired {
		if !bad[p.Key] {
			continue
		}
		msg := fmt.Sprintf("security group %s does not exist", p.Key.GroupID)
		if p.Key.Peer.Kind == rules.PeerGroup {
			msg = fmt.Sprintf("security group %s or %s does not exist", p.Key.GroupID, p.Key.Peer.Value)
		}
		d := rules.Diagnostic{File: s.key, Rule: p.Owner.Rule, Field: "securityGroup", Severity: rules.SeverityError, Msg: msg}
		if s.file != nil {
			for _, r := range s.file.Rules {
				if r.Name == p.Owner.Rule {
					pos := r.FieldPos["securityGroup"]
					if pos.Line == 0 {
						pos = r.Pos
					}
					d.Line, d.Col = pos.Line, pos.Col
				}
			}
		}
		diags = append(diags, d)
	}
	if len(diags) == 0 {
		return
	}
	s.status = StatusInvalid
	s.diags = append(s.diags, diags...)
	s.keepPrevious()
}

// rejectQuota marks the source invalid for the rest of the run: EC2 refused
// its new rules in a group that would exceed the rules quota.
func (s *loaded) rejectQuota(qe *quotaError) {
	s.baseStatus = StatusInvalid
	s.baseDiags = append(s.baseDiags, rules.Diagnostic{File: s.key, Line: 1, Col: 1, Field: "securityGroup",
		Severity: rules.SeverityError,
		Msg: fmt.Sprintf("security group %s: EC2 refused %d new %s rules: the group's rules quota (60 per direction by default) would be exceeded; split the rules over more groups or raise the quota",
			qe.group, qe.count, qe.dir)})
	s.baseDesired, s.baseExclusive = s.rec.Permissions, s.rec.Exclusive
}

// load reads every source the request names: from the Source (unless the
// ledger shows it unchanged during a sweep), or inline; parses, resolves
// group references in one batch, and expands.
func (e *Engine) load(ctx context.Context, req Request) ([]*loaded, error) {
	byKey := map[string]*loaded{}
	get := func(key string, kind SourceKind) *loaded {
		s, ok := byKey[key]
		if !ok {
			s = &loaded{key: key, kind: kind}
			byKey[key] = s
		}
		return s
	}

	listed := map[string]ObjectInfo{}
	if req.All {
		if e.cfg.Source != nil {
			objs, err := e.cfg.Source.List(ctx)
			if err != nil {
				return nil, fmt.Errorf("list sources: %w", err)
			}
			for _, o := range objs {
				listed[o.Key] = o
				get(o.Key, KindFile)
			}
		}
		recs, err := e.cfg.Ledger.ListSources(ctx)
		if err != nil {
			return nil, fmt.Errorf("list ledger sources: %w", err)
		}
		for _, r := range recs {
			if r.Kind == KindFile && e.cfg.Source == nil {
				continue // a CloudFormation-only engine does not judge files
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
	for _, s := range byKey {
		if s.hasRec {
			continue
		}
		rec, ok, err := e.cfg.Ledger.GetSource(ctx, s.key)
		if err != nil {
			return nil, fmt.Errorf("read ledger source %s: %w", s.key, err)
		}
		s.rec, s.hasRec = rec, ok
	}

	keys := sortedKeys(byKey)
	for _, k := range keys {
		s := byKey[k]
		if err := e.read(ctx, req, s, listed); err != nil {
			return nil, err
		}
	}

	// Resolve every reference of every parsed file in one batch.
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
	if len(refs) > 0 {
		var err error
		resolved, err = e.cfg.Groups.ResolveGroups(ctx, refs)
		if err != nil {
			return nil, fmt.Errorf("resolve %d group references: %w", len(refs), err)
		}
	}
	resolve := func(g rules.GroupRef) []string {
		if g.IsID() {
			return []string{g.ID}
		}
		return resolved[g.String()]
	}

	out := make([]*loaded, 0, len(keys))
	for _, k := range keys {
		s := byKey[k]
		if s.file != nil {
			perms, excl, diags := rules.Expand(s.file, s.key, resolve)
			s.baseDiags = append(s.baseDiags, diags...)
			if diags.HasErrors() {
				s.baseStatus = StatusInvalid
			} else {
				rules.SortPermissions(perms)
				s.baseDesired, s.baseExclusive = perms, excl
			}
		}
		if s.baseStatus != StatusApplied {
			// Invalid or unchanged-invalid: keep what it applied before.
			s.baseDesired, s.baseExclusive = s.rec.Permissions, s.rec.Exclusive
		}
		if s.gone && !s.hasRec {
			continue // never seen, already gone: nothing to do
		}
		s.resetPlanState()
		out = append(out, s)
	}
	return out, nil
}

// read fills one source's content or cached state.
func (e *Engine) read(ctx context.Context, req Request, s *loaded, listed map[string]ObjectInfo) error {
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
	if req.All {
		info, ok := listed[s.key]
		if !ok {
			s.gone = true
			return nil
		}
		if s.hasRec && s.rec.ETag == info.ETag && (s.rec.Status == StatusApplied || s.rec.Status == StatusInvalid) {
			s.cached, s.info = true, info
			s.baseStatus = s.rec.Status
			s.baseDesired, s.baseExclusive = s.rec.Permissions, s.rec.Exclusive
			return nil
		}
	}
	obj, err := e.cfg.Source.Get(ctx, s.key)
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
	f, diags := rules.Parse(s.key, obj.Body)
	s.baseDiags = append(s.baseDiags, diags...)
	if diags.HasErrors() || f == nil {
		s.baseStatus = StatusInvalid
		return nil
	}
	s.file = f
	return nil
}

// sourceRecords returns the ledger writes for sources whose record changes.
func (e *Engine) sourceRecords(srcs []*loaded) Commit {
	var c Commit
	for _, s := range srcs {
		if s.cached && s.status == s.rec.Status {
			continue
		}
		if s.gone && s.status == StatusApplied {
			if s.hasRec {
				c.DeleteSources = append(c.DeleteSources, s.rec)
			}
			s.status = StatusDeleted
			continue
		}
		rec := SourceRecord{
			Key: s.key, Kind: s.kind, ETag: s.info.ETag, VersionID: s.info.VersionID,
			Status: s.status, Diagnostics: s.diags.Strings(), Message: s.message,
			Permissions: s.desired, Exclusive: s.exclusive,
			AppliedAt: s.rec.AppliedAt, Version: s.rec.Version,
		}
		if s.gone {
			rec.ETag, rec.VersionID = s.rec.ETag, s.rec.VersionID
		}
		if s.hasRec && sameSource(rec, s.rec) {
			continue
		}
		if s.status == StatusApplied {
			rec.AppliedAt = e.cfg.Now().UTC()
		}
		c.Sources = append(c.Sources, rec)
	}
	return c
}

func sameSource(a, b SourceRecord) bool {
	return a.Kind == b.Kind && a.ETag == b.ETag && a.Status == b.Status && a.Message == b.Message &&
		slices.Equal(a.Diagnostics, b.Diagnostics) && slices.Equal(a.Exclusive, b.Exclusive) &&
		slices.Equal(a.Permissions, b.Permissions)
}
