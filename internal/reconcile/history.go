package reconcile

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sgrules/sgrules/pkg/rules"
)

// History: what happened to each rule, kept by the ledger (HistoryLog) and
// printed by `sgrules history`. The engine records the events of a run
// right after its EC2 writes succeeded, in one batch; a history write that
// fails is logged (with the embedded metric HistoryNotWritten) and never
// fails the run or undoes what EC2 now has.

// HistoryKind is what happened to a rule.
type HistoryKind string

const (
	HistCreated  HistoryKind = "created"  // authorized because a source declares it
	HistModified HistoryKind = "modified" // changed in place because its source changed (ports, peer, description)
	HistAdopted  HistoryKind = "adopted"  // an existing rule recorded as owned
	HistDrifted  HistoryKind = "drifted"  // changed outside sgrules (By: who, when a CloudTrail event named them)
	HistReverted HistoryKind = "reverted" // the change of the preceding drifted event undone
	HistExpired  HistoryKind = "expired"  // revoked because its expiresAt passed
	HistRevoked  HistoryKind = "revoked"  // revoked: no source declares it any more (or the policy's enforce: revoke)
	HistRefused  HistoryKind = "refused"  // a write the guardrail policy refused (never written)
)

// Caller is who made a security group API call, from its CloudTrail event:
// the drift of the groups it named is attributed to it.
type Caller struct {
	// Principal is the caller as people read it ("assumed-role/Admin/alice").
	Principal string
	ARN       string
	EventName string
	EventID   string
	EventTime time.Time
	SourceIP  string
	UserAgent string
	// Groups are the group ids the event named.
	Groups []string
}

// HistoryEvent is one thing that happened to one rule.
type HistoryEvent struct {
	// ID identifies a stored event (set by the HistoryLog on read);
	// recording an event with an ID replaces that event.
	ID   string
	At   time.Time
	Kind HistoryKind
	// Key is the rule; RuleID its EC2 id when known (the new id of a
	// rule created again).
	Key         rules.Key
	RuleID      string
	Description string
	// Owners declare the rule ("FILE#RULE"); File, VersionID and Commit
	// describe the first owner's source as the run read it (its S3 version
	// id, and the commit its object carries as metadata, when any).
	Owners    []rules.Owner
	File      string
	VersionID string
	Commit    string
	// ExpiresAt is the deadline of an expired rule, or of a created one.
	ExpiresAt time.Time
	// Change is what a drifted event found ("deleted", "description",
	// "modified", "orphan", "exclusive"); Before what EC2 had (the edited
	// description, the modified rule's key text).
	Change string
	Before string
	// Reason is the request's (what made the run look: "schedule",
	// "cloudtrail:RevokeSecurityGroupIngress", an S3 event), or, for a
	// refused write, the policy's reason.
	Reason string
	// By is who made a drifted change, when a CloudTrail event named it;
	// LateBy is set when that event arrived after a run that found no
	// caller had reverted the change (CompleteHistory).
	By     *Caller
	LateBy bool
}

// HistoryLog keeps the bounded history of every rule (the ledger).
type HistoryLog interface {
	// RecordHistory writes events (batched); an event with an ID replaces
	// the stored one.
	RecordHistory(ctx context.Context, events []HistoryEvent) error
	// GroupHistory returns the events of the rules of one group, newest
	// first.
	GroupHistory(ctx context.Context, groupID string) ([]HistoryEvent, error)
}

