package rules

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Field readers: each reads one value node, reports what is wrong with it
// (located at the node, naming the rule and the field path) and returns
// the value and whether it is valid.

// text reads a scalar as text: any non-null scalar, keeping its literal form.
func (p *parser) text(n *yaml.Node, rule, field string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		p.errf(n, rule, field, "%s: want a string, got %s", field, kindName(n))
		return "", false
	}
	return n.Value, true
}

// list calls fn for each element of a list with its field path.
func (p *parser) list(n *yaml.Node, rule, field string, fn func(e *yaml.Node, field string)) {
	if n.Kind != yaml.SequenceNode {
		hint := ""
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
			hint = fmt.Sprintf(" (write [%s])", n.Value)
		}
		p.errf(n, rule, field, "%s: want a list, got %s%s", field, kindName(n), hint)
		return
	}
	for i, e := range n.Content {
		fn(e, fmt.Sprintf("%s[%d]", field, i))
	}
}

// direction reads type: ingress or egress.
func (p *parser) direction(n *yaml.Node, rule string) (Direction, bool) {
	s, ok := p.text(n, rule, "type")
	if !ok {
		return "", false
	}
	if s == string(Ingress) || s == string(Egress) {
		return Direction(s), true
	}
	p.errf(n, rule, "type", "type: want ingress or egress, got %q%s", s, didYouMean(s, directions))
	return "", false
}

const protocolHint = "tcp, udp, icmp, icmpv6, all, -1 or a number 0-255"

// protocol reads a protocol name or number, spelled as the schema allows,
// into its canonical form.
func (p *parser) protocol(n *yaml.Node, rule string) (string, bool) {
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!str" && n.ShortTag() != "!!int") {
		p.errf(n, rule, "protocol", "protocol: want %s, got %s", protocolHint, kindName(n))
		return "", false
	}
	if msg := nonDecimal(n, "protocol numbers"); msg != "" {
		p.errf(n, rule, "protocol", "protocol: %s", msg)
		return "", false
	}
	proto, err := NormalizeProtocol(n.Value)
	if err != nil {
		p.errf(n, rule, "protocol", "protocol: %v%s", err, didYouMean(n.Value, protocolNames))
		return "", false
	}
	if fix := strings.ToLower(strings.TrimSpace(n.Value)); fix != n.Value {
		p.errf(n, rule, "protocol", "protocol: write %q, not %q (lower case, no spaces)", fix, n.Value)
		return "", false
	}
	return proto, true
}

// optPort is an optional port field.
type optPort struct {
	v   int64
	set bool
}

// port reads an optional integer field (fromPort, toPort).
func (p *parser) port(n *yaml.Node, rule, field string) (optPort, bool) {
	if n == nil {
		return optPort{}, true
	}
	v, msg := p.portValue(n)
	if msg != "" {
		p.errf(n, rule, field, "%s: %s", field, msg)
		return optPort{}, false
	}
	return optPort{v, true}, true
}

// portValue reads a port's number, or says why there is none.
func (p *parser) portValue(n *yaml.Node) (int64, string) {
	if n.Kind != yaml.ScalarNode {
		return 0, "want a whole number, got " + kindName(n)
	}
	if msg := nonDecimal(n, "ports"); msg != "" {
		return 0, msg
	}
	switch n.ShortTag() {
	case "!!int":
		var v int64
		if err := n.Decode(&v); err != nil {
			return 0, n.Value + " is out of range"
		}
		return v, ""
	case "!!str":
		if v, err := strconv.ParseInt(strings.TrimSpace(n.Value), 10, 64); err == nil {
			if p.numericStrings {
				return v, ""
			}
			return 0, fmt.Sprintf("want a number, got the string %q (write %d without quotes)", n.Value, v)
		}
	}
	if reDigits.MatchString(n.Value) {
		return 0, n.Value + " is out of range"
	}
	return 0, "want a whole number, got " + kindName(n)
}

var (
	reDigits  = regexp.MustCompile(`^[-+]?[0-9]+$`)
	reDecimal = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)
	reIntLike = regexp.MustCompile(`^[-+]?(0[xXoObB][0-9a-fA-F_]+|[0-9][0-9_]*)$`)
)

// nonDecimal explains why an unquoted number is not written in decimal
// (022, 0x50, 0o17, 0b1, 8_0, +80), suggesting the decimal value, or
// returns "". YAML parsers disagree on such spellings (yaml.v3 reads 022
// as octal 18, YAML 1.2 and most editors as 22), so numbers (ports,
// protocol numbers) are decimal only. what names them in the message.
func nonDecimal(n *yaml.Node, what string) string {
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 || reDecimal.MatchString(n.Value) || !reIntLike.MatchString(n.Value) {
		return ""
	}
	if v, ok := intValue(n.Value); ok {
		return fmt.Sprintf("%s is not decimal: %s are decimal; write %d", n.Value, what, v)
	}
	return fmt.Sprintf("%s is not decimal: %s are decimal", n.Value, what)
}

