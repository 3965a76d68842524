package reconcile

import (
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/sgrules/sgrules/pkg/rules"
)

// Commit: what the ledger records after the plan's EC2 calls succeeded,
// and the result the run reports.

// Limits on what a source record stores, so that every record stays far
// under DynamoDB's 400 KB item limit whatever the file holds: the first
// MaxStoredDiagnostics diagnostics, each cut at MaxDiagnosticBytes, and a
// last line counting the rest.
const (
	MaxStoredDiagnostics = 50
	MaxDiagnosticBytes   = 1024
)

// storedDiagnostics renders diagnostics for the ledger within the limits.
func storedDiagnostics(ds rules.Diagnostics) []string {
	n := min(len(ds), MaxStoredDiagnostics)
	out := make([]string, 0, n+1)
	for _, d := range ds[:n] {
		out = append(out, truncateText(d.String(), MaxDiagnosticBytes))
	}
	if rest := len(ds) - n; rest > 0 {
		out = append(out, fmt.Sprintf("… and %d more (run 'sgrules validate' on the file for all of them)", rest))
	}
	return out
}

// truncateText cuts s to at most n bytes at a rune boundary, marking the cut.
func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
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
			Key: s.key, Kind: s.kind, ETag: s.info.ETag, VersionID: s.info.VersionID, Commit: s.info.Commit,
			Status: s.status, Diagnostics: storedDiagnostics(s.diags), Message: truncateText(s.message, MaxDiagnosticBytes),
			Permissions: s.desired, Exclusive: s.exclusive,
			Static:    s.static && s.status == StatusApplied && s.kind == KindFile,
			AppliedAt: s.rec.AppliedAt, Version: s.rec.Version,
		}
		if s.gone || s.pending {
			rec.ETag, rec.VersionID, rec.Commit = s.rec.ETag, s.rec.VersionID, s.rec.Commit
		}
		if s.cached {
			rec.Commit = s.rec.Commit // the List that found it unchanged reads no metadata
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
		a.Static == b.Static &&
		slices.Equal(a.Diagnostics, b.Diagnostics) && slices.Equal(a.Exclusive, b.Exclusive) &&
		slices.Equal(a.Permissions, b.Permissions)
}

// result assembles the outcome.
func (e *Engine) result(at *attempt, p planned, executed bool) Result {
	res := Result{Plan: p.plan, Executed: executed, HeldCleanup: p.heldCleanup, Quota: p.quota}
	owned := map[rules.Key]OwnedPermission{}
	for _, o := range at.st.owned {
		owned[o.Key] = o
	}
	for _, o := range p.del {
		delete(owned, o.Key)
	}
	for _, o := range p.put {
		owned[o.Key] = o
	}
	keys := slices.Collect(maps.Keys(owned))
	sort.Slice(keys, func(i, j int) bool { return keys[i].Less(keys[j]) })
	ruleIDs := map[string][]string{}
	for _, k := range keys {
		o := owned[k]
		seen := map[string]bool{}
		for owner := range o.Owners {
			if !seen[owner.Source] && o.RuleID != "" {
				seen[owner.Source] = true
				ruleIDs[owner.Source] = append(ruleIDs[owner.Source], o.RuleID)
			}
		}
	}
	for _, s := range at.srcs {
		r := SourceResult{Key: s.key, Status: s.status, Diagnostics: s.diags, Message: s.message,
			Guard: s.guard, RuleIDs: ruleIDs[s.key]}
		if s.cached && len(s.diags) == 0 {
			r.Recorded = s.rec.Diagnostics
			if r.Message == "" {
				r.Message = s.rec.Message
			}
		}
		res.Sources = append(res.Sources, r)
		if s.gone && s.hasRec && s.kind == KindFile && len(s.rec.Permissions) > 0 && !at.req.Moved[s.key] {
			res.Gone = append(res.Gone, s.key)
		}
	}
	sort.Strings(res.Gone)
	res.Drift.GroupsChecked = len(at.st.groups)
	res.Drift.Unmanaged = len(p.plan.Unmanaged)
	res.Drift.Paused = p.paused
	if len(at.st.pauseTooLong) > 0 {
		res.Drift.PauseTooLong = sortedKeys(at.st.pauseTooLong)
		e.log.Warn("sgrules:pause-until too far ahead: not paused (drift there is corrected); set a time within the cap",
			"groups", res.Drift.PauseTooLong, "maxPause", e.cfg.MaxPause.String())
	}
	for _, a := range p.plan.Actions {
		if a.Drift() {
			res.Drift.Drifted = append(res.Drift.Drifted, a)
			if executed {
				res.Drift.Reverted++
			}
		}
	}
	res.Drift.Drifted = append(res.Drift.Drifted, p.pausedDrift...)
	return res
}
