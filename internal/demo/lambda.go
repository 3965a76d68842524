package demo

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
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// invokePath is the emulator's invoke endpoint.
const invokePath = "/2015-03-31/functions/function/invocations"

// Bounds of the emulator runner.
const (
	rieReadyTimeout  = 10 * time.Second
	rieInvokeTimeout = 2 * time.Minute
	rieStopTimeout   = 3 * time.Second
)

// ErrRIENotFound means the Lambda Runtime Interface Emulator was not found.
var ErrRIENotFound = errors.New("aws-lambda-rie (the Lambda Runtime Interface Emulator) not found in $SGRULES_RIE, ./bin or PATH: run `make tools`")

// findRIE returns explicit if set, else $SGRULES_RIE, else
// ROOT/bin/aws-lambda-rie, else aws-lambda-rie on PATH.
func findRIE(explicit, root string) (string, error) {
	if explicit != "" {
		if !isExecutable(explicit) {
			return "", fmt.Errorf("aws-lambda-rie %s: not an executable file", explicit)
		}
		return explicit, nil
	}
	if p := os.Getenv("SGRULES_RIE"); p != "" && isExecutable(p) {
		return p, nil
	}
	if p := filepath.Join(root, "bin", "aws-lambda-rie"); isExecutable(p) {
		return p, nil
	}
	if p, err := exec.LookPath("aws-lambda-rie"); err == nil {
		return p, nil
	}
	return "", ErrRIENotFound
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// buildBootstraps compiles the reconcile and drift functions for Linux on
// the host architecture, as Lambda provided.al2023 bootstraps
// (CGO_ENABLED=0, -tags lambda.norpc), into dir/reconcile and dir/drift, with
// one go build. The flags are those of the rie test harness, so the two
// share the build cache.
func buildBootstraps(ctx context.Context, root, dir string) (map[string]string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, errors.New("go not found on PATH: the demo builds the Lambda functions from source (install Go 1.26+)")
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-tags", "lambda.norpc", "-o", dir+string(filepath.Separator),
		"./functions/reconcile", "./functions/drift")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+runtime.GOARCH, "CGO_ENABLED=0")
	// On cancellation, kill the compilers and linker go runs too (they hold
	// the output pipe), not only go itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build lambda functions: %w\n%s", err, out)
	}
	return map[string]string{
		"reconcile": filepath.Join(dir, "reconcile"),
		"drift":     filepath.Join(dir, "drift"),
	}, nil
}

// function is a bootstrap running under the emulator.
type function struct {
	name   string
	url    string
	cmd    *exec.Cmd
	exited chan struct{}
	logs   *syncBuffer
	// invoked counts the invocations answered with 200.
	invoked int
	client  *http.Client
	once    sync.Once
}

// startFunction runs bootstrap under the emulator at rie with env as the
// function's environment (plus PATH and HOME), on free loopback ports, and
// waits until it accepts invocations. The caller must call stop.
func startFunction(ctx context.Context, rie, name, bootstrap string, env []string) (*function, error) {
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
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"AWS_LAMBDA_FUNCTION_NAME=sgrules-demo-" + name}, env...)
	cmd.Stdout, cmd.Stderr = logs, logs
	// Own process group: a Ctrl-C in the terminal does not reach it, and
	// stop reaches the runtime process the emulator starts.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s function under %s: %w", name, rie, err)
	}
	f := &function{name: name, url: "http://" + addr, cmd: cmd, exited: make(chan struct{}), logs: logs,
		client: &http.Client{Timeout: rieInvokeTimeout}}
	go func() {
		_ = cmd.Wait()
		close(f.exited)
	}()
	if err := f.waitListening(ctx, addr); err != nil {
		f.stop()
		return nil, fmt.Errorf("start %s function: %w\n%s", name, err, logs.String())
	}
	return f, nil
}

func (f *function) waitListening(ctx context.Context, addr string) error {
	deadline := time.Now().Add(rieReadyTimeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-f.exited:
			return fmt.Errorf("emulator exited before listening on %s", addr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("emulator not listening on %s after %v", addr, rieReadyTimeout)
		}
	}
}

// invoke posts payload and returns the response body. A function error is a
// 200 response whose body has errorMessage and errorType; it is returned as
// an error, as is any other status.
func (f *function) invoke(ctx context.Context, payload []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url+invokePath, bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("invoke %s function: %w", f.name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("invoke %s function: %w", f.name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("invoke %s function: %w", f.name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("invoke %s function: status %s: %s", f.name, resp.Status, body)
	}
	// The emulator answers before it has copied all the function's output;
	// its REPORT line comes last, so wait for it before logs are read.
	f.invoked++
	for deadline := time.Now().Add(5 * time.Second); strings.Count(f.logs.String(), "REPORT RequestId:") < f.invoked && time.Now().Before(deadline); {
		time.Sleep(2 * time.Millisecond)
	}
	if bytes.Contains(body, []byte(`"errorMessage"`)) && bytes.Contains(body, []byte(`"errorType"`)) {
		return nil, fmt.Errorf("invoke %s function: function error: %s", f.name, body)
	}
	return body, nil
}

// stop terminates the emulator, then kills its process group (the runtime
// may outlive an emulator). Safe to call more than once.
func (f *function) stop() {
	f.once.Do(func() {
		pid := f.cmd.Process.Pid
		_ = f.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-f.exited:
		case <-time.After(rieStopTimeout):
		}
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-f.exited
	})
}

// logLines returns the function's output lines.
func (f *function) logLines() []string {
	return strings.Split(strings.TrimRight(f.logs.String(), "\n"), "\n")
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
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
