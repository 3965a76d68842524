package handler

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sgrules/sgrules/internal/lambda/trigger"
)

// triggerKinds reads every constant of type Kind declared in package
// trigger's source, so a new kind is tested without being listed here.
func triggerKinds(t *testing.T) []trigger.Kind {
	t.Helper()
	files, err := filepath.Glob("../trigger/*.go")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []trigger.Kind
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			var typ ast.Expr // carried over specs without type and value, as Go does
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				if vs.Type != nil || len(vs.Values) > 0 {
					typ = vs.Type
				}
				if id, ok := typ.(*ast.Ident); !ok || id.Name != "Kind" {
					continue
				}
				for i, n := range vs.Names {
					if i >= len(vs.Values) {
						t.Fatalf("%s: trigger.%s has no literal value to read", fset.Position(n.Pos()), n.Name)
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Fatalf("%s: trigger.%s is not a string literal", fset.Position(n.Pos()), n.Name)
					}
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					kinds = append(kinds, trigger.Kind(v))
				}
			}
		}
	}
	if len(kinds) == 0 {
		t.Fatal("found no trigger.Kind constants in ../trigger")
	}
	return kinds
}

func TestTriggerKindsReadsTheConstants(t *testing.T) {
	kinds := triggerKinds(t)
	for _, want := range []trigger.Kind{trigger.KindObjects, trigger.KindCloudFormation} {
		found := false
		for _, k := range kinds {
			found = found || k == want
		}
		if !found {
			t.Errorf("triggerKinds() = %q lacks %q", kinds, want)
		}
	}
}
