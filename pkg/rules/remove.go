package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// RemoveRules returns the rule file data without the named rules (YAML,
// or JSON when name ends in .json), and the names it removed in file
// order; names the file does not declare are ignored. A file left with
// no rule keeps "rules: {}" (and its other fields): uploaded, it revokes
// what the removed rules declared, as an edited file does, and it keeps
// the file's target and allowUsedRemoval for the review.
//
// A YAML file whose "rules" is a block mapping is cut line by line: each
// removed rule goes with the comment lines right above it, and every
// other byte of the file is kept (comments, order, blank lines, quoting).
// A flow-style "rules" map is edited as a yaml.Node and encoded again
// (comments of the kept rules stay; layout is the encoder's). A JSON file
// is encoded again with its keys in sorted order, two-space indent.
// The result is parsed again: a rewrite that would not parse is an error.
func RemoveRules(name string, data []byte, drop []string) ([]byte, []string, error) {
	if len(drop) == 0 {
		return data, nil, nil
	}
	want := map[string]bool{}
	for _, d := range drop {
		want[d] = true
	}
	var out []byte
	var removed []string
	var err error
	if isJSONName(name) {
		out, removed, err = removeJSON(data, want)
	} else {
		out, removed, err = removeYAML(data, want)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(removed) == 0 {
		return data, nil, nil
	}
	if _, diags := Parse(name, out); diags.HasErrors() {
		return nil, nil, fmt.Errorf("%s: the rewrite does not parse: %s", name, diags[0].String())
	}
	return out, removed, nil
}

func removeJSON(data []byte, want map[string]bool) ([]byte, []string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var top map[string]any
	if err := dec.Decode(&top); err != nil {
		return nil, nil, err
	}
	rs, ok := top["rules"].(map[string]any)
	if !ok {
		return nil, nil, fmt.Errorf(`"rules" is not an object`)
	}
	var removed []string
	for n := range rs {
		if want[n] {
			removed = append(removed, n)
			delete(rs, n)
		}
	}
	sort.Strings(removed)
	out, err := json.MarshalIndent(top, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	return append(out, '\n'), removed, nil
}

func removeYAML(data []byte, want map[string]bool) ([]byte, []string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, nil, fmt.Errorf(`the top level is not a map with "rules"`)
	}
	root := doc.Content[0]
	ri := -1
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "rules" {
			ri = i
		}
	}
	if ri < 0 || root.Content[ri+1].Kind != yaml.MappingNode {
		return nil, nil, fmt.Errorf(`"rules" is not a map`)
	}
	rkey, rules := root.Content[ri], root.Content[ri+1]
	var removed []string
	for i := 0; i+1 < len(rules.Content); i += 2 {
		if want[rules.Content[i].Value] {
			removed = append(removed, rules.Content[i].Value)
		}
	}
	if len(removed) == 0 {
		return data, nil, nil
	}
	block := rules.Style&yaml.FlowStyle == 0 && root.Style&yaml.FlowStyle == 0 && len(rules.Content) > 0 && rules.Content[0].Line > rkey.Line
	if !block {
		kept := rules.Content[:0:0]
		for i := 0; i+1 < len(rules.Content); i += 2 {
			if !want[rules.Content[i].Value] {
				kept = append(kept, rules.Content[i], rules.Content[i+1])
			}
		}
		rules.Content = kept
		out, err := yaml.Marshal(&doc)
		return out, removed, err
	}

	lines := strings.SplitAfter(string(data), "\n")
	// end: the first line (0-based) after the rules map: the next
	// top-level key's first comment line, or the end of the file.
	end := len(lines)
	if ri+2 < len(root.Content) {
		end = headStart(lines, root.Content[ri+2])
	}
	cut := make([]bool, len(lines))
	for i := 0; i+1 < len(rules.Content); i += 2 {
		if !want[rules.Content[i].Value] {
			continue
		}
		from := headStart(lines, rules.Content[i])
		to := end
		if i+2 < len(rules.Content) {
			to = headStart(lines, rules.Content[i+2])
		}
		// Blank lines closing the rule separate it from what follows:
		// keep them unless the rule is the first or the line before it
		// is blank too.
		for to > from+1 && strings.TrimSpace(lines[to-1]) == "" && i > 0 && strings.TrimSpace(lines[from-1]) != "" {
			to--
		}
		for l := from; l < to; l++ {
			cut[l] = true
		}
	}
	if len(removed) == len(rules.Content)/2 {
		// Every rule goes: "rules: {}" on the key's line, its comment kept.
		kl := rkey.Line - 1
		line := lines[kl]
		colon := strings.IndexByte(line[rkey.Column-1:], ':') + rkey.Column - 1
		rest := strings.TrimRight(line[colon+1:], "\r\n")
		nl := line[len(strings.TrimRight(line, "\r\n")):]
		if c := strings.TrimSpace(rest); strings.HasPrefix(c, "#") {
			rest = " " + c
		} else {
			rest = ""
		}
		lines[kl] = line[:colon+1] + " {}" + rest + nl
	}
	var b strings.Builder
	for i, l := range lines {
		if !cut[i] {
			b.WriteString(l)
		}
	}
	return []byte(b.String()), removed, nil
}

// headStart returns the first line (0-based) of key's comment: the
// comment lines right above it indented no deeper than it (a deeper one
// closes the block before), or key's own line.
func headStart(lines []string, key *yaml.Node) int {
	i := key.Line - 1
	for i > 0 {
		l := lines[i-1]
		t := strings.TrimLeft(l, " \t")
		if !strings.HasPrefix(t, "#") || len(l)-len(t) > key.Column-1 {
			break
		}
		i--
	}
	return i
}
