package rules

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// The file format is documented in README.md ("Rule files") and
// schema/rules.schema.json. Parsing runs in three steps: decoding (YAML in
// decode.go, JSON in json.go, Go values in value.go) builds a yaml.Node
// tree with positions; walking it (walk.go) reads each field with the
// readers in fields.go; checks.go holds the checks that span fields and
// rules.

// Field names of a rule, in the documented order (also MarshalYAML's order).
var ruleFields = []string{
	"securityGroup", "type", "protocol", "fromPort", "toPort",
	"cidrBlocks", "ipv6CidrBlocks", "sourceSecurityGroups", "prefixListIds",
	"description", "expiresAt",
}

var peerFields = []string{"cidrBlocks", "ipv6CidrBlocks", "sourceSecurityGroups", "prefixListIds"}

var topFields = []string{"rules", "exclusiveGroups", "account", "region", "allowUsedRemoval"}

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
	defer p.recoverAs("parsing the file", 1, &f, &diags)
	root := p.decode(data)
	if root == nil {
		return nil, p.sorted()
	}
	return p.build(root)
}

// ValueOptions tune ParseValue.
type ValueOptions struct {
	// NumericStrings accepts numeric strings for ports ("80", "-1"), for
	// sources that send every scalar as a string (CloudFormation).
	NumericStrings bool
}

// ParseValue validates a rule file given as a decoded JSON value (maps,
// slices, strings, numbers, bools and nil, as encoding/json decodes into
// an any), exactly like Parse validates a file, for rule sources that are
// not files. Diagnostics have File=name, Line and Col 0, Field the field
// path, and a message that starts with it; they come in the documented
// field order. The File is nil when any error diagnostic exists.
func ParseValue(name string, v any, opt ValueOptions) (f *File, diags Diagnostics) {
	p := &parser{file: name, numericStrings: opt.NumericStrings}
	defer p.recoverAs("reading the value", 0, &f, &diags)
	return p.build(valueNode(v))
}

// build walks a decoded tree into a File named after the parser's file.
func (p *parser) build(root *yaml.Node) (*File, Diagnostics) {
	file := p.top(root)
	if p.diags.HasErrors() {
		return nil, p.sorted()
	}
	file.Name = p.file
	return file, p.sorted()
}

// recoverAs turns a panic into an error diagnostic at line:1 (or 0:0
// where there are no positions): parsing never panics.
func (p *parser) recoverAs(what string, line int, f **File, diags *Diagnostics) {
	if r := recover(); r != nil {
		*f = nil
		p.add(SeverityError, line, line, "", "", fmt.Sprintf("internal error %s: %v", what, r))
		*diags = p.sorted()
	}
}
