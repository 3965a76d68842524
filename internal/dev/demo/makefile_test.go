package demo

import (
	"os/exec"
	"strings"
	"testing"
)

// make demo says what it is doing before each step that can take minutes
// on a first run: installing the emulator and compiling (issue 23.6).
func TestMakeDemoSaysWhatItDoes(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	// An empty BIN: the emulator is to be installed, as on a fresh clone.
	cmd := exec.Command("make", "-n", "demo", "BIN="+t.TempDir())
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n demo: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for _, slow := range []string{"go install", "go run"} {
		i := indexOf(lines, slow)
		if i < 0 {
			t.Fatalf("make -n demo runs no %q:\n%s", slow, out)
		}
		if i == 0 || !strings.HasPrefix(lines[i-1], "echo ") {
			t.Errorf("make demo runs %q without saying so first:\n%s", slow, out)
		}
	}
}

func indexOf(lines []string, s string) int {
	for i, l := range lines {
		if !strings.HasPrefix(l, "echo ") && strings.Contains(l, s) {
			return i
		}
	}
	return -1
}
