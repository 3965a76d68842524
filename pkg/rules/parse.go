package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Rule file format, decided where the issue left it open:
//
//   - A file is one YAML document (or one JSON value for *.json) whose top
//     level is a map with "rules" (required: a map of rule name to rule, may
//     be {} to declare nothing) and "exclusiveGroups" (optional).
//   - Rule names: 1-128 characters from letters, digits, '-', '_' and '.'.
//   - Ports in files must be decimal YAML/JSON integers (022, 0x50, 8_0 are
//     refused with the decimal value to write): a quoted "80" is refused
//     with a message saying to drop the quotes (so a typo cannot hide in a
//     string). ParseProperties accepts numeric strings, because
//     CloudFormation sends every scalar as a string.
//   - protocol accepts integers and strings; names are lower case without
//     spaces ("TCP" and "tcp " are refused with the fix), as in the schema.
//   - Text fields (description, groupName, tag values) accept any scalar and
//     keep its literal text; ids must be the documented forms, lower case.
//   - YAML aliases and merge keys are refused: rule files have no need for
//     them, and refusing them makes alias bombs harmless.
//   - icmpv6 with cidrBlocks (IPv4) is an error; icmp with ipv6CidrBlocks is
//     a warning (EC2 accepts it, it never matches anything).
//   - World-open warnings apply to ingress only: egress to the world is the
//     EC2 default and normal for updates and DNS.

// Field names of a rule, in the documented order (also MarshalYAML's order).
var ruleFields = []string{
	"securityGroup", "type", "protocol", "fromPort", "toPort",
	"cidrBlocks", "ipv6CidrBlocks", "sourceSecurityGroups", "prefixListIds",
	"description",
}

var topFields = []string{"rules", "exclusiveGroups"}

var refFields = []string{"groupName", "vpcId", "tags"}

var (
	reGroupID   = regexp.MustCompile(`^sg-([0-9a-f]{8}|[0-9a-f]{17})$`)
	rePrefixID  = regexp.MustCompile(`^pl-([0-9a-f]{8}|[0-9a-f]{17})$`)
	reVPCID     = regexp.MustCompile(`^vpc-([0-9a-f]{8}|[0-9a-f]{17})$`)
	reRuleName  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
	maxNameLen  = 128
	maxDescLen  = 255
	maxGroupLen = 255
	maxTagKey   = 128
	maxTagValue = 256
)

// descAllowed is EC2's character set for rule descriptions.
const descAllowed = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ._-:/()#,@[]+=&;{}!$*"

// IsRuleFile reports whether a file name has a rule file suffix
// (.yaml, .yml or .json, case-insensitive).
func IsRuleFile(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

func isJSONName(name string) bool { return strings.EqualFold(path.Ext(name), ".json") }

// Parse parses and validates one rule file (YAML, or JSON when name ends in
// .json). It returns a nil File when any error diagnostic exists; the
// diagnostics include warnings and are sorted by position. It never panics.
func Parse(name string, data []byte) (f *File, diags Diagnostics) {
	p := &parser{file: name}
	defer func() {
		if r := recover(); r != nil {
			f = nil
			p.diags = append(p.diags, Diagnostic{File: name, Line: 1, Col: 1, Severity: SeverityError,
				Msg: fmt.Sprintf("internal error parsing the file: %v", r)})
			diags = p.sorted()
		}
	}()
	if len(data) > MaxFileSize {
		p.add(SeverityError, 1, 1, "", "", fmt.Sprintf("file is %d bytes, over the limit of %d bytes", len(data), MaxFileSize))
		return nil, p.sorted()
	}
	if off := invalidUTF8(data); off >= 0 {
		line, col := lineCol(data, off)
		p.add(SeverityError, line, col, "", "", fmt.Sprintf("invalid UTF-8 (byte 0x%02x at offset %d): save the file as UTF-8", data[off], off))
		return nil, p.sorted()
	}
	var root *yaml.Node
	if isJSONName(name) {
		root = p.parseJSON(data)
	} else {
		root = p.parseYAML(data)
	}
	if root == nil {
		return nil, p.sorted()
	}
	file := p.top(root)
	if p.diags.HasErrors() {
		return nil, p.sorted()
	}
	file.Name = name
	return file, p.sorted()
}

func invalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return -1
}

