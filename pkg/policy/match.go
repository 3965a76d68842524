package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sgrules/sgrules/pkg/rules"
)

// Group is what is known of one security group.
type Group struct {
	ID    string
	Name  string
	VPCID string
	Tags  map[string]string
	// Account is set for a peer group in another account than the
	// permission's group, when its facts are not known (messages name it
	// ACCOUNT/sg-…).
	Account string
	// Complete says these are the group's own facts, as EC2 reports them.
	// Otherwise they are what a reference says of the group: a tags
	// reference {tags: {Name: web}} tells that the group has the tag
	// Name=web, not which other tags it has, nor its id.
	Complete bool
}

// RefFacts is what a reference itself tells of the group it names.
func RefFacts(g rules.GroupRef) Group {
	tags := make(map[string]string, len(g.Tags))
	for k, v := range g.Tags {
		tags[k] = v
	}
	return Group{ID: g.ID, Account: g.Account, Name: g.Name, VPCID: g.VPCID, Tags: tags}
}

// label names the group in messages.
func (g Group) label() string {
	if g.ID != "" && g.Account != "" {
		return g.Account + "/" + g.ID
	}
	if g.ID != "" {
		return g.ID
	}
	return rules.RefText(rules.GroupRef{Name: g.Name, VPCID: g.VPCID, Tags: g.Tags})
}

// Facts is what the checks know of the groups and prefix lists involved.
// The zero value knows nothing.
type Facts struct {
	// Groups by the id a permission carries: a group id, or offline the
	// reference's String() (see Offline); a peer group in another account
	// by "ACCOUNT/sg-…".
	Groups map[string]Group
	// PrefixLists holds the entries of the prefix lists whose entries are
	// known, by prefix list id. A prefix list not listed is unknown, so
	// clauses on CIDRs are skipped for it. A list known to hold no
	// addresses of concern (AWS-managed service ranges) may be listed with
	// no entries.
	PrefixLists map[string][]netip.Prefix
	// Held are other permissions of the groups, by group id (both
	// directions): the rules a group holds or is given besides the ones
	// checked. A clause on CIDRs takes a group's peers together, checked
	// and held (see Clause.eval); only checked permissions are judged. A
	// held permission equal to a checked one counts once.
	Held map[string][]rules.Key
	// Now is the moment of the check (of apply, of the sweep), from which
	// deadlines are measured (allowIfExpiresWithin, maxDuration). Zero:
	// unknown; no clause is relaxed and maxDuration cannot be decided.
	Now time.Time
	// Deadlines are the deadlines (expiresAt) of permissions, checked or
	// held, that have one; Check adds those of its Source's Perms.
	Deadlines map[rules.Key]time.Time
}

// relaxed reports whether the clause allows permission k because it
// expires soon enough: allowIfExpiresWithin is set, k has a deadline, and
// it is at most that long after facts.Now. A relaxed permission is not
// denied and does not count with the others on CIDRs.
func (c *Clause) relaxed(k rules.Key, facts Facts) bool {
	if c.AllowIfExpiresWithin <= 0 || facts.Now.IsZero() {
		return false
	}
	at, ok := facts.Deadlines[k]
	return ok && !at.IsZero() && at.Sub(facts.Now) <= c.AllowIfExpiresWithin
}

// peer returns the facts of a group peer. Those of a group in another
// account are listed under "ACCOUNT/sg-…" only: a group of the same id
// read in the permission's own account is not it.
func (f Facts) peer(p rules.Peer) Group {
	if p.Account == "" {
		return f.group(p.Value)
	}
	if g, ok := f.Groups[p.Account+"/"+p.Value]; ok {
		return g
	}
	return Group{ID: p.Value, Account: p.Account}
}

func (f Facts) group(id string) Group {
	if g, ok := f.Groups[id]; ok {
		return g
	}
	if strings.HasPrefix(id, "sg-") {
		return Group{ID: id}
	}
	return Group{}
}

// Offline returns the resolver and facts for checking rule files without
// AWS: each reference "resolves" to its own String(), and its facts are
// what the reference says (RefFacts). Pass the resolver to rules.Expand and
// to Check.
func Offline(files ...*rules.File) (rules.Resolver, Facts) {
	facts := Facts{Groups: map[string]Group{}}
	for _, f := range files {
		if f == nil {
			continue
		}
		for _, g := range f.Refs() {
			facts.Groups[g.String()] = RefFacts(g)
		}
	}
	return func(g rules.GroupRef) []string { return []string{g.String()} }, facts
}

