package policy

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/sgrules/sgrules/pkg/rules"
)

// Field names, in the documented order.
var (
	topFields     = []string{"deny", "tenants", "enforce"}
	clauseFields  = []string{"id", "message", "type", "protocol", "ports", "cidrs", "broaderThan", "groups", "peerGroups", "exempt", "allowIfExpiresWithin"}
	tenantFields  = []string{"prefix", "groups", "accounts", "maxDuration"}
	broaderFields = []string{"ipv4", "ipv6"}
)

var (
	reClauseID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
	reAccount  = regexp.MustCompile(`^[0-9]{12}$`)
	rePorts    = regexp.MustCompile(`^\s*([0-9]+)\s*(?:-\s*([0-9]+)\s*)?$`)
)

const maxMessageLen = 1024

// Parse parses and validates a policy file (YAML, or JSON when name ends in
// .json), with the same located diagnostics as rule files: FILE:LINE:COL,
// the clause id in the rule position, the field. The Policy is nil when any
// error exists. It never panics.
func Parse(name string, data []byte) (pol *Policy, diags rules.Diagnostics) {
	r := rules.NewNodeReader(name, "policy file")
	defer func() {
		if e := recover(); e != nil {
			pol = nil
			diags = append(r.Diagnostics(), rules.Diagnostic{File: name, Line: 1, Col: 1, Severity: rules.SeverityError,
				Msg: fmt.Sprintf("internal error parsing the policy: %v", e)})
		}
	}()
	root := r.Decode(data, `"deny", "tenants" or "enforce"`)
	if root == nil {
		return nil, r.Diagnostics()
	}
	p := &parser{r: r}
	pol = p.top(root)
	diags = r.Diagnostics()
	if diags.HasErrors() {
		return nil, diags
	}
	pol.Name = name
	return pol, diags
}

type parser struct {
	r *rules.NodeReader
}

func (p *parser) top(root *yaml.Node) *Policy {
	r := p.r
	if root.Kind != yaml.MappingNode {
		r.Errorf(root, "", "", `the top level must be a map with "deny", "tenants" or "enforce", got %s`, rules.KindName(root))
		return nil
	}
	pol := &Policy{Enforce: EnforceReport}
	ids := map[string]*yaml.Node{}
	prefixes := map[string]*yaml.Node{}
	r.Pairs(root, "", "top level", func(key string, k, v *yaml.Node) {
		switch key {
		case "deny":
			if v.Kind != yaml.SequenceNode {
				r.Errorf(v, "", "deny", `"deny" must be a list of clauses, got %s`, rules.KindName(v))
				return
			}
			for i, e := range v.Content {
				if c, ok := p.clause(e, fmt.Sprintf("deny[%d]", i), ids); ok {
					pol.Deny = append(pol.Deny, c)
				}
			}
		case "tenants":
			if v.Kind != yaml.SequenceNode {
				r.Errorf(v, "", "tenants", `"tenants" must be a list, got %s`, rules.KindName(v))
				return
			}
			for i, e := range v.Content {
				if t, ok := p.tenant(e, fmt.Sprintf("tenants[%d]", i), prefixes); ok {
					pol.Tenants = append(pol.Tenants, t)
				}
			}
		case "enforce":
			s, ok := r.Text(v, "", "enforce")
			switch {
			case !ok:
			case s == string(EnforceReport) || s == string(EnforceRevoke):
				pol.Enforce = Enforce(s)
			default:
				r.Errorf(v, "", "enforce", "enforce: want report or revoke, got %q", s)
			}
		default:
			r.Unknown(k, "", key, topFields)
		}
	})
	return pol
}

// errs counts error diagnostics, to tell whether a part added any.
func (p *parser) errs() int {
	n := 0
	for _, d := range p.r.Diagnostics() {
		if d.Severity == rules.SeverityError {
			n++
		}
	}
	return n
}

