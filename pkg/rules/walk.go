package rules

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// parser walks a decoded node tree, collecting diagnostics.
type parser struct {
	file           string
	numericStrings bool // ValueOptions.NumericStrings: "80" is accepted for ports
	diags          Diagnostics
}

func (p *parser) add(sev Severity, line, col int, rule, field, msg string) {
	p.diags = append(p.diags, Diagnostic{File: p.file, Line: line, Col: col, Rule: rule, Field: field, Severity: sev, Msg: msg})
}

func (p *parser) errf(n *yaml.Node, rule, field, format string, args ...any) {
	p.add(SeverityError, n.Line, n.Column, rule, field, fmt.Sprintf(format, args...))
}

func (p *parser) warnf(pos Pos, rule, field, format string, args ...any) {
	p.add(SeverityWarning, pos.Line, pos.Col, rule, field, fmt.Sprintf(format, args...))
}

func (p *parser) sorted() Diagnostics {
	sort.SliceStable(p.diags, func(i, j int) bool {
		a, b := p.diags[i], p.diags[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return p.diags
}

func posOf(n *yaml.Node) Pos { return Pos{Line: n.Line, Col: n.Column} }

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a map"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "nothing"
		case "!!int", "!!float":
			return "the number " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		case "!!str":
			return strconv.Quote(n.Value)
		}
		return strconv.Quote(n.Value)
	}
	return "an unsupported value"
}

// pairs iterates a mapping node, reporting non-scalar and duplicate keys.
// The callback gets the key text, the key node and the value node.
func (p *parser) pairs(n *yaml.Node, rule, what string, fn func(key string, k, v *yaml.Node)) {
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errf(k, rule, "", "%s: a key must be a plain string, got %s", what, kindName(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			p.errf(k, rule, k.Value, "duplicate %s %q (first at line %d)", keyWhat(what), k.Value, first.Line)
			continue
		}
		seen[k.Value] = k
		fn(k.Value, k, v)
	}
}

func keyWhat(what string) string {
	switch what {
	case "rules":
		return "rule name"
	case "tags":
		return "tag"
	}
	return "field"
}

// unknown reports an unknown field and returns the suggestion made, if any.
func (p *parser) unknown(k *yaml.Node, rule, field string, known []string) string {
	if s := suggest(k.Value, known); s != "" {
		p.errf(k, rule, field, "unknown field %q (did you mean %q?)", k.Value, s)
		return s
	}
	p.errf(k, rule, field, "unknown field %q (known fields: %s)", k.Value, strings.Join(known, ", "))
	return ""
}

// errorsSince reports whether an error was added after the first n
// diagnostics.
func (p *parser) errorsSince(n int) bool { return p.diags[n:].HasErrors() }

// top reads the top-level map: "rules", "exclusiveGroups", "account" and
// "region".
func (p *parser) top(root *yaml.Node) *File {
	if root.Kind != yaml.MappingNode {
		p.errf(root, "", "", `the top level must be a map with "rules", got %s`, kindName(root))
		return nil
	}
	f := &File{}
	var rulesNode *yaml.Node
	p.pairs(root, "", "top level", func(key string, k, v *yaml.Node) {
		switch key {
		case "rules":
			rulesNode = v
			if v.Kind != yaml.MappingNode {
				p.errf(v, "", "rules", `"rules" must be a map of rule name to rule (use rules: {} for none), got %s`, kindName(v))
				rulesNode = nil
			}
		case "exclusiveGroups":
			p.exclusiveGroups(f, v)
		case "account", "region":
			p.target(f, key, v)
		case "allowUsedRemoval":
			p.allowUsedRemoval(f, v)
		default:
			p.unknown(k, "", key, topFields)
		}
	})
	if rulesNode == nil {
		if !p.diags.HasErrors() {
			p.errf(root, "", "rules", `missing "rules": want a map of rule name to rule`)
		}
		return nil
	}
	f.Rules = []Rule{}
	p.pairs(rulesNode, "", "rules", func(name string, k, v *yaml.Node) {
		if r, ok := p.rule(name, k, v); ok {
			f.Rules = append(f.Rules, r)
		}
	})
	localPeers(f)
	p.fileChecks(f)
	return f
}

