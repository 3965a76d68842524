package rules

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"

	"gopkg.in/yaml.v3"
)

// ParseProperties converts one CloudFormation custom resource's
// ResourceProperties (decoded JSON) into a File named source with a single
// rule named ruleName, validated exactly like a rule in a file. The property
// names are the rule field names (securityGroup, type, protocol, …);
// "ServiceToken" is ignored. CloudFormation sends every scalar as a string,
// so numeric strings are accepted for ports ("80", "-1"); JSON numbers are
// accepted too. Diagnostics have File=source, Line and Col 0, Field the
// property (or element) path, and a message that starts with it. The File
// is nil when any error diagnostic exists.
func ParseProperties(source, ruleName string, props map[string]any) (f *File, diags Diagnostics) {
	p := &parser{file: source, props: true}
	defer func() {
		if r := recover(); r != nil {
			f = nil
			p.diags = append(p.diags, Diagnostic{File: source, Severity: SeverityError,
				Msg: fmt.Sprintf("internal error converting properties: %v", r)})
			diags = p.diags
		}
	}()
	m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	keys := make([]string, 0, len(props))
	for k := range props {
		if k != "ServiceToken" {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		oi, oj := fieldOrder(keys[i]), fieldOrder(keys[j])
		if oi != oj {
			return oi < oj
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys {
		m.Content = append(m.Content, strNode(k), anyNode(props[k], 0))
	}
	root := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{
		strNode("rules"),
		{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{strNode(ruleName), m}},
	}}
	file := p.top(root)
	if p.diags.HasErrors() {
		return nil, p.diags
	}
	file.Name = source
	return file, p.diags
}

func fieldOrder(name string) int {
	for i, f := range ruleFields {
		if f == name {
			return i
		}
	}
	return len(ruleFields)
}

// strNode makes a string node, quoted like a JSON string: its text is never
// read as a number in another spelling.
func strNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s, Style: yaml.DoubleQuotedStyle}
}

// anyNode converts a decoded JSON value to a node (without positions).
func anyNode(v any, depth int) *yaml.Node {
	scalar := func(tag, val string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: val} }
	if depth > maxJSONDepth {
		return scalar("!!str", "(nested too deeply)")
	}
	switch t := v.(type) {
	case nil:
		return scalar("!!null", "null")
	case string:
		return strNode(t)
	case bool:
		return scalar("!!bool", strconv.FormatBool(t))
	case float64:
		if t == math.Trunc(t) && math.Abs(t) < 1<<53 {
			return scalar("!!int", strconv.FormatInt(int64(t), 10))
		}
		return scalar("!!float", strconv.FormatFloat(t, 'g', -1, 64))
	case int:
		return scalar("!!int", strconv.Itoa(t))
	case int32:
		return scalar("!!int", strconv.FormatInt(int64(t), 10))
	case int64:
		return scalar("!!int", strconv.FormatInt(t, 10))
	case json.Number:
		if _, err := t.Int64(); err == nil {
			return scalar("!!int", t.String())
		}
		return scalar("!!float", t.String())
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, e := range t {
			n.Content = append(n.Content, anyNode(e, depth+1))
		}
		return n
	case []string:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, e := range t {
			n.Content = append(n.Content, strNode(e))
		}
		return n
	case map[string]any:
		return mapNode(t, func(e any) *yaml.Node { return anyNode(e, depth+1) })
	case map[string]string:
		return mapNode(t, strNode)
	}
	return scalar("!!str", fmt.Sprint(v))
}

func mapNode[V any](m map[string]V, conv func(V) *yaml.Node) *yaml.Node {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for _, k := range keys {
		n.Content = append(n.Content, strNode(k), conv(m[k]))
	}
	return n
}
