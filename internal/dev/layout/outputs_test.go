package layout

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Every output goes through the report layer (internal/report and
// below): the documents (JSON, Lambda responses, SNS, EMF), the text and
// Markdown of plan, apply, drift, graph and usage, and the way a
// permission is written for people. The shells (the CLI, the Lambda
// handlers, the mains) decode input, call the engine and hand the result
// to internal/report. checkOutputs enforces three rules on a shell's
// non-test code:
//
//   - json-encode: no json.Marshal, json.MarshalIndent or json.NewEncoder
//     (report.JSON writes the documents);
//   - document-type: no struct type with json tags (documents are defined
//     once, in internal/report);
//   - rule-text: no fmt print or format call with a permission's parts as
//     arguments (.FromPort, .ToPort, .Protocol, .Peer.Value, .Peer.String(),
//     .Key.String()): report.RuleText, Ports and PeerText write them.
//
// A few uses are not output and are allowed by name below, with the
// reason.

// shells are the package path prefixes the rules apply to.
var shells = []string{"cmd/", "functions/", "internal/lambda/", "internal/cli/"}

// allowedOutputs: "path/file.go rule" -> why it is not an output of the
// report layer.
var allowedOutputs = map[string]string{
	"internal/lambda/trigger/trigger.go json-encode":         "Sweep.Body is the queue message one function sends another (trigger decodes it), not a report",
	"internal/lambda/trigger/trigger.go document-type":       "the event and message types trigger decodes (and the sweep message it encodes for the queue)",
	"internal/lambda/cfnresource/cfnresource.go json-encode": "measures the size of the resource properties; nothing is written",
	"internal/lambda/cfnresource/respond.go json-encode":     "the body of the CloudFormation response is cfn.Response, the protocol's own type",
}

// violation is one breach of a rule at a position.
type violation struct {
	File, Rule string
	Line       int
	What       string
}

func (v violation) String() string {
	return fmt.Sprintf("%s:%d: %s: %s", v.File, v.Line, v.Rule, v.What)
}

// fmtPrint are the fmt functions that write or format text.
var fmtPrint = map[string]bool{
	"Print": true, "Printf": true, "Println": true, "Fprint": true, "Fprintf": true, "Fprintln": true,
	"Sprint": true, "Sprintf": true, "Sprintln": true, "Errorf": true, "Appendf": true,
}

// permissionPart reports whether an expression reads a permission's
// parts: x.FromPort, x.ToPort, x.Protocol, x.Peer.Value, x.Peer.String(),
// x.Key.String().
func permissionPart(e ast.Expr) (string, bool) {
	found := ""
	ast.Inspect(e, func(n ast.Node) bool {
		if found != "" {
			return false
		}
		switch n := n.(type) {
		case *ast.FuncLit:
			return false
		case *ast.CallExpr:
			if sel, ok := n.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "String" && len(n.Args) == 0 {
				if inner, ok := sel.X.(*ast.SelectorExpr); ok && (inner.Sel.Name == "Peer" || inner.Sel.Name == "Key") {
					found = "." + inner.Sel.Name + ".String()"
				}
			}
		case *ast.SelectorExpr:
			switch n.Sel.Name {
			case "FromPort", "ToPort", "Protocol":
				found = "." + n.Sel.Name
			case "Value":
				if inner, ok := n.X.(*ast.SelectorExpr); ok && inner.Sel.Name == "Peer" {
					found = ".Peer.Value"
				}
			}
		}
		return found == ""
	})
	return found, found != ""
}

// importName returns the name a file gives an import path, "" if it does
// not import it.
func importName(f *ast.File, path string) string {
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == path {
			if imp.Name != nil {
				return imp.Name.Name
			}
			return filepath.Base(path)
		}
	}
	return ""
}