// lineCol converts a byte offset to a 1-based line and column (in runes).
func lineCol(b []byte, off int) (int, int) {
	if off > len(b) {
		off = len(b)
	}
	line := 1 + bytes.Count(b[:off], []byte("\n"))
	start := bytes.LastIndexByte(b[:off], '\n') + 1
	return line, 1 + utf8.RuneCount(b[start:off])
}

type parser struct {
	file  string
	props bool // ParseProperties: numeric strings are accepted for ports
	diags Diagnostics
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

var reYAMLLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (p *parser) parseYAML(data []byte) *yaml.Node {
	if off, r := badControl(data); off >= 0 {
		line, col := lineCol(data, off)
		p.add(SeverityError, line, col, "", "", fmt.Sprintf("control character %U is not allowed in a YAML file", r))
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.add(SeverityError, 1, 1, "", "", `empty file: want a map with "rules"`)
			return nil
		}
		p.yamlError(data, err)
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		p.add(SeverityError, next.Line, next.Column, "", "", "more than one YAML document (---): put each rule file in its own file")
		return nil
	case !errors.Is(err, io.EOF):
		p.yamlError(data, err)
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		p.add(SeverityError, 1, 1, "", "", `empty file: want a map with "rules"`)
		return nil
	}
	p.refuseAliases(doc.Content[0])
	if p.diags.HasErrors() {
		return nil
	}
	return doc.Content[0]
}

func (p *parser) yamlError(data []byte, err error) {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		for _, e := range te.Errors {
			p.yamlErrorText(data, e)
		}
		return
	}
	p.yamlErrorText(data, err.Error())
}

func (p *parser) yamlErrorText(data []byte, s string) {
	m := reYAMLLine.FindStringSubmatch(s)
	if m == nil {
		p.add(SeverityError, 1, 1, "", "", "invalid YAML: "+strings.TrimPrefix(s, "yaml: "))
		return
	}
	line, _ := strconv.Atoi(m[1])
	if tl, tc := indentTab(data, line, m[2]); tl > 0 {
		p.add(SeverityError, tl, tc, "", "", "invalid YAML: a tab in the indentation: YAML indents with spaces")
		return
	}
	p.add(SeverityError, line, 1, "", "", "invalid YAML: "+m[2])
}

// indentTab finds the tab behind a YAML scanner error: yaml.v3 reports a
// tab in the indentation as "found character that cannot start any token"
// on its line, or as "found a tab character that violates indentation" on
// the line before. It returns the tab's line and column, or 0, 0.
func indentTab(data []byte, line int, msg string) (int, int) {
	last := line
	switch {
	case strings.Contains(msg, "cannot start any token"):
	case strings.Contains(msg, "tab character"):
		last = line + 1
	default:
		return 0, 0
	}
	lines := strings.Split(string(data), "\n")
	for l := line; l <= last && l <= len(lines); l++ {
		text := lines[l-1]
		indent := text[:len(text)-len(strings.TrimLeft(text, " \t"))]
		if i := strings.IndexByte(indent, '\t'); i >= 0 {
			return l, i + 1
		}
	}
	return 0, 0
}

// badControl finds a character YAML does not allow in a stream.
func badControl(b []byte) (int, rune) {
	for i, r := range string(b) {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
		case r < 0x20 || r == 0x7f:
			return i, r
		case r >= 0x80 && r <= 0x9f && r != 0x85:
			return i, r
		case r == 0xfffe || r == 0xffff:
			return i, r
		}
	}
	return -1, 0
}

// refuseAliases reports the aliases (including merge keys) in the tree: the
// first one located, with a count. It never follows an alias, so an alias
// bomb costs one visit per node written.
func (p *parser) refuseAliases(root *yaml.Node) {
	var first *yaml.Node
	count := 0
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.AliasNode {
			if first == nil {
				first = n
			}
			count++
			return
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(root)
	if first == nil {
		return
	}
	more := ""
	if count > 1 {
		more = fmt.Sprintf(" (and %d more)", count-1)
	}
	p.errf(first, "", "", "YAML alias *%s is not supported in rule files: write the value out%s", first.Value, more)
}

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
			if v.Kind != yaml.SequenceNode {
				p.errf(v, "", "exclusiveGroups", `"exclusiveGroups" must be a list of security groups, got %s`, kindName(v))
				return
			}
			for i, e := range v.Content {
				field := fmt.Sprintf("exclusiveGroups[%d]", i)
				if ref, ok := p.groupRef(e, "", field); ok {
					f.ExclusiveGroups = append(f.ExclusiveGroups, ref)
					f.ExclusivePos = append(f.ExclusivePos, posOf(e))
				}
			}
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
	p.fileChecks(f)
	return f
}

