package rules

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

const schemaPath = "../../schema/rules.schema.json"

func loadSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	s, err := c.Compile(schemaPath)
	if err != nil {
		t.Fatalf("compile schema: %v", err)
	}
	return s
}

// asJSONValue reads a rule file (YAML or JSON) as the JSON value an editor
// would check against the schema.
func asJSONValue(t *testing.T, path string) any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if filepath.Ext(path) == ".json" {
		v, err = jsonschema.UnmarshalJSON(bytes.NewReader(data))
	} else {
		var y any
		if err = yaml.Unmarshal(data, &y); err == nil {
			var b []byte
			if b, err = json.Marshal(y); err == nil {
				v, err = jsonschema.UnmarshalJSON(bytes.NewReader(b))
			}
		}
	}
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

// TestSchemaExamples: every example validates against the schema.
func TestSchemaExamples(t *testing.T) {
	s := loadSchema(t)
	for _, path := range ruleFiles(t, "../../examples") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			if err := s.Validate(asJSONValue(t, path)); err != nil {
				t.Errorf("%v", err)
			}
		})
	}
}

// TestSchemaRejects: the schema is not vacuous: bad files it can judge are
// refused.
func TestSchemaRejects(t *testing.T) {
	s := loadSchema(t)
	for _, name := range []string{
		"unknown-field.yaml", "bad-type.yaml", "string-port.yaml", "quoted-port.yaml", "unknown-protocol.yaml",
		"bad-group-id.yaml", "bad-vpc-id.yaml", "groupname-without-vpc.yaml", "name-and-tags.yaml", "empty-tags.yaml",
		"bad-prefix-list.yaml", "description-bad-char.yaml", "description-too-long.yaml", "no-source.yaml",
		"missing-type.yaml", "bad-rule-name.yaml", "rules-not-map.yaml", "missing-rules.yaml", "unknown-top-level.yaml",
		"ipv6-in-cidrblocks.yaml", "ipv4-in-ipv6cidrblocks.yaml", "port-out-of-range.yaml", "string-port.json",
		"protocol-spelling.yaml", "non-decimal-port.yaml",
		"account-short.yaml", "account-short.json", "account-not-id.yaml", "region-unknown.yaml",
		"account-on-security-group.yaml", "peer-account-without-group-id.yaml", "peer-account-short.yaml",
		"expires-no-zone.yaml", "expires-not-time.yaml", "expires-date-only.json",
	} {
		t.Run(name, func(t *testing.T) {
			if err := s.Validate(asJSONValue(t, filepath.Join("testdata/bad", name))); err == nil {
				t.Errorf("schema accepts %s", name)
			}
		})
	}
}

// TestSchemaAgreesOnProtocol: the parser and the schema accept and refuse
// the same protocol spellings.
func TestSchemaAgreesOnProtocol(t *testing.T) {
	s := loadSchema(t)
	for _, proto := range []string{
		"tcp", "udp", "icmp", "icmpv6", "all", "-1", `"-1"`, "6", `"6"`, "17", "47", `"50"`, "0", "255",
		"TCP", `"TCP"`, `"tcp "`, `" udp"`, "All", "ICMPv6", `" 6"`, `"06"`, "256", "sctp", "[tcp]",
	} {
		t.Run(proto, func(t *testing.T) {
			src := "rules:\n  r:\n    securityGroup: sg-01234567\n    type: ingress\n    protocol: " + proto + "\n    sourceSecurityGroups: [sg-89abcdef]\n"
			_, diags := Parse("p.yaml", []byte(src))
			var perr []string
			for _, d := range diags {
				if d.Field == "protocol" {
					perr = append(perr, d.String())
				}
			}
			var y any
			if err := yaml.Unmarshal([]byte(src), &y); err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(y)
			if err != nil {
				t.Fatal(err)
			}
			v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			serr := s.Validate(v)
			if (perr == nil) != (serr == nil) {
				t.Errorf("parser accepts: %v (%v), schema accepts: %v (%v)", perr == nil, perr, serr == nil, serr)
			}
		})
	}
}

// TestSchemaTargets: the schema accepts what the parser accepts for
// account, region and source groups in another account, and its region
// pattern is RegionPattern.
func TestSchemaTargets(t *testing.T) {
	s := loadSchema(t)
	peer := "rules:\n  r:\n    securityGroup: {groupId: sg-01234567}\n    type: ingress\n    protocol: tcp\n    fromPort: 1\n    toPort: 1\n    sourceSecurityGroups: "
	for _, src := range []string{
		"account: \"012345678901\"\nregion: eu-west-1\nrules: {}\n",
		"account: 111122223333\nrules: {}\n",
		"region: us-gov-west-1\nrules: {}\n",
		"region: me-west-1\nrules: {}\n",
		"region: eusc-de-east-1\nrules: {}\n",
		"region: xx-future-1\nrules: {}\n",
		peer + "[sg-89abcdef, {groupId: sg-89abcdef, account: \"444455556666\"}, {groupId: sg-0123456789abcdef0, account: 444455556666}]\n",
	} {
		if f, diags := Parse("t.yaml", []byte(src)); f == nil {
			t.Fatalf("parser refuses %q: %v", src, diags.Strings())
		}
		var y any
		if err := yaml.Unmarshal([]byte(src), &y); err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(y)
		if err != nil {
			t.Fatal(err)
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(v); err != nil {
			t.Errorf("schema refuses %q: %v", src, err)
		}
	}
	raw, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Properties struct {
			Region struct {
				Pattern string `json:"pattern"`
			} `json:"region"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Properties.Region.Pattern != RegionPattern {
		t.Errorf("schema region pattern %q, want rules.RegionPattern %q", doc.Properties.Region.Pattern, RegionPattern)
	}
}

// TestSchemaAgreesOnExpiresAt: the parser and the schema accept and refuse
// the same expiresAt strings (quoted: an editor reads YAML 1.2, where an
// unquoted timestamp is a string too).
func TestSchemaAgreesOnExpiresAt(t *testing.T) {
	s := loadSchema(t)
	for _, at := range []string{
		"2026-12-07T18:00:00Z", "2026-12-07T18:00:00+01:00", "2026-12-07T18:00:00-05:30", "2026-12-07T18:00:00.125Z",
		"2026-12-07T18:00:00", "2026-12-07", "2026-12-07 18:00:00Z", "2026-12-07T18:00Z", "2026-12-07T18:00:00+0100",
		"8h", "", "2026-12-07T18:00:00 Z",
	} {
		t.Run(at, func(t *testing.T) {
			src := "rules:\n  r:\n    securityGroup: sg-01234567\n    type: ingress\n    protocol: tcp\n    fromPort: 22\n    toPort: 22\n    cidrBlocks: [10.0.0.0/8]\n    expiresAt: \"" + at + "\"\n"
			f, diags := Parse("e.yaml", []byte(src))
			v, err := jsonschema.UnmarshalJSON(strings.NewReader(`{"rules": {"r": {"securityGroup": "sg-01234567", "type": "ingress", "protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["10.0.0.0/8"], "expiresAt": ` + strconv.Quote(at) + `}}}`))
			if err != nil {
				t.Fatal(err)
			}
			serr := s.Validate(v)
			if (f != nil) != (serr == nil) {
				t.Errorf("parser accepts: %v (%v), schema accepts: %v (%v)", f != nil, diags.Strings(), serr == nil, serr)
			}
		})
	}
}
