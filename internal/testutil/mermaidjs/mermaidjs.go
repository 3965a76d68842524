package mermaidjs

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Versions of the npm packages installed (make mermaid does the same).
const (
	MermaidVersion = "11.17.2"
	JSDOMVersion   = "29.1.1"
)

//go:embed parse.mjs
var script []byte

// Result is what mermaid.parse said of one diagram: its type and the
// configuration its directives set (%%{init: …}%%), or the parse error.
type Result struct {
	Type   string         `json:"type"`
	Config map[string]any `json:"config"`
	Err    string         `json:"error"`
}

// Dir is where the packages are installed: SGRULES_MERMAID_DIR, else
// build/mermaid at the top of the module.
func Dir(tb testing.TB) string {
	tb.Helper()
	if d := os.Getenv("SGRULES_MERMAID_DIR"); d != "" {
		return d
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	mod := strings.TrimSpace(string(out))
	if err != nil || mod == "" || mod == os.DevNull {
		tb.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Join(filepath.Dir(mod), "build", "mermaid")
}

// unavailable skips the test, or fails it in CI (CI set), where the
// rendering check must run.
func unavailable(tb testing.TB, msg string) {
	tb.Helper()
	if os.Getenv("CI") != "" {
		tb.Fatal(msg + " (CI must check the Mermaid output)")
	}
	tb.Skip(msg)
}

// install puts mermaid and jsdom under dir with npm (through the
// configured registry), once: into a fresh directory renamed into place,
// so that concurrent test binaries do not see half an install.
func install(tb testing.TB, dir string) {
	tb.Helper()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "mermaid", "package.json")); err == nil {
		return
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		unavailable(tb, "npm is not installed: cannot install the mermaid package to check the Mermaid output (make mermaid)")
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		tb.Fatal(err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "mermaid-install-")
	if err != nil {
		tb.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command(npm, "install", "--no-audit", "--no-fund", "--prefix", tmp, "mermaid@"+MermaidVersion, "jsdom@"+JSDOMVersion)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		unavailable(tb, "npm install mermaid jsdom failed (no registry?): "+err.Error()+"\n"+out.String())
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, statErr := os.Stat(filepath.Join(dir, "node_modules", "mermaid", "package.json")); statErr != nil {
			tb.Fatalf("install mermaid into %s: %v", dir, err)
		}
	}
}

// Parse parses each diagram with mermaid.parse under node (one node
// process for all), installing the packages first if needed. Without node
// (or npm, to install) the test is skipped, except in CI.
func Parse(tb testing.TB, diagrams ...string) []Result {
	tb.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		unavailable(tb, "node is not installed: the Mermaid output is not checked with the mermaid package")
	}
	dir := Dir(tb)
	install(tb, dir)
	path := filepath.Join(dir, "parse.mjs")
	if old, err := os.ReadFile(path); err != nil || !bytes.Equal(old, script) {
		if err := os.WriteFile(path, script, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	in, err := json.Marshal(diagrams)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(node, path)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("node parse.mjs: %v\n%s", err, stderr.String())
	}
	var res []Result
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(diagrams) {
		tb.Fatalf("node parse.mjs: %v: %s\n%s", err, out, stderr.String())
	}
	return res
}
