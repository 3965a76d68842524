package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// decode checks a file's size and encoding and decodes it (JSON when the
// name ends in .json, YAML otherwise) into a node tree with positions. It
// returns nil when the file cannot be decoded, with the problem reported.
func (p *parser) decode(data []byte) *yaml.Node {
	if len(data) > MaxFileSize {
		p.add(SeverityError, 1, 1, "", "", fmt.Sprintf("file is %d bytes, over the limit of %d bytes", len(data), MaxFileSize))
		return nil
	}
	if off := invalidUTF8(data); off >= 0 {
		line, col := lineCol(data, off)
		p.add(SeverityError, line, col, "", "", fmt.Sprintf("invalid UTF-8 (byte 0x%02x at offset %d): save the file as UTF-8", data[off], off))
		return nil
	}
	if isJSONName(p.file) {
		return p.parseJSON(data)
	}
	return p.parseYAML(data)
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
