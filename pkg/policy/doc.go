// Package policy is the guardrail policy of sgrules: deny clauses that no
// rule file may declare (and that live rules are checked against), and
// tenants that restrict which groups the files under a prefix may manage.
//
// It is pure, like pkg/rules: it parses the policy file with the rule
// parser's located diagnostics and matches permissions against it, given
// what is known about the groups involved (Facts). Offline that is only
// what the rule file's references say; online the engine or the CLI passes
// what EC2 reports. A clause that cannot be decided with the facts at hand
// is reported as skipped, never as passed.
//
// It may import the standard library and a YAML parser; pkg/policy also
// pkg/rules. No AWS, nothing under internal/.
package policy
