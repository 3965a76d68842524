package reconcile

import (
	"slices"
	"time"

	"github.com/sgrules/sgrules/pkg/rules"
)

// Expiry fails closed: a permission whose deadline (expiresAt) has passed
// is declared by no path. Files are expanded at the time they are loaded
// (rules.ExpandAt); what a source declares from its ledger record (a
// cached file or custom resource in a sweep, an invalid, held or pending
// source keeping what it applied) goes through unexpired; what a sweep
// keeps from the ledger without loading the source (unloaded) ends at the
// deadline its record holds, or the rule's tag when the record is lost;
// and authorize checks the clock once more at the moment of the write. Every sweep
// therefore revokes what has expired, through the normal loss path.

// unloaded is what a sweep knows of the sources whose ledger records it
// lists but does not load: file records in an engine without a Source,
// custom resources whose record does not decode (StatusUnknown). The rules
// they own are kept as the ledger says (diff), but not past a deadline:
// from their records, or, for a record that could not be read, from the
// rule's TagExpiresAt.
type unloaded struct {
	// now is the time the sweep loaded its sources at.
	now time.Time
	// expired are the permissions the records declare whose deadline has
	// passed at now, by key and owner, with the deadline.
	expired map[rules.Key]map[rules.Owner]time.Time
	// declared are the records' other permissions (markExpiry: the
	// deadline a plan writes them with).
	declared []rules.Permission
	// unread are the sources whose record could not be read: what they
	// declare, and until when, is unknown.
	unread map[string]bool
}

func newUnloaded(now time.Time) *unloaded {
	return &unloaded{now: now, expired: map[rules.Key]map[rules.Owner]time.Time{}, unread: map[string]bool{}}
}

// add records what a record the sweep does not load declares.
func (u *unloaded) add(r SourceRecord) {
	if r.Status == StatusUnknown {
		u.unread[r.Key] = true
	}
	for _, p := range r.Permissions {
		switch {
		case p.Owner.Source != r.Key:
		case rules.ExpiredAt(p.ExpiresAt, u.now):
			if u.expired[p.Key] == nil {
				u.expired[p.Key] = map[rules.Owner]time.Time{}
			}
			u.expired[p.Key][p.Owner] = p.ExpiresAt
		default:
			u.declared = append(u.declared, p)
		}
	}
}

// tagExpired returns the deadline a rule carries as TagExpiresAt when it
// has passed at now, for a rule this deployment created (only its own
// authorize writes the tag).
func (in diffInput) tagExpired(a ActualRule, exists bool) (time.Time, bool) {
	v := a.Tags[TagExpiresAt]
	if !exists || v == "" || !in.taggedOurs(a) {
		return time.Time{}, false
	}
	at, err := time.Parse(time.RFC3339Nano, v)
	if err != nil || !rules.ExpiredAt(at.UTC(), in.now) {
		return time.Time{}, false
	}
	return at.UTC(), true
}

// unexpired returns perms without those whose deadline has passed at now
// (perms itself when none has).
func unexpired(perms []rules.Permission, now time.Time) []rules.Permission {
	if !slices.ContainsFunc(perms, func(p rules.Permission) bool { return rules.ExpiredAt(p.ExpiresAt, now) }) {
		return perms
	}
	return slices.DeleteFunc(slices.Clone(perms), func(p rules.Permission) bool { return rules.ExpiredAt(p.ExpiresAt, now) })
}

// byDeadline splits perms into groups of one deadline each (in order of
// first appearance), leaving out those expired at now, and counts them.
func byDeadline(perms []rules.Permission, now time.Time) ([][]rules.Permission, int) {
	var parts [][]rules.Permission
	index := map[time.Time]int{}
	expired := 0
	for _, p := range perms {
		if rules.ExpiredAt(p.ExpiresAt, now) {
			expired++
			continue
		}
		i, ok := index[p.ExpiresAt]
		if !ok {
			i = len(parts)
			index[p.ExpiresAt] = i
			parts = append(parts, nil)
		}
		parts[i] = append(parts[i], p)
	}
	return parts, expired
}

// markExpiry sets the deadline of every action of the plan that declares
// a permission (the latest of its owners', none when an owner declares it
// without one), and, for a loss whose permission expired in some source's
// record, the deadline that passed, saying so in its reason.
// The permissions of the records a sweep does not load (more) count as
// declared too.
func markExpiry(srcs []*loaded, more []rules.Permission, actions []Action) {
	type deadline struct {
		at      time.Time
		forever bool
	}
	declared := map[rules.Key]deadline{}
	expired := map[rules.Key]time.Time{}
	declare := func(p rules.Permission) {
		d := declared[p.Key]
		d.forever = d.forever || p.ExpiresAt.IsZero()
		if p.ExpiresAt.After(d.at) {
			d.at = p.ExpiresAt
		}
		declared[p.Key] = d
	}
	for _, p := range more {
		declare(p)
	}
	for _, s := range srcs {
		for _, p := range s.desired {
			declare(p)
		}
		for _, p := range slices.Concat(s.rec.Permissions, s.baseDesired) {
			if p.Owner.Source == s.key && rules.ExpiredAt(p.ExpiresAt, s.now) && p.ExpiresAt.After(expired[p.Key]) {
				expired[p.Key] = p.ExpiresAt
			}
		}
	}
	for i := range actions {
		a := &actions[i]
		switch a.Kind {
		case ActAuthorize, ActAdopt, ActUpdate, ActModify:
			if d, ok := declared[a.Key]; ok && !d.forever {
				a.ExpiresAt = d.at
			}
		case ActRevoke:
			if at, ok := expired[a.Key]; ok && a.Loss {
				if _, still := declared[a.Key]; !still {
					a.ExpiresAt = at
					a.Reason = "expired at " + rules.FormatExpiresAt(at)
				}
			}
		}
	}
}

// deadlines are the time the sources were loaded at and the deadline of
// each permission they declare with one: the latest of its owners', none
// when an owner declares it without one (the policy's relaxations are
// measured with them).
func (at *attempt) deadlines() (time.Time, map[rules.Key]time.Time) {
	var now time.Time
	out := map[rules.Key]time.Time{}
	forever := map[rules.Key]bool{}
	for _, s := range at.srcs {
		now = s.now
		for _, p := range s.desired {
			switch {
			case p.ExpiresAt.IsZero():
				forever[p.Key] = true
			case p.ExpiresAt.After(out[p.Key]):
				out[p.Key] = p.ExpiresAt
			}
		}
	}
	for k := range forever {
		delete(out, k)
	}
	return now, out
}
