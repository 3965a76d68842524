package bench

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/sgrules/sgrules/internal/dev/motoproc"
)

// TestReadsAtTheLimit runs the load scenario of make bench (scratch,
// reapply, change 10%, remove a file, clean sweep, drift sweep) against
// moto, small (N = 1000; 100 with -short), and checks every phase's EC2
// reads, counted in EC2's pages of 1000, against the limit the bench
// reports beside them: at most EC2ReadLimit(N) + 1 (issue 24). Counts,
// never time.
func TestReadsAtTheLimit(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 100
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
	rows, err := runSgrules(ctx, p.URL, n, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(Scenarios) {
		t.Fatalf("%d phases measured, want %d", len(rows), len(Scenarios))
	}
	for _, r := range rows {
		if r.EC2ReadLimit != EC2ReadLimit(n) {
			t.Errorf("%s: limit %d, want %d", r.Scenario, r.EC2ReadLimit, EC2ReadLimit(n))
		}
		if r.EC2ReadRealPages > r.EC2ReadLimit+1 {
			t.Errorf("%s, N = %d: %d EC2 reads (pages of 1000), limit %d (+1): %v", r.Scenario, n, r.EC2ReadRealPages, r.EC2ReadLimit, r.ByAction)
		}
	}
	// The drift sweep puts back the 1% of the managed rules (those left
	// after remove-file took a tenth) deleted by hand.
	if d, want := rows[len(rows)-1], max(1, (n-n/NumFiles)/100); d.Scenario != ScSweepDrift || d.Authorize != want {
		t.Errorf("%s: authorized %d rules, want %d", d.Scenario, d.Authorize, want)
	}
}
