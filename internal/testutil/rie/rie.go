package rie

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sgrules/sgrules/internal/dev/lambdaemu"
)

// InvokePath is the emulator's invoke endpoint.
const InvokePath = lambdaemu.InvokePath

var builds = struct {
	sync.Mutex
	dir  string
	bins map[string]string
}{bins: map[string]string{}}

// Build compiles the main package pkg (a path relative to the module root,
// such as "./functions/reconcile") for Linux on the host architecture, as a
// Lambda provided.al2023 bootstrap (CGO_ENABLED=0, -tags lambda.norpc), and
// returns the binary's path. Each package is built once per test binary.
func Build(tb testing.TB, pkg string) string {
	tb.Helper()
	builds.Lock()
	defer builds.Unlock()
	if bin, ok := builds.bins[pkg]; ok {
		return bin
	}
	root, err := ModuleRoot()
	if err != nil {
		tb.Fatalf("rie: %v", err)
	}
	if builds.dir == "" {
		if builds.dir, err = os.MkdirTemp("", "sgrules-rie-"); err != nil {
			tb.Fatalf("rie: %v", err)
		}
	}
	dir := filepath.Join(builds.dir, strconv.Itoa(len(builds.bins)))
	if err := os.Mkdir(dir, 0o755); err != nil {
		tb.Fatalf("rie: %v", err)
	}
	start := time.Now()
	bins, err := lambdaemu.Build(tb.Context(), root, dir, pkg)
	if err != nil {
		tb.Fatalf("rie: %v", err)
	}
	bin := filepath.Join(dir, "bootstrap")
	if err := os.Rename(bins[pkg], bin); err != nil {
		tb.Fatalf("rie: %v", err)
	}
	tb.Logf("rie: built %s in %v", pkg, time.Since(start).Round(time.Millisecond))
	builds.bins[pkg] = bin
	return bin
}

// RemoveBuilds deletes the binaries Build made.
func RemoveBuilds() {
	builds.Lock()
	defer builds.Unlock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
	builds.dir, builds.bins = "", map[string]string{}
}

// Main runs the tests, removes the builds and exits: use it as TestMain.
func Main(m *testing.M) {
	code := m.Run()
	RemoveBuilds()
	os.Exit(code)
}

// ModuleRoot returns the directory of the go.mod enclosing the working
// directory (a test runs in its package directory).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// ErrNotInstalled means the emulator binary was not found.
var ErrNotInstalled = lambdaemu.ErrNotFound

// Path finds the emulator: $SGRULES_RIE, then bin/aws-lambda-rie at the
// module root, then aws-lambda-rie on PATH.
func Path() (string, error) {
	root, _ := ModuleRoot() // without a module root, that step is passed over
	return lambdaemu.Find("", root)
}

// Function is a bootstrap running under the emulator. The emulator serves
// one invocation at a time; Invoke serialises callers.
type Function struct {
	// URL is the emulator's base URL (http://127.0.0.1:PORT).
	URL string
	// Ready is the time from starting the emulator process to its invoke
	// endpoint accepting connections. The bootstrap itself starts on the
	// first invocation, as in Lambda (see InitDuration).
	Ready time.Duration

	fn *lambdaemu.Function
}

// Start runs bootstrap under the emulator with env as the function's
// environment (plus PATH and HOME of the test, so the emulator runs; the
// test's other variables are not passed on), waits until it accepts
// invocations and stops it when the test ends. The emulator and its
// runtime API listen on free 127.0.0.1 ports, so several may run at once.
func Start(tb testing.TB, bootstrap string, env []string) *Function {
	tb.Helper()
	rie, err := Path()
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("rie: %v", err)
		}
		tb.Skipf("rie: %v", err)
	}
	fn, err := lambdaemu.Start(tb.Context(), rie, bootstrap, env)
	if err != nil {
		tb.Fatalf("rie: %v", err)
	}
	tb.Cleanup(func() {
		fn.Stop()
		if tb.Failed() {
			tb.Logf("rie: emulator output:\n%s", fn.Logs())
		}
	})
	return &Function{URL: fn.URL, Ready: fn.Ready, fn: fn}
}

// Invoke posts payload to the invoke endpoint and returns the response body.
// A function error is still a 200 response, with a body
// {"errorMessage": ..., "errorType": ...}; any other status fails the test.
func (f *Function) Invoke(tb testing.TB, payload []byte) []byte {
	tb.Helper()
	status, body := f.InvokeStatus(tb, payload)
	if status != http.StatusOK {
		tb.Fatalf("rie: invoke: status %d: %s\n%s", status, body, f.fn.Logs())
	}
	return body
}

// InvokeStatus posts payload and returns the HTTP status and body without
// judging them: 200 for a result or a function error, 502 when the runtime
// failed (for example, exited during init).
func (f *Function) InvokeStatus(tb testing.TB, payload []byte) (int, []byte) {
	tb.Helper()
	status, body, err := f.fn.Invoke(tb.Context(), payload)
	if err != nil {
		tb.Fatalf("rie: invoke: %v\n%s", err, f.fn.Logs())
	}
	return status, body
}

// Logs returns everything the emulator and the function wrote so far.
func (f *Function) Logs() string { return f.fn.Logs() }

// WaitLogs returns the logs once they contain s, or what they hold after
// 10 s: output of a process that failed its init can reach the emulator's
// log after the invoke has been answered.
func (f *Function) WaitLogs(s string) string {
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(f.fn.Logs(), s) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	return f.fn.Logs()
}

// InitDuration returns the runtime init time the emulator reported (from
// starting the bootstrap process to its first request for work), once the
// function has been invoked.
func (f *Function) InitDuration() (time.Duration, bool) { return f.fn.InitDuration() }