func (p *parser) clause(n *yaml.Node, where string, ids map[string]*yaml.Node) (Clause, bool) {
	r := p.r
	if n.Kind != yaml.MappingNode {
		r.Errorf(n, "", where, "%s: a deny clause must be a map of fields, got %s", where, rules.KindName(n))
		return Clause{}, false
	}
	before := p.errs()
	nodes := map[string]*yaml.Node{}
	keys := map[string]*yaml.Node{}
	suggested := map[string]bool{}
	// The id names the clause in every other message, so read it first.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "id" && n.Content[i].Kind == yaml.ScalarNode {
			nodes["id"] = n.Content[i+1]
		}
	}
	c := Clause{Pos: rules.Pos{Line: n.Line, Col: n.Column}}
	name := where
	if idN := nodes["id"]; idN != nil {
		if s, ok := r.Text(idN, where, "id"); ok {
			if !reClauseID.MatchString(s) {
				r.Errorf(idN, where, "id", "id %q: want 1-128 letters, digits, '-', '_' or '.'", s)
			} else if first, dup := ids[strings.ToLower(s)]; dup {
				r.Errorf(idN, s, "id", "duplicate clause id %q (first at line %d; ids are compared ignoring case)", s, first.Line)
			} else {
				ids[strings.ToLower(s)] = idN
				c.ID, name = s, s
				c.Pos = rules.Pos{Line: idN.Line, Col: idN.Column}
			}
		}
	}
	r.Pairs(n, name, "clause", func(key string, kn, vn *yaml.Node) {
		for _, f := range clauseFields {
			if f == key {
				nodes[key], keys[key] = vn, kn
				return
			}
		}
		suggested[r.Unknown(kn, name, key, clauseFields)] = true
	})
	if nodes["id"] == nil && !suggested["id"] {
		r.Errorf(n, where, "id", `%s: missing required field "id" (a unique name for the clause, shown in every violation)`, where)
	}
	if m := nodes["message"]; m != nil {
		if s, ok := r.Text(m, name, "message"); ok {
			if msg := checkMessage(s); msg != "" {
				r.Errorf(m, name, "message", "message: %s", msg)
			} else {
				c.Message = s
			}
		}
	}
	if t := nodes["type"]; t != nil {
		if s, ok := r.Text(t, name, "type"); ok {
			if s == string(rules.Ingress) || s == string(rules.Egress) {
				c.Direction = rules.Direction(s)
			} else {
				r.Errorf(t, name, "type", "type: want ingress or egress, got %q", s)
			}
		}
	}
	protoOK := true
	if pn := nodes["protocol"]; pn != nil {
		c.Protocol, protoOK = r.Protocol(pn, name, "protocol")
	}
	if pn := nodes["ports"]; pn != nil && protoOK {
		c.Ports = p.ports(pn, name, c.Protocol)
	}
	if cn := nodes["cidrs"]; cn != nil {
		r.List(cn, name, "cidrs", func(e *yaml.Node, field string) {
			if pfx, ok := p.cidr(e, name, field); ok {
				c.CIDRs = append(c.CIDRs, pfx)
			}
		})
		if cn.Kind == yaml.SequenceNode && len(cn.Content) == 0 {
			r.Errorf(cn, name, "cidrs", "cidrs: an empty list matches nothing: remove the field or list CIDRs")
		}
	}
	if bn := nodes["broaderThan"]; bn != nil {
		c.BroaderThan = p.broader(bn, name)
	}
	c.Groups = p.selectors(nodes["groups"], name, "groups")
	c.PeerGroups = p.selectors(nodes["peerGroups"], name, "peerGroups")
	c.Exempt = p.selectors(nodes["exempt"], name, "exempt")
	if dn := nodes["allowIfExpiresWithin"]; dn != nil {
		c.AllowIfExpiresWithin = p.duration(dn, name, "allowIfExpiresWithin")
	}

	if p.errs() > before {
		return c, false
	}
	// Combinations that can never match or that match everything.
	set := func(f string) bool { return nodes[f] != nil }
	switch {
	case !set("type") && !set("protocol") && !set("ports") && !set("cidrs") && !set("broaderThan") && !set("groups") && !set("peerGroups"):
		r.Errorf(n, name, "", "the clause sets no condition and would deny every rule: set at least one of type, protocol, ports, cidrs, broaderThan, groups, peerGroups")
	case set("peerGroups") && set("cidrs"):
		r.Errorf(keys["peerGroups"], name, "peerGroups", "peerGroups and cidrs never match the same rule (a peer is a group or a CIDR): write two clauses")
	case set("peerGroups") && set("broaderThan"):
		r.Errorf(keys["peerGroups"], name, "peerGroups", "peerGroups and broaderThan never match the same rule (a peer is a group or a CIDR): write two clauses")
	case c.Protocol == rules.ProtoICMPv6 && len(c.CIDRs) > 0 && !hasFamily(c.CIDRs, true):
		r.Errorf(nodes["cidrs"], name, "cidrs", "cidrs: icmpv6 applies to IPv6 only and these are IPv4 ranges: the clause would never match")
	case c.Protocol == rules.ProtoICMP && len(c.CIDRs) > 0 && !hasFamily(c.CIDRs, false):
		r.Errorf(nodes["cidrs"], name, "cidrs", "cidrs: icmp applies to IPv4 only and these are IPv6 ranges: the clause would never match (use icmpv6)")
	}
	return c, p.errs() == before
}

