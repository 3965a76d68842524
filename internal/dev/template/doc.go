// Package template holds the tests of template.yaml (the SAM application):
// cfn-lint, the handlers and build targets, every environment variable a
// function reads, least-privilege IAM, and the ledger table's definition.
// It has no code of its own.
//
// It may import anything: it is test-only.
package template
