// Package graphviz checks DOT text with Graphviz in tests.
//
// It may import anything, but only tests and development tools import it:
// no release binary links it.
package graphviz