// tri is the outcome of a condition: no < unknown < yes, so that "and" is
// the minimum and "or" the maximum.
type tri int

const (
	no tri = iota
	unknown
	yes
)

func triOf(b bool) tri {
	if b {
		return yes
	}
	return no
}

func not(t tri) tri { return yes - t }

// needs collects what an unknown outcome was missing, in first-seen order.
type needs []string

func (n *needs) add(s string) {
	for _, x := range *n {
		if x == s {
			return
		}
	}
	*n = append(*n, s)
}

// selectorMatch tells whether a group matches a selector, given what is
// known of it.
func selectorMatch(sel rules.GroupRef, g Group, need *needs) tri {
	what := func() tri {
		need.add("the facts of group " + g.label())
		return unknown
	}
	switch {
	case sel.ID != "":
		if g.ID == "" && !g.Complete {
			return what()
		}
		return triOf(g.ID == sel.ID)
	case sel.Name != "":
		if (g.Name == "" || g.VPCID == "") && !g.Complete {
			return what()
		}
		return triOf(g.Name == sel.Name && g.VPCID == sel.VPCID)
	}
	out := yes
	for k, v := range sel.Tags {
		gv, ok := g.Tags[k]
		switch {
		case ok && gv != v:
			return no
		case !ok && g.Complete:
			return no
		case !ok:
			out = unknown
		}
	}
	if out == unknown {
		need.add("the tags of group " + g.label())
	}
	return out
}

// anyOf: the group matches one of the selectors.
func anyOf(sels []rules.GroupRef, g Group, need *needs) tri {
	out := no
	var mine needs
	for _, s := range sels {
		out = max(out, selectorMatch(s, g, &mine))
		if out == yes {
			return yes
		}
	}
	for _, s := range mine {
		need.add(s)
	}
	return out
}

// peerCIDRs returns the CIDRs of a permission's peer: one for a CIDR peer,
// the entries of a prefix list when known (known false otherwise), none
// for a group.
func peerCIDRs(p rules.Peer, facts Facts) (cidrs []netip.Prefix, known bool) {
	switch p.Kind {
	case rules.PeerCIDR4, rules.PeerCIDR6:
		pfx, err := netip.ParsePrefix(p.Value)
		if err != nil {
			return nil, true
		}
		return []netip.Prefix{pfx}, true
	case rules.PeerPrefixList:
		e, ok := facts.PrefixLists[p.Value]
		return e, ok
	}
	return nil, true
}

func (c *Clause) portsMatch(k rules.Key) tri {
	if k.Protocol == rules.ProtoAll {
		return yes // all traffic: every port and ICMP type
	}
	switch k.Protocol {
	case rules.ProtoTCP, rules.ProtoUDP:
		if c.Protocol == rules.ProtoICMP || c.Protocol == rules.ProtoICMPv6 {
			return no
		}
		for _, pr := range c.Ports {
			if k.FromPort <= pr.To && pr.From <= k.ToPort {
				return yes
			}
		}
	case rules.ProtoICMP, rules.ProtoICMPv6:
		// Ports of a clause without protocol are tcp/udp ports, not ICMP
		// types.
		if c.Protocol != k.Protocol {
			return no
		}
		if k.FromPort == -1 {
			return yes // all types
		}
		for _, pr := range c.Ports {
			if k.FromPort >= pr.From && k.FromPort <= pr.To {
				return yes
			}
		}
	}
	return no
}

// broader keeps the CIDRs broader than the clause's broaderThan (all of
// them when it is unset).
func (c *Clause) broader(cidrs []netip.Prefix) []netip.Prefix {
	if c.BroaderThan == nil {
		return cidrs
	}
	var out []netip.Prefix
	for _, x := range cidrs {
		limit := c.BroaderThan.IPv4
		if x.Addr().Is6() {
			limit = c.BroaderThan.IPv6
		}
		if limit > 0 && x.Bits() < limit {
			out = append(out, x)
		}
	}
	return out
}

// match decides the clause for one permission, taken together with the
// other permissions of its group in facts.Held (see eval).
func (c *Clause) match(k rules.Key, facts Facts) (tri, needs) {
	o := c.eval([]rules.Key{k}, facts)[0]
	return o.m, o.need
}