func (p *parser) exclusiveGroups(f *File, v *yaml.Node) {
	if v.Kind != yaml.SequenceNode {
		p.errf(v, "", "exclusiveGroups", `"exclusiveGroups" must be a list of security groups, got %s`, kindName(v))
		return
	}
	for i, e := range v.Content {
		field := fmt.Sprintf("exclusiveGroups[%d]", i)
		if ref, ok := p.groupRefIn(e, "", field, refOwn); ok {
			f.ExclusiveGroups = append(f.ExclusiveGroups, ref)
			f.ExclusivePos = append(f.ExclusivePos, posOf(e))
		}
	}
}

// allowUsedRemoval reads the names of the rules whose used permissions the
// file lets go: a list of distinct rule names.
func (p *parser) allowUsedRemoval(f *File, v *yaml.Node) {
	const field = "allowUsedRemoval"
	if v.Kind != yaml.SequenceNode {
		p.errf(v, "", field, `"allowUsedRemoval" must be a list of rule names (the rules whose used permissions this change may revoke or narrow), got %s`, kindName(v))
		return
	}
	seen := map[string]int{}
	for i, e := range v.Content {
		at := fmt.Sprintf("%s[%d]", field, i)
		if e.Kind != yaml.ScalarNode || e.ShortTag() != "!!str" && e.ShortTag() != "!!int" {
			p.errf(e, "", at, "want a rule name, got %s", kindName(e))
			continue
		}
		if !reRuleName.MatchString(e.Value) {
			p.errf(e, "", at, "%q is not a rule name: 1-%d letters, digits, '-', '_' or '.'", e.Value, maxNameLen)
			continue
		}
		if j, dup := seen[e.Value]; dup {
			p.errf(e, "", at, "rule %q is listed twice (first at allowUsedRemoval[%d])", e.Value, j)
			continue
		}
		seen[e.Value] = i
		f.AllowUsedRemoval = append(f.AllowUsedRemoval, e.Value)
		f.AllowUsedPos = append(f.AllowUsedPos, posOf(e))
	}
}

// ruleReader reads the fields of one rule.
type ruleReader struct {
	p         *parser
	key       *yaml.Node // the rule's name: where rule-level problems are reported
	r         *Rule
	nodes     map[string]*yaml.Node // the value node of each known field
	suggested map[string]bool       // fields an unknown field was taken for
}

// rule parses and validates one rule. Every problem is reported, and ok is
// false when the rule has any error.
func (p *parser) rule(name string, k, v *yaml.Node) (Rule, bool) {
	before := len(p.diags)
	r := Rule{Name: name, Pos: posOf(k), FieldPos: map[string]Pos{}}
	p.ruleName(name, k)
	if v.Kind != yaml.MappingNode {
		p.errf(v, name, "", "a rule must be a map of fields, got %s", kindName(v))
		return r, false
	}
	rr := &ruleReader{p: p, key: k, r: &r, nodes: map[string]*yaml.Node{}, suggested: map[string]bool{}}
	rr.collect(v)
	rr.securityGroup()
	typeOK := rr.direction()
	protoOK := rr.protocol()
	rr.ports(protoOK)
	rr.peers()
	rr.description()
	rr.expiresAt()
	rr.requirePeer()
	if p.errorsSince(before) {
		return r, false
	}
	if typeOK && protoOK {
		p.familyChecks(&r, rr.nodes)
	}
	return r, !p.errorsSince(before)
}

func (p *parser) ruleName(name string, k *yaml.Node) {
	switch {
	case reRuleName.MatchString(name):
	case name == "":
		p.errf(k, name, "", "rule name is empty")
	case utf8.RuneCountInString(name) > maxNameLen:
		p.errf(k, name, "", "rule name is %d characters, over the limit of %d", utf8.RuneCountInString(name), maxNameLen)
	default:
		p.errf(k, name, "", "rule name %q: only letters, digits, '-', '_' and '.' are allowed", name)
	}
}

// collect sorts the rule's fields into nodes, reporting unknown ones.
func (rr *ruleReader) collect(v *yaml.Node) {
	rr.p.pairs(v, rr.r.Name, "rule", func(key string, kn, vn *yaml.Node) {
		if slices.Contains(ruleFields, key) {
			rr.nodes[key] = vn
			rr.r.FieldPos[key] = posOf(vn)
			return
		}
		rr.suggested[rr.p.unknown(kn, rr.r.Name, key, ruleFields)] = true
	})
}

// missing reports a missing required field, unless an unknown field was
// taken for it: that is one problem, already reported.
func (rr *ruleReader) missing(field, hint string) {
	if !rr.suggested[field] {
		rr.p.errf(rr.key, rr.r.Name, field, "missing required field %q (%s)", field, hint)
	}
}

