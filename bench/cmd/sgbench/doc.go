// Command sgbench measures sgrules' API calls, wall time and memory
// against moto_server (started on a free loopback port and stopped at the
// end), beside a naive per-rule baseline, and writes the results as JSON.
//
//	sgbench -n 10,100,1000,5000 -sweep 10000 -out bench/results/latest.json
//
// It may import anything: a development tool, never linked into a release
// binary.
package main