// conditions decides every condition of the clause for one permission but
// its CIDRs, which a permission meets only together with the other peers
// of its group (eval): for a clause on CIDRs, conditions only requires a
// peer with addresses (a CIDR or a prefix list).
func (c *Clause) conditions(k rules.Key, facts Facts) (tri, needs) {
	var need needs
	if c.Direction != "" && c.Direction != k.Direction {
		return no, nil
	}
	if c.Protocol != "" && c.Protocol != k.Protocol && k.Protocol != rules.ProtoAll {
		return no, nil
	}
	if len(c.Ports) > 0 && c.portsMatch(k) == no {
		return no, nil
	}
	out := yes
	if len(c.CIDRs) > 0 && k.Peer.Kind == rules.PeerGroup {
		return no, nil
	}
	if c.BroaderThan != nil {
		cidrs, known := peerCIDRs(k.Peer, facts)
		switch {
		case !known:
			need.add("the entries of prefix list " + k.Peer.Value)
			out = unknown
		case len(c.broader(cidrs)) == 0:
			return no, nil
		}
	}
	if len(c.PeerGroups) > 0 {
		if k.Peer.Kind != rules.PeerGroup {
			return no, nil
		}
		m := anyOf(c.PeerGroups, facts.peer(k.Peer), &need)
		if m == no {
			return no, nil
		}
		out = min(out, m)
	}
	target := facts.group(k.GroupID)
	if len(c.Groups) > 0 {
		m := anyOf(c.Groups, target, &need)
		if m == no {
			return no, nil
		}
		out = min(out, m)
	}
	if len(c.Exempt) > 0 {
		var en needs
		e := anyOf(c.Exempt, target, &en)
		if e == yes {
			return no, nil
		}
		if e == unknown {
			for _, s := range en {
				need.add(s)
			}
		}
		out = min(out, not(e))
	}
	if out != unknown {
		need = nil
	}
	return out, need
}

// outcome is a clause's verdict on one checked permission.
type outcome struct {
	m    tri
	need needs
	// For a clause on CIDRs: the CIDR of the clause the permission's group
	// covers, and the other permissions (checked or held) responsible with
	// it, broadest first.
	over netip.Prefix
	with []rules.Key
	// alone: the permission's own peer contains the clause's CIDR.
	alone bool
}

// eval judges the checked permissions keys. A clause without CIDRs judges
// each on its own. A clause on CIDRs matches when the peers a group grants
// for one protocol and port (or ICMP type), taken together, cover one of
// its CIDRs: the internet of a family for 0.0.0.0/0 and ::/0
// (rules.Space), the CIDR itself otherwise. The peers are those of the
// group's permissions in the clause's direction that meet its other
// conditions, with the same protocol or protocol -1 and ports including
// the port: the checked ones and those facts.Held lists. A checked
// permission violates when it is among the fewest responsible
// (rules.Cover, broadest first); when the held ones cover the CIDR on
// their own (a violation already there), only checked permissions that
// cover it on their own violate. A cover that unknown peers (unread
// prefix lists, groups whose facts are not known) could complete leaves
// the checked permissions among them undecided.
func (c *Clause) eval(keys []rules.Key, facts Facts) []outcome {
	out := make([]outcome, len(keys))
	if len(c.CIDRs) == 0 {
		for i, k := range keys {
			if !c.relaxed(k, facts) {
				out[i].m, out[i].need = c.conditions(k, facts)
			}
		}
		return out
	}
	type groupDir struct {
		group string
		dir   rules.Direction
	}
	byGroup := map[groupDir][]member{}
	var order []groupDir
	checked := map[rules.Key]bool{}
	for i, k := range keys {
		checked[k] = true
		gd := groupDir{k.GroupID, k.Direction}
		if _, ok := byGroup[gd]; !ok {
			order = append(order, gd)
		}
		byGroup[gd] = append(byGroup[gd], member{key: k, index: i})
	}
	for _, gd := range order {
		ms := byGroup[gd]
		seen := map[rules.Key]bool{}
		for _, h := range facts.Held[gd.group] {
			if h.GroupID == gd.group && h.Direction == gd.dir && !checked[h] && !seen[h] {
				seen[h] = true
				ms = append(ms, member{key: h, index: -1})
			}
		}
		var live []member
		for _, m := range ms {
			if c.relaxed(m.key, facts) {
				continue
			}
			m.base, m.need = c.conditions(m.key, facts)
			if m.base == no {
				continue
			}
			cidrs, known := peerCIDRs(m.key.Peer, facts)
			m.cidrs, m.known = c.broader(cidrs), known
			if !known {
				m.need.add("the entries of prefix list " + m.key.Peer.Value)
			}
			live = append(live, m)
		}
		c.cover(live, out)
	}
	return out
}

