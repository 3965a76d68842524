// Package apicount counts AWS API calls per service and operation with an
// SDK middleware (one count per call, retries not included), for tests,
// benchmarks and the CLI's statistics.
//
// It may import anything but internal/testutil in code that is not a test
// (the demo is linked into the CLI).
package apicount
