// Package rie runs real Lambda bootstrap binaries under the AWS Lambda
// Runtime Interface Emulator (aws-lambda-rie), for tests: a testing.TB
// wrapper over internal/dev/lambdaemu that caches builds, stops the emulator
// when the test ends and fails or skips instead of returning errors.
//
//	bin := rie.Build(t, "./functions/reconcile")
//	fn := rie.Start(t, bin, []string{"STATE_TABLE=t", "AWS_REGION=eu-west-1"})
//	out := fn.Invoke(t, []byte(`{"Records":[]}`))
//
// The emulator is found through $SGRULES_RIE, then ./bin/aws-lambda-rie at
// the module root, then PATH ("make tools" installs it into ./bin). When it
// is absent the test fails under CI (CI set) and is skipped otherwise.
//
// Builds are cached per test binary in a temporary directory; a package
// that builds should remove it when its tests end:
//
//	func TestMain(m *testing.M) { rie.Main(m) }
//
// It may import anything, but only tests and development tools import it:
// no release binary links it.
package rie