func overlaps(xs, target []netip.Prefix) bool {
	for _, x := range xs {
		for _, t := range target {
			if x.Addr().BitLen() == t.Addr().BitLen() && x.Overlaps(t) {
				return true
			}
		}
	}
	return false
}

// member is one permission of a group in eval: checked (index into the
// checked keys) or held (index -1).
type member struct {
	key   rules.Key
	index int
	base  tri
	need  needs
	cidrs []netip.Prefix
	known bool
}

func (m *member) decided() bool { return m.base == yes && m.known }

// grants reports whether permission k grants protocol proto at port (ICMP
// type) p.
func grants(k rules.Key, proto string, p int32) bool {
	switch {
	case k.Protocol == rules.ProtoAll:
		return true
	case k.Protocol != proto:
		return false
	case proto == rules.ProtoTCP || proto == rules.ProtoUDP:
		return k.FromPort <= p && p <= k.ToPort
	case proto == rules.ProtoICMP || proto == rules.ProtoICMPv6:
		return k.FromPort == -1 || k.FromPort == p
	}
	return true
}

// points returns one port (ICMP type) per range of ports over which the
// same members grant proto: the starts of the elementary ranges cut by the
// members' and the clause's port bounds.
func (c *Clause) points(proto string, ms []member) []int32 {
	var top int32
	switch proto {
	case rules.ProtoTCP, rules.ProtoUDP:
		top = 65535
	case rules.ProtoICMP, rules.ProtoICMPv6:
		top = 255
	default:
		return []int32{0} // protocol -1 and numbered protocols have no ports
	}
	set := map[int32]bool{0: true}
	for _, m := range ms {
		if m.key.Protocol != proto || m.key.FromPort < 0 {
			continue
		}
		set[m.key.FromPort] = true
		if proto == rules.ProtoTCP || proto == rules.ProtoUDP {
			set[m.key.ToPort+1] = true
		} else {
			set[m.key.FromPort+1] = true
		}
	}
	for _, pr := range c.Ports {
		set[pr.From], set[pr.To+1] = true, true
	}
	out := make([]int32, 0, len(set))
	for p := range set {
		if p >= 0 && p <= top {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// cover judges the members of one group and direction (see eval) and
// records the outcomes of the checked ones in out.
func (c *Clause) cover(ms []member, out []outcome) {
	protos := []string{c.Protocol}
	if c.Protocol == "" {
		protos = nil
		for _, m := range ms {
			if !slices.Contains(protos, m.key.Protocol) {
				protos = append(protos, m.key.Protocol)
			}
		}
	}
	targets := make([][]netip.Prefix, len(c.CIDRs))
	for i, cc := range c.CIDRs {
		targets[i] = rules.Space(cc)
	}
	for _, proto := range protos {
		var at []member
		for _, m := range ms {
			if m.key.Protocol == proto || m.key.Protocol == rules.ProtoAll {
				at = append(at, m)
			}
		}
		for _, p := range c.points(proto, at) {
			if len(c.Ports) > 0 && c.portsMatch(rules.Key{Protocol: proto, FromPort: p, ToPort: p}) == no {
				continue
			}
			var here []member
			for _, m := range at {
				if grants(m.key, proto, p) {
					here = append(here, m)
				}
			}
			for i, cc := range c.CIDRs {
				judge(here, cc, targets[i], out)
			}
		}
	}
}

// judge decides whether the peers of members ms (all granting one protocol
// and port) cover the clause's CIDR cc (the addresses target), and records
// the outcome of the checked members.
func judge(ms []member, cc netip.Prefix, target []netip.Prefix, out []outcome) {
	if !slices.ContainsFunc(ms, func(m member) bool { return m.index >= 0 }) {
		return
	}
	// Each decided member's CIDRs, with the member of each.
	var mine, held, all []netip.Prefix
	var mineOf, allOf []int
	for i, m := range ms {
		if !m.decided() {
			continue
		}
		for _, x := range m.cidrs {
			all, allOf = append(all, x), append(allOf, i)
			if m.index >= 0 {
				mine, mineOf = append(mine, x), append(mineOf, i)
			} else {
				held = append(held, x)
			}
		}
	}
	set, of := all, allOf
	if rules.Covers(held, target) {
		set, of = mine, mineOf // already covered: only what covers on its own
	}
	if idx, ok := rules.Cover(set, target); ok {
		var resp []int
		for _, x := range idx {
			if !slices.Contains(resp, of[x]) {
				resp = append(resp, of[x])
			}
		}
		for _, r := range resp {
			m := ms[r]
			if m.index < 0 || out[m.index].m == yes {
				continue
			}
			o := outcome{m: yes, over: cc}
			for _, w := range resp {
				if w != r {
					o.with = append(o.with, ms[w].key)
				}
			}
			o.alone = len(resp) == 1 && len(m.cidrs) == 1 && m.key.Peer.Kind != rules.PeerPrefixList && rules.Covers(m.cidrs, []netip.Prefix{cc})
			out[m.index] = o
		}
		return
	}
	// Not covered by what is known: undecided if unknown peers could
	// complete the cover.
	var need needs
	var undecided []member
	for _, m := range ms {
		if !m.decided() {
			undecided = append(undecided, m)
			for _, s := range m.need {
				need.add(s)
			}
		}
	}
	if len(undecided) == 0 {
		return
	}
	blame := slices.ContainsFunc(undecided, func(m member) bool { return m.index >= 0 })
	for _, m := range ms {
		if m.index < 0 || out[m.index].m != no || m.decided() && (blame || !overlaps(m.cidrs, target)) {
			continue
		}
		out[m.index] = outcome{m: unknown, need: slices.Clone(need)}
	}
}

// Match is the outcome of one deny clause for one live rule.
type Match struct {
	Clause *Clause
	// Skipped: the clause could not be decided; Need says what was missing.
	Skipped bool
	Need    []string
	// With are the other rules responsible with this one (a clause on
	// CIDRs whose CIDR the group's peers cover only together).
	With []rules.Key
}

// CheckRule checks one live rule against the deny clauses, for the drift
// sweep: it returns the clauses the rule violates and those it could not
// decide (with what they needed), in clause order. Clauses on CIDRs take
// the rule together with the other rules of its group in facts.Held.
// Tenants do not apply to live rules. With facts read from EC2 (Complete
// groups, the entries of every prefix list) every clause is decided.
func (p *Policy) CheckRule(k rules.Key, facts Facts) []Match {
	if p == nil {
		return nil
	}
	return p.CheckRules([]rules.Key{k}, facts)[0]
}

// CheckRules checks live rules together (those of one group or of many),
// with facts.Held as the groups' other rules: out[i] are the clauses
// keys[i] violates or could not decide, in clause order.
func (p *Policy) CheckRules(keys []rules.Key, facts Facts) [][]Match {
	out := make([][]Match, len(keys))
	if p == nil {
		return out
	}
	for i := range p.Deny {
		c := &p.Deny[i]
		for j, o := range c.eval(keys, facts) {
			switch o.m {
			case yes:
				out[j] = append(out[j], Match{Clause: c, With: o.with})
			case unknown:
				out[j] = append(out[j], Match{Clause: c, Skipped: true, Need: o.need})
			}
		}
	}
	return out
}

// SeveritySkipped marks the diagnostic of a skipped check.
const SeveritySkipped rules.Severity = "notice"

// Violation is one rule of a file that the policy refuses, located at the
// offending node: a deny clause matching one of its permissions, or a
// tenant restriction it breaks. Its Diagnostic is an error whose String()
// reads "FILE:LINE:COL: RULE: violates policy ID: MESSAGE (what matched)".
type Violation struct {
	rules.Diagnostic
	// Policy is the clause id as written, or "tenant PREFIX".
	Policy string
	// Key is the violating permission (zero for tenant violations).
	Key rules.Key
}

// Skip is a check that could not be decided with the facts at hand (it
// needs AWS data): neither a pass nor a violation. Its Diagnostic has
// SeveritySkipped.
type Skip struct {
	rules.Diagnostic
	Policy string
	Need   []string
}

// Result is the outcome of checking one rule file.
type Result struct {
	Violations []Violation
	Skipped    []Skip
}

// Err returns the violations as a *rules.ValidationError (nil when none):
// a file with any violation is invalid as a whole.
func (r Result) Err() error { return r.Diagnostics().Err() }

// Diagnostics returns the violations as error diagnostics, in order.
func (r Result) Diagnostics() rules.Diagnostics {
	out := make(rules.Diagnostics, len(r.Violations))
	for i, v := range r.Violations {
		out[i] = v.Diagnostic
	}
	return out
}

// Source is one rule file to check.
type Source struct {
	// File is the parsed rule file; its Name is the FILE of diagnostics.
	File *rules.File
	// Perms are the file's permissions: rules.Expand(File, …, Resolve).
	Perms []rules.Permission
	// Resolve is the resolver given to Expand (Offline's without AWS); it
	// locates group peers and resolves securityGroup and exclusiveGroups
	// for tenants.
	Resolve rules.Resolver
	// Path is the file's path relative to the rules root (the key without
	// RULES_PREFIX, or the path below the directory given to the CLI),
	// matched against tenant prefixes.
	Path string
	// Account is the account the file's rules apply to: the engine's
	// target account (the file's account field, or the hub's own account
	// when the file names none). "" when the caller does not know it: the
	// file's literal account field is used then, and without one the
	// tenants' accounts are not decided (skipped).
	Account string
}

// Check checks one rule file against the deny clauses and tenants. Every
// violation is located at the rule's offending field (the peer element a
// clause matched, securityGroup for tenants); checks that need facts not at
// hand are returned as skipped. Results are sorted by position, then
// policy.
func (p *Policy) Check(src Source, facts Facts) Result {
	var res Result
	if p == nil || src.File == nil {
		return res
	}
	f := src.File
	byName := make(map[string]*rules.Rule, len(f.Rules))
	for i := range f.Rules {
		byName[f.Rules[i].Name] = &f.Rules[i]
	}
	seenSkip := map[string]bool{}
	skip := func(d rules.Diagnostic, pol string, need []string) {
		key := fmt.Sprintf("%s|%s|%s", d.Rule, d.Field, pol)
		if seenSkip[key] {
			return
		}
		seenSkip[key] = true
		d.Severity = SeveritySkipped
		res.Skipped = append(res.Skipped, Skip{Diagnostic: d, Policy: pol, Need: need})
	}
	at := func(rule, field string, pos rules.Pos, msg string) rules.Diagnostic {
		return rules.Diagnostic{File: f.Name, Line: pos.Line, Col: pos.Col, Rule: rule, Field: field,
			Severity: rules.SeverityError, Msg: msg}
	}

	keys := make([]rules.Key, len(src.Perms))
	for i, perm := range src.Perms {
		keys[i] = perm.Key
	}
	facts = facts.withDeadlines(src.Perms)
	outcomes := make([][]outcome, len(p.Deny))
	for i := range p.Deny {
		outcomes[i] = p.Deny[i].eval(keys, facts)
	}
	for j, perm := range src.Perms {
		r := byName[perm.Owner.Rule]
		field, pos := "", rules.Pos{}
		if r != nil {
			field = peerField(r, perm.Key.Peer, src.Resolve)
			pos = r.Pos
			if fp, ok := r.FieldPos[field]; ok {
				pos = fp
			}
		}
		for i := range p.Deny {
			c := &p.Deny[i]
			switch o := outcomes[i][j]; o.m {
			case yes:
				msg := "violates policy " + c.Name()
				what := describe(perm.Key, facts) + o.together(facts)
				if c.Message != "" {
					msg += ": " + c.Message + " (" + what + ")"
				} else {
					msg += ": " + what
				}
				res.Violations = append(res.Violations, Violation{Diagnostic: at(perm.Owner.Rule, field, pos, msg), Policy: c.ID, Key: perm.Key})
			case unknown:
				skip(at(perm.Owner.Rule, field, pos, fmt.Sprintf("skipped policy %s: needs %s", c.Name(), strings.Join(o.need, " and "))), c.ID, o.need)
			}
		}
	}

	for i := range p.Tenants {
		t := &p.Tenants[i]
		if !strings.HasPrefix(src.Path, t.Prefix) {
			continue
		}
		check := func(rule, field string, pos rules.Pos, ref rules.GroupRef) {
			var need needs
			g := refGroup(ref, src.Resolve, facts)
			switch anyOf(t.Groups, g, &need) {
			case no:
				res.Violations = append(res.Violations, Violation{Policy: t.Label(), Diagnostic: at(rule, field, pos,
					fmt.Sprintf("violates policy %s: %s %s is not a group of the tenant (%s)", t.Label(), field, refLabel(ref, g), selectorsText(t.Groups)))})
			case unknown:
				skip(at(rule, field, pos, fmt.Sprintf("skipped policy %s: needs %s", t.Label(), strings.Join(need, " and "))), t.Label(), need)
			}
		}
		for _, r := range f.Rules {
			check(r.Name, "securityGroup", r.FieldPos["securityGroup"], r.SecurityGroup)
			if t.MaxDuration > 0 {
				pos, ok := r.FieldPos["expiresAt"]
				if !ok {
					pos = r.Pos
				}
				switch msg, decided := t.duration(r.ExpiresAt, facts.Now); {
				case !decided:
					skip(at(r.Name, "expiresAt", pos, fmt.Sprintf("skipped policy %s: needs the time of the check", t.Label())), t.Label(), []string{"the time of the check"})
				case msg != "":
					res.Violations = append(res.Violations, Violation{Policy: t.Label(), Diagnostic: at(r.Name, "expiresAt", pos, msg)})
				}
			}
		}
		for j, g := range f.ExclusiveGroups {
			var pos rules.Pos
			if j < len(f.ExclusivePos) {
				pos = f.ExclusivePos[j]
			}
			check("", fmt.Sprintf("exclusiveGroups[%d]", j), pos, g)
		}
		if len(t.Accounts) > 0 {
			account := src.Account
			if account == "" {
				account = f.Target.Account
			}
			pos := rules.Pos{Line: 1, Col: 1}
			if p, ok := f.TargetPos["account"]; ok && f.Target.Account == account {
				pos = p
			}
			switch {
			case account == "":
				skip(at("", "account", pos, fmt.Sprintf("skipped policy %s: needs the account the file applies to", t.Label())), t.Label(), []string{"the account"})
			case !slices.Contains(t.Accounts, account):
				res.Violations = append(res.Violations, Violation{Policy: t.Label(), Diagnostic: at("", "account", pos,
					fmt.Sprintf("violates policy %s: account %s is not an account of the tenant (%s)", t.Label(), account, strings.Join(t.Accounts, ", ")))})
			}
		}
	}

	sort.SliceStable(res.Violations, func(i, j int) bool { return less(res.Violations[i].Diagnostic, res.Violations[j].Diagnostic) })
	sort.SliceStable(res.Skipped, func(i, j int) bool { return less(res.Skipped[i].Diagnostic, res.Skipped[j].Diagnostic) })
	return res
}

func less(a, b rules.Diagnostic) bool {
	if a.Line != b.Line {
		return a.Line < b.Line
	}
	return a.Col < b.Col
}

// refGroup finds the facts of the group a reference names: those of the
// one group it resolves to, else what the reference itself says.
func refGroup(ref rules.GroupRef, resolve rules.Resolver, facts Facts) Group {
	id := ref.ID
	if id == "" && resolve != nil {
		if ids := resolve(ref); len(ids) == 1 {
			id = ids[0]
		}
	}
	if g, ok := facts.Groups[id]; ok && id != "" {
		return g
	}
	return RefFacts(ref)
}

func refLabel(ref rules.GroupRef, g Group) string {
	text := rules.RefText(ref)
	if g.Complete && g.ID != "" && g.ID != text {
		return text + " (" + g.ID + ")"
	}
	return text
}

func selectorsText(sels []rules.GroupRef) string {
	parts := make([]string, len(sels))
	for i, s := range sels {
		parts[i] = rules.RefText(s)
	}
	return strings.Join(parts, " or ")
}

// peerField finds the field of rule r that produced peer.
func peerField(r *rules.Rule, peer rules.Peer, resolve rules.Resolver) string {
	switch peer.Kind {
	case rules.PeerCIDR4:
		for i, c := range r.CIDRBlocks {
			if c.String() == peer.Value {
				return fmt.Sprintf("cidrBlocks[%d]", i)
			}
		}
	case rules.PeerCIDR6:
		for i, c := range r.IPv6CIDRBlocks {
			if c.String() == peer.Value {
				return fmt.Sprintf("ipv6CidrBlocks[%d]", i)
			}
		}
	case rules.PeerPrefixList:
		for i, pl := range r.PrefixListIDs {
			if pl == peer.Value {
				return fmt.Sprintf("prefixListIds[%d]", i)
			}
		}
	case rules.PeerGroup:
		for i, g := range r.SourceSecurityGroups {
			if g.ID == peer.Value {
				return fmt.Sprintf("sourceSecurityGroups[%d]", i)
			}
			if g.ID == "" && resolve != nil {
				for _, id := range resolve(g) {
					if id == peer.Value {
						return fmt.Sprintf("sourceSecurityGroups[%d]", i)
					}
				}
			}
		}
	}
	return ""
}

// together says, after describe, how a permission covers a clause's CIDR
// when it does not contain it on its own: "; with ingress tcp 22 from
// 128.0.0.0/1 it covers the internet (0.0.0.0/0)", ", which covers the
// internet (::/0)" (2000::/3, a prefix list).
func (o outcome) together(facts Facts) string {
	if o.m != yes || !o.over.IsValid() || o.alone {
		return ""
	}
	over := o.over.String()
	if rules.IsInternet(o.over) {
		over = "the internet (" + over + ")"
	}
	if len(o.with) == 0 {
		return ", which covers " + over
	}
	parts := make([]string, len(o.with))
	for i, k := range o.with {
		parts[i] = describe(k, facts)
	}
	return "; with " + strings.Join(parts, " and ") + " it covers " + over
}

// describe renders a permission for messages: "ingress tcp 22 from
// 0.0.0.0/0", "egress all traffic to {tags: {Name: db}}".
func describe(k rules.Key, facts Facts) string {
	var what string
	switch {
	case k.Protocol == rules.ProtoAll:
		what = "all traffic"
	case k.Protocol == rules.ProtoICMP || k.Protocol == rules.ProtoICMPv6:
		what = k.Protocol
		if k.FromPort == -1 {
			what += " all types"
		} else {
			what += fmt.Sprintf(" type %d", k.FromPort)
		}
	case !rules.HasPorts(k.Protocol):
		what = "protocol " + k.Protocol
	case k.FromPort == k.ToPort:
		what = fmt.Sprintf("%s %d", k.Protocol, k.FromPort)
	default:
		what = fmt.Sprintf("%s %d-%d", k.Protocol, k.FromPort, k.ToPort)
	}
	dir := "from"
	if k.Direction == rules.Egress {
		dir = "to"
	}
	peer := k.Peer.Value
	if k.Peer.Kind == rules.PeerGroup {
		peer = facts.peer(k.Peer).label()
		if peer == "" {
			peer = k.Peer.Value
		}
	}
	return fmt.Sprintf("%s %s %s %s", k.Direction, what, dir, peer)
}

// withDeadlines returns facts with the deadlines of perms added (the map
// is copied: the caller's facts are not changed).
func (f Facts) withDeadlines(perms []rules.Permission) Facts {
	var add []rules.Permission
	for _, p := range perms {
		if !p.ExpiresAt.IsZero() {
			add = append(add, p)
		}
	}
	if len(add) == 0 {
		return f
	}
	d := make(map[rules.Key]time.Time, len(f.Deadlines)+len(add))
	for k, v := range f.Deadlines {
		d[k] = v
	}
	for _, p := range add {
		d[p.Key] = p.ExpiresAt
	}
	f.Deadlines = d
	return f
}

// duration checks a deadline (zero: none) against the tenant's
// maxDuration, measured from now: "" when it is within, the violation's
// message otherwise; decided is false when now is unknown.
func (t *Tenant) duration(at, now time.Time) (msg string, decided bool) {
	switch {
	case now.IsZero():
		return "", false
	case at.IsZero():
		return fmt.Sprintf("violates policy %s: the tenant's rules must expire within %s (maxDuration): set expiresAt", t.Label(), rules.FormatDuration(t.MaxDuration)), true
	case at.Sub(now) > t.MaxDuration:
		return fmt.Sprintf("violates policy %s: expires in %s, over the tenant's maxDuration of %s", t.Label(), rules.FormatDuration(at.Sub(now)), rules.FormatDuration(t.MaxDuration)), true
	}
	return "", true
}
