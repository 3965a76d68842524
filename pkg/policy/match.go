package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/sgrules/sgrules/pkg/rules"
)

// Group is what is known of one security group.
type Group struct {
	ID    string
	Name  string
	VPCID string
	Tags  map[string]string
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
	return Group{ID: g.ID, Name: g.Name, VPCID: g.VPCID, Tags: tags}
}

// label names the group in messages.
func (g Group) label() string {
	if g.ID != "" {
		return g.ID
	}
	return rules.RefText(rules.GroupRef{Name: g.Name, VPCID: g.VPCID, Tags: g.Tags})
}

// Facts is what the checks know of the groups and prefix lists involved.
// The zero value knows nothing.
type Facts struct {
	// Groups by the id a permission carries: a group id, or offline the
	// reference's String() (see Offline).
	Groups map[string]Group
	// PrefixLists holds the entries of the prefix lists whose entries are
	// known, by prefix list id. A prefix list not listed is unknown, so
	// clauses on CIDRs are skipped for it.
	PrefixLists map[string][]netip.Prefix
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

// contains reports whether x contains c (same family).
func contains(x, c netip.Prefix) bool {
	return x.Addr().Is4() == c.Addr().Is4() && x.Bits() <= c.Bits() && x.Contains(c.Addr())
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

// match decides whether the clause matches one permission.
func (c *Clause) match(k rules.Key, facts Facts) (tri, needs) {
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
	if len(c.CIDRs) > 0 || c.BroaderThan != nil {
		cidrs, known := peerCIDRs(k.Peer, facts)
		if !known {
			need.add("the entries of prefix list " + k.Peer.Value)
			out = unknown
		}
		if known && len(c.CIDRs) > 0 {
			m := no
			for _, x := range cidrs {
				for _, cc := range c.CIDRs {
					if contains(x, cc) {
						m = yes
					}
				}
			}
			if m == no {
				return no, nil
			}
		}
		if known && c.BroaderThan != nil {
			m := no
			for _, x := range cidrs {
				limit := c.BroaderThan.IPv4
				if x.Addr().Is6() {
					limit = c.BroaderThan.IPv6
				}
				if limit > 0 && x.Bits() < limit {
					m = yes
				}
			}
			if m == no {
				return no, nil
			}
		}
	}
	if len(c.PeerGroups) > 0 {
		if k.Peer.Kind != rules.PeerGroup {
			return no, nil
		}
		m := anyOf(c.PeerGroups, facts.group(k.Peer.Value), &need)
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

// Match is the outcome of one deny clause for one live rule.
type Match struct {
	Clause *Clause
	// Skipped: the clause could not be decided; Need says what was missing.
	Skipped bool
	Need    []string
}

// CheckRule checks one live rule against the deny clauses, for the drift
// sweep: it returns the clauses the rule violates and those it could not
// decide (with what they needed), in clause order. Tenants do not apply to
// live rules. With facts read from EC2 (Complete groups) only prefix list
// peers can leave a clause undecided.
func (p *Policy) CheckRule(k rules.Key, facts Facts) []Match {
	if p == nil {
		return nil
	}
	var out []Match
	for i := range p.Deny {
		c := &p.Deny[i]
		switch m, need := c.match(k, facts); m {
		case yes:
			out = append(out, Match{Clause: c})
		case unknown:
			out = append(out, Match{Clause: c, Skipped: true, Need: need})
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

	for _, perm := range src.Perms {
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
			switch m, need := c.match(perm.Key, facts); m {
			case yes:
				msg := "violates policy " + c.Name()
				what := describe(perm.Key, facts)
				if c.Message != "" {
					msg += ": " + c.Message + " (" + what + ")"
				} else {
					msg += ": " + what
				}
				res.Violations = append(res.Violations, Violation{Diagnostic: at(perm.Owner.Rule, field, pos, msg), Policy: c.ID, Key: perm.Key})
			case unknown:
				skip(at(perm.Owner.Rule, field, pos, fmt.Sprintf("skipped policy %s: needs %s", c.Name(), strings.Join(need, " and "))), c.ID, need)
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
		peer = facts.group(k.Peer.Value).label()
		if peer == "" {
			peer = k.Peer.Value
		}
	}
	return fmt.Sprintf("%s %s %s %s", k.Direction, what, dir, peer)
}
