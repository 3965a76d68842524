package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"no args", nil, 2, "", "Usage: sgrules COMMAND"},
		{"help", []string{"--help"}, 0, "validate   check rule files", ""},
		{"help command", []string{"help", "validate"}, 0, "sgrules validate examples/", ""},
		{"help unknown", []string{"help", "nope"}, 2, "", `unknown command "nope"`},
		{"unknown", []string{"frobnicate"}, 2, "", `sgrules: unknown command "frobnicate"`},
		{"validate --help", []string{"validate", "--help"}, 0, "Examples:\n  sgrules validate examples/", ""},
		{"validate -h flags", []string{"validate", "-h"}, 0, "\n  --output string", ""},
		{"version --help", []string{"version", "--help"}, 0, "Usage: sgrules version", ""},
		{"validate no path", []string{"validate"}, 2, "", "missing PATH"},
		{"validate bad flag", []string{"validate", "--nope", "x"}, 2, "", "sgrules validate: flag provided but not defined: --nope (run 'sgrules validate --help' for the flags)\n"},
		{"plan bad value", []string{"plan", "--max-revoke", "x", "d"}, 2, "", "sgrules plan: invalid value \"x\" for flag --max-revoke: parse error (run 'sgrules plan --help' for the flags)\n"},
		{"validate bad output", []string{"validate", "--output", "xml", "../../examples"}, 2, "", "--output must be text, json or github"},
		{"validate missing file", []string{"validate", "no-such.yaml"}, 2, "", "no-such.yaml: no such file"},
		{"validate not a rule file", []string{"validate", "main.go"}, 2, "", "main.go: not a rule file"},
		{"validate dir without rule files", []string{"validate", "."}, 2, "", ".: no .yaml, .yml or .json files"},
		{"version extra arg", []string{"version", "x"}, 2, "", "takes no arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCmd(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errs)
			}
			if !strings.Contains(out, tc.stdout) {
				t.Errorf("stdout %q does not contain %q", out, tc.stdout)
			}
			if !strings.Contains(errs, tc.stderr) {
				t.Errorf("stderr %q does not contain %q", errs, tc.stderr)
			}
			if tc.stdout == "" && out != "" {
				t.Errorf("unexpected stdout %q", out)
			}
			// A usage error is one line, not the whole help.
			if code == exitUsage && tc.args != nil && strings.Contains(errs, "Examples:") {
				t.Errorf("a usage error printed the whole help:\n%s", errs)
			}
		})
	}
}

func TestValidateExamples(t *testing.T) {
	code, out, errs := runCmd(t, "validate", "../../examples/")
	if code != 0 || errs != "" {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	// Every rule file under examples/, except the folders examples/.sgrulesignore
	// names (a CI workflow, a CloudFormation stack and a policy are YAML, not rule files).
	n := 0
	err := filepath.WalkDir("../../examples", func(p string, d fs.DirEntry, err error) error {
		if d.IsDir() && (d.Name() == "ci" || d.Name() == "cloudformation" || d.Name() == "policy") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".json") {
			n++
		}
		return err
	})
	if err != nil || n < 9 {
		t.Fatalf("walk examples: %d files, %v", n, err)
	}
	if want := itoa(n) + " files checked, 0 invalid: 0 errors, 0 warnings\n"; out != want {
		t.Errorf("output %q, want %d files and %q", out, n, want)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestValidateBadFiles: each bad file exits 1 and names the file and a line.
func TestValidateBadFiles(t *testing.T) {
	files, _ := filepath.Glob("../../pkg/rules/testdata/bad/*")
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, ".golden") {
			continue
		}
		n++
		t.Run(filepath.Base(f), func(t *testing.T) {
			code, out, _ := runCmd(t, "validate", f)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(f) + `:[1-9][0-9]*:[1-9][0-9]*: `)
			if !re.MatchString(out) {
				t.Errorf("no %s:LINE:COL: diagnostic in\n%s", f, out)
			}
		})
	}
	if n < 25 {
		t.Fatalf("only %d bad files", n)
	}
}

func TestValidateDirectoryMixed(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	good := "rules:\n  ssh:\n    securityGroup: sg-01234567\n    type: ingress\n    protocol: tcp\n    fromPort: 22\n    toPort: 22\n    cidrBlocks: [0.0.0.0/0]\n"
	write("a/good.yml", good)
	write("b/bad.json", `{"rules": {"x": {"type": "sideways"}}}`)
	write("notes.txt", "not a rule file")
	write(".git/ignored.yaml", "garbage: [")
	write("big.yaml", "#"+strings.Repeat("x", 1<<20))

	code, out, _ := runCmd(t, "validate", dir)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{
		filepath.Join(dir, "a/good.yml") + ":8:18: warning: ssh: cidrBlocks[0]: tcp 22 is open to the world",
		filepath.Join(dir, "b/bad.json") + ":1:26: x: type: want ingress or egress, got \"sideways\"",
		filepath.Join(dir, "big.yaml") + ":1:1: file is 1048577 bytes, over the limit",
		"3 files checked, 2 invalid",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "ignored.yaml") || strings.Contains(out, "notes.txt") {
		t.Errorf("hidden dir or non-rule file checked:\n%s", out)
	}

	// Warnings alone: exit 0.
	if code, out, _ := runCmd(t, "validate", filepath.Join(dir, "a")); code != 0 || !strings.Contains(out, "1 warning") {
		t.Errorf("warnings only: exit %d\n%s", code, out)
	}
}

