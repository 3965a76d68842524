// Package lambdaemu runs real Lambda bootstrap binaries on this machine
// under the AWS Lambda Runtime Interface Emulator (aws-lambda-rie): it finds
// the emulator, builds functions as provided.al2023 bootstraps, starts one
// emulator per function on free loopback ports and invokes it.
//
//	rie, err := lambdaemu.Find("", root)
//	bins, err := lambdaemu.Build(ctx, root, dir, "./functions/reconcile")
//	fn, err := lambdaemu.Start(ctx, rie, bins["./functions/reconcile"], env)
//	defer fn.Stop()
//	status, body, err := fn.Invoke(ctx, payload)
//
// It serves the demo and, through internal/testutil/rie, the tests.
//
// It may import anything but internal/testutil in code that is not a test
// (the demo is linked into the CLI).
package lambdaemu
