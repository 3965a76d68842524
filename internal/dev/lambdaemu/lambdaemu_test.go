package lambdaemu

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeEnv makes the test binary act as a fake emulator (see fakeEmulator)
// when it is started with this variable set to a mode.
const fakeEnv = "LAMBDAEMU_FAKE"

func TestMain(m *testing.M) {
	if mode := os.Getenv(fakeEnv); mode != "" {
		fakeEmulator(mode)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// fakeEmulator stands in for aws-lambda-rie, with its command line. Modes:
//   - "late-report": answers each invocation at once with 200 and prints the
//     invocation's log and REPORT lines 300ms later, as the real emulator
//     may when it copies the function's output behind the answer;
//   - "exit": exits at once, as when the bootstrap cannot be run;
//   - "mute": never listens.
func fakeEmulator(mode string) {
	fs := flag.NewFlagSet("fake", flag.ExitOnError)
	addr := fs.String("runtime-interface-emulator-address", "", "")
	fs.String("runtime-api-address", "", "")
	_ = fs.Parse(os.Args[1:])
	switch mode {
	case "exit":
		fmt.Println("fake emulator: exiting")
		os.Exit(3)
	case "mute":
		time.Sleep(time.Minute)
		return
	}
	var mu sync.Mutex // one invocation at a time, like the emulator
	n := 0
	http.HandleFunc(InvokePath, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		n++
		id := fmt.Sprintf("req-%d", n)
		fmt.Fprintf(w, `{"requestId":%q}`, id)
		go func() {
			time.Sleep(300 * time.Millisecond)
			fmt.Printf("function log line of %s\nREPORT RequestId: %s Duration: 1.00 ms\n", id, id)
		}()
	})
	if err := http.ListenAndServe(*addr, nil); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
}

// startFake starts the test binary as a fake emulator in mode.
func startFake(t *testing.T, ctx context.Context, mode string, opts ...Option) (*Function, error) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Start(ctx, self, filepath.Join(t.TempDir(), "bootstrap"), []string{fakeEnv + "=" + mode}, opts...)
}

func TestFind(t *testing.T) {
	exe := func(dir, name string, mode os.FileMode) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tmp := t.TempDir()
	explicit := exe(tmp, "explicit-rie", 0o755)
	plain := exe(tmp, "plain-file", 0o644)
	envRIE := exe(tmp, "env-rie", 0o755)
	root := filepath.Join(tmp, "root")
	rootRIE := exe(filepath.Join(root, "bin"), "aws-lambda-rie", 0o755)
	pathDir := filepath.Join(tmp, "path")
	pathRIE := exe(pathDir, "aws-lambda-rie", 0o755)
	empty := filepath.Join(tmp, "empty")

	tests := []struct {
		name     string
		explicit string
		env      string // $SGRULES_RIE
		root     string
		path     string // $PATH
		want     string
		wantErr  string
	}{
		{name: "explicit first", explicit: explicit, env: envRIE, root: root, path: pathDir, want: explicit},
		{name: "explicit not executable", explicit: plain, env: envRIE, root: root, path: pathDir, wantErr: "not an executable file"},
		{name: "then $SGRULES_RIE", env: envRIE, root: root, path: pathDir, want: envRIE},
		{name: "$SGRULES_RIE not executable is passed over", env: plain, root: root, path: pathDir, want: rootRIE},
		{name: "then ROOT/bin", root: root, path: pathDir, want: rootRIE},
		{name: "then PATH", root: empty, path: pathDir, want: pathRIE},
		{name: "no root: PATH", path: pathDir, want: pathRIE},
		{name: "none", root: empty, path: empty, wantErr: "make tools"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SGRULES_RIE", tc.env)
			t.Setenv("PATH", tc.path)
			got, err := Find(tc.explicit, tc.root)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Find() = %q, %v, want an error with %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("Find() = %q, %v, want %q", got, err, tc.want)
			}
		})
	}
	t.Run("ErrNotFound", func(t *testing.T) {
		t.Setenv("SGRULES_RIE", "")
		t.Setenv("PATH", empty)
		if _, err := Find("", empty); !errors.Is(err, ErrNotFound) {
			t.Errorf("Find() error = %v, want ErrNotFound", err)
		}
	})
}

