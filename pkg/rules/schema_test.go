package rules

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
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
	} {
		t.Run(name, func(t *testing.T) {
			if err := s.Validate(asJSONValue(t, filepath.Join("testdata/bad", name))); err == nil {
				t.Errorf("schema accepts %s", name)
			}
		})
	}
}