func hasFamily(ps []netip.Prefix, v6 bool) bool {
	for _, p := range ps {
		if p.Addr().Is6() == v6 {
			return true
		}
	}
	return false
}

func checkMessage(s string) string {
	if n := utf8.RuneCountInString(s); n > maxMessageLen {
		return fmt.Sprintf("%d characters, over the limit of %d", n, maxMessageLen)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "must be one line of text, without control characters (violations are reported one per line)"
		}
	}
	return ""
}

// ports reads a port, "from-to", or a list of them. For icmp and icmpv6
// the numbers are ICMP types (0-255).
func (p *parser) ports(n *yaml.Node, clause, proto string) []PortRange {
	r := p.r
	switch proto {
	case "", rules.ProtoTCP, rules.ProtoUDP, rules.ProtoICMP, rules.ProtoICMPv6:
	case rules.ProtoAll:
		r.Errorf(n, clause, "ports", "ports: protocol -1 (all traffic) has no ports: a -1 rule opens every port, so remove ports (or protocol)")
		return nil
	default:
		r.Errorf(n, clause, "ports", "ports: protocol %s has no ports: remove ports (or protocol)", proto)
		return nil
	}
	limit, what := int64(65535), "port"
	if proto == rules.ProtoICMP || proto == rules.ProtoICMPv6 {
		limit, what = 255, "ICMP type"
	}
	one := func(e *yaml.Node, field string) (PortRange, bool) {
		bad := func() (PortRange, bool) {
			r.Errorf(e, clause, field, `%s: want a %s 0-%d or a range "FROM-TO", got %s`, field, what, limit, rules.KindName(e))
			return PortRange{}, false
		}
		if e.Kind != yaml.ScalarNode || (e.ShortTag() != "!!int" && e.ShortTag() != "!!str") {
			return bad()
		}
		m := rePorts.FindStringSubmatch(e.Value)
		if m == nil {
			return bad()
		}
		from, err1 := strconv.ParseInt(m[1], 10, 64)
		to, err2 := from, error(nil)
		if m[2] != "" {
			to, err2 = strconv.ParseInt(m[2], 10, 64)
		}
		switch {
		case err1 != nil || err2 != nil || from > limit || to > limit:
			r.Errorf(e, clause, field, "%s: %s is out of range 0-%d", field, strings.TrimSpace(e.Value), limit)
		case from > to:
			r.Errorf(e, clause, field, "%s: %s: the range ends before it starts", field, strings.TrimSpace(e.Value))
		default:
			return PortRange{int32(from), int32(to)}, true
		}
		return PortRange{}, false
	}
	var out []PortRange
	if n.Kind == yaml.SequenceNode {
		if len(n.Content) == 0 {
			r.Errorf(n, clause, "ports", "ports: an empty list matches nothing: remove the field or list ports")
		}
		for i, e := range n.Content {
			if pr, ok := one(e, fmt.Sprintf("ports[%d]", i)); ok {
				out = append(out, pr)
			}
		}
		return out
	}
	if pr, ok := one(n, "ports"); ok {
		out = append(out, pr)
	}
	return out
}

