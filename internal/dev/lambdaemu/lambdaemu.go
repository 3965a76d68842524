package lambdaemu

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
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// InvokePath is the emulator's invoke endpoint.
const InvokePath = "/2015-03-31/functions/function/invocations"

// Defaults of the Start options, and the bounds of Stop and of the wait for
// an invocation's REPORT line.
const (
	DefaultReadyTimeout  = 10 * time.Second
	DefaultInvokeTimeout = 5 * time.Minute
	stopTimeout          = 3 * time.Second
	reportTimeout        = 5 * time.Second
)

// ErrNotFound means the emulator binary was not found.
var ErrNotFound = errors.New("aws-lambda-rie (the Lambda Runtime Interface Emulator) not found in $SGRULES_RIE, ./bin or PATH: run `make tools`")

// Find returns the emulator binary: explicit if set (an error if it is not
// an executable file), else $SGRULES_RIE if it is executable, else
// ROOT/bin/aws-lambda-rie (when root is set), else aws-lambda-rie on PATH,
// else ErrNotFound.
func Find(explicit, root string) (string, error) {
	if explicit != "" {
		if !isExecutable(explicit) {
			return "", fmt.Errorf("aws-lambda-rie %s: not an executable file", explicit)
		}
		return explicit, nil
	}
	if p := os.Getenv("SGRULES_RIE"); p != "" && isExecutable(p) {
		return p, nil
	}
	if root != "" {
		if p := filepath.Join(root, "bin", "aws-lambda-rie"); isExecutable(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath("aws-lambda-rie"); err == nil {
		return p, nil
	}
	return "", ErrNotFound
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Build compiles the main packages pkgs (paths relative to root, the module
// root, such as "./functions/reconcile") for Linux on the host
// architecture, as Lambda provided.al2023 bootstraps (CGO_ENABLED=0, -tags
// lambda.norpc), with one go build, into dir. It returns each package's
// binary, dir/<last element of the package path>, keyed by pkg as given.
// Cancelling ctx kills the whole build (go and the compilers it runs).
func Build(ctx context.Context, root, dir string, pkgs ...string) (map[string]string, error) {
	if len(pkgs) == 0 {
		return nil, errors.New("build lambda functions: no packages")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, errors.New("go not found on PATH: the Lambda functions are built from source (install Go 1.26+)")
	}
	args := append([]string{"build", "-tags", "lambda.norpc", "-o", dir + string(filepath.Separator)}, pkgs...)
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+runtime.GOARCH, "CGO_ENABLED=0")
	// On cancellation, kill the compilers and linker go runs too (they hold
	// the output pipe), not only go itself.
	setProcessGroup(cmd)
	cmd.Cancel = func() error { return killGroup(cmd) }
	cmd.WaitDelay = 2 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build %s: %w\n%s", strings.Join(pkgs, " "), err, out)
	}
	bins := make(map[string]string, len(pkgs))
	for _, p := range pkgs {
		bins[p] = filepath.Join(dir, path.Base(filepath.ToSlash(p)))
	}
	return bins, nil
}

// An Option changes a default of Start.
type Option func(*options)

type options struct {
	readyTimeout  time.Duration
	invokeTimeout time.Duration
}

// WithReadyTimeout bounds the wait for the emulator to accept connections
// (default DefaultReadyTimeout).
func WithReadyTimeout(d time.Duration) Option { return func(o *options) { o.readyTimeout = d } }

// WithInvokeTimeout bounds each invocation (default DefaultInvokeTimeout).
func WithInvokeTimeout(d time.Duration) Option { return func(o *options) { o.invokeTimeout = d } }

// Function is a bootstrap running under the emulator. The emulator serves
// one invocation at a time; Invoke serialises callers.
type Function struct {
	// URL is the emulator's base URL (http://127.0.0.1:PORT).
	URL string
	// Ready is the time from starting the emulator process to its invoke
	// endpoint accepting connections. The bootstrap itself starts on the
	// first invocation, as in Lambda (see InitDuration).
	Ready time.Duration

	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error // set before exited is closed
	logs    *syncBuffer
	client  *http.Client
	stop    sync.Once

	mu sync.Mutex
	// invoked counts the invocations answered with 200.
	invoked int
}

// Start runs bootstrap under the emulator rie with env as the function's
// environment (plus PATH and HOME of this process; its other variables are
// not passed on) and waits until the emulator accepts invocations. The
// emulator and its runtime API listen on free 127.0.0.1 ports, so several
// may run at once; they run in their own process group. ctx bounds only the
// wait: the emulator runs until Stop, which the caller must call.
func Start(ctx context.Context, rie, bootstrap string, env []string, opts ...Option) (*Function, error) {
	o := options{readyTimeout: DefaultReadyTimeout, invokeTimeout: DefaultInvokeTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	apiAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
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
		return nil, fmt.Errorf("start %s: %w", rie, err)
	}
	f := &Function{
		URL:    "http://" + addr,
		cmd:    cmd,
		exited: make(chan struct{}),
		logs:   logs,
		client: &http.Client{Timeout: o.invokeTimeout},
	}
	go func() {
		f.waitErr = cmd.Wait()
		close(f.exited)
	}()
	if err := f.waitListening(ctx, addr, o.readyTimeout); err != nil {
		f.Stop()
		return nil, fmt.Errorf("start %s: %w\n%s", bootstrap, err, logs.String())
	}
	f.Ready = time.Since(start)
	return f, nil
}

// waitListening polls addr until it accepts a connection, the emulator
// exits, ctx is done or timeout passes.
func (f *Function) waitListening(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-f.exited:
			return fmt.Errorf("emulator exited before listening on %s: %v", addr, f.waitErr)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("emulator not listening on %s after %v", addr, timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// Invoke posts payload to the invoke endpoint and returns the HTTP status
// and body without judging them: 200 for a result or a function error
// (a body {"errorMessage": ..., "errorType": ...}), 502 when the runtime
// failed (for example, exited during init). After a 200 it waits (briefly)
// until the emulator has printed the invocation's REPORT line: the emulator
// copies the function's output asynchronously and answers before it is all
// written, and the REPORT line comes after everything the invocation
// logged, so Logs then holds the invocation's whole output.
func (f *Function) Invoke(ctx context.Context, payload []byte) (status int, body []byte, err error) {
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
	body, err = io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode == http.StatusOK {
		f.invoked++
		f.awaitReports(ctx, f.invoked)
	}
	return resp.StatusCode, body, err
}

// awaitReports waits until the emulator has printed n REPORT lines, for at
// most reportTimeout.
func (f *Function) awaitReports(ctx context.Context, n int) {
	deadline := time.Now().Add(reportTimeout)
	for strings.Count(f.logs.String(), "REPORT RequestId:") < n && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(2 * time.Millisecond)
	}
}

// Stop terminates the emulator (which stops the runtime), kills it if it
// does not exit in time, and then kills its process group, where the
// runtime may outlive an emulator killed hard. It returns once the emulator
// has exited; calling it again does nothing.
func (f *Function) Stop() {
	f.stop.Do(func() {
		terminate(f.cmd)
		select {
		case <-f.exited:
		case <-time.After(stopTimeout):
		}
		_ = killGroup(f.cmd)
		<-f.exited
	})
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

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// syncBuffer collects the emulator's output, which its stdout and stderr
// copiers write concurrently with readers.
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
