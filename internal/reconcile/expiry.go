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
// source keeping what it applied) goes through unexpired; and authorize
// checks the clock once more at the moment of the write. Every sweep
// therefore revokes what has expired, through the normal loss path.

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
func markExpiry(srcs []*loaded, actions []Action) {
	type deadline struct {
		at      time.Time
		forever bool
	}
	declared := map[rules.Key]deadline{}
	expired := map[rules.Key]time.Time{}
	for _, s := range srcs {
		for _, p := range s.desired {
			d := declared[p.Key]
			d.forever = d.forever || p.ExpiresAt.IsZero()
			if p.ExpiresAt.After(d.at) {
				d.at = p.ExpiresAt
			}
			declared[p.Key] = d
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