func (rr *ruleReader) securityGroup() {
	n := rr.nodes["securityGroup"]
	if n == nil {
		rr.missing("securityGroup", "a group id sg-…, {groupName: NAME, vpcId: vpc-…} or {tags: {Name: NAME}}")
		return
	}
	rr.r.SecurityGroup, _ = rr.p.groupRefIn(n, rr.r.Name, "securityGroup", refOwn)
}

func (rr *ruleReader) direction() bool {
	n := rr.nodes["type"]
	if n == nil {
		rr.missing("type", "ingress or egress")
		return false
	}
	d, ok := rr.p.direction(n, rr.r.Name)
	rr.r.Direction = d
	return ok
}

func (rr *ruleReader) protocol() bool {
	n := rr.nodes["protocol"]
	if n == nil {
		rr.missing("protocol", protocolHint)
		return false
	}
	proto, ok := rr.p.protocol(n, rr.r.Name)
	rr.r.Protocol = proto
	return ok
}

// ports reads fromPort and toPort, and checks them against the protocol
// when it is known.
func (rr *ruleReader) ports(protoOK bool) {
	pp := portPair{rule: rr.r.Name, key: rr.key, fromN: rr.nodes["fromPort"], toN: rr.nodes["toPort"]}
	fromOK, toOK := false, false
	pp.from, fromOK = rr.p.port(pp.fromN, pp.rule, "fromPort")
	pp.to, toOK = rr.p.port(pp.toN, pp.rule, "toPort")
	if protoOK && fromOK && toOK {
		rr.r.FromPort, rr.r.ToPort = rr.p.ports(rr.r.Protocol, pp)
	}
}

func (rr *ruleReader) peers() {
	p, r := rr.p, rr.r
	rr.each("cidrBlocks", func(e *yaml.Node, field string) bool {
		pfx, ok := p.cidr(e, r.Name, field, false)
		if ok {
			r.CIDRBlocks = append(r.CIDRBlocks, pfx)
		}
		return ok
	})
	rr.each("ipv6CidrBlocks", func(e *yaml.Node, field string) bool {
		pfx, ok := p.cidr(e, r.Name, field, true)
		if ok {
			r.IPv6CIDRBlocks = append(r.IPv6CIDRBlocks, pfx)
		}
		return ok
	})
	rr.each("sourceSecurityGroups", func(e *yaml.Node, field string) bool {
		ref, ok := p.groupRefIn(e, r.Name, field, refPeer)
		if ok {
			r.SourceSecurityGroups = append(r.SourceSecurityGroups, ref)
		}
		return ok
	})
	rr.each("prefixListIds", func(e *yaml.Node, field string) bool {
		id, ok := p.prefixListID(e, r.Name, field)
		if ok {
			r.PrefixListIDs = append(r.PrefixListIDs, id)
		}
		return ok
	})
}

// each reads the elements of a list field with read, recording the
// position of every element read.
func (rr *ruleReader) each(field string, read func(e *yaml.Node, field string) bool) {
	n := rr.nodes[field]
	if n == nil {
		return
	}
	rr.p.list(n, rr.r.Name, field, func(e *yaml.Node, f string) {
		if read(e, f) {
			rr.r.FieldPos[f] = posOf(e)
		}
	})
}

func (rr *ruleReader) description() {
	if n := rr.nodes["description"]; n != nil {
		rr.r.Description, _ = rr.p.description(n, rr.r.Name)
	}
}

func (rr *ruleReader) expiresAt() {
	if n := rr.nodes["expiresAt"]; n != nil {
		rr.r.ExpiresAt, _ = rr.p.expiresAt(n, rr.r.Name)
	}
}

// requirePeer reports a rule that names no peer at all: every peer field
// is absent or an empty list, and no unknown field was taken for one. A
// peer field written wrongly is its own error, not a missing peer.
func (rr *ruleReader) requirePeer() {
	for _, f := range peerFields {
		if rr.suggested[f] {
			return
		}
		if n := rr.nodes[f]; n != nil && (n.Kind != yaml.SequenceNode || len(n.Content) > 0) {
			return
		}
	}
	what := "source"
	if rr.r.Direction == Egress {
		what = "destination"
	}
	rr.p.errf(rr.key, rr.r.Name, "", "no %s: set at least one of %s", what, strings.Join(peerFields, ", "))
}
