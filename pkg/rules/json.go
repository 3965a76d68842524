package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// maxJSONDepth bounds nesting in JSON rule files (the deepest valid file is
// 5 levels: rules → rule → securityGroup → tags → value).
const maxJSONDepth = 64

// parseJSON reads a JSON rule file into the same node tree the YAML parser
// builds, with the line and column of every value, so one walker validates
// both. JSON is parsed with encoding/json rather than as YAML: syntax errors
// then read as JSON errors with a position, and escapes such as surrogate
// pairs ("\ud83d\ude00") work. Duplicate keys are kept, for the walker to
// report.
func (p *parser) parseJSON(data []byte) *yaml.Node {
	if len(bytes.TrimSpace(data)) == 0 {
		p.add(SeverityError, 1, 1, "", "", `empty file: want a JSON object with "rules"`)
		return nil
	}
	j := &jsonReader{data: data, dec: json.NewDecoder(bytes.NewReader(data))}
	j.dec.UseNumber()
	n, err := j.value(0)
	if err == nil {
		if _, terr := j.next(); terr != io.EOF {
			err = &jsonErr{j.start, "unexpected data after the top-level value"}
		}
	}
	if err != nil {
		off := len(data)
		msg := err.Error()
		var se *json.SyntaxError
		var je *jsonErr
		switch {
		case errors.As(err, &se):
			off = syntaxOffset(data, se)
			if start, hint := leadingZero(data, off); hint != "" {
				off, msg = start, hint
			} else if comma := trailingComma(data, off); comma >= 0 {
				off, msg = comma, fmt.Sprintf("trailing comma before %q: remove it (JSON allows no comma after the last element)", data[off])
			}
		case errors.As(err, &je):
			off, msg = je.off, je.msg
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			msg = "unexpected end of file"
		}
		line, col := lineCol(data, off)
		p.add(SeverityError, line, col, "", "", "invalid JSON: "+strings.TrimPrefix(msg, "json: "))
		return nil
	}
	return n
}

type jsonErr struct {
	off int
	msg string
}

func (e *jsonErr) Error() string { return e.msg }

type jsonReader struct {
	data  []byte
	dec   *json.Decoder
	start int // byte offset of the last token read
	// Position cursor: tokens come in offset order, so positions are
	// found by scanning forward from the last one (linear in the file).
	off, line, col int
	// scanned counts the runes the cursor stepped over (all calls): the
	// file's length when positions are found in linear time.
	scanned int
}

// pos returns the line and column (in runes) of a byte offset.
func (j *jsonReader) pos(off int) (int, int) {
	if j.line == 0 || off < j.off {
		j.off, j.line, j.col = 0, 1, 1
	}
	for j.off < off && j.off < len(j.data) {
		r, size := utf8.DecodeRune(j.data[j.off:])
		if r == '\n' {
			j.line, j.col = j.line+1, 1
		} else {
			j.col++
		}
		j.off += size
		j.scanned++
	}
	return j.line, j.col
}

// next reads a token and records where it starts.
func (j *jsonReader) next() (json.Token, error) {
	off := int(j.dec.InputOffset())
	for off < len(j.data) && strings.IndexByte(" \t\r\n,:", j.data[off]) >= 0 {
		off++
	}
	j.start = off
	return j.dec.Token()
}

func (j *jsonReader) node(kind yaml.Kind, tag, value string) *yaml.Node {
	line, col := j.pos(j.start)
	return &yaml.Node{Kind: kind, Tag: tag, Value: value, Line: line, Column: col}
}

func (j *jsonReader) value(depth int) (*yaml.Node, error) {
	tok, err := j.next()
	if err != nil {
		return nil, err
	}
	if depth > maxJSONDepth {
		return nil, &jsonErr{j.start, fmt.Sprintf("nested more than %d levels deep", maxJSONDepth)}
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			n := j.node(yaml.MappingNode, "!!map", "")
			for j.dec.More() {
				kt, err := j.next()
				if err != nil {
					return nil, err
				}
				key, ok := kt.(string)
				if !ok {
					return nil, &jsonErr{j.start, "object key must be a string"}
				}
				k := j.node(yaml.ScalarNode, "!!str", key)
				v, err := j.value(depth + 1)
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, k, v)
			}
			if _, err := j.next(); err != nil {
				return nil, err
			}
			return n, nil
		case '[':
			n := j.node(yaml.SequenceNode, "!!seq", "")
			for j.dec.More() {
				v, err := j.value(depth + 1)
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, v)
			}
			if _, err := j.next(); err != nil {
				return nil, err
			}
			return n, nil
		}
		return nil, &jsonErr{j.start, fmt.Sprintf("unexpected %q", rune(t))}
	case string:
		n := j.node(yaml.ScalarNode, "!!str", t)
		n.Style = yaml.DoubleQuotedStyle
		return n, nil
	case json.Number:
		tag := "!!int"
		if strings.ContainsAny(string(t), ".eE") {
			tag = "!!float"
		}
		return j.node(yaml.ScalarNode, tag, string(t)), nil
	case bool:
		return j.node(yaml.ScalarNode, "!!bool", fmt.Sprint(t)), nil
	case nil:
		return j.node(yaml.ScalarNode, "!!null", "null"), nil
	}
	return nil, &jsonErr{j.start, fmt.Sprintf("unexpected token %v", tok)}
}

// syntaxOffset finds the offending byte of a syntax error: encoding/json
// reports the offset before it for errors found between tokens and after it
// for errors found inside a value.
func syntaxOffset(data []byte, se *json.SyntaxError) int {
	off := int(se.Offset)
	quoted := func(i int) bool {
		return i >= 0 && i < len(data) && strings.Contains(se.Error(), "'"+string(data[i])+"'")
	}
	if !quoted(off) && quoted(off-1) {
		return off - 1
	}
	return off
}

// leadingZero explains a syntax error at off that is a number written with
// a leading zero or a base prefix (022, 0x50): it returns where the number
// starts and a message with its decimal value, or "".
func leadingZero(data []byte, off int) (int, string) {
	start := off - 1
	if start < 0 || start >= len(data) || data[start] != '0' || (start > 0 && strings.IndexByte("0123456789.eE", data[start-1]) >= 0) {
		return 0, ""
	}
	if start > 0 && data[start-1] == '-' {
		start--
	}
	end := off
	for end < len(data) && (isAlnum(data[end]) || data[end] == '_') {
		end++
	}
	text := string(data[start:end])
	if (end < len(data) && data[end] == '.') || !reIntLike.MatchString(text) {
		return 0, ""
	}
	v, ok := intValue(text)
	if !ok {
		return start, fmt.Sprintf("number %s: JSON numbers are decimal, without leading zeros", text)
	}
	return start, fmt.Sprintf("number %s: JSON numbers are decimal, without leading zeros; write %d", text, v)
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// trailingComma returns the offset of the comma before a '}' or ']' at
// off, or -1: encoding/json reports a trailing comma at the bracket after
// it, often lines later.
func trailingComma(data []byte, off int) int {
	if off >= len(data) || (data[off] != '}' && data[off] != ']') {
		return -1
	}
	i := off - 1
	for i >= 0 && strings.IndexByte(" \t\r\n", data[i]) >= 0 {
		i--
	}
	if i >= 0 && data[i] == ',' {
		return i
	}
	return -1
}