// historyOf returns the events of an executed plan at now: one per rule
// written (two for a drift correction: drifted, then reverted), and one
// per write the policy refused.
func (e *Engine) historyOf(at *attempt, p planned, now time.Time, executed bool) []HistoryEvent {
	srcs := map[string]*loaded{}
	for _, s := range at.srcs {
		srcs[s.key] = s
	}
	caller := at.req.Caller
	// The ids of the rules the run created, read back after authorizing.
	ids := map[rules.Key]string{}
	for _, o := range p.put {
		ids[o.Key] = o.RuleID
	}
	event := func(kind HistoryKind, a Action, k rules.Key) HistoryEvent {
		ev := HistoryEvent{At: now, Kind: kind, Key: k, RuleID: a.RuleID, Description: a.Description,
			Owners: slices.Clone(a.Owners), ExpiresAt: a.ExpiresAt, Reason: at.req.Reason}
		if ev.RuleID == "" {
			ev.RuleID = ids[k]
		}
		if len(a.Owners) > 0 {
			ev.File = a.Owners[0].Source
			if s := srcs[ev.File]; s != nil {
				ev.VersionID, ev.Commit = s.info.VersionID, s.info.Commit
				if s.info.ETag == "" || s.cached {
					// Not read in this run (gone, or unchanged and not
					// read again): as recorded.
					ev.VersionID, ev.Commit = s.rec.VersionID, s.rec.Commit
				}
			}
		}
		return ev
	}
	drift := func(a Action, k rules.Key, change, before string) []HistoryEvent {
		d := event(HistDrifted, a, k)
		d.Change, d.Before = change, before
		if caller != nil && slices.Contains(caller.Groups, k.GroupID) {
			c := *caller
			d.By = &c
		}
		// In this order: the ledger keeps the order of one batch, and
		// newest first the revert comes before the drift.
		return []HistoryEvent{d, event(HistReverted, a, k)}
	}
	// The authorize that puts back a rule whose peer kind was modified is
	// told with its revoke (CauseDriftModified, Was).
	restored := map[rules.Key]bool{}
	for _, a := range p.plan.Actions {
		if a.Cause == CauseDriftModified && a.Kind == ActRevoke {
			restored[a.Was] = true
		}
	}
	var out []HistoryEvent
	if executed {
		for _, a := range p.plan.Actions {
			if a.Paused {
				continue
			}
			switch {
			case a.Cause == CauseDriftDeleted && restored[a.Key]:
			case a.Cause == CauseDriftDeleted:
				out = append(out, drift(a, a.Key, "deleted", "")...)
			case a.Cause == CauseDriftDescription:
				out = append(out, drift(a, a.Key, "description", a.OldDescription)...)
			case a.Cause == CauseDriftModified && a.Kind == ActModify:
				out = append(out, drift(a, a.Key, "modified", a.From.String())...)
			case a.Cause == CauseDriftModified:
				out = append(out, drift(a, a.Was, "modified", a.Key.String())...)
			case a.Cause == CauseOrphan || a.Cause == CauseExclusive:
				out = append(out, drift(a, a.Key, string(a.Cause), "")...)
			case a.Kind == ActAuthorize:
				out = append(out, event(HistCreated, a, a.Key))
			case a.Kind == ActAdopt:
				out = append(out, event(HistAdopted, a, a.Key))
			case a.Kind == ActUpdate:
				ev := event(HistModified, a, a.Key)
				ev.Before = a.OldDescription
				out = append(out, ev)
			case a.Kind == ActModify:
				ev := event(HistModified, a, a.Key)
				ev.Before = a.From.String()
				out = append(out, ev)
			case a.Kind == ActRevoke && !a.ExpiresAt.IsZero():
				out = append(out, event(HistExpired, a, a.Key))
			case a.Kind == ActRevoke:
				ev := event(HistRevoked, a, a.Key)
				if a.Cause == CausePolicy {
					ev.Reason = "policy: " + a.Reason
				}
				out = append(out, ev)
			}
		}
	}
	for _, r := range p.policy.Refused {
		ev := event(HistRefused, r.Action, r.Action.Key)
		ev.Reason = r.Reason
		if r.Policy != "" {
			ev.Reason = r.Policy + ": " + r.Reason
		}
		if r.Action.Cause.Drift() && caller != nil && slices.Contains(caller.Groups, r.Action.Key.GroupID) {
			c := *caller
			ev.By = &c
		}
		out = append(out, ev)
	}
	return out
}

