package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sgrules/sgrules/internal/adapters/ignorefile"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/pkg/policy"
	"github.com/sgrules/sgrules/pkg/rules"
)

func init() {
	register(&command{
		name:    "validate",
		summary: "check rule files without AWS",
		usage: `Usage: sgrules validate [--output text|json|github] [--policy FILE [--online]] PATH...

Parses and validates rule files. A PATH is a file or a directory, searched
recursively for .yaml, .yml and .json files (directories whose names start
with "." are skipped, and so are the paths a .sgrulesignore at the top of
the directory names). Every problem of every file is printed, as
FILE:LINE:COL: RULE: message. Group references by name or tags are not
resolved: that needs AWS (see plan, and --online).

With --policy, every rule file is also checked against a policy file
(docs/policy.md): each violation is printed as
FILE:LINE:COL: RULE: violates policy ID: MESSAGE, and the file counts as
invalid. Tenant prefixes match the path below the directory given (or a
file's path as given). Clauses that need facts about the groups (their tags)
are listed as skipped, unless --online reads them from EC2 (read-only
DescribeSecurityGroups calls, batched; group references are then resolved
as plan resolves them). --online also checks that the region each file
names exists (EC2 DescribeRegions, for a name the SDK does not know):
offline any region name is accepted, with a warning when it is one edit
away from a known region.

Exit status: 0 when every file is valid (warnings and skipped checks
allowed), 1 when any file is invalid, violates the policy, or the policy is
invalid, 2 on a usage error (bad flag, missing PATH, no rule files).

Examples:
  sgrules validate examples/
  sgrules validate rules/web.yaml rules/db.json
  sgrules validate --output json rules/ | jq '.[] | select(.severity == "error")'
  sgrules validate --output github rules/   # annotations in GitHub Actions
  sgrules validate --policy examples/policy/sgrules.yaml examples/
  sgrules validate --policy policy/sgrules.yaml --online --region eu-west-1 rules/
`,
		run: runValidate,
	})
}