// rule parses and validates one rule. Problems are reported, and ok is
// false when the rule has any error.
func (p *parser) rule(name string, k, v *yaml.Node) (Rule, bool) {
	before := len(p.diags)
	ok := func() bool {
		for _, d := range p.diags[before:] {
			if d.Severity == SeverityError {
				return false
			}
		}
		return true
	}
	r := Rule{Name: name, Pos: posOf(k), FieldPos: map[string]Pos{}}
	if !reRuleName.MatchString(name) {
		switch {
		case name == "":
			p.errf(k, name, "", "rule name is empty")
		case utf8.RuneCountInString(name) > maxNameLen:
			p.errf(k, name, "", "rule name is %d characters, over the limit of %d", utf8.RuneCountInString(name), maxNameLen)
		default:
			p.errf(k, name, "", "rule name %q: only letters, digits, '-', '_' and '.' are allowed", name)
		}
	}
	if v.Kind != yaml.MappingNode {
		p.errf(v, name, "", "a rule must be a map of fields, got %s", kindName(v))
		return r, false
	}
	nodes := map[string]*yaml.Node{}
	suggested := map[string]bool{}
	p.pairs(v, name, "rule", func(key string, kn, vn *yaml.Node) {
		for _, f := range ruleFields {
			if f == key {
				nodes[key] = vn
				r.FieldPos[key] = posOf(vn)
				return
			}
		}
		suggested[p.unknown(kn, name, key, ruleFields)] = true
	})
	// A missing field that an unknown field was suggested for is one
	// problem, already reported.
	missing := func(field, hint string) {
		if !suggested[field] {
			p.errf(k, name, field, "missing required field %q (%s)", field, hint)
		}
	}

	if n := nodes["securityGroup"]; n != nil {
		r.SecurityGroup, _ = p.groupRef(n, name, "securityGroup")
	} else {
		missing("securityGroup", "a group id sg-…, {groupName: NAME, vpcId: vpc-…} or {tags: {Name: NAME}}")
	}
	typeOK := false
	if n := nodes["type"]; n != nil {
		switch s, isStr := p.text(n, name, "type"); {
		case !isStr:
		case s == string(Ingress) || s == string(Egress):
			r.Direction, typeOK = Direction(s), true
		default:
			p.errf(n, name, "type", "type: want ingress or egress, got %q%s", s, didYouMean(s, directions))
		}
	} else {
		missing("type", "ingress or egress")
	}
	protoOK := false
	if n := nodes["protocol"]; n != nil {
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!str" && n.ShortTag() != "!!int") {
			p.errf(n, name, "protocol", "protocol: want tcp, udp, icmp, icmpv6, all, -1 or a number 0-255, got %s", kindName(n))
		} else if msg := nonDecimal(n, "protocol numbers"); msg != "" {
			p.errf(n, name, "protocol", "protocol: %s", msg)
		} else if proto, err := NormalizeProtocol(n.Value); err != nil {
			p.errf(n, name, "protocol", "protocol: %v%s", err, didYouMean(n.Value, protocolNames))
		} else if fix := strings.ToLower(strings.TrimSpace(n.Value)); fix != n.Value {
			p.errf(n, name, "protocol", "protocol: write %q, not %q (lower case, no spaces)", fix, n.Value)
		} else {
			r.Protocol, protoOK = proto, true
		}
	} else {
		missing("protocol", "tcp, udp, icmp, icmpv6, all, -1 or a number 0-255")
	}
	from, fromOK := p.port(nodes["fromPort"], name, "fromPort")
	to, toOK := p.port(nodes["toPort"], name, "toPort")
	if protoOK && fromOK && toOK {
		r.FromPort, r.ToPort = p.ports(r.Protocol, k, nodes, name, from, to)
	}

	if n := nodes["cidrBlocks"]; n != nil {
		p.list(n, name, "cidrBlocks", func(e *yaml.Node, field string) {
			if pfx, ok := p.cidr(e, name, field, false); ok {
				r.CIDRBlocks = append(r.CIDRBlocks, pfx)
				r.FieldPos[field] = posOf(e)
			}
		})
	}
	if n := nodes["ipv6CidrBlocks"]; n != nil {
		p.list(n, name, "ipv6CidrBlocks", func(e *yaml.Node, field string) {
			if pfx, ok := p.cidr(e, name, field, true); ok {
				r.IPv6CIDRBlocks = append(r.IPv6CIDRBlocks, pfx)
				r.FieldPos[field] = posOf(e)
			}
		})
	}
	if n := nodes["sourceSecurityGroups"]; n != nil {
		p.list(n, name, "sourceSecurityGroups", func(e *yaml.Node, field string) {
			if ref, ok := p.groupRef(e, name, field); ok {
				r.SourceSecurityGroups = append(r.SourceSecurityGroups, ref)
				r.FieldPos[field] = posOf(e)
			}
		})
	}
	if n := nodes["prefixListIds"]; n != nil {
		p.list(n, name, "prefixListIds", func(e *yaml.Node, field string) {
			s, ok := p.text(e, name, field)
			if !ok {
				return
			}
			if !rePrefixID.MatchString(s) {
				p.errf(e, name, field, "%s: %q is not a prefix list id (pl- and 8 or 17 lower-case hex digits)", field, s)
				return
			}
			r.PrefixListIDs = append(r.PrefixListIDs, s)
			r.FieldPos[field] = posOf(e)
		})
	}
	if n := nodes["description"]; n != nil {
		if s, ok := p.text(n, name, "description"); ok {
			if msg := checkDescription(s); msg != "" {
				p.errf(n, name, "description", "description: %s", msg)
			} else {
				r.Description = s
			}
		}
	}

	if noPeer(nodes, suggested) {
		what := "source"
		if r.Direction == Egress {
			what = "destination"
		}
		p.errf(k, name, "", "no %s: set at least one of cidrBlocks, ipv6CidrBlocks, sourceSecurityGroups, prefixListIds", what)
	}
	if !ok() {
		return r, false
	}
	if typeOK && protoOK {
		p.familyChecks(&r, nodes)
	}
	return r, ok()
}

