// Package motoserver gives tests a moto_server (internal/dev/motoproc, patched
// so that DynamoDB requests are atomic) as a local AWS emulator for adapter
// and end-to-end tests.
//
// In tests, prefer one server per test binary:
//
//	func TestMain(m *testing.M) { motoserver.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		srv := motoserver.Shared(t) // started lazily, once
//		srv.Reset(t)                // wipe state left by other tests
//		cfg := srv.Config(t)
//		...
//	}
//
// Start gives a test its own server (stopped in t.Cleanup) when it must not
// share state, e.g. in parallel tests. Starting moto takes 1-2 s.
//
// When moto_server is not on PATH, tests are skipped, unless the CI
// environment variable is set, in which case they fail.
//
// It may import anything, but only tests and development tools import it:
// no release binary links it.
package motoserver
