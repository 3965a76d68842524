// Package motoserver runs moto_server (Python moto, "pip install
// 'moto[server]'") as a local AWS emulator for adapter and end-to-end tests,
// and for demos and benchmarks outside tests.
//
// In tests, prefer one server per test binary:
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		motoserver.StopShared()
//		os.Exit(code)
//	}
//
//	func TestSomething(t *testing.T) {
//		srv := motoserver.Shared(t) // started lazily, once
//		srv.Reset(t)                // wipe state left by other tests
//		cfg := srv.Config(t)
//		...
//	}
//
// Start gives a test its own server (stopped in t.Cleanup) when it must not
// share state, e.g. in parallel tests. Starting moto takes 1-2 s.
//
// When moto_server is not on PATH, tests are skipped, unless the CI
// environment variable is set, in which case they fail.
package motoserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// Binary is the moto server executable looked up on PATH.
const Binary = "moto_server"

// ErrNotInstalled means moto_server is not on PATH.
var ErrNotInstalled = errors.New(`moto_server not found: pip install "moto[server]"`)

// Process is a running moto_server.
type Process struct {
	// URL is the endpoint, e.g. "http://127.0.0.1:41234".
	URL string
	cmd *exec.Cmd
	// done is closed when the process has exited.
	done chan struct{}
	log  *os.File
}

// StartProcess starts moto_server on 127.0.0.1 and a free port and waits
// until it answers (up to 30 s). The caller must call Stop. ctx bounds the
// start-up only, not the life of the process.
func StartProcess(ctx context.Context) (*Process, error) {
	path, err := exec.LookPath(Binary)
	if err != nil {
		return nil, ErrNotInstalled
	}
	// moto picks no port of its own; retry if another process takes the
	// free port between our probe and moto's bind.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		p, err := startOnce(ctx, path)
		if err == nil {
			return p, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func startOnce(ctx context.Context, path string) (*Process, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("start moto_server: %w", err)
	}
	logf, err := os.CreateTemp("", "moto_server-*.log")
	if err != nil {
		return nil, fmt.Errorf("start moto_server: %w", err)
	}
	cmd := exec.Command(path, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Stdout = logf
	cmd.Stderr = logf
	// Own process group, so Stop also ends any children moto spawns.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		os.Remove(logf.Name())
		return nil, fmt.Errorf("start moto_server: %w", err)
	}
	p := &Process{URL: "http://127.0.0.1:" + strconv.Itoa(port), cmd: cmd, done: make(chan struct{}), log: logf}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	if err := p.waitReady(ctx, 30*time.Second); err != nil {
		out, _ := os.ReadFile(logf.Name())
		p.Stop()
		return nil, fmt.Errorf("start moto_server on port %d: %w\n%s", port, err, out)
	}
	return p, nil
}

func (p *Process) waitReady(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/moto-api/data.json", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return errors.New("moto_server exited")
		case <-ctx.Done():
			return fmt.Errorf("moto_server did not answer: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop ends the process (and its process group) and removes its log. It is
// safe to call more than once.
func (p *Process) Stop() {
	select {
	case <-p.done:
	default:
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
	if p.log != nil {
		p.log.Close()
		os.Remove(p.log.Name())
		p.log = nil
	}
}

// Reset wipes all emulated state (POST /moto-api/reset).
func (p *Process) Reset(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL+"/moto-api/reset", nil)
	if err != nil {
		return fmt.Errorf("reset moto: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reset moto: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reset moto: status %s", resp.Status)
	}
	return nil
}

// Env is the environment a child process (a Lambda binary, the CLI) needs
// to talk to this server with the default AWS config chain.
func (p *Process) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + p.URL,
		"AWS_REGION=" + Region,
		"AWS_ACCESS_KEY_ID=test",
		"AWS_SECRET_ACCESS_KEY=test",
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