var peerFields = []string{"cidrBlocks", "ipv6CidrBlocks", "sourceSecurityGroups", "prefixListIds"}

// noPeer reports whether a rule names no peer at all: every peer field is
// absent or an empty list, and no unknown field was taken for one. A peer
// field written wrongly is its own error, not a missing peer.
func noPeer(nodes map[string]*yaml.Node, suggested map[string]bool) bool {
	for _, f := range peerFields {
		if suggested[f] {
			return false
		}
		if n := nodes[f]; n != nil && (n.Kind != yaml.SequenceNode || len(n.Content) > 0) {
			return false
		}
	}
	return true
}

// text reads a scalar as text: any non-null scalar, keeping its literal form.
func (p *parser) text(n *yaml.Node, rule, field string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		p.errf(n, rule, field, "%s: want a string, got %s", field, kindName(n))
		return "", false
	}
	return n.Value, true
}

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

// optPort is an optional port field.
type optPort struct {
	v   int64
	set bool
}

// port reads an optional integer field.
func (p *parser) port(n *yaml.Node, rule, field string) (optPort, bool) {
	if n == nil {
		return optPort{}, true
	}
	if n.Kind == yaml.ScalarNode {
		if msg := nonDecimal(n, "ports"); msg != "" {
			p.errf(n, rule, field, "%s: %s", field, msg)
			return optPort{}, false
		}
		switch n.ShortTag() {
		case "!!int":
			var v int64
			if err := n.Decode(&v); err != nil {
				p.errf(n, rule, field, "%s: %s is out of range", field, n.Value)
				return optPort{}, false
			}
			return optPort{v, true}, true
		case "!!str":
			v, err := strconv.ParseInt(strings.TrimSpace(n.Value), 10, 64)
			if err == nil && p.props {
				return optPort{v, true}, true
			}
			if err == nil {
				p.errf(n, rule, field, "%s: want a number, got the string %q (write %d without quotes)", field, n.Value, v)
				return optPort{}, false
			}
		}
		if reDigits.MatchString(n.Value) {
			p.errf(n, rule, field, "%s: %s is out of range", field, n.Value)
			return optPort{}, false
		}
	}
	p.errf(n, rule, field, "%s: want a whole number, got %s", field, kindName(n))
	return optPort{}, false
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

// ports validates the port fields for a protocol and returns what EC2
// stores.
func (p *parser) ports(proto string, k *yaml.Node, nodes map[string]*yaml.Node, rule string, fromP, toP optPort) (int32, int32) {
	fromN, toN := nodes["fromPort"], nodes["toPort"]
	from, to := fromP.v, toP.v
	switch proto {
	case ProtoTCP, ProtoUDP:
		bad := false
		if !fromP.set {
			p.errf(k, rule, "fromPort", "missing required field \"fromPort\" (%s needs fromPort and toPort, 0-65535)", proto)
			bad = true
		} else if from < 0 || from > 65535 {
			p.errf(fromN, rule, "fromPort", "fromPort: %d is out of range 0-65535%s", from, allPortsHint(from))
			bad = true
		}
		if !toP.set {
			p.errf(k, rule, "toPort", "missing required field \"toPort\" (%s needs fromPort and toPort, 0-65535)", proto)
			bad = true
		} else if to < 0 || to > 65535 {
			p.errf(toN, rule, "toPort", "toPort: %d is out of range 0-65535%s", to, allPortsHint(to))
			bad = true
		}
		if !bad && from > to {
			p.errf(toN, rule, "toPort", "toPort: %d is less than fromPort %d", to, from)
		}
		return int32(from), int32(to)
	case ProtoICMP, ProtoICMPv6:
		if !fromP.set {
			if toP.set && to != -1 {
				p.errf(toN, rule, "toPort", "toPort: an ICMP code needs an ICMP type in fromPort")
			}
			return -1, -1
		}
		if !toP.set {
			to = -1
		}
		bad := false
		if from < -1 || from > 255 {
			p.errf(fromN, rule, "fromPort", "fromPort: ICMP type %d is out of range -1-255", from)
			bad = true
		}
		if to < -1 || to > 255 {
			p.errf(toN, rule, "toPort", "toPort: ICMP code %d is out of range -1-255", to)
			bad = true
		}
		if !bad && from == -1 && to != -1 {
			p.errf(toN, rule, "toPort", "toPort: ICMP code %d needs a specific type: fromPort -1 (all types) requires toPort -1", to)
		}
		return int32(from), int32(to)
	default:
		what := "protocol " + proto + " has no ports"
		if proto == ProtoAll {
			what = "protocol -1 (all traffic) has no ports: a port here would silently open every port"
		}
		if fromP.set && from != -1 {
			p.errf(fromN, rule, "fromPort", "fromPort: %s; remove fromPort or set it to -1", what)
		}
		if toP.set && to != -1 {
			p.errf(toN, rule, "toPort", "toPort: %s; remove toPort or set it to -1", what)
		}
		return -1, -1
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

// groupRef reads a security group reference: an id string, or a map
// {groupName, vpcId} or {tags}.
func (p *parser) groupRef(n *yaml.Node, rule, field string) (GroupRef, bool) {
	switch n.Kind {
	case yaml.ScalarNode:
		s, ok := p.text(n, rule, field)
		if !ok {
			return GroupRef{}, false
		}
		if !reGroupID.MatchString(s) {
			p.errf(n, rule, field, "%s: %q is not a group id (sg- and 8 or 17 lower-case hex digits); to reference a group by name write {groupName: NAME, vpcId: vpc-…} or {tags: {Name: NAME}}", field, s)
			return GroupRef{}, false
		}
		return GroupRef{ID: s}, true
	case yaml.MappingNode:
	default:
		p.errf(n, rule, field, "%s: want a group id, {groupName: NAME, vpcId: vpc-…} or {tags: {…}}, got %s", field, kindName(n))
		return GroupRef{}, false
	}
	var ref GroupRef
	var nameN, vpcN, tagsN *yaml.Node
	bad := false
	p.pairs(n, rule, field, func(key string, k, v *yaml.Node) {
		switch key {
		case "groupName":
			nameN = v
			if s, ok := p.text(v, rule, field+".groupName"); !ok {
				bad = true
			} else if s == "" || utf8.RuneCountInString(s) > maxGroupLen {
				p.errf(v, rule, field+".groupName", "%s.groupName: want 1-%d characters", field, maxGroupLen)
				bad = true
			} else {
				ref.Name = s
			}
		case "vpcId":
			vpcN = v
			if s, ok := p.text(v, rule, field+".vpcId"); !ok {
				bad = true
			} else if !reVPCID.MatchString(s) {
				p.errf(v, rule, field+".vpcId", "%s.vpcId: %q is not a VPC id (vpc- and 8 or 17 lower-case hex digits)", field, s)
				bad = true
			} else {
				ref.VPCID = s
			}
		case "tags":
			tagsN = v
			if v.Kind != yaml.MappingNode || len(v.Content) == 0 {
				p.errf(v, rule, field+".tags", "%s.tags: want a non-empty map of tag key to value, got %s", field, kindName(v))
				bad = true
				return
			}
			ref.Tags = map[string]string{}
			p.pairs(v, rule, "tags", func(key string, tk, tv *yaml.Node) {
				tf := field + ".tags." + key
				if key == "" || utf8.RuneCountInString(key) > maxTagKey {
					p.errf(tk, rule, tf, "%s.tags: a tag key must have 1-%d characters", field, maxTagKey)
					bad = true
					return
				}
				s, ok := p.text(tv, rule, tf)
				if !ok {
					bad = true
					return
				}
				if utf8.RuneCountInString(s) > maxTagValue {
					p.errf(tv, rule, tf, "%s: a tag value must have at most %d characters", tf, maxTagValue)
					bad = true
					return
				}
				ref.Tags[key] = s
			})
		default:
			p.unknown(k, rule, field+"."+key, refFields)
			bad = true
		}
	})
	if bad {
		return GroupRef{}, false
	}
	switch {
	case tagsN != nil && (nameN != nil || vpcN != nil):
		p.errf(n, rule, field, "%s: use either {groupName, vpcId} or {tags}, not both", field)
	case nameN != nil && vpcN == nil:
		p.errf(n, rule, field, "%s: groupName needs vpcId (group names are unique only within a VPC)", field)
	case vpcN != nil && nameN == nil:
		p.errf(n, rule, field, "%s: vpcId needs groupName", field)
	case tagsN == nil && nameN == nil:
		p.errf(n, rule, field, "%s: want {groupName: NAME, vpcId: vpc-…} or {tags: {…}}, got an empty map", field)
	default:
		return ref, true
	}
	return GroupRef{}, false
}

// familyChecks checks protocol against address family and warns about
// rules open to the world.
func (p *parser) familyChecks(r *Rule, nodes map[string]*yaml.Node) {
	if r.Protocol == ProtoICMPv6 && len(r.CIDRBlocks) > 0 {
		p.errf(nodes["cidrBlocks"], r.Name, "cidrBlocks", "cidrBlocks: icmpv6 applies to IPv6 only: move the IPv4 ranges to an icmp rule")
	}
	if r.Protocol == ProtoICMP && len(r.IPv6CIDRBlocks) > 0 {
		p.warnf(r.FieldPos["ipv6CidrBlocks"], r.Name, "ipv6CidrBlocks", "ipv6CidrBlocks: icmp is IPv4 only and never matches IPv6 traffic: use icmpv6")
	}
	if r.Direction != Ingress {
		return
	}
	check := func(field string, list []netip.Prefix) {
		for i, pfx := range list {
			if pfx.Bits() != 0 {
				continue
			}
			f := fmt.Sprintf("%s[%d]", field, i)
			switch {
			case r.Protocol == ProtoAll:
				p.warnf(r.FieldPos[f], r.Name, f, "%s: all traffic (protocol -1) is open to the world (%s)", f, pfx)
			case r.Protocol == ProtoICMP || r.Protocol == ProtoICMPv6:
			case r.Protocol == ProtoTCP && r.FromPort == r.ToPort && (r.FromPort == 80 || r.FromPort == 443):
			default:
				p.warnf(r.FieldPos[f], r.Name, f, "%s: %s is open to the world (%s); only tcp 80 and 443 are expected to be", f, describePorts(r), pfx)
			}
		}
	}
	check("cidrBlocks", r.CIDRBlocks)
	check("ipv6CidrBlocks", r.IPv6CIDRBlocks)
}

func describePorts(r *Rule) string {
	switch {
	case !HasPorts(r.Protocol):
		return "protocol " + r.Protocol
	case r.FromPort == r.ToPort:
		return fmt.Sprintf("%s %d", r.Protocol, r.FromPort)
	default:
		return fmt.Sprintf("%s %d-%d", r.Protocol, r.FromPort, r.ToPort)
	}
}

// QuotaPerGroup is the default EC2 quota of rules per security group, per
// direction and address family. Exceeding it in one file is a warning (the
// quota can be raised).
const QuotaPerGroup = 60

// fileChecks runs the checks that span rules: the same permission declared
// twice (decidable before resolution when the group references are equal),
// and the per-group quota.
func (p *parser) fileChecks(f *File) {
	type where struct {
		rule, field string
		pos         Pos
	}
	seen := map[Key]where{}
	counts := map[string]int{}
	warned := map[string]bool{}
	for _, r := range f.Rules {
		for _, pe := range rulePeers(&r, func(_ int, g GroupRef) []string { return []string{g.String()} }) {
			k := Key{GroupID: r.SecurityGroup.String(), Direction: r.Direction, Protocol: r.Protocol,
				FromPort: r.FromPort, ToPort: r.ToPort, Peer: pe.peer}
			w := where{r.Name, pe.field, r.FieldPos[pe.field]}
			if first, dup := seen[k]; dup {
				p.add(SeverityError, w.pos.Line, w.pos.Col, r.Name, pe.field,
					fmt.Sprintf("%s: same permission as %s: %s %s %s", pe.field, placeText(first.rule, first.field, first.pos), r.Direction, describePorts(&r), pe.peer.Value))
				continue
			}
			seen[k] = w
		}
		for _, fam := range []string{"IPv4", "IPv6"} {
			n := len(r.SourceSecurityGroups) + len(r.PrefixListIDs)
			if fam == "IPv4" {
				n += len(r.CIDRBlocks)
			} else {
				n += len(r.IPv6CIDRBlocks)
			}
			if n == 0 {
				continue
			}
			ck := r.SecurityGroup.String() + "|" + string(r.Direction) + "|" + fam
			counts[ck] += n
			if counts[ck] > QuotaPerGroup && !warned[ck] {
				warned[ck] = true
				p.warnf(r.FieldPos["securityGroup"], r.Name, "securityGroup",
					"securityGroup: %s has %d %s %s permissions in this file so far, over the default EC2 quota of %d per group, direction and address family",
					r.SecurityGroup, counts[ck], r.Direction, fam, QuotaPerGroup)
			}
		}
	}
}

func placeText(rule, field string, pos Pos) string {
	s := fmt.Sprintf("rule %s %s", rule, field)
	if pos.Line > 0 {
		s += fmt.Sprintf(" (line %d, col %d)", pos.Line, pos.Col)
	}
	return s
}

type rulePeer struct {
	peer  Peer
	field string
}

// rulePeers lists a rule's peers with their field paths; groups are mapped
// through resolve (which returns the candidate ids).
func rulePeers(r *Rule, resolve func(int, GroupRef) []string) []rulePeer {
	var out []rulePeer
	for i, c := range r.CIDRBlocks {
		out = append(out, rulePeer{Peer{PeerCIDR4, c.String()}, fmt.Sprintf("cidrBlocks[%d]", i)})
	}
	for i, c := range r.IPv6CIDRBlocks {
		out = append(out, rulePeer{Peer{PeerCIDR6, c.String()}, fmt.Sprintf("ipv6CidrBlocks[%d]", i)})
	}
	for i := range r.SourceSecurityGroups {
		for _, id := range resolve(i, r.SourceSecurityGroups[i]) {
			out = append(out, rulePeer{Peer{PeerGroup, id}, fmt.Sprintf("sourceSecurityGroups[%d]", i)})
		}
	}
	for i, pl := range r.PrefixListIDs {
		out = append(out, rulePeer{Peer{PeerPrefixList, pl}, fmt.Sprintf("prefixListIds[%d]", i)})
	}
	return out
}
