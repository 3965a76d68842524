package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sgrules/sgrules/internal/ignorefile"
	"github.com/sgrules/sgrules/pkg/rules"
)

func init() {
	register(&command{
		name:    "validate",
		summary: "check rule files without AWS",
		usage: `Usage: sgrules validate [--output text|json|github] PATH...

Parses and validates rule files. A PATH is a file or a directory, searched
recursively for .yaml, .yml and .json files (directories whose names start
with "." are skipped). Every problem of every file is printed, as
FILE:LINE:COL: RULE: message. Group references by name or tags are not
resolved: that needs AWS (see plan).

Exit status: 0 when every file is valid (warnings allowed), 1 when any file
is invalid, 2 on a usage error (bad flag, missing PATH, no rule files).

Examples:
  sgrules validate examples/
  sgrules validate rules/web.yaml rules/db.json
  sgrules validate --output json rules/ | jq '.[] | select(.severity == "error")'
  sgrules validate --output github rules/   # annotations in GitHub Actions
`,
		run: runValidate,
	})
}

func runValidate(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(commands["validate"], stderr)
	output := fs.String("output", "text", "output format: text, json or github (GitHub Actions annotations)")
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	switch *output {
	case "text", "json", "github":
	default:
		fmt.Fprintf(stderr, "sgrules validate: --output must be text, json or github, got %q\n", *output)
		return exitUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "sgrules validate: missing PATH (a rule file or a directory)")
		fs.Usage()
		return exitUsage
	}
	files, err := findRuleFiles(fs.Args())
	if err != nil {
		fmt.Fprintf(stderr, "sgrules validate: %v\n", err)
		return exitUsage
	}
	var all rules.Diagnostics
	invalid := 0
	for _, path := range files {
		diags := validateFile(path)
		if diags.HasErrors() {
			invalid++
		}
		all = append(all, diags...)
	}
	switch *output {
	case "json":
		writeJSON(stdout, all)
	case "github":
		writeGitHub(stdout, all)
	default:
		for _, d := range all {
			fmt.Fprintln(stdout, d.String())
		}
		errs, warns := 0, 0
		for _, d := range all {
			if d.Severity == rules.SeverityError {
				errs++
			} else {
				warns++
			}
		}
		fmt.Fprintf(stdout, "%d %s checked, %d invalid: %d %s, %d %s\n",
			len(files), plural(len(files), "file"), invalid, errs, plural(errs, "error"), warns, plural(warns, "warning"))
	}
	if invalid > 0 {
		return exitFail
	}
	return exitOK
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// findRuleFiles expands the arguments into rule files, sorted within each
// directory, in argument order, without repeats.
func findRuleFiles(args []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, arg := range args {
		info, err := os.Stat(arg)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			if !rules.IsRuleFile(arg) {
				return nil, fmt.Errorf("%s: not a rule file (want .yaml, .yml or .json)", arg)
			}
			add(arg)
			continue
		}
		var found []string
		ignore, err := ignorefile.Load(os.DirFS(arg))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", arg, err)
		}
		err = filepath.WalkDir(arg, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(arg, p)
			if d.IsDir() {
				if p != arg && (strings.HasPrefix(d.Name(), ".") || ignore.Match(filepath.ToSlash(rel), true)) {
					return filepath.SkipDir
				}
				return nil
			}
			if rules.IsRuleFile(p) && !ignore.Match(filepath.ToSlash(rel), false) {
				found = append(found, p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s: no .yaml, .yml or .json files", arg)
		}
		sort.Strings(found)
		for _, p := range found {
			add(p)
		}
	}
	return out, nil
}

// validateFile parses one file; files over the size limit are refused
// without being read.
func validateFile(path string) rules.Diagnostics {
	fail := func(msg string) rules.Diagnostics {
		return rules.Diagnostics{{File: path, Line: 1, Col: 1, Severity: rules.SeverityError, Msg: msg}}
	}
	info, err := os.Stat(path)
	if err != nil {
		return fail(err.Error())
	}
	if info.Size() > rules.MaxFileSize {
		return fail(fmt.Sprintf("file is %d bytes, over the limit of %d bytes", info.Size(), rules.MaxFileSize))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fail(err.Error())
	}
	_, diags := rules.Parse(path, data)
	return diags
}

// jsonDiagnostic is the --output json form: every field always present.
type jsonDiagnostic struct {
	File     string `json:"file"`
	Line     int    `json:"line"`
	Col      int    `json:"col"`
	Rule     string `json:"rule"`
	Field    string `json:"field"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
}

func writeJSON(w io.Writer, ds rules.Diagnostics) {
	out := make([]jsonDiagnostic, len(ds))
	for i, d := range ds {
		out[i] = jsonDiagnostic{d.File, d.Line, d.Col, d.Rule, d.Field, string(d.Severity), d.Msg}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
}

// writeGitHub prints GitHub Actions workflow commands, escaped as the
// runner expects.
func writeGitHub(w io.Writer, ds rules.Diagnostics) {
	data := strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A")
	prop := strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C")
	for _, d := range ds {
		title := d.Rule
		if title == "" {
			title = "sgrules"
		}
		fmt.Fprintf(w, "::%s file=%s,line=%d,col=%d,title=%s::%s\n",
			d.Severity, prop.Replace(d.File), d.Line, d.Col, prop.Replace(title), data.Replace(d.Msg))
	}
}
