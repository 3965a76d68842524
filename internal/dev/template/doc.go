// Package template holds the tests of template.yaml (the SAM application)
// and template-target.yaml (the target account role, docs/multi-account.md):
// cfn-lint, the handlers and build targets, every environment variable a
// function reads, least-privilege IAM, the ledger table's definition, and
// that the target role is trusted by the hub's roles only and may do what
// the hub's own policy allows, no more.
// It has no code of its own.
//
// It may import anything: it is test-only.
package template
