// Package policyload gives the engine its guardrail policy: it reads the
// policy file (from the rules bucket at POLICY_KEY, or a local file for the
// CLI's --policy), parses it with pkg/policy, and adapts the result to the
// engine's reconcile.PolicyStore and reconcile.Policy, converting the
// engine's group facts into pkg/policy's.
//
// It may import the AWS SDK, pkg/rules, pkg/policy, internal/reconcile
// (the ports it implements) and the other adapters.
package policyload
