package reconcile

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Refresh: a file run about to write a group also applies the group's
// other rule files whose objects changed since their ledger records (the
// siblings). A sync changing several files of one group delivers them in
// different batches; without this, each batch's run writes the group
// again, the siblings represented by their records (their old content).
// With it, the first run writing the group writes all its pending changes
// (one call per group and direction), and the siblings' own runs find
// nothing to do.
//
// A sibling is read and judged exactly as a file the request names (the
// same load: parse, account and region checks, expansion, the plan's
// policy admission), and its record is written as its own run would write
// it. Only a sibling that comes out applied is refreshed: one that is
// invalid, refused, held, gone or moved to another target is left out of
// the run altogether (it keeps its record and what it applied; its own
// event reports it). Nothing else changes for the request's own files:
// when adding the siblings changes the outcome of one of them (a guard
// hold, a policy verdict), the run is planned without siblings.
//
// The cost, only in runs that write: per group written, one ledger read
// (GetSource) and one object read (Get) per other file owning a rule
// there (an applied file's record: at most MaxSiblingChecks per run);
// when some changed, the run loads and observes again with them (group
// references, the ledger of the groups and their rules read once more;
// the source records and the siblings' objects are those read already,
// the request's own objects too in a Fleet, which holds them).

// MaxSiblingChecks bounds the sibling files a run reads to check whether
// they changed: a group owned by more files leaves the rest to their own
// events.
const MaxSiblingChecks = 32

// refresh is a request's sibling refresh (Request.refresh).
type refresh struct {
	// keys are the request's own keys.
	keys []string
	// objs are the siblings' objects as read when checking them: each is
	// read once per attempt.
	objs map[string]Object
	// recs are their records as read then, and those of the request's
	// own sources as the run without siblings read them: the load reads
	// them no more (the commit writes each conditionally on the version
	// read).
	recs map[string]SourceRecord
	// base are the statuses of the request's own sources planned without
	// the siblings.
	base map[string]Status
}

// siblingSource is a Source that restricts Get to some files (a Fleet's
// view of a target: the files routed there) and can still read any file
// to check a sibling (whose target the load then checks).
type siblingSource interface {
	getSibling(ctx context.Context, key string) (Object, error)
}

// withSiblings returns the request extended with the siblings of the
// groups the plan writes whose objects changed since their records, or
// false when there are none (or the request is not a file run).
//
// resync are the siblings an earlier attempt of the request changed in EC2
// without recording them (its commit lost a race): each is loaded again
// whatever its record says, so the request puts back what the sibling
// declares now (a run of another file would leave its rules alone).
func (e *Engine) withSiblings(ctx context.Context, at *attempt, p planned, resync map[string]bool) (Request, bool) {
	req := at.req
	if req.refresh != nil || req.All || req.DryRun || len(req.Inline) > 0 || len(req.Keys) == 0 || e.cfg.Source == nil {
		return req, false
	}
	written := setOf(planGroups(p.diffOutput))
	if len(written) == 0 && len(resync) == 0 {
		return req, false
	}
	inRun := map[string]bool{}
	base := map[string]Status{}
	for _, s := range at.srcs {
		inRun[s.key] = true
		base[s.key] = s.status
	}
	cands := map[string]bool{}
	for k := range resync {
		if !inRun[k] {
			cands[k] = true
		}
	}
	for _, o := range at.st.owned {
		if !written[o.Key.GroupID] {
			continue
		}
		for owner := range o.Owners {
			if !inRun[owner.Source] {
				cands[owner.Source] = true
			}
		}
	}
	objs, recs := map[string]Object{}, map[string]SourceRecord{}
	for i, key := range sortedKeys(cands) {
		if i == MaxSiblingChecks {
			e.log.InfoContext(ctx, "sibling files not checked", "checked", MaxSiblingChecks, "owners", len(cands))
			break
		}
		obj, rec, ok := e.changedSibling(ctx, key, resync[key])
		if ok {
			objs[key], recs[key] = obj, rec
		}
	}
	if len(objs) == 0 {
		return req, false
	}
	for _, s := range at.srcs {
		if s.hasRec {
			recs[s.key] = s.rec // the request's own, read moments ago too
		}
	}
	req.Keys = slices.Concat(req.Keys, slices.Sorted(maps.Keys(objs)))
	req.refresh = &refresh{keys: at.req.Keys, objs: objs, recs: recs, base: base}
	e.log.InfoContext(ctx, "refreshing sibling files", "siblings", slices.Sorted(maps.Keys(objs)))
	return req, true
}

