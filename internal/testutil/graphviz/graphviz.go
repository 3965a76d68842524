package graphviz

import (
	"bytes"
	"os"
	"os/exec"
	"testing"
)

// Check runs "dot -Tsvg" on a DOT text and fails the test on an error or
// a warning. Without dot it skips, except in CI (CI set), where .ci/run
// installs Graphviz: there a missing dot fails.
func Check(tb testing.TB, dot []byte) {
	tb.Helper()
	path, err := exec.LookPath("dot")
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatal("Graphviz dot is not installed (apt-get install graphviz); CI must check the DOT output")
		}
		tb.Skip("Graphviz dot is not installed")
	}
	cmd := exec.Command(path, "-Tsvg")
	cmd.Stdin = bytes.NewReader(dot)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 || !bytes.Contains(out, []byte("<svg")) {
		tb.Fatalf("dot -Tsvg: %v\n%s\n%s", err, stderr.String(), dot)
	}
}