// The fake emulator answers before it prints the invocation's REPORT line:
// Invoke returns only once the line is there, with what came before it.
func TestInvokeWaitsForReport(t *testing.T) {
	fn, err := startFake(t, t.Context(), "late-report")
	if err != nil {
		t.Fatal(err)
	}
	defer fn.Stop()
	for i := 1; i <= 2; i++ {
		status, body, err := fn.Invoke(t.Context(), []byte(`{}`))
		if err != nil || status != http.StatusOK {
			t.Fatalf("Invoke = %d %s, %v", status, body, err)
		}
		id := fmt.Sprintf("req-%d", i)
		if want := fmt.Sprintf(`{"requestId":%q}`, id); string(body) != want {
			t.Errorf("body = %s, want %s", body, want)
		}
		logs := fn.Logs()
		if !strings.Contains(logs, "function log line of "+id) || strings.Count(logs, "REPORT RequestId:") != i {
			t.Errorf("after invocation %d, logs lack its output:\n%s", i, logs)
		}
	}
}

func TestStartEmulatorExits(t *testing.T) {
	_, err := startFake(t, t.Context(), "exit")
	if err == nil || !strings.Contains(err.Error(), "exited before listening") || !strings.Contains(err.Error(), "fake emulator: exiting") {
		t.Errorf("Start error = %v, want the exit and the emulator's output", err)
	}
}

func TestStartNotListening(t *testing.T) {
	t.Run("context", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		if _, err := startFake(t, ctx, "mute"); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Start error = %v, want the context's", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		if _, err := startFake(t, t.Context(), "mute", WithReadyTimeout(200*time.Millisecond)); err == nil || !strings.Contains(err.Error(), "not listening") {
			t.Errorf("Start error = %v, want not listening", err)
		}
	})
}

func TestStopTwice(t *testing.T) {
	fn, err := startFake(t, t.Context(), "late-report")
	if err != nil {
		t.Fatal(err)
	}
	fn.Stop()
	done := make(chan struct{})
	go func() { fn.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("second Stop did not return")
	}
	if _, _, err := fn.Invoke(t.Context(), []byte(`{}`)); err == nil {
		t.Error("Invoke after Stop succeeded")
	}
}

func TestBuildCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Build(ctx, moduleRoot(t), t.TempDir(), echoPkg); err == nil {
		t.Error("Build with a cancelled context succeeded")
	}
}

const echoPkg = "./internal/dev/lambdaemu/testdata/echo"

// The echo function runs under the real emulator: built, started, invoked
// (results, function errors, logs, init report) and stopped.
func TestEcho(t *testing.T) {
	rie, err := Find("", moduleRoot(t))
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	dir := t.TempDir()
	bins, err := Build(t.Context(), moduleRoot(t), dir, echoPkg)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "echo"); bins[echoPkg] != want {
		t.Fatalf("Build = %v, want %s for %s", bins, want, echoPkg)
	}
	fn, err := Start(t.Context(), rie, bins[echoPkg], []string{"ECHO_ENV=from-test", "AWS_LAMBDA_LOG_FORMAT=JSON"})
	if err != nil {
		t.Fatal(err)
	}
	defer fn.Stop()
	t.Logf("emulator start → ready: %v", fn.Ready)

	var got struct {
		Payload   json.RawMessage `json:"payload"`
		RequestID string          `json:"requestId"`
		Env       string          `json:"env"`
	}
	status, body, err := fn.Invoke(t.Context(), []byte(`{"hello":"world"}`))
	if err != nil || status != http.StatusOK {
		t.Fatalf("Invoke = %d %s, %v\n%s", status, body, err, fn.Logs())
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if string(got.Payload) != `{"hello":"world"}` || got.Env != "from-test" || got.RequestID == "" {
		t.Errorf("reply = %+v", got)
	}
	// Once Invoke returned, the function's log line is in Logs.
	if want := `"requestId":"` + got.RequestID + `"`; !strings.Contains(fn.Logs(), want) {
		t.Errorf("logs lack %s:\n%s", want, fn.Logs())
	}
	if _, ok := fn.InitDuration(); !ok {
		t.Errorf("no INIT REPORT in the emulator output:\n%s", fn.Logs())
	}

	status, body, err = fn.Invoke(t.Context(), []byte(`{"fail":"boom"}`))
	if err != nil || status != http.StatusOK || !strings.Contains(string(body), `"errorMessage":"boom"`) {
		t.Errorf("Invoke of a failing call = %d %s, %v, want 200 with the function error", status, body, err)
	}
	if n := strings.Count(fn.Logs(), "REPORT RequestId:"); n != 2 {
		t.Errorf("%d REPORT lines after 2 invocations:\n%s", n, fn.Logs())
	}

	fn.Stop()
	fn.Stop()
	if _, _, err := fn.Invoke(t.Context(), []byte(`{}`)); err == nil {
		t.Error("Invoke after Stop succeeded")
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}