// cidr reads an IPv4 or IPv6 CIDR, canonical (no host bits).
func (p *parser) cidr(n *yaml.Node, clause, field string) (netip.Prefix, bool) {
	r := p.r
	s, ok := r.Text(n, clause, field)
	if !ok {
		return netip.Prefix{}, false
	}
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		if a, aerr := netip.ParseAddr(s); aerr == nil && a.Zone() == "" {
			r.Errorf(n, clause, field, "%s: %q is an address, not a CIDR: did you mean %s/%d?", field, s, a, a.BitLen())
			return netip.Prefix{}, false
		}
		r.Errorf(n, clause, field, "%s: %q is not a CIDR", field, s)
		return netip.Prefix{}, false
	}
	if pfx.Addr().Is4In6() {
		r.Errorf(n, clause, field, "%s: %s is an IPv4-mapped IPv6 range: write the IPv4 form", field, s)
		return netip.Prefix{}, false
	}
	if m := pfx.Masked(); m != pfx {
		r.Errorf(n, clause, field, "%s: %s has host bits set: did you mean %s?", field, s, m)
		return netip.Prefix{}, false
	}
	return pfx, true
}

func (p *parser) broader(n *yaml.Node, clause string) *Broader {
	r := p.r
	if n.Kind != yaml.MappingNode || len(n.Content) == 0 {
		r.Errorf(n, clause, "broaderThan", "broaderThan: want a map {ipv4: PREFIX-LENGTH, ipv6: PREFIX-LENGTH}, got %s", rules.KindName(n))
		return nil
	}
	b := &Broader{}
	r.Pairs(n, clause, "broaderThan", func(key string, k, v *yaml.Node) {
		limit := 32
		switch key {
		case "ipv4":
		case "ipv6":
			limit = 128
		default:
			r.Unknown(k, clause, "broaderThan."+key, broaderFields)
			return
		}
		field := "broaderThan." + key
		var bits int
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" || v.Decode(&bits) != nil {
			r.Errorf(v, clause, field, "%s: want a prefix length 1-%d, got %s", field, limit, rules.KindName(v))
			return
		}
		if bits < 1 || bits > limit {
			r.Errorf(v, clause, field, "%s: %d is out of range 1-%d (broaderThan %d matches prefixes shorter than /%d)", field, bits, limit, bits, bits)
			return
		}
		if key == "ipv4" {
			b.IPv4 = bits
		} else {
			b.IPv6 = bits
		}
	})
	return b
}

// selectors reads one group selector or a list of them (any of).
func (p *parser) selectors(n *yaml.Node, clause, field string) []rules.GroupRef {
	if n == nil {
		return nil
	}
	r := p.r
	if n.Kind != yaml.SequenceNode {
		if g, ok := r.GroupRef(n, clause, field); ok {
			return []rules.GroupRef{g}
		}
		return nil
	}
	if len(n.Content) == 0 {
		r.Errorf(n, clause, field, "%s: an empty list matches no group: remove the field or list selectors", field)
		return nil
	}
	var out []rules.GroupRef
	r.List(n, clause, field, func(e *yaml.Node, f string) {
		if g, ok := r.GroupRef(e, clause, f); ok {
			out = append(out, g)
		}
	})
	return out
}

