package motoserver

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Region is the region every test config uses.
const Region = "us-east-1"

// Server is a moto_server for tests.
type Server struct {
	*Process
}

// Start starts a fresh moto_server for tb, stopped in tb.Cleanup. Without
// moto_server on PATH it skips tb, or fails it when CI is set.
func Start(tb testing.TB) *Server {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := StartProcess(ctx)
	if err != nil {
		notInstalledOrFatal(tb, err)
	}
	tb.Cleanup(p.Stop)
	return &Server{Process: p}
}

func notInstalledOrFatal(tb testing.TB, err error) {
	tb.Helper()
	if errors.Is(err, ErrNotInstalled) && os.Getenv("CI") == "" {
		tb.Skip(err.Error())
	}
	tb.Fatal(err)
}

var shared struct {
	once sync.Once
	proc *Process
	err  error
}

// Shared returns the test binary's one moto_server, starting it on first
// use. Its state is shared by every test of the binary: call Reset first.
// The package's TestMain must call StopShared after m.Run.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		shared.proc, shared.err = StartProcess(ctx)
	})
	if shared.err != nil {
		notInstalledOrFatal(tb, shared.err)
	}
	return &Server{Process: shared.proc}
}

// StopShared stops the server started by Shared, if any. Call it from
// TestMain after m.Run.
func StopShared() {
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

// Config returns an AWS config for the server: static credentials
// test/test, region us-east-1, BaseEndpoint the server URL, the standard
// retryer. S3 clients also need path-style addressing
// (awsconfig.S3Options).
func (s *Server) Config(tb testing.TB) aws.Config {
	tb.Helper()
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(s.URL),
		Retryer:      func() aws.Retryer { return retry.NewStandard() },
	}
}