// intValue reads an integer in any spelling reIntLike matches: decimal
// with leading zeros (as decimal), 0x, 0o, 0b, '_' separators, a sign.
func intValue(s string) (int64, bool) {
	t := strings.ReplaceAll(s, "_", "")
	neg := strings.HasPrefix(t, "-")
	t = strings.TrimLeft(t, "+-")
	base := 10
	if len(t) > 2 && t[0] == '0' {
		switch t[1] {
		case 'x', 'X':
			base = 16
		case 'o', 'O':
			base = 8
		case 'b', 'B':
			base = 2
		}
		if base != 10 {
			t = t[2:]
		}
	}
	v, err := strconv.ParseInt(t, base, 64)
	if err != nil {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}

// portPair is a rule's fromPort and toPort as read, with their nodes.
type portPair struct {
	rule       string
	key        *yaml.Node // the rule's name, where missing ports are reported
	from, to   optPort
	fromN, toN *yaml.Node
}

// ports checks the port fields against the protocol and returns what EC2
// stores.
func (p *parser) ports(proto string, pp portPair) (int32, int32) {
	switch proto {
	case ProtoTCP, ProtoUDP:
		return p.tcpPorts(proto, pp)
	case ProtoICMP, ProtoICMPv6:
		return p.icmpPorts(pp)
	}
	p.noPorts(proto, pp)
	return NormalizePorts(proto, int32(pp.from.v), int32(pp.to.v))
}

// tcpPorts: both ports required, 0 <= from <= to <= 65535.
func (p *parser) tcpPorts(proto string, pp portPair) (int32, int32) {
	fromOK := p.tcpPort(proto, pp, "fromPort", pp.from, pp.fromN)
	toOK := p.tcpPort(proto, pp, "toPort", pp.to, pp.toN)
	if fromOK && toOK && pp.from.v > pp.to.v {
		p.errf(pp.toN, pp.rule, "toPort", "toPort: %d is less than fromPort %d", pp.to.v, pp.from.v)
	}
	return int32(pp.from.v), int32(pp.to.v)
}

func (p *parser) tcpPort(proto string, pp portPair, field string, v optPort, n *yaml.Node) bool {
	switch {
	case !v.set:
		p.errf(pp.key, pp.rule, field, "missing required field %q (%s needs fromPort and toPort, 0-65535)", field, proto)
	case v.v < 0 || v.v > 65535:
		p.errf(n, pp.rule, field, "%s: %d is out of range 0-65535%s", field, v.v, allPortsHint(v.v))
	default:
		return true
	}
	return false
}

// icmpPorts: fromPort is the type, toPort the code, -1 (or absent) for
// all; a code needs a type.
func (p *parser) icmpPorts(pp portPair) (int32, int32) {
	from, to := pp.from.v, pp.to.v
	if !pp.from.set {
		if pp.to.set && to != -1 {
			p.errf(pp.toN, pp.rule, "toPort", "toPort: an ICMP code needs an ICMP type in fromPort")
		}
		return -1, -1
	}
	if !pp.to.set {
		to = -1
	}
	bad := false
	if from < -1 || from > 255 {
		p.errf(pp.fromN, pp.rule, "fromPort", "fromPort: ICMP type %d is out of range -1-255", from)
		bad = true
	}
	if to < -1 || to > 255 {
		p.errf(pp.toN, pp.rule, "toPort", "toPort: ICMP code %d is out of range -1-255", to)
		bad = true
	}
	if !bad && from == -1 && to != -1 {
		p.errf(pp.toN, pp.rule, "toPort", "toPort: ICMP code %d needs a specific type: fromPort -1 (all types) requires toPort -1", to)
	}
	return int32(from), int32(to)
}

// noPorts: protocols without ports accept only absent or -1.
func (p *parser) noPorts(proto string, pp portPair) {
	what := "protocol " + proto + " has no ports"
	if proto == ProtoAll {
		what = "protocol -1 (all traffic) has no ports: a port here would silently open every port"
	}
	if pp.from.set && pp.from.v != -1 {
		p.errf(pp.fromN, pp.rule, "fromPort", "fromPort: %s; remove fromPort or set it to -1", what)
	}
	if pp.to.set && pp.to.v != -1 {
		p.errf(pp.toN, pp.rule, "toPort", "toPort: %s; remove toPort or set it to -1", what)
	}
}

func allPortsHint(v int64) string {
	if v == -1 {
		return " (for all ports write fromPort: 0 and toPort: 65535)"
	}
	return ""
}

func (p *parser) cidr(n *yaml.Node, rule, field string, v6 bool) (netip.Prefix, bool) {
	s, ok := p.text(n, rule, field)
	if !ok {
		return netip.Prefix{}, false
	}
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		if a, aerr := netip.ParseAddr(s); aerr == nil && a.Zone() == "" {
			p.errf(n, rule, field, "%s: %q is an address, not a CIDR: did you mean %s/%d?", field, s, a, a.BitLen())
			return netip.Prefix{}, false
		}
		why := err.Error()
		if _, after, ok := strings.Cut(why, "): "); ok {
			why = after
		}
		p.errf(n, rule, field, "%s: %q is not a CIDR (%s)", field, s, why)
		return netip.Prefix{}, false
	}
	switch {
	case pfx.Addr().Is4In6():
		p.errf(n, rule, field, "%s: %s is an IPv4-mapped IPv6 range: write the IPv4 form in cidrBlocks", field, s)
		return netip.Prefix{}, false
	case v6 && pfx.Addr().Is4():
		p.errf(n, rule, field, "%s: %s is an IPv4 range: put it in cidrBlocks", field, s)
		return netip.Prefix{}, false
	case !v6 && pfx.Addr().Is6():
		p.errf(n, rule, field, "%s: %s is an IPv6 range: put it in ipv6CidrBlocks", field, s)
		return netip.Prefix{}, false
	}
	if m := pfx.Masked(); m != pfx {
		p.errf(n, rule, field, "%s: %s has host bits set: did you mean %s?", field, s, m)
		return netip.Prefix{}, false
	}
	return pfx, true
}