func runValidate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(commands["validate"], stderr)
	output := fs.String("output", "text", "output format: text, json or github (GitHub Actions annotations)")
	policyFile := fs.String("policy", "", "check the rule files against this policy file (docs/policy.md)")
	online := fs.Bool("online", false, "read group facts from EC2 (read-only) to resolve group references and decide the policy clauses that need them")
	var w wiring
	w.addAWSFlags(fs)
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
		fmt.Fprintln(stderr, "sgrules validate: missing PATH (a rule file or a directory) (run 'sgrules validate --help' for the usage)")
		return exitUsage
	}
	files, err := findRuleFiles(fs.Args())
	if err != nil {
		fmt.Fprintf(stderr, "sgrules validate: %v\n", err)
		return exitUsage
	}
	var (
		all      []finding
		pol      *policy.Policy
		polValid = true
	)
	if *policyFile != "" {
		var diags rules.Diagnostics
		pol, diags = loadPolicy(*policyFile)
		polValid = pol != nil
		for _, d := range diags {
			all = append(all, finding{Diagnostic: d})
		}
		files = withoutFile(files, *policyFile)
	}
	var parsed []parsedFile
	invalid := 0
	for _, rf := range files {
		f, diags := validateFile(rf.path)
		if diags.HasErrors() {
			invalid++
		}
		for _, d := range diags {
			all = append(all, finding{Diagnostic: d})
		}
		if f != nil {
			parsed = append(parsed, parsedFile{ruleFile: rf, file: f})
		}
	}
	if pol != nil || *online {
		var facts *onlineFacts
		if *online {
			stop := progress(stderr, "reading security groups")
			facts, err = readOnlineFacts(ctx, &w, parsed, tenantAccounts(pol))
			stop()
			if err != nil {
				fmt.Fprintf(stderr, "sgrules validate: --online: %v\n", err)
				return exitFail
			}
			found, err := checkRegionsOnline(ctx, &w, parsed)
			if err != nil {
				fmt.Fprintf(stderr, "sgrules validate: --online: %v\n", err)
				return exitFail
			}
			invalid += len(found)
			all = append(all, found...)
		}
		for _, pf := range parsed {
			found := checkPolicy(pol, pf, facts)
			for _, f := range found {
				if f.Severity == rules.SeverityError {
					invalid++
					break
				}
			}
			all = append(all, found...)
		}
	}
	switch *output {
	case "json":
		writeJSON(stdout, all)
	case "github":
		writeGitHub(stdout, all)
	default:
		errs, warns, violations, skipped := 0, 0, 0, 0
		for _, d := range all {
			fmt.Fprintln(stdout, d.String())
			switch {
			case d.policy != "" && d.Severity == rules.SeverityError:
				violations++
			case d.Severity == policy.SeveritySkipped:
				skipped++
			case d.Severity == rules.SeverityError:
				errs++
			default:
				warns++
			}
		}
		fmt.Fprintf(stdout, "%d %s checked, %d invalid: %d %s, %d %s",
			len(files), plural(len(files), "file"), invalid, errs, plural(errs, "error"), warns, plural(warns, "warning"))
		if pol != nil {
			fmt.Fprintf(stdout, ", %d policy %s, %d %s skipped", violations, plural(violations, "violation"), skipped, plural(skipped, "check"))
			if skipped > 0 && !*online {
				fmt.Fprint(stdout, " (skipped checks need group facts from AWS: add --online)")
			}
		}
		fmt.Fprintln(stdout)
	}
	if invalid > 0 || !polValid {
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

// ruleFile is a rule file found by findRuleFiles: its path, and its path
// relative to the directory argument it was found in (the path as given
// for a file argument), slash-separated, for tenant prefixes.
type ruleFile struct {
	path, rel string
}

// findRuleFiles expands the arguments into rule files, sorted within each
// directory, in argument order, without repeats.
func findRuleFiles(args []string) ([]ruleFile, error) {
	var out []ruleFile
	seen := map[string]bool{}
	add := func(p, rel string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, ruleFile{path: p, rel: filepath.ToSlash(rel)})
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
			add(arg, filepath.Clean(arg))
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
			rel, _ := filepath.Rel(arg, p)
			add(p, rel)
		}
	}
	return out, nil
}

// validateFile parses one file; files over the size limit are refused
// without being read.
func validateFile(path string) (*rules.File, rules.Diagnostics) {
	data, diags := readLimited(path)
	if data == nil {
		return nil, diags
	}
	return rules.Parse(path, data)
}

// readLimited reads a file of at most rules.MaxFileSize bytes; otherwise
// it returns a located error.
func readLimited(path string) ([]byte, rules.Diagnostics) {
	fail := func(msg string) ([]byte, rules.Diagnostics) {
		return nil, rules.Diagnostics{{File: path, Line: 1, Col: 1, Severity: rules.SeverityError, Msg: msg}}
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
	if data == nil {
		data = []byte{}
	}
	return data, nil
}

func writeJSON(w io.Writer, ds []finding) {
	out := make([]report.DiagnosticDoc, len(ds))
	for i, d := range ds {
		out[i] = report.DiagnosticDoc{File: d.File, Line: d.Line, Col: d.Col, Rule: d.Rule, Field: d.Field, Severity: string(d.Severity), Message: d.Msg, Policy: d.policy}
	}
	_ = report.JSON(w, out)
}

// writeGitHub prints GitHub Actions workflow commands, escaped as the
// runner expects.
func writeGitHub(w io.Writer, ds []finding) {
	for _, d := range ds {
		title := d.Rule
		if title == "" {
			title = "sgrules"
		}
		fmt.Fprintf(w, "::%s file=%s,line=%d,col=%d,title=%s::%s\n",
			d.Severity, report.WorkflowProperty(d.File), d.Line, d.Col, report.WorkflowProperty(title), report.WorkflowData(d.Msg))
	}
}
