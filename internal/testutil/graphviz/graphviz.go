package graphviz

import (
	"bytes"
	"encoding/binary"
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

// PNGSize renders a DOT text with "dot -Tpng" (at Graphviz's default 96
// dpi) and returns the picture's width and height in pixels. Without dot
// it skips, except in CI.
func PNGSize(tb testing.TB, dot []byte) (width, height int) {
	tb.Helper()
	path, err := exec.LookPath("dot")
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatal("Graphviz dot is not installed (apt-get install graphviz); CI must check the DOT output")
		}
		tb.Skip("Graphviz dot is not installed")
	}
	cmd := exec.Command(path, "-Tpng")
	cmd.Stdin = bytes.NewReader(dot)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		tb.Fatalf("dot -Tpng: %v\n%s", err, stderr.String())
	}
	// A PNG starts with an 8-byte signature and the IHDR chunk: length,
	// type, then width and height as big-endian 32-bit integers.
	if len(out) < 24 || !bytes.Equal(out[:8], []byte("\x89PNG\r\n\x1a\n")) || string(out[12:16]) != "IHDR" {
		tb.Fatalf("dot -Tpng wrote no PNG (%d bytes)", len(out))
	}
	return int(binary.BigEndian.Uint32(out[16:20])), int(binary.BigEndian.Uint32(out[20:24]))
}