// checkOutputs checks the Go files of one package; rel names them in the
// result (a path relative to the module).
func checkOutputs(rel string, files map[string]*ast.File, fset *token.FileSet) []violation {
	var out []violation
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		f := files[name]
		file := rel + "/" + filepath.Base(name)
		add := func(pos token.Pos, rule, what string) {
			out = append(out, violation{File: file, Rule: rule, Line: fset.Position(pos).Line, What: what})
		}
		jsonName, fmtName := importName(f, "encoding/json"), importName(f, "fmt")
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.TypeSpec:
				st, ok := n.Type.(*ast.StructType)
				if !ok {
					return true
				}
				for _, field := range st.Fields.List {
					if field.Tag != nil && strings.Contains(field.Tag.Value, `json:"`) {
						add(n.Pos(), "document-type", "type "+n.Name.Name+" has json tags: define documents in internal/report")
						break
					}
				}
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				pkg, ok := sel.X.(*ast.Ident)
				if !ok {
					return true
				}
				switch {
				case jsonName != "" && pkg.Name == jsonName && (sel.Sel.Name == "Marshal" || sel.Sel.Name == "MarshalIndent" || sel.Sel.Name == "NewEncoder"):
					add(n.Pos(), "json-encode", "json."+sel.Sel.Name+": write documents with report.JSON")
				case fmtName != "" && pkg.Name == fmtName && fmtPrint[sel.Sel.Name]:
					for _, a := range n.Args {
						if part, ok := permissionPart(a); ok {
							add(a.Pos(), "rule-text", "fmt."+sel.Sel.Name+" writes "+part+": write permissions with report.RuleText, Ports or PeerText")
							break
						}
					}
				}
			}
			return true
		})
	}
	return out
}

// parseDir parses the Go files of a directory (test files included only
// when tests is set).
func parseDir(t *testing.T, dir string, goFiles []string) (map[string]*ast.File, *token.FileSet) {
	t.Helper()
	fset := token.NewFileSet()
	files := map[string]*ast.File{}
	for _, name := range goFiles {
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = f
	}
	return files, fset
}

func TestEveryOutputGoesThroughReport(t *testing.T) {
	out, err := exec.Command("go", "list", "-json=ImportPath,Dir,GoFiles", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	used := map[string]bool{}
	checked := 0
	for dec.More() {
		var p struct {
			ImportPath, Dir string
			GoFiles         []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		rel := strings.TrimPrefix(p.ImportPath, module)
		shell := false
		for _, s := range shells {
			shell = shell || strings.HasPrefix(rel, s)
		}
		if !shell {
			continue
		}
		checked++
		files, fset := parseDir(t, p.Dir, p.GoFiles)
		for _, v := range checkOutputs(rel, files, fset) {
			key := v.File + " " + v.Rule
			if _, ok := allowedOutputs[key]; ok {
				used[key] = true
				continue
			}
			t.Errorf("%s (every output goes through internal/report; see outputs_test.go)", v)
		}
	}
	if checked < 5 {
		t.Fatalf("only %d shell packages checked", checked)
	}
	for key := range allowedOutputs {
		if !used[key] {
			t.Errorf("allowedOutputs names %q, which no longer breaks the rule: remove it", key)
		}
	}
}

// The checker finds each kind of breach in a fixture shell, and nothing
// in the same output written through the report layer.
func TestOutputCheckerFindsViolations(t *testing.T) {
	for _, tc := range []struct {
		dir  string
		want []string
	}{
		{"bad", []string{
			"cmd/fixture/bad.go:12: document-type",
			"cmd/fixture/bad.go:18: json-encode",
			"cmd/fixture/bad.go:24: rule-text",
			"cmd/fixture/bad.go:29: rule-text",
			"cmd/fixture/bad.go:34: rule-text",
		}},
		{"good", nil},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			dir := filepath.Join("testdata", "outputs", tc.dir)
			matches, err := filepath.Glob(filepath.Join(dir, "*.go.txt"))
			if err != nil || len(matches) == 0 {
				t.Fatalf("no fixture in %s: %v", dir, err)
			}
			var names []string
			for _, m := range matches {
				names = append(names, filepath.Base(m))
			}
			files, fset := parseDir(t, dir, names)
			renamed := map[string]*ast.File{}
			for n, f := range files {
				renamed[strings.TrimSuffix(n, ".txt")] = f
			}
			var got []string
			for _, v := range checkOutputs("cmd/fixture", renamed, fset) {
				got = append(got, fmt.Sprintf("%s:%d: %s", v.File, v.Line, v.Rule))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
