package main

import (
	"strings"
	"testing"
)

// The demo itself is tested end to end in internal/dev/demo; these tests cover
// the command's flags and its message when moto_server is missing.
func TestDemoCommand(t *testing.T) {
	tests := []struct {
		name   string
		path   string // PATH, when set
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{name: "help", args: []string{"demo", "--help"}, code: 0, stdout: "Usage: sgrules demo [flags]"},
		{name: "help flags", args: []string{"demo", "-h"}, code: 0, stdout: "-keep"},
		{name: "listed", args: []string{"--help"}, code: 0, stdout: "demo       run sgrules end to end"},
		{name: "extra arg", args: []string{"demo", "now"}, code: 2, stderr: "takes no arguments"},
		{name: "bad flag", args: []string{"demo", "--nope"}, code: 2, stderr: "flag provided but not defined: --nope"},
		{name: "no moto", path: "empty", args: []string{"demo"}, code: 1,
			stderr: `sgrules demo: moto_server not found: pip install "moto[server]"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.path != "" {
				t.Setenv("PATH", t.TempDir())
			}
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
		})
	}
}
