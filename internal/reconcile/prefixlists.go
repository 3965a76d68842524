package reconcile

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/sgrules/sgrules/pkg/rules"
)

// Prefix lists for the policy: a clause on CIDRs needs the addresses a
// prefix list peer stands for. Each list is read once per attempt (its
// existence and owner with DescribePrefixLists, shared with the quota
// count; a customer-managed list's entries with PrefixListEntries). An
// AWS-managed list (com.amazonaws.*) stands for AWS service ranges: it is
// taken as known, with no addresses of concern, and never read. A list
// that does not exist or may not be read stays unreadable: the checks that
// need it cannot be decided, and at apply that refuses the file (fail
// closed, see policyVerdicts).

// listEntries is what the attempt knows of one prefix list's entries.
type listEntries struct {
	cidrs []netip.Prefix
	// why it could not be read ("" when it was).
	why string
}

// policyPrefixLists reads the prefix lists the policy needs: those the
// sources it checks name, and those of the live rules of the groups in
// scope (a group's peers are judged together).
func (e *Engine) policyPrefixLists(ctx context.Context, at *attempt) error {
	pr := at.policy
	if pr == nil || pr.pol == nil {
		return nil
	}
	need := map[string]bool{}
	add := func(k rules.Key) {
		if k.Peer.Kind == rules.PeerPrefixList {
			if _, read := at.st.entries[k.Peer.Value]; !read {
				need[k.Peer.Value] = true
			}
		}
	}
	for _, s := range at.srcs {
		for _, p := range s.desired {
			add(p.Key)
		}
	}
	for _, a := range at.st.actual {
		if at.st.groups[a.Key.GroupID] {
			add(a.Key)
		}
	}
	if len(need) == 0 {
		return nil
	}
	ids := sortedKeys(need)
	var describe []string
	for _, id := range ids {
		if _, read := at.st.prefixLists[id]; !read {
			describe = append(describe, id)
		}
	}
	if at.st.entries == nil {
		at.st.entries = map[string]*listEntries{}
	}
	if len(describe) > 0 {
		infos, err := e.cfg.Groups.DescribePrefixLists(ctx, describe)
		denied := errors.Is(err, ErrAccessDenied)
		if err != nil && !denied {
			return fmt.Errorf("read %d prefix lists for the policy: %w", len(describe), err)
		}
		if at.st.prefixLists == nil {
			at.st.prefixLists = map[string]*PrefixListInfo{}
		}
		for _, id := range describe {
			at.st.prefixLists[id] = nil
			if denied {
				at.st.entries[id] = &listEntries{why: "it may not be described (ec2:DescribeManagedPrefixLists)"}
			}
		}
		for _, pl := range infos {
			at.st.prefixLists[pl.ID] = &pl
		}
	}
	for _, id := range ids {
		info := at.st.prefixLists[id]
		switch {
		case at.st.entries[id] != nil:
			continue
		case info == nil:
			at.st.entries[id] = &listEntries{why: "it does not exist"}
			continue
		case info.AWSManaged:
			at.st.entries[id] = &listEntries{}
			continue
		}
		cidrs, err := e.cfg.Groups.PrefixListEntries(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound):
			at.st.entries[id] = &listEntries{why: "it does not exist"}
		case errors.Is(err, ErrAccessDenied):
			at.st.entries[id] = &listEntries{why: "its entries may not be read (ec2:GetManagedPrefixListEntries)"}
		case err != nil:
			return fmt.Errorf("read prefix list %s for the policy: %w", id, err)
		default:
			at.st.entries[id] = &listEntries{cidrs: cidrs}
		}
	}
	return nil
}

// policyFacts returns what the policy knows in this attempt: the groups,
// the prefix lists read, and as held rules the live rules of the groups
// (to which heldFor adds those other sources declare).
func (at *attempt) policyFacts() PolicyFacts {
	f := PolicyFacts{Groups: at.st.info, PrefixLists: map[string][]netip.Prefix{}, Unreadable: map[string]string{}}
	for id, le := range at.st.entries {
		if le.why != "" {
			f.Unreadable[id] = le.why
		} else {
			f.PrefixLists[id] = le.cidrs
		}
	}
	f.Now, f.Deadlines = at.deadlines()
	return f
}

// heldIndex finds, per group, the live rules and the sources that declare
// something there (now or before), for heldFor.
type heldIndex struct {
	live map[string][]rules.Key
	srcs map[string][]*loaded
}

func (at *attempt) heldIndex() heldIndex {
	idx := heldIndex{live: map[string][]rules.Key{}, srcs: map[string][]*loaded{}}
	for _, a := range at.st.actual {
		idx.live[a.Key.GroupID] = append(idx.live[a.Key.GroupID], a.Key)
	}
	for _, s := range at.srcs {
		seen := map[string]bool{}
		for _, p := range slices.Concat(s.baseDesired, s.rec.Permissions) {
			if g := p.Key.GroupID; !seen[g] {
				seen[g] = true
				idx.srcs[g] = append(idx.srcs[g], s)
			}
		}
	}
	return idx
}

// heldFor returns the rules the groups of source s hold or are given
// besides s's own: their live rules but those s applied before (s
// declares them again or they go), and what the other sources declare
// now (a source the policy refused declares what it applied before).
func (at *attempt) heldFor(s *loaded, idx heldIndex) map[string][]rules.Key {
	groups := map[string]bool{}
	for _, p := range s.desired {
		groups[p.Key.GroupID] = true
	}
	mine := map[rules.Key]bool{}
	for _, p := range s.rec.Permissions {
		mine[p.Key] = true
	}
	held := map[string][]rules.Key{}
	seen := map[rules.Key]bool{}
	add := func(k rules.Key) {
		if !seen[k] {
			seen[k] = true
			held[k.GroupID] = append(held[k.GroupID], k)
		}
	}
	visited := map[*loaded]bool{s: true}
	for g := range groups {
		for _, k := range idx.live[g] {
			if !mine[k] {
				add(k)
			}
		}
		for _, o := range idx.srcs[g] {
			if visited[o] {
				continue
			}
			visited[o] = true
			for _, p := range o.desired {
				if groups[p.Key.GroupID] {
					add(p.Key)
				}
			}
		}
	}
	return held
}

// heldAfter returns the rules each group will hold after the plan's
// actions (by group id): its live rules but those revoked or modified
// away, and every permission authorized or modified into. Admission judges
// each write with them (a write is among them; it counts once).
func (at *attempt) heldAfter(actions []Action) map[string][]rules.Key {
	gone := map[string]bool{}
	from := map[rules.Key]bool{}
	for _, a := range actions {
		switch a.Kind {
		case ActRevoke:
			gone[a.RuleID] = true
		case ActModify:
			from[a.From] = true
		}
	}
	held := map[string][]rules.Key{}
	seen := map[rules.Key]bool{}
	add := func(k rules.Key) {
		if !seen[k] {
			seen[k] = true
			held[k.GroupID] = append(held[k.GroupID], k)
		}
	}
	for _, a := range at.st.actual {
		if !gone[a.RuleID] && !from[a.Key] {
			add(a.Key)
		}
	}
	for _, a := range actions {
		if a.Kind == ActAuthorize || a.Kind == ActModify {
			add(a.Key)
		}
	}
	return held
}
