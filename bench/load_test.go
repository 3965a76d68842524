package bench

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/sgrules/sgrules/internal/dev/motoproc"
	"github.com/sgrules/sgrules/internal/testutil/rie"
)

// TestLoad runs the load scenario of make bench small against moto: a sync
// of changed files delivered as S3 notifications in SQS batches to
// reconcile functions running at once (real bootstraps under the emulator),
// failed messages delivered again until none is left (issue 24, "Under
// load"). It converges (checked by runLoad: EC2 and the ledger hold
// exactly the files' rules, each once, owned by its file), no work is done
// twice (every changed rule authorized once and its old rule revoked once,
// no call refused), each invocation writes a group and direction with at
// most 2 calls (one authorize, one revoke), and the sync makes at most 2
// mutating calls per touched group and direction plus what the reported
// retries may write again (Load.Bound): the first run writing a group
// applies the group's other changed files too (the engine's sibling
// refresh), whatever batch they came in. Counts, never time.
func TestLoad(t *testing.T) {
	opt := LoadOptions{Files: 40, Functions: 4, Seed: 1}
	if testing.Short() {
		opt.Files, opt.Functions = 20, 2
	}
	ctx := context.Background()
	p, stop, err := startMoto(ctx, true)
	if errors.Is(err, motoproc.ErrNotInstalled) && os.Getenv("CI") == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if opt.RIE, err = rie.Path(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	opt.Bootstrap = rie.Build(t, "./functions/reconcile")
	l, err := runLoad(ctx, p.URL, opt, t.Logf)
	if l != nil {
		t.Logf("%+v", *l)
	}
	if err != nil {
		t.Fatal(err)
	}
	if l.Modified != l.Files || l.Authorized != l.Files || l.Revoked != l.Files || l.FailedMutating != 0 {
		t.Errorf("modified %d rules, authorized %d permissions, revoked %d rules (%d refused calls); want each of the %d files' changes made once",
			l.Modified, l.Authorized, l.Revoked, l.FailedMutating, l.Files)
	}
	// A batch whose one run failed (3 attempts lost) is retried message
	// by message: its messages' runs may each write a pair once more.
	perRun := 2 * (1 + l.BatchFallbacks*(LoadBatchSize-1))
	if l.MaxCallsPerPairRun > perRun {
		t.Errorf("an invocation made %d mutating calls on one group and direction, want at most %d", l.MaxCallsPerPairRun, perRun)
	}
	if l.TouchedPairs != 2*l.Groups || l.PairRuns < l.TouchedPairs {
		t.Errorf("%d pairs touched by %d runs, want %d pairs (both directions of %d groups), each written at least once", l.TouchedPairs, l.PairRuns, 2*l.Groups, l.Groups)
	}
	if l.BatchFallbacks == 0 && l.EC2Mutating > l.RunLimit {
		t.Errorf("%d EC2 mutating calls, want at most %d (per invocation and pair it wrote: 1 modify in ingress, 1 authorize and 1 revoke in egress)", l.EC2Mutating, l.RunLimit)
	}
	if bound := 2*l.TouchedPairs + l.Retries*2*2*LoadBatchSize; l.Bound != bound || l.EC2Mutating > bound {
		t.Errorf("%d EC2 mutating calls, want at most %d (reported %d): 2 per touched pair (%d) plus %d per retry (%d)",
			l.EC2Mutating, bound, l.Bound, l.TouchedPairs, 2*2*LoadBatchSize, l.Retries)
	}
	if l.Invocations < (l.Files+LoadBatchSize-1)/LoadBatchSize {
		t.Errorf("%d invocations for %d messages in batches of %d", l.Invocations, l.Files, LoadBatchSize)
	}
}
