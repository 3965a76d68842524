package render

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// The subset of Mermaid's flowchart grammar the renderers write; CheckMermaid
// accepts exactly that, so a change that would break GitHub's renderer
// fails the tests instead.
var (
	mmID     = `n[0-9]+`
	mmLabel  = `"[^"#%<>|\n]*(?:#(?:35|37|quot|lt|gt|124);[^"#%<>|\n]*)*"`
	mmNodeRE = regexp.MustCompile(`^  (` + mmID + `)(?:\[(` + mmLabel + `)\]|\(\[(` + mmLabel + `)\]\)|\{\{(` + mmLabel + `)\}\}|\[\[(` + mmLabel + `)\]\])$`)
	mmEdgeRE = regexp.MustCompile(`^  (` + mmID + `) (?:-->|==>|-\.->|-\.-)\|(` + mmLabel + `)\| (` + mmID + `)$`)
	mmDefRE  = regexp.MustCompile(`^  classDef [a-z]+ [a-z-]+:[#0-9a-z ]+(?:,[a-z-]+:[#0-9a-z ]+)*$`)
	mmClsRE  = regexp.MustCompile(`^  class (` + mmID + `(?:,` + mmID + `)*) ([a-z]+)$`)
	mmLinkRE = regexp.MustCompile(`^  linkStyle ([0-9]+(?:,[0-9]+)*) [a-z-]+:[#0-9a-z ]+(?:,[a-z-]+:[#0-9a-z ]+)*$`)
)

// CheckMermaid checks a flowchart as Mermaid and GitHub read it: the
// header (left to right or top-down), node declarations with quoted, escaped labels, each node
// declared once before it is used, edges between declared nodes, classes
// defined before use on declared nodes, and link styles naming existing
// edges. It returns the first problem, with its line number.
func CheckMermaid(text string) error {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) == 0 || (lines[0] != "flowchart LR" && lines[0] != "flowchart TB") {
		return fmt.Errorf("line 1: want %q or %q, got %q", "flowchart LR", "flowchart TB", lines[0])
	}
	nodes := map[string]bool{}
	classes := map[string]bool{}
	edges := 0
	for i, l := range lines[1:] {
		n := i + 2
		switch {
		case mmNodeRE.MatchString(l):
			id := mmNodeRE.FindStringSubmatch(l)[1]
			if nodes[id] {
				return fmt.Errorf("line %d: node %s declared twice", n, id)
			}
			if edges > 0 {
				return fmt.Errorf("line %d: node %s declared after the edges", n, id)
			}
			nodes[id] = true
		case mmEdgeRE.MatchString(l):
			m := mmEdgeRE.FindStringSubmatch(l)
			for _, id := range []string{m[1], m[3]} {
				if !nodes[id] {
					return fmt.Errorf("line %d: edge uses undeclared node %s", n, id)
				}
			}
			edges++
		case mmDefRE.MatchString(l):
			classes[strings.Fields(l)[1]] = true
		case mmClsRE.MatchString(l):
			m := mmClsRE.FindStringSubmatch(l)
			if !classes[m[2]] {
				return fmt.Errorf("line %d: class %s used before classDef", n, m[2])
			}
			for _, id := range strings.Split(m[1], ",") {
				if !nodes[id] {
					return fmt.Errorf("line %d: class on undeclared node %s", n, id)
				}
			}
		case mmLinkRE.MatchString(l):
			for _, s := range strings.Split(mmLinkRE.FindStringSubmatch(l)[1], ",") {
				if k, _ := strconv.Atoi(s); k >= edges {
					return fmt.Errorf("line %d: linkStyle %d: only %d edges", n, k, edges)
				}
			}
		default:
			return fmt.Errorf("line %d: not a flowchart statement: %q", n, l)
		}
	}
	return nil
}
