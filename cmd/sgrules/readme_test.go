package main

import (
	"bufio"
	"os"
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