// recordHistory writes the events of a run; a failure is logged with the
// embedded metric HistoryNotWritten, never returned: the EC2 writes they
// tell of stand.
func (e *Engine) recordHistory(ctx context.Context, events []HistoryEvent) {
	if e.cfg.History == nil || len(events) == 0 {
		return
	}
	if err := e.cfg.History.RecordHistory(context.WithoutCancel(ctx), events); err != nil {
		e.log.WarnContext(ctx, "rule history not written", "events", len(events), "err", err,
			"_aws", map[string]any{"Timestamp": e.cfg.Now().UnixMilli(), "CloudWatchMetrics": []map[string]any{{
				"Namespace": "sgrules", "Dimensions": [][]string{{}},
				"Metrics": []map[string]string{{"Name": "HistoryNotWritten", "Unit": "Count"}}}}},
			"HistoryNotWritten", len(events))
	}
}

// LateWindow bounds late attribution: a CloudTrail event completes the
// history of a drift reverted at most this long after the call.
const LateWindow = time.Hour

// changeOfCall is the drift an API call makes, for late attribution:
// which Change a drifted event must have, and in which direction ("" for
// either).
func changeOfCall(eventName string) (changes []string, dir rules.Direction) {
	switch {
	case strings.HasSuffix(eventName, "Ingress"):
		dir = rules.Ingress
	case strings.HasSuffix(eventName, "Egress"):
		dir = rules.Egress
	}
	switch {
	case strings.HasPrefix(eventName, "RevokeSecurityGroup"):
		return []string{"deleted"}, dir
	case strings.HasPrefix(eventName, "UpdateSecurityGroupRuleDescriptions"):
		return []string{"description"}, dir
	case eventName == "ModifySecurityGroupRules":
		return []string{"modified", "description"}, ""
	case strings.HasPrefix(eventName, "AuthorizeSecurityGroup"):
		return []string{"exclusive", "orphan"}, dir
	}
	return nil, ""
}

// lateMatches picks, among the events of a group (newest first), the
// drifted ones a CloudTrail call by c completes: not attributed yet, of
// the change the call makes, in one of the groups it named, found after
// the call and at most LateWindow after it.
func lateMatches(events []HistoryEvent, c Caller) []HistoryEvent {
	changes, dir := changeOfCall(c.EventName)
	var out []HistoryEvent
	for _, ev := range events {
		if ev.Kind != HistDrifted || ev.By != nil || !slices.Contains(changes, ev.Change) ||
			!slices.Contains(c.Groups, ev.Key.GroupID) || (dir != "" && ev.Key.Direction != dir) {
			continue
		}
		if c.EventTime.IsZero() || ev.At.Before(c.EventTime) || ev.At.Sub(c.EventTime) > LateWindow {
			continue
		}
		by := c
		ev.By, ev.LateBy = &by, true
		out = append(out, ev)
	}
	return out
}

// completeHistory attributes to the caller of a CloudTrail event the
// drift that an earlier run, which knew no caller (a scheduled sweep),
// found and reverted in the groups the event named where this run found
// nothing: the event arrived after the change was undone. It returns the
// completed events; a failure is logged, never returned.
func (e *Engine) completeHistory(ctx context.Context, req Request, res Result) []HistoryEvent {
	c := req.Caller
	if e.cfg.History == nil || c == nil || req.DryRun || len(c.Groups) == 0 {
		return nil
	}
	busy := map[string]bool{}
	for _, a := range res.Drift.Drifted {
		busy[a.Key.GroupID] = true
	}
	var done []HistoryEvent
	for _, g := range c.Groups {
		if busy[g] {
			continue
		}
		events, err := e.cfg.History.GroupHistory(ctx, g)
		if err != nil {
			e.log.WarnContext(ctx, "rule history not read: late attribution skipped", "group", g, "err", err)
			continue
		}
		done = append(done, lateMatches(events, *c)...)
	}
	if len(done) == 0 {
		return nil
	}
	if err := e.cfg.History.RecordHistory(context.WithoutCancel(ctx), done); err != nil {
		e.log.WarnContext(ctx, "rule history not completed", "events", len(done), "err", fmt.Sprint(err))
		return nil
	}
	return done
}