func (p *parser) tenant(n *yaml.Node, where string, prefixes map[string]*yaml.Node) (Tenant, bool) {
	r := p.r
	if n.Kind != yaml.MappingNode {
		r.Errorf(n, "", where, "%s: a tenant must be a map with prefix and groups, got %s", where, rules.KindName(n))
		return Tenant{}, false
	}
	before := p.errs()
	t := Tenant{Pos: rules.Pos{Line: n.Line, Col: n.Column}}
	name := where
	var groupsN *yaml.Node
	var havePrefix bool
	suggested := map[string]bool{}
	r.Pairs(n, where, "tenant", func(key string, k, v *yaml.Node) {
		switch key {
		case "prefix":
			havePrefix = true
			s, ok := r.Text(v, where, "prefix")
			if !ok {
				return
			}
			switch {
			case s == "" || strings.HasPrefix(s, "/"):
				r.Errorf(v, where, "prefix", "prefix %q: want a path relative to the rules root, such as team-a/", s)
			case !strings.HasSuffix(s, "/"):
				r.Errorf(v, where, "prefix", "prefix %q: end it with a slash (%s/), or it would also cover %s-other/", s, s, s)
			case strings.Contains(s, "//") || strings.Contains("/"+s, "/../") || strings.Contains("/"+s, "/./") || strings.Contains(s, `\`):
				r.Errorf(v, where, "prefix", "prefix %q: want a clean slash-separated path, such as team-a/", s)
			default:
				if first, dup := prefixes[s]; dup {
					r.Errorf(v, where, "prefix", "duplicate tenant prefix %q (first at line %d)", s, first.Line)
					return
				}
				prefixes[s] = v
				t.Prefix = s
				t.Pos = rules.Pos{Line: v.Line, Col: v.Column}
			}
		case "groups":
			groupsN = v
		case "accounts":
			r.List(v, name, "accounts", func(e *yaml.Node, field string) {
				s, ok := r.Text(e, name, field)
				if !ok {
					return
				}
				if !reAccount.MatchString(s) {
					r.Errorf(e, name, field, "%s: %q is not an AWS account id (12 digits; quote it to keep leading zeros)", field, s)
					return
				}
				t.Accounts = append(t.Accounts, s)
			})
			if v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
				r.Errorf(v, name, "accounts", "accounts: an empty list allows no account: remove the field or list accounts")
			}
		case "maxDuration":
			t.MaxDuration = p.duration(v, name, "maxDuration")
			t.MaxDurationPos = rules.Pos{Line: v.Line, Col: v.Column}
		default:
			suggested[r.Unknown(k, where, key, tenantFields)] = true
		}
	})
	if !havePrefix && !suggested["prefix"] {
		r.Errorf(n, where, "prefix", `%s: missing required field "prefix" (the folder of the tenant's rule files, such as team-a/)`, where)
	}
	if groupsN != nil {
		t.Groups = p.selectors(groupsN, where, "groups")
	} else if !suggested["groups"] {
		r.Errorf(n, where, "groups", `%s: missing required field "groups" (the groups the tenant's files may declare rules in, such as {tags: {team: a}})`, where)
	}
	return t, p.errs() == before
}

var reDuration = regexp.MustCompile(`^(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?$`)

// maxPolicyDuration bounds allowIfExpiresWithin and maxDuration: a year.
const maxPolicyDuration = 366 * 24 * time.Hour

// duration reads a positive duration in days, hours and minutes ("8h",
// "90m", "1d12h"), at most a year; 0 when invalid (reported).
func (p *parser) duration(n *yaml.Node, clause, field string) time.Duration {
	s, ok := p.r.Text(n, clause, field)
	if !ok {
		return 0
	}
	m := reDuration.FindStringSubmatch(s)
	if m == nil || s == "" {
		p.r.Errorf(n, clause, field, "%s: %q is not a duration: write days, hours and minutes such as 8h, 90m or 1d12h", field, s)
		return 0
	}
	var d time.Duration
	for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute} {
		if m[i+1] == "" {
			continue
		}
		v, err := strconv.ParseInt(m[i+1], 10, 32)
		if err != nil || time.Duration(v) > maxPolicyDuration/unit {
			d = maxPolicyDuration + 1
			break
		}
		d += time.Duration(v) * unit
	}
	switch {
	case d <= 0:
		p.r.Errorf(n, clause, field, "%s: %q is zero: write a positive duration such as 8h", field, s)
	case d > maxPolicyDuration:
		p.r.Errorf(n, clause, field, "%s: %q is over the limit of 366d", field, s)
	default:
		return d
	}
	return 0
}
