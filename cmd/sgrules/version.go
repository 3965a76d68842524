package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
)

// version is set at build time with
// -ldflags "-X main.version=v1.2.3"; when empty it comes from the build
// information (module version, else the VCS revision).
var version = ""

func init() {
	register(&command{
		name:    "version",
		summary: "print the version",
		usage: `Usage: sgrules version

Prints the sgrules version: the one set at build time
(-ldflags "-X main.version=v1.2.3"), else the module version or VCS
revision recorded by the Go toolchain.

Example:
  sgrules version
`,
		run: runVersion,
	})
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(commands["version"], stderr)
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, "sgrules version: takes no arguments")
		return exitUsage
	}
	fmt.Fprintf(stdout, "sgrules %s\n", currentVersion())
	return exitOK
}

func currentVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := info.Main.Version
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "-dirty"
			}
		}
	}
	if (v == "" || v == "(devel)") && rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		return "devel-" + rev + modified
	}
	if v == "" {
		return "(devel)"
	}
	return v
}
