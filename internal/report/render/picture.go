package render

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Colours of the pictures (GitHub's palette, readable in light and dark
// themes).
const (
	colorAdded     = "#1a7f37"
	colorRemoved   = "#cf222e"
	colorChanged   = "#bf8700"
	colorWorld     = "#cf222e"
	colorUnmanaged = "#8c959f"
	colorViolation = "#8250df"
	colorMaybe     = "#9a6700"
)

// MaybeSameLabel is the text of the line between two group nodes that may
// be one group spelled two ways (Graph.MaybeSame).
const MaybeSameLabel = "maybe the same group"

// drawnEdge is one arrow: the permissions between the same two nodes in
// the same state, their labels joined.
type drawnEdge struct {
	from, to  string
	direction string
	labels    []string
	world     bool
	status    Status
	managed   string
	violation bool
}

// symbol marks an arrow's label with the change, so that the picture
// reads without colours.
func (s Status) symbol() string {
	switch s {
	case StatusAdded:
		return "+ "
	case StatusRemoved:
		return "- "
	case StatusChanged:
		return "~ "
	}
	return ""
}

// drawn merges the graph's edges into arrows, in the graph's order.
func (g Graph) drawn() []drawnEdge {
	var out []drawnEdge
	index := map[string]int{}
	for _, e := range g.Edges {
		id := strings.Join([]string{e.From, e.To, string(e.Direction), string(e.Status), e.Managed, strconv.FormatBool(e.World), strconv.FormatBool(len(e.Violations) > 0)}, "\x00")
		i, ok := index[id]
		if !ok {
			i = len(out)
			index[id] = i
			out = append(out, drawnEdge{from: e.From, to: e.To, direction: string(e.Direction), world: e.World, status: e.Status, managed: e.Managed, violation: len(e.Violations) > 0})
		}
		out[i].labels = append(out[i].labels, e.Status.symbol()+e.Label)
	}
	return out
}

// MaxLabelPorts is how many permissions an arrow's label lists before
// "and N more".
const MaxLabelPorts = 6

func (d drawnEdge) label() string {
	ls := d.labels
	if len(ls) > MaxLabelPorts {
		ls = append(append([]string(nil), ls[:MaxLabelPorts-1]...), fmt.Sprintf("and %d more", len(d.labels)-MaxLabelPorts+1))
	}
	s := strings.Join(ls, ", ")
	// The direction says whose rule the arrow is: an ingress rule of the
	// group it points to, or an egress rule of the group it leaves.
	switch d.direction {
	case string(rules.Ingress):
		s = "in: " + s
	case string(rules.Egress):
		s = "out: " + s
	}
	if d.managed == "unmanaged" {
		s += " (unmanaged)"
	}
	return s
}

// style is the arrow's colour and width, "" for the default. Arrows from
// the internet are thick (4px) whatever their state, as the legend says,
// except removed ones (dotted red).
func (d drawnEdge) style() (color string, width int, dashed bool) {
	defer func() {
		if d.world && d.status != StatusRemoved {
			width = 4
		}
	}()
	switch {
	case d.violation:
		color, width = colorViolation, 3
	case d.status == StatusAdded:
		color, width = colorAdded, 2
	case d.status == StatusRemoved:
		color, width, dashed = colorRemoved, 2, true
	case d.status == StatusChanged:
		color, width = colorChanged, 2
	case d.world:
		color, width = colorWorld, 3
	case d.managed == "unmanaged":
		color, width, dashed = colorUnmanaged, 1, true
	}
	return color, width, dashed
}

// nodeIDs numbers the nodes in the graph's (sorted) order: n1, n2, …
func (g Graph) nodeIDs() map[string]string {
	ids := make(map[string]string, len(g.Nodes))
	for i, n := range g.Nodes {
		ids[n.ID] = "n" + strconv.Itoa(i+1)
	}
	return ids
}

// TopDownGroups is how many group nodes a picture has before it is laid
// out top-down: left to right, 20 groups made a picture 3,000 px wide,
// unreadable at the width of a pull request comment.
const TopDownGroups = 8

// topDown reports whether the picture is drawn top-down.
func (g Graph) topDown() bool {
	n := 0
	for _, node := range g.Nodes {
		if node.Kind == NodeGroup || node.Kind == NodeRef {
			n++
		}
	}
	return n > TopDownGroups
}

// isDefaultEgress reports whether an edge is the default egress rule EC2
// gives every group (egress, all traffic, to 0.0.0.0/0 or ::/0) as a live
// graph finds it: unmanaged, and not a change of a plan. A declared
// (managed) or changed egress to the world is drawn as any rule.
func isDefaultEgress(e Edge) bool {
	return e.Direction == rules.Egress && e.Protocol == rules.ProtoAll && (e.To == "0.0.0.0/0" || e.To == "::/0") &&
		e.Status == "" && e.Managed == "unmanaged" && len(e.Violations) == 0
}

// folded is the graph to draw: the default egress rules are left out
// (with the internet's nodes no other arrow uses), and note is the text of
// the one node that stands for them, "" when there are none.
func (g Graph) folded() (out Graph, note string) {
	groups := map[string]bool{}
	used := map[string]bool{}
	out = Graph{Nodes: []Node{}, Edges: []Edge{}}
	for _, e := range g.Edges {
		if isDefaultEgress(e) {
			groups[e.From] = true
			continue
		}
		out.Edges = append(out.Edges, e)
		used[e.From], used[e.To] = true, true
	}
	if len(groups) == 0 {
		return g, ""
	}
	out.MaybeSame = g.MaybeSame
	for _, n := range g.Nodes {
		if n.World && !used[n.ID] {
			continue
		}
		out.Nodes = append(out.Nodes, n)
	}
	plural := "s"
	if len(groups) == 1 {
		plural = ""
	}
	return out, fmt.Sprintf("default egress (all traffic to the internet, unmanaged): %d group%s", len(groups), plural)
}

// Mermaid writes the graph as a Mermaid flowchart, left to right (top-down
// over TopDownGroups groups): groups are boxes, CIDRs stadiums, prefix lists hexagons and unresolved
// references double boxes; world-open arrows are thick (==>), removed and
// unmanaged ones dotted (-.->), and labels start with +, - or ~ in a plan.
// The default egress rules are folded into one note node.
func Mermaid(w io.Writer, g Graph) {
	g, note := g.folded()
	ids := g.nodeIDs()
	if g.topDown() {
		fmt.Fprintln(w, "flowchart TB")
	} else {
		fmt.Fprintln(w, "flowchart LR")
	}
	var world, refs, groups []string
	for _, n := range g.Nodes {
		id, label := ids[n.ID], `"`+report.MermaidLabel(n.Label)+`"`
		switch n.Kind {
		case NodeCIDR:
			fmt.Fprintf(w, "  %s([%s])\n", id, label)
		case NodePrefixList:
			fmt.Fprintf(w, "  %s{{%s}}\n", id, label)
		case NodeRef:
			fmt.Fprintf(w, "  %s[[%s]]\n", id, label)
			refs = append(refs, id)
		default:
			fmt.Fprintf(w, "  %s[%s]\n", id, label)
			groups = append(groups, id)
		}
		if n.World {
			world = append(world, id)
		}
	}
	noteID := "n" + strconv.Itoa(len(g.Nodes)+1)
	if note != "" {
		fmt.Fprintf(w, "  %s[\"%s\"]\n", noteID, report.MermaidLabel(note))
	}
	styles := map[string][]string{}
	var order []string
	for i, d := range g.drawn() {
		arrow := "-->"
		switch {
		case d.status == StatusRemoved || (d.status == "" && d.managed == "unmanaged"):
			arrow = "-.->"
		case d.world:
			arrow = "==>"
		}
		fmt.Fprintf(w, "  %s %s|\"%s\"| %s\n", ids[d.from], arrow, report.MermaidLabel(d.label()), ids[d.to])
		if color, width, dashed := d.style(); color != "" {
			st := fmt.Sprintf("stroke:%s,stroke-width:%dpx", color, width)
			if dashed {
				st += ",stroke-dasharray:4 3"
			}
			if _, ok := styles[st]; !ok {
				order = append(order, st)
			}
			styles[st] = append(styles[st], strconv.Itoa(i))
		}
	}
	links := len(g.drawn())
	for i, p := range g.MaybeSame {
		fmt.Fprintf(w, "  %s -.-|\"%s\"| %s\n", ids[p.A], MaybeSameLabel, ids[p.B])
		st := "stroke:" + colorMaybe + ",stroke-width:1px,stroke-dasharray:2 3"
		if _, ok := styles[st]; !ok {
			order = append(order, st)
		}
		styles[st] = append(styles[st], strconv.Itoa(links+i))
	}
	if len(groups) > 0 {
		fmt.Fprintln(w, "  classDef sg fill:#ddf4ff,stroke:#0969da,color:#0a3069")
		fmt.Fprintf(w, "  class %s sg\n", strings.Join(groups, ","))
	}
	if len(refs) > 0 {
		fmt.Fprintln(w, "  classDef ref fill:#f6f8fa,stroke:#57606a,color:#24292f")
		fmt.Fprintf(w, "  class %s ref\n", strings.Join(refs, ","))
	}
	if len(world) > 0 {
		fmt.Fprintln(w, "  classDef world fill:#ffebe9,stroke:#cf222e,color:#82071e")
		fmt.Fprintf(w, "  class %s world\n", strings.Join(world, ","))
	}
	if note != "" {
		fmt.Fprintln(w, "  classDef note fill:#fff8c5,stroke:#9a6700,color:#3b2300,stroke-dasharray:4 3")
		fmt.Fprintf(w, "  class %s note\n", noteID)
	}
	for _, st := range order {
		fmt.Fprintf(w, "  linkStyle %s %s\n", strings.Join(styles[st], ","), st)
	}
}

// DOT writes the graph in Graphviz's language, with the same shapes and
// colours, layout and note as Mermaid.
func DOT(w io.Writer, g Graph) {
	g, note := g.folded()
	ids := g.nodeIDs()
	fmt.Fprintln(w, "digraph sgrules {")
	if g.topDown() {
		fmt.Fprintln(w, "  rankdir=TB;")
	} else {
		fmt.Fprintln(w, "  rankdir=LR;")
	}
	fmt.Fprintln(w, `  node [shape=box, style="rounded,filled", fillcolor="#ddf4ff", color="#0969da", fontname="Helvetica"];`)
	fmt.Fprintln(w, `  edge [fontname="Helvetica", fontsize=10];`)
	for _, n := range g.Nodes {
		attrs := []string{"label=" + report.DOTLabel(n.Label)}
		switch n.Kind {
		case NodeCIDR:
			attrs = append(attrs, "shape=ellipse", `fillcolor="#f6f8fa"`, `color="#57606a"`)
		case NodePrefixList:
			attrs = append(attrs, "shape=hexagon", `fillcolor="#f6f8fa"`, `color="#57606a"`)
		case NodeRef:
			attrs = append(attrs, "peripheries=2", `fillcolor="#f6f8fa"`, `color="#57606a"`)
		}
		if n.World {
			attrs = append(attrs, `fillcolor="#ffebe9"`, `color="#cf222e"`)
		}
		fmt.Fprintf(w, "  %s [%s];\n", ids[n.ID], strings.Join(attrs, ", "))
	}
	if note != "" {
		fmt.Fprintf(w, "  n%d [label=%s, shape=note, style=\"filled,dashed\", fillcolor=\"#fff8c5\", color=\"#9a6700\"];\n", len(g.Nodes)+1, report.DOTLabel(note))
	}
	for _, d := range g.drawn() {
		attrs := []string{"label=" + report.DOTLabel(d.label())}
		if color, width, dashed := d.style(); color != "" {
			attrs = append(attrs, "color="+report.DOTLabel(color), "fontcolor="+report.DOTLabel(color), "penwidth="+strconv.Itoa(width))
			if dashed {
				attrs = append(attrs, "style=dashed")
			}
		}
		fmt.Fprintf(w, "  %s -> %s [%s];\n", ids[d.from], ids[d.to], strings.Join(attrs, ", "))
	}
	for _, p := range g.MaybeSame {
		fmt.Fprintf(w, "  %s -> %s [label=%s, dir=none, style=dotted, color=%s, fontcolor=%s, constraint=false];\n",
			ids[p.A], ids[p.B], report.DOTLabel(MaybeSameLabel), report.DOTLabel(colorMaybe), report.DOTLabel(colorMaybe))
	}
	fmt.Fprintln(w, "}")
}

// GraphDoc is the JSON form of a graph.
type GraphDoc struct {
	FormatVersion int `json:"formatVersion"`
	Graph
}

// NewGraphDoc wraps a graph for JSON.
func NewGraphDoc(g Graph) GraphDoc {
	if g.Nodes == nil {
		g.Nodes = []Node{}
	}
	if g.Edges == nil {
		g.Edges = []Edge{}
	}
	return GraphDoc{FormatVersion: report.FormatVersion, Graph: g}
}
