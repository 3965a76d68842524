package main

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var flagRE = regexp.MustCompile(`(^|\s)(--?[a-z][a-z0-9-]*)`)

// Every sgrules command line shown in the README and the CLI reference
// names a command that exists, and every flag it uses is one that command
// accepts (its --help lists it). What the commands do is tested elsewhere,
// against moto.
func TestDocumentedCommandLines(t *testing.T) {
	checked := 0
	for _, doc := range []string{"../../README.md", "../../docs/cli.md"} {
		f, err := os.Open(doc)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			_, rest, ok := strings.Cut(line, "sgrules ")
			if !ok || !(strings.HasPrefix(line, "bin/sgrules ") || strings.HasPrefix(line, "sgrules ") || strings.HasPrefix(line, "$ sgrules ")) {
				continue
			}
			rest, _, _ = strings.Cut(rest, "#") // a trailing comment
			rest, _, _ = strings.Cut(rest, ">") // a redirection
			rest, _, _ = strings.Cut(rest, "|") // a pipe
			fields := strings.Fields(rest)
			if len(fields) == 0 || strings.HasPrefix(fields[0], "-") {
				continue // "sgrules --help" and the like
			}
			name := fields[0]
			if name == "COMMAND" || !regexp.MustCompile(`^[a-z]+$`).MatchString(name) ||
				strings.HasSuffix(line, ":") {
				continue // a synopsis placeholder, or a line of sample output
			}
			if _, ok := commands[name]; !ok {
				t.Errorf("%s:%d: %q: no command %q", doc, n, line, name)
				continue
			}
			_, help, _ := runCmd(t, name, "--help")
			for _, m := range flagRE.FindAllStringSubmatch(strings.Join(fields[1:], " "), -1) {
				flag, _, _ := strings.Cut(strings.TrimLeft(m[2], "-"), "=")
				if !strings.Contains(help, "-"+flag) {
					t.Errorf("%s:%d: %q: %s has no flag -%s", doc, n, line, name, flag)
				}
			}
			checked++
		}
		f.Close()
	}
	if checked < 8 {
		t.Fatalf("checked only %d command lines: the docs changed shape or the parser is wrong", checked)
	}
	t.Logf("%d documented command lines checked", checked)
}

var linkRE = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// Every relative link in the README and docs/*.md names a file or folder
// that exists, resolved from the document's folder as GitHub does.
func TestDocLinks(t *testing.T) {
	docs, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	docs = append(docs, "../../README.md")
	checked := 0
	for _, doc := range docs {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for n, line := range strings.Split(string(b), "\n") {
			for _, m := range linkRE.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") || strings.HasPrefix(target, "#") {
					continue
				}
				target, _, _ = strings.Cut(target, "#")
				if _, err := os.Stat(filepath.Join(filepath.Dir(doc), filepath.FromSlash(target))); err != nil {
					t.Errorf("%s:%d: link %q: %v", doc, n+1, m[1], err)
				}
				checked++
			}
		}
	}
	if checked < 10 {
		t.Fatalf("checked only %d links: is the pattern still finding them?", checked)
	}
	t.Logf("%d relative links checked in %d documents", checked, len(docs))
}

// docs/cli.md quotes examples/.sgrulesignore whole; the README names it.
func TestIgnoreFileDocumented(t *testing.T) {
	ignore, err := os.ReadFile("../../examples/.sgrulesignore")
	if err != nil {
		t.Fatal(err)
	}
	cli, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cli), "```\n"+string(ignore)+"```\n") {
		t.Errorf("docs/cli.md does not quote examples/.sgrulesignore as it is:\n%s", ignore)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), ".sgrulesignore") {
		t.Error("README.md does not mention .sgrulesignore")
	}
}
