package rules

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse: Parse never panics, returns a File exactly when there are no
// errors, locates every diagnostic, and a File it returns survives
// MarshalYAML → Parse. Seeded from examples/ and testdata/bad; the corpus
// of found inputs lives in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"../../examples", "testdata/bad", "testdata/warn"} {
		paths, _ := filepath.Glob(filepath.Join(dir, "*"))
		for _, p := range paths {
			if !IsRuleFile(p) {
				continue
			}
			data, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(filepath.Base(p), data)
		}
	}
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		if strings.HasSuffix(strings.ToLower(name), ".json") {
			name = "f.json"
		} else {
			name = "f.yaml"
		}
		file, diags := Parse(name, data)
		if (file != nil) == diags.HasErrors() {
			t.Fatalf("file %v with errors %v", file != nil, diags.Strings())
		}
		for _, d := range diags {
			if d.Line < 1 || d.Col < 1 || d.Msg == "" || d.File != name {
				t.Fatalf("diagnostic not located: %+v", d)
			}
			if strings.Contains(d.Msg, "internal error") {
				t.Fatalf("panic: %s", d.Msg)
			}
		}
		if file == nil {
			return
		}
		out, err := MarshalYAML(file)
		if err != nil {
			t.Fatalf("MarshalYAML: %v", err)
		}
		again, diags := Parse("again.yaml", out)
		if again == nil || len(again.Rules) != len(file.Rules) {
			t.Fatalf("reparse: %v\n%s", diags.Strings(), out)
		}
		if _, _, d := Expand(file, "fuzz", fakeResolver); d.HasErrors() {
			t.Fatalf("Expand of a valid file: %v", d.Strings())
		}
	})
}
