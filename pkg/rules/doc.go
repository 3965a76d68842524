// Package rules is the pure core of sgrules: the rule model, parsing of rule
// files (YAML or JSON, with line and column for every node), validation,
// normalisation, and expansion of a rule into one Permission per source.
//
// It imports no AWS package. Group references by name or tags stay
// unresolved here; the engine resolves them and passes a Resolver to Expand.
//
// It may import the standard library and a YAML parser; pkg/policy also
// pkg/rules. No AWS, nothing under internal/.
package rules
