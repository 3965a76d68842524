// Package bench measures sgrules' API calls, wall time and memory against
// moto_server, beside a naive per-rule baseline applying the same workload
// with the same SDK (see naive). cmd/sgbench runs it ("make bench").
//
// Calls are counted by an SDK middleware (internal/dev/apicount) once per
// operation call, retries not included. Set-up calls (groups, bucket,
// table, uploading rule files) and the hand-made drift are made with an
// uncounted client.
//
// It may import anything: a development tool, never linked into a release
// binary.
package bench