// changedSibling reads a sibling's record and object: the object when the
// record is an applied file's and the object's ETag differs (or, with
// always, whatever it is). A failed read is only logged: the sibling's own
// event applies it.
func (e *Engine) changedSibling(ctx context.Context, key string, always bool) (Object, SourceRecord, bool) {
	rec, ok, err := e.cfg.Ledger.GetSource(ctx, key)
	if err != nil {
		e.log.WarnContext(ctx, "read sibling record", "source", key, "err", err)
		return Object{}, rec, false
	}
	if !ok || rec.Kind != KindFile || rec.Status != StatusApplied {
		return Object{}, rec, false
	}
	var obj Object
	if ss, is := e.cfg.Source.(siblingSource); is {
		obj, err = ss.getSibling(ctx, key)
	} else {
		obj, err = e.cfg.Source.Get(ctx, key)
	}
	switch {
	case errors.Is(err, ErrNotFound):
		return Object{}, rec, false // deleted: its own event revokes it
	case err != nil:
		e.log.WarnContext(ctx, "read sibling file", "source", key, "err", err)
		return Object{}, rec, false
	}
	return obj, rec, always || obj.ETag != rec.ETag
}

// withoutSiblings is the request as made, its siblings checked: planned
// without them.
func withoutSiblings(req Request) Request {
	req.Keys = req.refresh.keys
	req.refresh = &refresh{keys: req.Keys}
	return req
}

// dropUnrefreshed removes from srcs the siblings that would not come out
// applied as loaded: invalid, gone, moved, or recorded otherwise than
// applied since they were checked.
func dropUnrefreshed(req Request, srcs []*loaded) []*loaded {
	if req.refresh == nil {
		return srcs
	}
	return slices.DeleteFunc(srcs, func(s *loaded) bool {
		if _, sib := req.refresh.objs[s.key]; !sib {
			return false
		}
		return s.file == nil || s.gone || s.pending || s.baseStatus != StatusApplied ||
			!s.hasRec || s.rec.Kind != KindFile || s.rec.Status != StatusApplied
	})
}

// refreshChanged reports whether the plan with the siblings changes an
// outcome: a sibling not applied (refused, held), or one of the request's
// own sources with another status than planned without them.
func refreshChanged(req Request, srcs []*loaded) bool {
	if req.refresh == nil || len(req.refresh.objs) == 0 {
		return false
	}
	for _, s := range srcs {
		if _, sib := req.refresh.objs[s.key]; sib {
			if s.status != StatusApplied {
				return true
			}
		} else if st, ok := req.refresh.base[s.key]; !ok || st != s.status {
			return true
		}
	}
	return false
}

// siblingsRecorded reads the siblings' records again under the leases:
// errRefreshChanged if one changed since it was read (its own run, or
// another's refresh, recorded newer content: the attempt starts again
// rather than apply older content over it).
func (e *Engine) siblingsRecorded(ctx context.Context, req Request, srcs []*loaded) error {
	if req.refresh == nil {
		return nil
	}
	for _, s := range srcs {
		if _, sib := req.refresh.objs[s.key]; !sib {
			continue
		}
		rec, ok, err := e.cfg.Ledger.GetSource(ctx, s.key)
		if err != nil {
			return fmt.Errorf("read ledger source %s under the leases: %w", s.key, err)
		}
		if !ok || rec.Version != s.rec.Version {
			return fmt.Errorf("%s: %w", s.key, errRefreshChanged)
		}
	}
	return nil
}
