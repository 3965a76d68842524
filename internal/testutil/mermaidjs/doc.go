// Package mermaidjs parses Mermaid text with the real mermaid npm package
// (the parser GitHub's renderer uses) under node, in tests.
//
// It may import anything, but only tests and development tools import it:
// no release binary links it.
package mermaidjs