func checkDescription(s string) string {
	if n := utf8.RuneCountInString(s); n > maxDescLen {
		return fmt.Sprintf("%d characters, over the limit of %d", n, maxDescLen)
	}
	for i, r := range s {
		if !strings.ContainsRune(descAllowed, r) {
			return fmt.Sprintf("character %q at position %d is not allowed (EC2 allows a-z A-Z 0-9, space and ._-:/()#,@[]+=&;{}!$*)", string(r), utf8.RuneCountInString(s[:i])+1)
		}
	}
	return ""
}

func (p *parser) prefixListID(n *yaml.Node, rule, field string) (string, bool) {
	s, ok := p.text(n, rule, field)
	if !ok {
		return "", false
	}
	if !rePrefixID.MatchString(s) {
		p.errf(n, rule, field, "%s: %q is not a prefix list id (pl- and 8 or 17 lower-case hex digits)", field, s)
		return "", false
	}
	return s, true
}

func (p *parser) description(n *yaml.Node, rule string) (string, bool) {
	s, ok := p.text(n, rule, "description")
	if !ok {
		return "", false
	}
	if msg := checkDescription(s); msg != "" {
		p.errf(n, rule, "description", "description: %s", msg)
		return "", false
	}
	return s, true
}

// refUse tells where a group reference stands, which decides the map
// forms it may take.
type refUse int

const (
	refOther refUse = iota // other file formats (policy files): id, {groupName, vpcId} or {tags}
	refOwn                 // securityGroup, exclusiveGroups: also {groupId}
	refPeer                // sourceSecurityGroups: also {groupId, account}
)

// refKeys lists the keys of a group map for each use.
var refKeys = map[refUse][]string{
	refOther: refFields,
	refOwn:   {"groupId", "groupName", "vpcId", "tags"},
	refPeer:  {"groupId", "account", "groupName", "vpcId", "tags"},
}

// groupRef reads a security group reference: an id string, or a map
// {groupName, vpcId} or {tags}.
func (p *parser) groupRef(n *yaml.Node, rule, field string) (GroupRef, bool) {
	return p.groupRefIn(n, rule, field, refOther)
}

// groupRefIn reads a group reference used as use says.
func (p *parser) groupRefIn(n *yaml.Node, rule, field string, use refUse) (GroupRef, bool) {
	switch n.Kind {
	case yaml.ScalarNode:
		return p.groupID(n, rule, field)
	case yaml.MappingNode:
		return p.groupMap(n, rule, field, use)
	}
	forms := "a group id, {groupName: NAME, vpcId: vpc-…} or {tags: {…}}"
	if use == refPeer {
		forms = `a group id, {groupId: sg-…, account: "…"}, {groupName: NAME, vpcId: vpc-…} or {tags: {…}}`
	}
	p.errf(n, rule, field, "%s: want %s, got %s", field, forms, kindName(n))
	return GroupRef{}, false
}

func (p *parser) groupID(n *yaml.Node, rule, field string) (GroupRef, bool) {
	s, ok := p.text(n, rule, field)
	if !ok {
		return GroupRef{}, false
	}
	if !reGroupID.MatchString(s) {
		p.errf(n, rule, field, "%s: %q is not a group id (sg- and 8 or 17 lower-case hex digits); to reference a group by name write {groupName: NAME, vpcId: vpc-…} or {tags: {Name: NAME}}", field, s)
		return GroupRef{}, false
	}
	return GroupRef{ID: s}, true
}

