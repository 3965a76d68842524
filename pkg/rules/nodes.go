package rules

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// NodeReader gives other file formats that share the rule file syntax (the
// policy file, pkg/policy) the rule parser's node tree and its located
// diagnostics: the same YAML/JSON decoding, the same refusals (size,
// encoding, aliases, several documents), the same duplicate-key and
// unknown-field errors with did-you-mean, and the same group references.
// In its diagnostics, Rule is whatever the caller passes as rule (the
// policy uses the clause id).
type NodeReader struct {
	p    *parser
	kind string
}

// NewNodeReader reads file, a kind of file named in messages ("policy
// file").
func NewNodeReader(file, kind string) *NodeReader {
	return &NodeReader{p: &parser{file: file}, kind: kind}
}

// Decode decodes data (JSON when the file name ends in .json, else YAML)
// into a node tree with the line and column of every node. It returns nil
// after reporting when the data cannot be read; top names the top-level
// fields, for the empty-file message (`"deny", "tenants" or "enforce"`).
func (r *NodeReader) Decode(data []byte, top string) *yaml.Node {
	before := len(r.p.diags)
	if len(data) > MaxFileSize {
		r.p.add(SeverityError, 1, 1, "", "", fmt.Sprintf("file is %d bytes, over the limit of %d bytes", len(data), MaxFileSize))
		return nil
	}
	if off := invalidUTF8(data); off >= 0 {
		line, col := lineCol(data, off)
		r.p.add(SeverityError, line, col, "", "", fmt.Sprintf("invalid UTF-8 (byte 0x%02x at offset %d): save the file as UTF-8", data[off], off))
		return nil
	}
	var root *yaml.Node
	if isJSONName(r.p.file) {
		root = r.p.parseJSON(data)
	} else {
		root = r.p.parseYAML(data)
	}
	// The decoders speak of rule files; say what this file is.
	fix := strings.NewReplacer(
		`a JSON object with "rules"`, "a JSON object with "+top,
		`a map with "rules"`, "a map with "+top,
		"rule files", r.kind+"s",
		"each rule file", "each "+r.kind)
	for i := before; i < len(r.p.diags); i++ {
		r.p.diags[i].Msg = fix.Replace(r.p.diags[i].Msg)
	}
	return root
}

// Errorf reports an error at node n.
func (r *NodeReader) Errorf(n *yaml.Node, rule, field, format string, args ...any) {
	r.p.errf(n, rule, field, format, args...)
}

// Warnf reports a warning at node n.
func (r *NodeReader) Warnf(n *yaml.Node, rule, field, format string, args ...any) {
	r.p.warnf(posOf(n), rule, field, format, args...)
}

// Pairs iterates a mapping node, reporting non-string and duplicate keys.
func (r *NodeReader) Pairs(n *yaml.Node, rule, what string, fn func(key string, k, v *yaml.Node)) {
	r.p.pairs(n, rule, what, fn)
}

// Unknown reports an unknown field at its key, with a did-you-mean
// suggestion among known (or the list of known fields), and returns the
// suggestion ("" when none).
func (r *NodeReader) Unknown(k *yaml.Node, rule, field string, known []string) string {
	return r.p.unknown(k, rule, field, known)
}

// Text reads a non-null scalar as text, keeping its literal form.
func (r *NodeReader) Text(n *yaml.Node, rule, field string) (string, bool) {
	return r.p.text(n, rule, field)
}

// List calls fn for each element of a sequence node, with the element's
// field path ("cidrs[2]"); anything else is reported.
func (r *NodeReader) List(n *yaml.Node, rule, field string, fn func(e *yaml.Node, field string)) {
	r.p.list(n, rule, field, fn)
}

// GroupRef reads a group reference as rule files write it: an id, a map
// {groupName, vpcId} or {tags}.
func (r *NodeReader) GroupRef(n *yaml.Node, rule, field string) (GroupRef, bool) {
	return r.p.groupRef(n, rule, field)
}

// Protocol reads a protocol as rule files write it (a name or a number)
// and returns its canonical form.
func (r *NodeReader) Protocol(n *yaml.Node, rule, field string) (string, bool) {
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!str" && n.ShortTag() != "!!int") {
		r.p.errf(n, rule, field, "%s: want tcp, udp, icmp, icmpv6, all, -1 or a number 0-255, got %s", field, kindName(n))
		return "", false
	}
	proto, err := NormalizeProtocol(n.Value)
	if err != nil {
		r.p.errf(n, rule, field, "%s: %v", field, err)
		return "", false
	}
	return proto, true
}

// Diagnostics returns what was reported, sorted by position.
func (r *NodeReader) Diagnostics() Diagnostics { return r.p.sorted() }

// KindName describes a node for messages: "a map", "a list", "the number
// 3", a quoted string.
func KindName(n *yaml.Node) string { return kindName(n) }

// RefText renders a group reference as written in a file: "sg-…",
// "{groupName: web, vpcId: vpc-…}" or "{tags: {Name: web}}".
func RefText(g GroupRef) string { return refText(g) }

// Suggest returns the known name closest to name ("" when none is close),
// as the did-you-mean of unknown fields.
func Suggest(name string, known []string) string { return suggest(name, known) }
