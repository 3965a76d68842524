package rie

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

const echoPkg = "./internal/lambdaemu/testdata/echo"

type echoReply struct {
	Payload   json.RawMessage `json:"payload"`
	RequestID string          `json:"requestId"`
	Env       string          `json:"env"`
}

func TestInvokeRoundTrip(t *testing.T) {
	bin := Build(t, echoPkg)
	if again := Build(t, echoPkg); again != bin {
		t.Errorf("second Build = %s, want the cached %s", again, bin)
	}
	fn := Start(t, bin, []string{"ECHO_ENV=from-test", "AWS_LAMBDA_LOG_FORMAT=JSON"})
	t.Logf("emulator start → ready: %v", fn.Ready)

	start := time.Now()
	var got echoReply
	if err := json.Unmarshal(fn.Invoke(t, []byte(`{"hello":"world"}`)), &got); err != nil {
		t.Fatal(err)
	}
	cold := time.Since(start)
	if string(got.Payload) != `{"hello":"world"}` || got.Env != "from-test" || got.RequestID == "" {
		t.Errorf("reply = %+v", got)
	}
	init, ok := fn.InitDuration()
	if !ok {
		t.Errorf("no INIT REPORT in the emulator output:\n%s", fn.Logs())
	}
	t.Logf("first invoke (bootstrap start, init, invoke): %v; runtime init reported: %v", cold, init)

	// The function's JSON log line carries the request id.
	if want := `"requestId":"` + got.RequestID + `"`; !strings.Contains(fn.Logs(), want) {
		t.Errorf("logs lack %s:\n%s", want, fn.Logs())
	}

	start = time.Now()
	var second echoReply
	if err := json.Unmarshal(fn.Invoke(t, []byte(`[1,2,3]`)), &second); err != nil {
		t.Fatal(err)
	}
	t.Logf("warm invoke: %v", time.Since(start))
	if string(second.Payload) != `[1,2,3]` || second.RequestID == got.RequestID {
		t.Errorf("second reply = %+v (first request id %s)", second, got.RequestID)
	}

	var fail struct {
		ErrorMessage string `json:"errorMessage"`
	}
	if err := json.Unmarshal(fn.Invoke(t, []byte(`{"fail":"boom"}`)), &fail); err != nil {
		t.Fatal(err)
	}
	if fail.ErrorMessage != "boom" {
		t.Errorf("function error = %+v, want errorMessage boom", fail)
	}
	if status, body := fn.InvokeStatus(t, []byte(`{"fail":"again"}`)); status != 200 || !strings.Contains(string(body), "again") {
		t.Errorf("InvokeStatus = %d %s, want 200 with the function error", status, body)
	}
}

// Two emulators run side by side (each has its own runtime API port).
func TestTwoFunctions(t *testing.T) {
	bin := Build(t, echoPkg)
	a := Start(t, bin, []string{"ECHO_ENV=a"})
	b := Start(t, bin, []string{"ECHO_ENV=b"})
	for name, fn := range map[string]*Function{"a": a, "b": b} {
		var got echoReply
		if err := json.Unmarshal(fn.Invoke(t, []byte(`{}`)), &got); err != nil {
			t.Fatal(err)
		}
		if got.Env != name {
			t.Errorf("function %s answered env %q", name, got.Env)
		}
	}
}

// Startup time of the emulator with a bootstrap: the target is 50 ms
// from process start to ready. Measured over a few runs; the median is
// checked against a generous bound so a loaded CI machine does not flake.
func TestStartupTime(t *testing.T) {
	bin := Build(t, echoPkg)
	const runs = 5
	var ready, first []time.Duration
	for range runs {
		t.Run("", func(t *testing.T) {
			fn := Start(t, bin, nil)
			start := time.Now()
			fn.Invoke(t, []byte(`{}`))
			ready = append(ready, fn.Ready)
			first = append(first, fn.Ready+time.Since(start))
		})
	}
	if len(ready) != runs {
		t.Fatalf("only %d of %d runs finished", len(ready), runs)
	}
	medReady, medFirst := median(ready), median(first)
	t.Logf("start → ready: median %v of %v", medReady, ready)
	t.Logf("start → first invoke answered: median %v of %v", medFirst, first)
	if medReady > 500*time.Millisecond {
		t.Errorf("median start → ready %v, target 50ms", medReady)
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func TestPathPrefersEnv(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "my-rie")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SGRULES_RIE", fake)
	if p, err := Path(); err != nil || p != fake {
		t.Errorf("Path() = %q, %v, want %q", p, err, fake)
	}
	// A non-executable $SGRULES_RIE is passed over.
	if err := os.Chmod(fake, 0o644); err != nil {
		t.Fatal(err)
	}
	if p, _ := Path(); p == fake {
		t.Errorf("Path() = %q, a non-executable file", p)
	}
}

func TestModuleRoot(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !strings.Contains(string(b), "module github.com/sgrules/sgrules") {
		t.Errorf("ModuleRoot() = %s: go.mod %q, %v", root, b, err)
	}
}
