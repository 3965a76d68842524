package rules

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"

	"gopkg.in/yaml.v3"
)

// valueNode converts a decoded JSON value into the node tree Parse builds
// from a file, without positions. Map keys are sorted by name, except in
// rules, whose fields come in the documented order (so diagnostics, which
// have no position to sort by, come in that order too).
func valueNode(v any) *yaml.Node {
	root := anyNode(v, 0)
	if root.Kind != yaml.MappingNode {
		return root
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "rules" || root.Content[i+1].Kind != yaml.MappingNode {
			continue
		}
		rs := root.Content[i+1]
		for j := 1; j < len(rs.Content); j += 2 {
			orderFields(rs.Content[j])
		}
	}
	return root
}

// orderFields sorts the pairs of a rule's map by fieldOrder, then name.
func orderFields(m *yaml.Node) {
	if m.Kind != yaml.MappingNode {
		return
	}
	type pair struct{ k, v *yaml.Node }
	pairs := make([]pair, 0, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		pairs = append(pairs, pair{m.Content[i], m.Content[i+1]})
	}
	sort.SliceStable(pairs, func(i, j int) bool {
		oi, oj := fieldOrder(pairs[i].k.Value), fieldOrder(pairs[j].k.Value)
		if oi != oj {
			return oi < oj
		}
		return pairs[i].k.Value < pairs[j].k.Value
	})
	m.Content = m.Content[:0]
	for _, p := range pairs {
		m.Content = append(m.Content, p.k, p.v)
	}
}

func fieldOrder(name string) int {
	for i, f := range ruleFields {
		if f == name {
			return i
		}
	}
	return len(ruleFields)
}

func strNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

// quotedNode makes a string value node, quoted like a JSON string: its
// text is never read as a number in another spelling ("022" is 22).
func quotedNode(s string) *yaml.Node {
	n := strNode(s)
	n.Style = yaml.DoubleQuotedStyle
	return n
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
		return quotedNode(t)
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
			n.Content = append(n.Content, quotedNode(e))
		}
		return n
	case map[string]any:
		return mapNode(t, func(e any) *yaml.Node { return anyNode(e, depth+1) })
	case map[string]string:
		return mapNode(t, quotedNode)
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
