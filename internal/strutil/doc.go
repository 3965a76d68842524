// Package strutil holds the few string helpers that adapters and output
// packages share. Standard library only; pkg/rules does not import it (the
// core imports nothing under internal).
//
// It may import the standard library only.
package strutil
