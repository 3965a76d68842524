// Package faultproxy is an HTTP reverse proxy for tests that sits between
// AWS SDK clients and a local emulator (moto) and injects faults: the
// service's throttling error, 500 and 503 answers, delays, a connection
// dropped after a mutating call was forwarded (the caller sees a failure,
// the change happened), an abort after the k-th mutating call (a Lambda
// killed mid-run: every later call fails until Reset), and a cut at the
// k-th call of a chosen kind (such as one TransactWriteItems chunk of a
// ledger commit): refused with a non-retryable error, or let through and
// followed by an abort.
//
//	p := faultproxy.Start(t, moto.URL, 1)
//	cfg.BaseEndpoint = aws.String(p.URL)
//	p.Set(faultproxy.Faults{ThrottleRate: 0.2, DropAfterRate: 0.1})
//
// The proxy recognises the call from the request: EC2 by the form field
// Action, DynamoDB by the X-Amz-Target header, S3 by method and path.
// Randomness is seeded, so a run is repeatable for a given sequence of
// calls (concurrent callers interleave nondeterministically).
//
// It may import anything, but only tests and development tools import it:
// no release binary links it.
package faultproxy
