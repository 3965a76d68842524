// Package rie runs real Lambda bootstrap binaries under the AWS Lambda
// Runtime Interface Emulator (aws-lambda-rie), for tests.
//
//	bin := rie.Build(t, "./functions/reconcile")
//	fn := rie.Start(t, bin, []string{"STATE_TABLE=t", "AWS_REGION=eu-west-1"})
//	out := fn.Invoke(t, []byte(`{"Records":[]}`))
//
// The emulator is found through $SGRULES_RIE, then ./bin/aws-lambda-rie at
// the module root, then PATH ("make tools" installs it into ./bin). When it
// is absent the test fails under CI (CI set) and is skipped otherwise.
//
// Builds are cached per test binary in a temporary directory; a package
// that builds should remove it when its tests end:
//
//	func TestMain(m *testing.M) { rie.Main(m) }
package rie

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// InvokePath is the emulator's invoke endpoint.
const InvokePath = "/2015-03-31/functions/function/invocations"

// Timeouts of the harness.
const (
	readyTimeout  = 10 * time.Second
	invokeTimeout = 5 * time.Minute
	stopTimeout   = 3 * time.Second
)

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
	bin := filepath.Join(dir, "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", bin, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+runtime.GOARCH, "CGO_ENABLED=0")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("rie: build %s: %v\n%s", pkg, err, out)
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
var ErrNotInstalled = errors.New("aws-lambda-rie not found ($SGRULES_RIE, ./bin or PATH); run `make tools`")

// Path finds the emulator: $SGRULES_RIE, then bin/aws-lambda-rie at the
// module root, then aws-lambda-rie on PATH.
func Path() (string, error) {
	if p := os.Getenv("SGRULES_RIE"); p != "" {
		if isExecutable(p) {
			return p, nil
		}
	}
	if root, err := ModuleRoot(); err == nil {
		if p := filepath.Join(root, "bin", "aws-lambda-rie"); isExecutable(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath("aws-lambda-rie"); err == nil {
		return p, nil
	}
	return "", ErrNotInstalled
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
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

	cmd    *exec.Cmd
	logs   *syncBuffer
	mu     sync.Mutex
	client *http.Client
	// invoked counts the invocations answered with 200.
	invoked int
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
	addr, apiAddr := freeAddr(tb), freeAddr(tb)
	logs := &syncBuffer{}
	cmd := exec.Command(rie,
		"--runtime-interface-emulator-address", addr,
		"--runtime-api-address", apiAddr,
		bootstrap)
	cmd.Dir = filepath.Dir(bootstrap)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	cmd.Stdout, cmd.Stderr = logs, logs
	setProcessGroup(cmd)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		tb.Fatalf("rie: start %s: %v", rie, err)
	}
	f := &Function{
		URL:    "http://" + addr,
		cmd:    cmd,
		logs:   logs,
		client: &http.Client{Timeout: invokeTimeout},
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tb.Cleanup(func() {
		f.stop(exited)
		if tb.Failed() {
			tb.Logf("rie: emulator output:\n%s", logs.String())
		}
	})
	if err := waitListening(addr, exited); err != nil {
		tb.Fatalf("rie: %v\n%s", err, logs.String())
	}
	f.Ready = time.Since(start)
	return f
}

// waitListening polls addr until it accepts a connection, the process
// exits, or readyTimeout passes.
func waitListening(addr string, exited <-chan error) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("emulator exited before listening on %s: %v", addr, err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("emulator not listening on %s after %v", addr, readyTimeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// stop terminates the emulator (which kills the runtime), then its whole
// process group if it does not exit in time.
func (f *Function) stop(exited <-chan error) {
	terminate(f.cmd)
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		kill(f.cmd)
		<-exited
	}
	// The runtime may outlive an emulator killed hard; it is in the same
	// process group.
	kill(f.cmd)
}

// Invoke posts payload to the invoke endpoint and returns the response body.
// A function error is still a 200 response, with a body
// {"errorMessage": ..., "errorType": ...}; any other status fails the test.
func (f *Function) Invoke(tb testing.TB, payload []byte) []byte {
	tb.Helper()
	status, body, err := f.invoke(tb.Context(), payload)
	if err != nil {
		tb.Fatalf("rie: invoke: %v\n%s", err, f.logs.String())
	}
	if status != http.StatusOK {
		tb.Fatalf("rie: invoke: status %d: %s\n%s", status, body, f.logs.String())
	}
	return body
}

// InvokeStatus posts payload and returns the HTTP status and body without
// judging them: 200 for a result or a function error, 502 when the runtime
// failed (for example, exited during init).
func (f *Function) InvokeStatus(tb testing.TB, payload []byte) (int, []byte) {
	tb.Helper()
	status, body, err := f.invoke(tb.Context(), payload)
	if err != nil {
		tb.Fatalf("rie: invoke: %v\n%s", err, f.logs.String())
	}
	return status, body
}

func (f *Function) invoke(ctx context.Context, payload []byte) (int, []byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.URL+InvokePath, bytes.NewReader(payload))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode == http.StatusOK {
		f.invoked++
		f.awaitReports(f.invoked)
	}
	return resp.StatusCode, body, err
}

// awaitReports waits (briefly) until the emulator has printed the REPORT
// line of the n-th invocation. The emulator copies the function's output
// asynchronously and answers the invoke before it is all written; the
// REPORT line comes after everything the invocation logged, so once it is
// there Logs holds the invocation's whole output.
func (f *Function) awaitReports(n int) {
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(f.logs.String(), "REPORT RequestId:") < n && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
}

// Logs returns everything the emulator and the function wrote so far.
func (f *Function) Logs() string { return f.logs.String() }

var initReport = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)

// InitDuration returns the runtime init time the emulator reported (from
// starting the bootstrap process to its first request for work), once the
// function has been invoked.
func (f *Function) InitDuration() (time.Duration, bool) {
	m := initReport.FindStringSubmatch(f.logs.String())
	if m == nil {
		return 0, false
	}
	ms, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, false
	}
	return time.Duration(ms * float64(time.Millisecond)), true
}

func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("rie: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
