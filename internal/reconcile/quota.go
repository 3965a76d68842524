package reconcile

import (
	"context"
	"fmt"
	"sort"

	"github.com/sgrules/sgrules/pkg/rules"
)

// The rules quota, counted as EC2 counts it: per group, direction and
// address family, a CIDR as one rule of its family, a group reference as
// one IPv4 and one IPv6 rule, a prefix list as its MaxEntries rules of its
// family: for a customer-managed list its maximum size, for an AWS-managed
// one its weight (CloudFront origin-facing 55, EC2 Instance Connect 2),
// which DescribeManagedPrefixLists reports as MaxEntries. A list whose
// weight is unknown (gone, or no MaxEntries) counts as one of each.

type quotaKey struct {
	group  string
	dir    rules.Direction
	family string
}

// quotaWarnings counts the rules each group the plan adds rules to will
// have, and warns of those over rules.QuotaPerGroup. It reads the prefix
// lists in scope once per attempt (one DescribeManagedPrefixLists), and
// only when such a group has prefix-list rules.
func (e *Engine) quotaWarnings(ctx context.Context, at *attempt, out diffOutput) ([]QuotaWarning, error) {
	growing := map[string]bool{}
	for _, a := range out.plan.Actions {
		if a.Kind == ActAuthorize || a.Kind == ActModify && a.Key.Peer.Kind == rules.PeerPrefixList {
			growing[a.Key.GroupID] = true
		}
	}
	if len(growing) == 0 {
		return nil, nil
	}
	// The rules of those groups after the plan.
	after := map[rules.Key]bool{}
	for _, r := range at.st.actual {
		if growing[r.Key.GroupID] {
			after[r.Key] = true
		}
	}
	for _, a := range out.plan.Actions {
		if !growing[a.Key.GroupID] {
			continue
		}
		switch a.Kind {
		case ActAuthorize:
			after[a.Key] = true
		case ActRevoke:
			delete(after, a.Key)
		case ActModify:
			delete(after, a.From)
			after[a.Key] = true
		}
	}
	var lists []string
	for k := range after {
		if k.Peer.Kind == rules.PeerPrefixList {
			if _, read := at.st.prefixLists[k.Peer.Value]; !read {
				lists = append(lists, k.Peer.Value)
			}
		}
	}
	if len(lists) > 0 {
		sort.Strings(lists)
		infos, err := e.cfg.Groups.DescribePrefixLists(ctx, lists)
		if err != nil {
			return nil, fmt.Errorf("read %d prefix lists for the rules quota: %w", len(lists), err)
		}
		if at.st.prefixLists == nil {
			at.st.prefixLists = map[string]*PrefixListInfo{}
		}
		for _, id := range lists {
			at.st.prefixLists[id] = nil
		}
		for _, pl := range infos {
			at.st.prefixLists[pl.ID] = &pl
		}
	}
	counts := map[quotaKey]int{}
	for k := range after {
		add := func(family string, n int) {
			counts[quotaKey{k.GroupID, k.Direction, family}] += n
		}
		switch k.Peer.Kind {
		case rules.PeerCIDR4:
			add("IPv4", 1)
		case rules.PeerCIDR6:
			add("IPv6", 1)
		case rules.PeerPrefixList:
			switch pl := at.st.prefixLists[k.Peer.Value]; {
			case pl != nil && pl.MaxEntries > 0 && pl.AddressFamily == "IPv6":
				add("IPv6", pl.MaxEntries)
			case pl != nil && pl.MaxEntries > 0:
				add("IPv4", pl.MaxEntries)
			default: // unknown weight
				add("IPv4", 1)
				add("IPv6", 1)
			}
		default: // a group reference
			add("IPv4", 1)
			add("IPv6", 1)
		}
	}
	var ws []QuotaWarning
	for k, n := range counts {
		if n > rules.QuotaPerGroup {
			ws = append(ws, QuotaWarning{Group: k.group, Direction: k.dir, Family: k.family, Rules: n})
		}
	}
	sort.Slice(ws, func(i, j int) bool {
		a, b := ws[i], ws[j]
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		if a.Direction != b.Direction {
			return a.Direction < b.Direction
		}
		return a.Family < b.Family
	})
	return ws, nil
}
