package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden compares got with the golden file, or rewrites it with -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./pkg/rules -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test ./pkg/rules -update rewrites it)\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func ruleFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() && IsRuleFile(e.Name()) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	if len(out) == 0 {
		t.Fatalf("no rule files in %s", dir)
	}
	return out
}

func diagText(ds Diagnostics) string {
	var b strings.Builder
	for _, s := range ds.Strings() {
		b.WriteString(s)
		b.WriteByte('\n')
	}
	return b.String()
}

// TestBadFiles: every file in testdata/bad has one defect (many-errors.yaml
// several); each must be refused with the golden diagnostics, every one of
// them located.
func TestBadFiles(t *testing.T) {
	files := ruleFiles(t, "testdata/bad")
	if len(files) < 25 {
		t.Fatalf("only %d bad files", len(files))
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, diags := Parse(filepath.Base(path), data)
			if f != nil {
				t.Errorf("Parse returned a file for invalid input")
			}
			if !diags.HasErrors() {
				t.Fatalf("no error diagnostics: %v", diags.Strings())
			}
			for _, d := range diags {
				if d.Line < 1 || d.Col < 1 || d.File != filepath.Base(path) || d.Msg == "" {
					t.Errorf("diagnostic not located: %+v", d)
				}
			}
			golden(t, path+".golden", diagText(diags))
		})
	}
}

// TestWarnFiles: valid files that draw warnings only.
func TestWarnFiles(t *testing.T) {
	for _, path := range ruleFiles(t, "testdata/warn") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, diags := Parse(filepath.Base(path), data)
			if f == nil || diags.HasErrors() {
				t.Fatalf("want a valid file, got %v", diags.Strings())
			}
			if len(diags) == 0 {
				t.Fatal("want warnings, got none")
			}
			golden(t, path+".golden", diagText(diags))
		})
	}
}

// fakeID makes a stable group id from a reference.
func fakeID(g GroupRef) string {
	sum := sha256.Sum256([]byte(g.String()))
	return "sg-" + hex.EncodeToString(sum[:])[:17]
}

func fakeResolver(g GroupRef) []string {
	if g.IsID() {
		return []string{g.ID}
	}
	return []string{fakeID(g)}
}

// TestExamples: every file in examples/ parses without errors or
// warnings other than the expected world-open ones, round-trips through
// MarshalYAML, expands without errors, and the expansion matches its golden
// file in testdata/expand.
func TestExamples(t *testing.T) {
	for _, path := range ruleFiles(t, "../../examples") {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, diags := Parse(name, data)
			if f == nil || diags.HasErrors() {
				t.Fatalf("Parse: %v", diags.Strings())
			}
			if len(f.Rules) == 0 {
				t.Fatal("no rules")
			}
			perms, excl, ediags := Expand(f, "examples/"+name, fakeResolver)
			if ediags.HasErrors() {
				t.Fatalf("Expand: %v", ediags.Strings())
			}
			var b strings.Builder
			for _, w := range diags {
				fmt.Fprintf(&b, "# %s\n", w)
			}
			for _, p := range perms {
				fmt.Fprintf(&b, "%s %q %s\n", p.Key, p.Description, p.Owner)
			}
			for _, g := range excl {
				fmt.Fprintf(&b, "exclusive %s\n", g)
			}
			golden(t, filepath.Join("testdata/expand", strings.TrimSuffix(name, filepath.Ext(name))+".golden"), b.String())
		})
	}
}
