// Package chaos holds the convergence suite of sgrules: randomised
// scenarios of rule file changes, shuffled, duplicated and dropped events,
// concurrent reconciles, hand-made rules, ledger loss, ledger commits cut
// between chunks, bulk files, oversized invalid uploads, a second
// deployment sharing the groups (with a policy of `enforce: revoke` and an
// exclusive group; sometimes its table has the first's table's name in
// another region, some of its rules declare the first's permissions, and
// the first declares its exclusive group exclusive too), a guardrail policy refusing some files
// (world-open spelled as halves, 2000::/3 or a prefix list among them), an
// incident responder revoking by hand a rule a new deny clause forbids,
// groups handed between tenants, hand-made rules carrying this
// deployment's tags, a hub (reconcile.Fleet) with targets in two accounts
// (one of them sometimes offboarded mid-scenario), rules that
// expire near a scenario clock with expiry schedules lost underneath
// (expiry_test.go), and injected AWS
// faults (internal/testutil/faultproxy), against moto. It has no non-test
// code; see chaos_test.go and docs/reliability.md.
//
//	go test ./internal/dev/chaos                           # bounded (make test)
//	CHAOS_SCENARIOS=500 go test -v -run TestChaos ./internal/dev/chaos   # make chaos
//	CHAOS_SEED=1234 CHAOS_SCENARIOS=1 go test -v -run TestChaos ./internal/dev/chaos
//
// It may import anything but internal/testutil in code that is not a test
// (the demo is linked into the CLI).
package chaos
