package layout

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// go.mod and go.sum are as go mod tidy leaves them: a package the code
// imports is a direct requirement, not "// indirect" (issue 23.6).
func TestModuleIsTidy(t *testing.T) {
	cmd := exec.Command("go", "mod", "tidy", "-diff")
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=mod")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err == nil {
		return
	}
	if strings.Contains(errb.String(), "GOPROXY=off") {
		// tidy needs a module that is not in the module cache: .ci/run,
		// online, checks it.
		t.Skipf("go mod tidy -diff needs the network: %s", firstLine(errb.String()))
	}
	t.Errorf("go mod tidy would change go.mod or go.sum (run go mod tidy): %v\n%s%s", err, out.String(), errb.String())
}

// CI fails when go mod tidy would change go.mod or go.sum, before the tests.
func TestCIChecksTidy(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	tidy, test := -1, -1
	for i, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "go mod tidy -diff" && tidy < 0:
			tidy = i
		case strings.HasPrefix(l, "make test") && test < 0:
			test = i
		}
	}
	if tidy < 0 || test < 0 || tidy > test {
		t.Errorf(".ci/run: want a line \"go mod tidy -diff\" before \"make test\" (tidy at line %d, make test at line %d)", tidy+1, test+1)
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
