package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/sgrules/sgrules/internal/report/render"
	"github.com/sgrules/sgrules/internal/testutil/graphviz"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ and the generated parts of docs/pull-requests.md")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update after checking):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// The graph of examples/, offline, in every format (golden), accepted by
// Graphviz and by the Mermaid grammar check.
func TestGraphExamples(t *testing.T) {
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"examples-graph.mmd", []string{"graph", "../../examples"}},
		{"examples-graph.dot", []string{"graph", "--format", "dot", "../../examples"}},
		{"examples-graph.json.golden", []string{"graph", "--format", "json", "../../examples"}},
		{"examples-graph-database.mmd", []string{"graph", "--group", "database", "../../examples"}},
		{"examples-graph-database.dot", []string{"graph", "--format", "dot", "../../examples", "--group", "database"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			code, out, errs := runCmd(t, tc.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			golden(t, tc.golden, []byte(out))
			switch filepath.Ext(tc.golden) {
			case ".mmd":
				if err := render.CheckMermaid(out); err != nil {
					t.Error(err)
				}
			case ".dot":
				graphviz.Check(t, []byte(out))
			}
		})
	}
}

// --group on the database of examples/ shows exactly the app tier and
// what reaches it: app, then web and database (which reach app), then
// alb and the internet (which reach web), and nothing else.
func TestGraphGroupDatabase(t *testing.T) {
	code, out, errs := runCmd(t, "graph", "--format", "json", "--group", "database", "../../examples")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var doc render.GraphDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	var nodes, edges []string
	for _, n := range doc.Nodes {
		nodes = append(nodes, n.ID)
	}
	for _, e := range doc.Edges {
		edges = append(edges, e.From+" -> "+e.To+": "+e.Label)
	}
	sort.Strings(edges)
	wantNodes := []string{"0.0.0.0/0", "::/0", "tags:Name=alb", "tags:Name=app", "tags:Name=database", "tags:Name=web"}
	wantEdges := []string{
		"0.0.0.0/0 -> tags:Name=alb: tcp 443",
		"0.0.0.0/0 -> tags:Name=alb: tcp 80",
		"0.0.0.0/0 -> tags:Name=web: icmp type 8",
		"0.0.0.0/0 -> tags:Name=web: tcp 443",
		"0.0.0.0/0 -> tags:Name=web: tcp 80",
		"::/0 -> tags:Name=alb: tcp 443",
		"tags:Name=alb -> tags:Name=web: tcp 8080",
		"tags:Name=app -> tags:Name=database: tcp 3306",
		"tags:Name=app -> tags:Name=database: tcp 5432",
		"tags:Name=database -> tags:Name=app: all traffic",
		"tags:Name=web -> tags:Name=app: all traffic",
		"tags:Name=web -> tags:Name=app: tcp 8000-8999",
	}
	if strings.Join(nodes, "\n") != strings.Join(wantNodes, "\n") {
		t.Errorf("nodes:\n%s\nwant:\n%s", strings.Join(nodes, "\n"), strings.Join(wantNodes, "\n"))
	}
	if strings.Join(edges, "\n") != strings.Join(wantEdges, "\n") {
		t.Errorf("edges:\n%s\nwant:\n%s", strings.Join(edges, "\n"), strings.Join(wantEdges, "\n"))
	}
	// The only edges into the database come from the app tier.
	for _, e := range doc.Edges {
		if e.To == "tags:Name=database" && e.From != "tags:Name=app" {
			t.Errorf("edge into the database from %s", e.From)
		}
	}
}

func TestGraphErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("rules:\n  r:\n    type: sideways\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"bad format", []string{"graph", "--format", "png", "../../examples"}, 2, "--format must be mermaid, dot or json"},
		{"no source", []string{"graph", "--bucket", ""}, 2, "no rule source"},
		{"unknown group", []string{"graph", "--group", "nope", "../../examples"}, 1, "--group nope: no group"},
		{"invalid file", []string{"graph", dir}, 1, "bad.yaml:3:11"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SGRULES_BUCKET", "")
			t.Setenv("RULES_BUCKET", "")
			code, _, errs := runCmd(t, tc.args...)
			if code != tc.code || !strings.Contains(errs, tc.stderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errs, tc.code, tc.stderr)
			}
		})
	}
}

