package cfnresource

import "github.com/sgrules/sgrules/pkg/rules"

// ParseProperties converts one custom resource's ResourceProperties
// (decoded JSON) into a File named source with a single rule named
// ruleName, validated exactly like a rule in a file. The property names are
// the rule field names (securityGroup, type, protocol, …); "ServiceToken"
// is ignored. CloudFormation sends every scalar as a string, so numeric
// strings are accepted for ports ("80", "-1", read as decimal); JSON
// numbers are accepted too. Diagnostics have File=source, Line and Col 0,
// Field the property (or element) path, and a message that starts with it.
// The File is nil when any error diagnostic exists.
func ParseProperties(source, ruleName string, props map[string]any) (*rules.File, rules.Diagnostics) {
	rule := make(map[string]any, len(props))
	for k, v := range props {
		if k != "ServiceToken" {
			rule[k] = v
		}
	}
	file := map[string]any{"rules": map[string]any{ruleName: rule}}
	return rules.ParseValue(source, file, rules.ValueOptions{NumericStrings: true})
}
