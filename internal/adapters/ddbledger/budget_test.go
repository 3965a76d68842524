package ddbledger_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// Claims on one run's budget from many invocations at once: first come,
// first served, never more than the limit; a claimant's new claim
// replaces its old one; another run has its own budget.
func TestBudgetClaimsAreSharedAndBounded(t *testing.T) {
	l, _, _ := setup(t)
	ctx := context.Background()
	b := l.Budget("sched-1")
	var granted atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, _, err := b.Claim(ctx, fmt.Sprintf("c%d", i), 1, 3)
			if err != nil {
				t.Error(err)
			}
			if ok {
				granted.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := granted.Load(); n != 3 {
		t.Fatalf("%d claims of 1 granted under a limit of 3", n)
	}
	// A granted claimant re-plans: its claim is replaced, not added.
	var holder string
	for i := range 8 {
		if ok, spent, err := b.Claim(ctx, fmt.Sprintf("c%d", i), 1, 3); err == nil && ok {
			holder = fmt.Sprintf("c%d", i)
			if spent != 2 {
				t.Errorf("spent by the others = %d, want 2", spent)
			}
			break
		}
	}
	if holder == "" {
		t.Fatal("no claimant's repeated claim granted")
	}
	if ok, _, err := b.Claim(ctx, holder, 0, 3); !ok || err != nil {
		t.Fatalf("release: %v %v", ok, err)
	}
	if ok, spent, err := b.Claim(ctx, "late", 1, 3); !ok || spent != 2 || err != nil {
		t.Fatalf("claim after a release = %v %d %v, want granted with 2 spent", ok, spent, err)
	}
	if ok, _, err := l.Budget("sched-2").Claim(ctx, "c0", 3, 3); !ok || err != nil {
		t.Fatalf("another run's budget: %v %v", ok, err)
	}
}
