package motoserver

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/sgrules/sgrules/internal/dev/motoproc"
)

// Server is a moto_server for tests.
type Server struct {
	*motoproc.Process
}

// Start starts a fresh moto_server for tb, stopped in tb.Cleanup. Without
// moto_server on PATH it skips tb, or fails it when CI is set.
func Start(tb testing.TB) *Server {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := motoproc.StartProcess(ctx)
	if err != nil {
		notInstalledOrFatal(tb, err)
	}
	tb.Cleanup(p.Stop)
	return &Server{Process: p}
}

func notInstalledOrFatal(tb testing.TB, err error) {
	tb.Helper()
	if errors.Is(err, motoproc.ErrNotInstalled) && os.Getenv("CI") == "" {
		tb.Skip(err.Error())
	}
	tb.Fatal(err)
}

var shared struct {
	once sync.Once
	proc *motoproc.Process
	err  error
}

// Shared returns the test binary's one moto_server, starting it on first
// use. Its state is shared by every test of the binary: call Reset first.
// The package's TestMain must stop it: use Main.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		shared.proc, shared.err = motoproc.StartProcess(ctx)
	})
	if shared.err != nil {
		notInstalledOrFatal(tb, shared.err)
	}
	return &Server{Process: shared.proc}
}

// Main is the TestMain of a package that uses Shared: it runs the tests,
// stops the shared server, runs cleanups (e.g. rie.RemoveBuilds) and
// exits with the tests' code.
func Main(m *testing.M, cleanups ...func()) {
	code := m.Run()
	stopShared()
	for _, f := range cleanups {
		f()
	}
	os.Exit(code)
}

// stopShared stops the server started by Shared, if any. Main calls it.
func stopShared() {
	if shared.proc != nil {
		shared.proc.Stop()
	}
}

// Reset wipes all emulated state, failing tb on error.
func (s *Server) Reset(tb testing.TB) {
	tb.Helper()
	if err := s.Process.Reset(context.Background()); err != nil {
		tb.Fatal(err)
	}
}

// Config returns an AWS config for the server (motoproc.Config). S3
// clients also need path-style addressing (awsconfig.S3Options).
func (s *Server) Config(tb testing.TB) aws.Config {
	tb.Helper()
	return s.Process.Config()
}