func TestValidateJSONOutput(t *testing.T) {
	code, out, _ := runCmd(t, "validate", "--output", "json", "../../pkg/rules/testdata/bad/many-errors.yaml", "../../examples/web.yaml")
	if code != 1 {
		t.Errorf("exit %d", code)
	}
	var ds []map[string]any
	if err := json.Unmarshal([]byte(out), &ds); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(ds) != 6 {
		t.Fatalf("got %d diagnostics", len(ds))
	}
	want := map[string]any{"file": "../../pkg/rules/testdata/bad/many-errors.yaml", "line": 3.0, "col": 20.0, "rule": "a",
		"field": "securityGroup", "severity": "error"}
	for k, v := range want {
		if ds[0][k] != v {
			t.Errorf("%s = %v, want %v", k, ds[0][k], v)
		}
	}
	if msg, _ := ds[0]["message"].(string); !strings.HasPrefix(msg, `securityGroup: "sg-1" is not a group id`) {
		t.Errorf("message %q", msg)
	}
	// Valid input: an empty array, exit 0.
	code, out, _ = runCmd(t, "validate", "--output=json", "../../examples")
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("exit %d, output %q", code, out)
	}
}

func TestValidateGitHubOutput(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a,b.yaml")
	src := "rules:\n  r1:\n    securityGroup: sg-01234567\n    type: ingress\n    protocol: tcp\n    fromPort: 22\n    toPort: 22\n    cidrBlocks: [10.0.0.1/8]\n" +
		"  r2:\n    securityGroup: sg-01234567\n    type: ingress\n    protocol: tcp\n    fromPort: 22\n    toPort: 22\n    cidrBlocks: [0.0.0.0/0]\n"
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCmd(t, "validate", "--output", "github", p)
	if code != 1 {
		t.Errorf("exit %d", code)
	}
	file := strings.ReplaceAll(strings.ReplaceAll(p, ":", "%3A"), ",", "%2C")
	want := "::error file=" + file + ",line=8,col=18,title=r1::cidrBlocks[0]: 10.0.0.1/8 has host bits set: did you mean 10.0.0.0/8?\n"
	if !strings.Contains(out, want) {
		t.Errorf("output lacks\n%s\ngot\n%s", want, out)
	}
	if !strings.Contains(out, "::warning file="+file+",line=15,col=18,title=r2::cidrBlocks[0]: tcp 22 is open to the world") {
		t.Errorf("no warning annotation in\n%s", out)
	}
	if strings.Count(out, "\n") != 2 {
		t.Errorf("want 2 lines, got\n%s", out)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCmd(t, "version")
	if code != 0 || !strings.HasPrefix(out, "sgrules ") || len(strings.TrimSpace(out)) <= len("sgrules") {
		t.Errorf("exit %d, output %q", code, out)
	}
	old := version
	version = "v9.8.7"
	defer func() { version = old }()
	if _, out, _ := runCmd(t, "version"); out != "sgrules v9.8.7\n" {
		t.Errorf("output %q", out)
	}
}

// Every command's --help (and -h) prints its usage once, to stdout, and
// exits 0; stderr stays empty.
func TestHelpPrintedOnce(t *testing.T) {
	for name := range commands {
		for _, flag := range []string{"--help", "-h"} {
			t.Run(name+flag, func(t *testing.T) {
				code, out, errs := runCmd(t, name, flag)
				if code != 0 {
					t.Errorf("exit %d, want 0", code)
				}
				if errs != "" {
					t.Errorf("stderr not empty:\n%s", errs)
				}
				if n := strings.Count(out, "Usage: sgrules "+name); n != 1 {
					t.Errorf("stdout has the usage %d times:\n%s", n, out)
				}
			})
		}
	}
}

// plan --detailed-exitcode follows terraform: 0 no changes, 2 changes, 1
// every error, usage errors included (they are 2 without it).
func TestDetailedExitcodeUsageErrorIsOne(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"plan", "--detailed-exitcode", "--nope", "d"}, exitFail},
		{[]string{"plan", "--nope", "--detailed-exitcode", "d"}, exitFail},
		{[]string{"plan", "-detailed-exitcode", "--output", "xml", "d"}, exitFail},
		{[]string{"plan", "--detailed-exitcode=true", "a", "b"}, exitFail},
		{[]string{"plan", "--detailed-exitcode=false", "--nope", "d"}, exitUsage},
		{[]string{"plan", "--nope", "d"}, exitUsage},
		{[]string{"plan", "--", "--detailed-exitcode", "--nope"}, exitUsage},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, _, errs := runCmd(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d (%s)", code, tc.code, errs)
			}
		})
	}
	if !detailedExitcode([]string{"--detailed-exitcode"}) || detailedExitcode([]string{"--detailed-exitcodes"}) || detailedExitcode([]string{"detailed-exitcode"}) {
		t.Error("detailedExitcode misreads its flag")
	}
}
