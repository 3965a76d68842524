// Package layout tests the shape of the module: the one-way flow from the
// pure core through the engine to the adapters and the shells, as
// docs/architecture.md draws it, and that every output goes through the
// report layer (outputs_test.go). It has no code of its own.
//
// It may import anything: it is test-only.
package layout
