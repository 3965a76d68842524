// Package motoproc runs moto_server (Python moto, "pip install
// 'moto[server]'") as a local AWS emulator: for the demo, the benchmark and,
// through internal/testutil/motoserver, the tests. It imports neither
// testing nor any test helper, so a release binary (the CLI's demo) may use
// it.
//
// Every server it starts runs patched so that each DynamoDB request is
// atomic, as DynamoDB guarantees and stock moto does not under concurrent
// requests (see sgrules_moto_atomic.py). Callers may add patches of their
// own (StartProcess's patches).
//
// It may import anything but internal/testutil in code that is not a test
// (the demo is linked into the CLI).
package motoproc
