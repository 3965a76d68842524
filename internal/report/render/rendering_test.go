package render

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/testutil/graphviz"
	"github.com/sgrules/sgrules/internal/testutil/mermaidjs"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Every Mermaid picture the renderers write, as the real mermaid package
// (npm, under node) parses it: the golden graphs and the charts of the
// golden pull-request comments, and a chart built from names that try to
// break out of their labels and set the theme. The Go grammar check
// (CheckMermaid) runs everywhere; this one where node is installed (it
// installs mermaid and jsdom into build/mermaid with npm the first time).
func TestMermaidParsesWithMermaidJS(t *testing.T) {
	var names, diagrams []string
	for _, pattern := range []string{"testdata/*.mmd", "testdata/*.md", "../../../cmd/sgrules/testdata/*.mmd"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			text := string(b)
			if filepath.Ext(f) == ".md" {
				chart, ok := mermaidBlock(text)
				if !ok {
					continue
				}
				text = chart
			}
			names, diagrams = append(names, f), append(diagrams, text)
		}
	}
	if len(diagrams) < 8 {
		t.Fatalf("only %d diagrams found: %v", len(diagrams), names)
	}
	// The injection: a tag value that closes its label and adds a
	// directive, in a plan's chart and in a graph.
	evil := "web\"]\n%%{init: {'theme':'dark'}}%%\nn1[\"x"
	res := reconcile.Result{Plan: reconcile.Plan{Actions: []reconcile.Action{{Kind: reconcile.ActAuthorize,
		Key:    key(web, rules.Ingress, "tcp", 22, 22, rules.PeerGroup, db),
		Owners: []rules.Owner{{Source: "rules/web.yaml", Rule: "ssh"}}}}}}
	var md, g bytes.Buffer
	Markdown(&md, res, MarkdownOptions{Names: map[string]string{web: evil, db: "db %%{init: {'theme':'forest'}}%%"}})
	chart, ok := mermaidBlock(md.String())
	if !ok {
		t.Fatalf("no chart:\n%s", md.String())
	}
	Mermaid(&g, GraphOfPermissions([]rules.Permission{{Key: key(db, rules.Ingress, "tcp", 5432, 5432, rules.PeerGroup, "tags:Name="+evil)}}, nil))
	names, diagrams = append(names, "injected plan chart", "injected graph"), append(diagrams, chart, g.String())

	for i, r := range mermaidjs.Parse(t, diagrams...) {
		switch {
		case r.Err != "":
			t.Errorf("%s: mermaid.parse: %s\n%s", names[i], r.Err, diagrams[i])
		case r.Type != "flowchart-v2":
			t.Errorf("%s: parsed as %q, want a flowchart", names[i], r.Type)
		case len(r.Config) != 0:
			t.Errorf("%s: the text set Mermaid's configuration %v", names[i], r.Config)
		}
	}
	// The check can fail: the unescaped label does set the theme.
	raw := "flowchart LR\n  n1[\"web\"]\n%%{init: {'theme':'dark'}}%%\n  n1 --> n1\n"
	if r := mermaidjs.Parse(t, raw)[0]; r.Err == "" && len(r.Config) == 0 {
		t.Errorf("mermaid.parse did not see the directive of %q: the check proves nothing", raw)
	}
}

// MaxPictureWidth is the widest a picture may render (at Graphviz's 96
// dpi) and stay readable in a pull request comment, about 900 px wide,
// when scaled down: 1600 px keeps the labels over half size.
const MaxPictureWidth = 1600

// The 20-group picture (TestGraphTwentyGroups) renders readable: Graphviz
// draws it at most MaxPictureWidth pixels wide. Left to right it was
// 9,687 px wide (Mermaid: 2,900-3,800 px, issue 22.7).
func TestGraphTwentyGroupsWidth(t *testing.T) {
	dot, err := os.ReadFile("testdata/graph-20.dot")
	if err != nil {
		t.Fatal(err)
	}
	w, h := graphviz.PNGSize(t, dot)
	t.Logf("graph-20.dot: %d x %d px", w, h)
	if w > MaxPictureWidth {
		t.Errorf("graph-20.dot renders %d px wide, over %d", w, MaxPictureWidth)
	}
	lr := strings.Replace(string(dot), "rankdir=TB;", "rankdir=LR;", 1)
	if w2, _ := graphviz.PNGSize(t, []byte(lr)); w2 <= MaxPictureWidth {
		t.Errorf("left to right the picture is %d px wide: the check proves nothing", w2)
	}
}