// groupMap reads {groupName, vpcId} or {tags}; for a rule's groups also
// {groupId}, and for a source group also {groupId, account}.
func (p *parser) groupMap(n *yaml.Node, rule, field string, use refUse) (GroupRef, bool) {
	var ref GroupRef
	seen := map[string]bool{}
	bad := false
	p.pairs(n, rule, field, func(key string, k, v *yaml.Node) {
		seen[key] = true
		ok := false
		switch {
		case key == "groupName":
			ref.Name, ok = p.groupName(v, rule, field)
		case key == "vpcId":
			ref.VPCID, ok = p.vpcID(v, rule, field)
		case key == "tags":
			ref.Tags, ok = p.tags(v, rule, field)
		case key == "groupId" && use != refOther:
			var id GroupRef
			id, ok = p.groupID(v, rule, field+".groupId")
			ref.ID = id.ID
		case key == "account" && use == refPeer:
			ref.Account, ok = p.accountID(v, rule, field+".account")
		case key == "account" && use == refOwn:
			p.errf(k, rule, field+".account", "%s.account: the groups a file manages are in the file's target: set the top-level account (and region) instead; account names a source group in another account, in sourceSecurityGroups", field)
		default:
			p.unknown(k, rule, field+"."+key, refKeys[use])
		}
		bad = bad || !ok
	})
	if bad {
		return GroupRef{}, false
	}
	if msg := refForm(seen); msg != "" {
		p.errf(n, rule, field, "%s: %s", field, msg)
		return GroupRef{}, false
	}
	return ref, true
}

// refForm says what is wrong with the set of keys of a group map, or "".
func refForm(keys map[string]bool) string {
	switch {
	case keys["groupId"] && (keys["groupName"] || keys["vpcId"] || keys["tags"]):
		return "use one of {groupId}, {groupName, vpcId} or {tags}"
	case keys["account"] && !keys["groupId"]:
		return "account needs groupId (a group in another account is named by its id)"
	case keys["groupId"]:
		return ""
	case keys["tags"] && (keys["groupName"] || keys["vpcId"]):
		return "use either {groupName, vpcId} or {tags}, not both"
	case keys["groupName"] && !keys["vpcId"]:
		return "groupName needs vpcId (group names are unique only within a VPC)"
	case keys["vpcId"] && !keys["groupName"]:
		return "vpcId needs groupName"
	case !keys["tags"] && !keys["groupName"]:
		return "want {groupName: NAME, vpcId: vpc-…} or {tags: {…}}, got an empty map"
	}
	return ""
}

func (p *parser) groupName(v *yaml.Node, rule, field string) (string, bool) {
	s, ok := p.text(v, rule, field+".groupName")
	if !ok {
		return "", false
	}
	if s == "" || utf8.RuneCountInString(s) > maxGroupLen {
		p.errf(v, rule, field+".groupName", "%s.groupName: want 1-%d characters", field, maxGroupLen)
		return "", false
	}
	return s, true
}

func (p *parser) vpcID(v *yaml.Node, rule, field string) (string, bool) {
	s, ok := p.text(v, rule, field+".vpcId")
	if !ok {
		return "", false
	}
	if !reVPCID.MatchString(s) {
		p.errf(v, rule, field+".vpcId", "%s.vpcId: %q is not a VPC id (vpc- and 8 or 17 lower-case hex digits)", field, s)
		return "", false
	}
	return s, true
}

// tags reads a non-empty map of tag key to value.
func (p *parser) tags(v *yaml.Node, rule, field string) (map[string]string, bool) {
	if v.Kind != yaml.MappingNode || len(v.Content) == 0 {
		p.errf(v, rule, field+".tags", "%s.tags: want a non-empty map of tag key to value, got %s", field, kindName(v))
		return nil, false
	}
	tags := map[string]string{}
	ok := true
	p.pairs(v, rule, "tags", func(key string, tk, tv *yaml.Node) {
		if s, good := p.tag(key, tk, tv, rule, field); good {
			tags[key] = s
		} else {
			ok = false
		}
	})
	return tags, ok
}

func (p *parser) tag(key string, tk, tv *yaml.Node, rule, field string) (string, bool) {
	tf := field + ".tags." + key
	if key == "" || utf8.RuneCountInString(key) > maxTagKey {
		p.errf(tk, rule, tf, "%s.tags: a tag key must have 1-%d characters", field, maxTagKey)
		return "", false
	}
	s, ok := p.text(tv, rule, tf)
	if !ok {
		return "", false
	}
	if utf8.RuneCountInString(s) > maxTagValue {
		p.errf(tv, rule, tf, "%s: a tag value must have at most %d characters", tf, maxTagValue)
		return "", false
	}
	return s, true
}
