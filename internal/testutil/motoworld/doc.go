// Package motoworld builds the AWS state the moto tests and the benchmark
// start from: one VPC, security groups known by their Name tag, the rules
// bucket and the ledger table. It returns errors rather than failing a
// test, so the benchmark (a program) uses it as the tests do
// (motoserver.Server.World wraps it for tests).
//
// It may import anything, but only tests and development tools import it:
// no release binary links it.
package motoworld