// One group spelled three ways in the files (issue 22.4): shop-web's own
// file names it by its Name tag, the database's by its group name
// (shop-web-sg@vpc-…), and a batch host is named by id in one file and by
// account and id in another. Offline, the id spellings are one node (the
// files equate them: a group id names one group), and the Name tag and the
// group name, which only AWS can equate, are flagged "maybe the same
// group": --group shop-db follows that link, so the picture still shows
// the internet reaching the database through the web tier.
func TestGraphOneNodePerGroupOffline(t *testing.T) {
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"shop-graph-db.mmd", []string{"graph", "--group", "shop-db", "../../internal/report/render/testdata/shop"}},
		{"shop-graph-db.dot", []string{"graph", "--format", "dot", "--group", "shop-db", "../../internal/report/render/testdata/shop"}},
		{"shop-graph.mmd", []string{"graph", "../../internal/report/render/testdata/shop"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			code, out, errs := runCmd(t, tc.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			golden(t, tc.golden, []byte(out))
			if filepath.Ext(tc.golden) == ".mmd" {
				if err := render.CheckMermaid(out); err != nil {
					t.Error(err)
				}
			} else {
				graphviz.Check(t, []byte(out))
			}
		})
	}
	code, out, errs := runCmd(t, "graph", "--format", "json", "--group", "shop-db", "../../internal/report/render/testdata/shop")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var doc render.GraphDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	var edges, same []string
	for _, e := range doc.Edges {
		edges = append(edges, e.From+" -> "+e.To+": "+e.Label)
	}
	for _, s := range doc.MaybeSame {
		same = append(same, s.A+" ~ "+s.B)
	}
	sort.Strings(edges)
	wantEdges := []string{
		"0.0.0.0/0 -> tags:Name=shop-web: tcp 443",
		"10.8.0.0/16 -> sg-0ccccccccccccccc3: tcp 22",
		"name:shop-web-sg@vpc-0123456789abcdef0 -> tags:Name=shop-db: tcp 5432",
		"sg-0ccccccccccccccc3 -> tags:Name=shop-db: tcp 5432",
	}
	if strings.Join(edges, "\n") != strings.Join(wantEdges, "\n") {
		t.Errorf("edges:\n%s\nwant:\n%s", strings.Join(edges, "\n"), strings.Join(wantEdges, "\n"))
	}
	if want := "name:shop-web-sg@vpc-0123456789abcdef0 ~ tags:Name=shop-web"; strings.Join(same, "\n") != want {
		t.Errorf("maybe the same group: %q, want %q", same, want)
	}
}

// With AWS to ask (--resolve; the default with --bucket), the three
// spellings of issue 22.4 are one node each: the group's id, labelled
// with its name, and nothing is "maybe the same".
func TestGraphOneNodePerGroupResolved(t *testing.T) {
	w := newCLIWorld(t)
	web, db := w.group("shop-web"), w.group("shop-db")
	w.write("web.yaml", "rules:\n  https:\n    securityGroup: {tags: {Name: shop-web}}\n    type: ingress\n    protocol: tcp\n    fromPort: 443\n    toPort: 443\n    cidrBlocks: [0.0.0.0/0]\n")
	w.write("db.yaml", "rules:\n  pg:\n    securityGroup: {tags: {Name: shop-db}}\n    type: ingress\n    protocol: tcp\n    fromPort: 5432\n    toPort: 5432\n    sourceSecurityGroups: [{groupName: shop-web-sg, vpcId: "+w.vpc+"}]\n"+
		"  admin:\n    securityGroup: "+db+"\n    type: ingress\n    protocol: tcp\n    fromPort: 22\n    toPort: 22\n    sourceSecurityGroups: ["+web+"]\n")
	code, out, errs := runCmd(t, "graph", "--resolve", "--format", "json", "--group", "shop-db", w.dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var doc render.GraphDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	var nodes, edges []string
	for _, n := range doc.Nodes {
		nodes = append(nodes, n.ID+" "+string(n.Kind)+" "+n.Label)
	}
	for _, e := range doc.Edges {
		edges = append(edges, e.From+" -> "+e.To+": "+e.Label)
	}
	sort.Strings(edges)
	wantNodes := []string{"0.0.0.0/0 cidr 0.0.0.0/0", db + " group " + db + " (shop-db)", web + " group " + web + " (shop-web)"}
	wantEdges := []string{"0.0.0.0/0 -> " + web + ": tcp 443", web + " -> " + db + ": tcp 22", web + " -> " + db + ": tcp 5432"}
	sort.Strings(wantEdges)
	if strings.Join(nodes, "\n") != strings.Join(wantNodes, "\n") {
		t.Errorf("nodes:\n%s\nwant:\n%s", strings.Join(nodes, "\n"), strings.Join(wantNodes, "\n"))
	}
	if strings.Join(edges, "\n") != strings.Join(wantEdges, "\n") {
		t.Errorf("edges:\n%s\nwant:\n%s", strings.Join(edges, "\n"), strings.Join(wantEdges, "\n"))
	}
	if len(doc.MaybeSame) != 0 {
		t.Errorf("maybe the same: %+v", doc.MaybeSame)
	}
	// The picture: the ids replaced by names, a golden file.
	code, out, errs = runCmd(t, "graph", "--resolve", "--group", "shop-db", w.dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if err := render.CheckMermaid(out); err != nil {
		t.Error(err)
	}
	golden(t, "shop-graph-db-resolved.mmd", []byte(strings.NewReplacer(web, "sg-WEB", db, "sg-DB").Replace(out)))
}
