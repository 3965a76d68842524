package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sgrules/sgrules/internal/ratelimit"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// fakeClock never waits: Sleep advances its time by d and records d.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	slept  []time.Duration
	cancel bool // Sleep fails as if ctx ended
	frozen bool // Sleep does not move the time
}

func newClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancel {
		return context.Canceled
	}
	c.slept = append(c.slept, d)
	if !c.frozen {
		c.now = c.now.Add(d)
	}
	return nil
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *fakeClock) sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.slept...)
}

func TestBucket(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		limit ratelimit.Limit
		// steps: advance the clock, then take n tokens; want the sleep.
		steps []struct {
			advance time.Duration
			n       int
			sleep   time.Duration
		}
	}{
		{
			name:  "burst of 50 goes at once, the 51st waits one refill",
			limit: ratelimit.Limit{Burst: 50, PerSecond: 5},
			steps: []struct {
				advance time.Duration
				n       int
				sleep   time.Duration
			}{{0, 50, 0}, {0, 1, 200 * time.Millisecond}, {0, 1, 200 * time.Millisecond}},
		},
		{
			name:  "refill is capped at the burst",
			limit: ratelimit.Limit{Burst: 50, PerSecond: 5},
			steps: []struct {
				advance time.Duration
				n       int
				sleep   time.Duration
			}{{0, 50, 0}, {time.Hour, 50, 0}, {0, 5, time.Second}},
		},
		{
			name:  "partial refill",
			limit: ratelimit.Limit{Burst: 100, PerSecond: 20},
			steps: []struct {
				advance time.Duration
				n       int
				sleep   time.Duration
			}{{0, 100, 0}, {time.Second, 20, 0}, {500 * time.Millisecond, 15, 250 * time.Millisecond}},
		},
		{
			name:  "more than the burst at once waits for the refill",
			limit: ratelimit.Limit{Burst: 50, PerSecond: 5},
			steps: []struct {
				advance time.Duration
				n       int
				sleep   time.Duration
			}{{0, 60, 2 * time.Second}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			b := ratelimit.NewBucket(tc.limit, clk)
			for i, s := range tc.steps {
				clk.advance(s.advance)
				before := len(clk.sleeps())
				if err := b.Wait(ctx, s.n); err != nil {
					t.Fatal(err)
				}
				var got time.Duration
				if sl := clk.sleeps(); len(sl) > before {
					got = sl[len(sl)-1]
				}
				if got != s.sleep {
					t.Errorf("step %d: slept %v, want %v", i, got, s.sleep)
				}
			}
		})
	}
}

func TestUnlimitedBucketNeverWaits(t *testing.T) {
	clk := newClock()
	for _, l := range []ratelimit.Limit{{}, {Burst: 10}, {PerSecond: 3}} {
		b := ratelimit.NewBucket(l, clk)
		if b != nil {
			t.Fatalf("%+v: got a bucket", l)
		}
		if err := b.Wait(context.Background(), 1000); err != nil {
			t.Fatal(err)
		}
	}
	if len(clk.sleeps()) != 0 {
		t.Fatalf("slept %v", clk.sleeps())
	}
}

func TestWaitCancelledGivesTokensBack(t *testing.T) {
	clk := newClock()
	b := ratelimit.NewBucket(ratelimit.Limit{Burst: 10, PerSecond: 1}, clk)
	if err := b.Wait(context.Background(), 10); err != nil {
		t.Fatal(err)
	}
	clk.cancel = true
	if err := b.Wait(context.Background(), 3); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if got := b.Tokens(); got != 0 {
		t.Fatalf("tokens after a cancelled wait = %v, want 0", got)
	}
}

func TestChargeMakesLaterCallersWait(t *testing.T) {
	clk := newClock()
	b := ratelimit.NewBucket(ratelimit.Limit{Burst: 100, PerSecond: 20}, clk)
	b.Charge(110)
	if err := b.Wait(context.Background(), 10); err != nil {
		t.Fatal(err)
	}
	if sl := clk.sleeps(); len(sl) != 1 || sl[0] != time.Second {
		t.Fatalf("slept %v, want [1s]", sl)
	}
}

func TestConcurrentWaitersShareTheRate(t *testing.T) {
	clk := newClock()
	clk.frozen = true
	b := ratelimit.NewBucket(ratelimit.Limit{Burst: 50, PerSecond: 5}, clk)
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.Wait(context.Background(), 1); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// 50 go at once; the other 50 reserved the next slots, 200ms apart,
	// whatever order they came in.
	sl := clk.sleeps()
	var total time.Duration
	for _, d := range sl {
		total += d
	}
	if want := 200 * time.Millisecond * (50 * 51 / 2); len(sl) != 50 || total != want {
		t.Fatalf("%d waiters slept %v in all, want 50 and %v", len(sl), total, want)
	}
}

// fakeGroups records the calls that reach it.
type fakeGroups struct {
	calls []string
	rules int // rules returned by describes
}

func (f *fakeGroups) rec(s string) { f.calls = append(f.calls, s) }

func (f *fakeGroups) ResolveGroups(ctx context.Context, refs []rules.GroupRef) (map[string][]string, error) {
	f.rec("resolve")
	return map[string][]string{}, nil
}
func (f *fakeGroups) DescribeGroups(ctx context.Context, ids []string) ([]reconcile.GroupInfo, error) {
	f.rec("groups")
	return nil, nil
}
func (f *fakeGroups) DescribeRules(ctx context.Context, ids []string) ([]reconcile.ActualRule, error) {
	f.rec("rules")
	return make([]reconcile.ActualRule, f.rules), nil
}
func (f *fakeGroups) DescribeManagedRules(ctx context.Context, _ string) ([]reconcile.ActualRule, error) {
	f.rec("managed")
	return make([]reconcile.ActualRule, f.rules), nil
}
func (f *fakeGroups) Authorize(ctx context.Context, g string, d rules.Direction, p []rules.Permission, tags map[string]string) error {
	f.rec("authorize " + string(d))
	return nil
}
func (f *fakeGroups) Revoke(ctx context.Context, g string, d rules.Direction, ids []string) error {
	f.rec("revoke " + string(d))
	return nil
}
func (f *fakeGroups) ModifyRules(ctx context.Context, g string, u []reconcile.RuleUpdate) error {
	f.rec("modify")
	return nil
}

func perms(n int) []rules.Permission { return make([]rules.Permission, n) }

func TestGroupsBuckets(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// run makes calls; want the bucket balances after (mutating,
		// ingress, describe) and the sleeps.
		run                         func(g *ratelimit.Groups)
		mutating, ingress, describe float64
		sleeps                      int
	}{
		{
			name: "ingress authorize and revoke use their own bucket",
			run: func(g *ratelimit.Groups) {
				for range 25 {
					_ = g.Authorize(ctx, "sg-1", rules.Ingress, perms(40), nil)
					_ = g.Revoke(ctx, "sg-1", rules.Ingress, []string{"sgr-1", "sgr-2"})
				}
			},
			mutating: 50, ingress: 0, describe: 100,
		},
		{
			name: "egress and descriptions share the mutating bucket",
			run: func(g *ratelimit.Groups) {
				for range 20 {
					_ = g.Authorize(ctx, "sg-1", rules.Egress, perms(3), nil)
					_ = g.Revoke(ctx, "sg-1", rules.Egress, []string{"sgr-1"})
				}
				for range 11 {
					_ = g.ModifyRules(ctx, "sg-1", make([]reconcile.RuleUpdate, 7))
				}
			},
			mutating: -1, ingress: 50, describe: 100, sleeps: 1,
		},
		{
			name: "a batch over MaxEntries is several calls",
			run: func(g *ratelimit.Groups) {
				_ = g.Authorize(ctx, "sg-1", rules.Ingress, perms(2500), nil)
			},
			mutating: 50, ingress: 47, describe: 100,
		},
		{
			name: "describes: one token per 200 groups, extra pages charged after",
			run: func(g *ratelimit.Groups) {
				ids := make([]string, 450)
				for i := range ids {
					ids[i] = fmt.Sprintf("sg-%d", i)
				}
				_, _ = g.DescribeRules(ctx, ids)        // 3 calls, 2500 rules: 3 pages → no extra
				_, _ = g.DescribeManagedRules(ctx, "t") // 1 call, 2500 rules: 3 pages → 2 extra
				_, _ = g.DescribeGroups(ctx, ids[:5])
				_, _ = g.ResolveGroups(ctx, []rules.GroupRef{{ID: "sg-1"}, {Name: "a"}, {Name: "b"},
					{Tags: map[string]string{"Name": "x"}}, {Tags: map[string]string{"Name": "y"}}, {Tags: map[string]string{"Name": "x", "env": "p"}}})
			},
			mutating: 50, ingress: 50, describe: 100 - 3 - 3 - 1 - 3,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			cfg := ratelimit.Defaults()
			cfg.Clock = clk
			fake := &fakeGroups{rules: 2500}
			g := ratelimit.New(fake, cfg)
			tc.run(g)
			// The fake clock moves only by the sleeps, so the balances are
			// exact when nobody slept.
			mb, ib, db := g.Buckets()
			slept := time.Duration(0)
			for _, d := range clk.sleeps() {
				slept += d
			}
			got := []float64{mb.Tokens(), ib.Tokens(), db.Tokens()}
			want := []float64{tc.mutating, tc.ingress, tc.describe}
			if tc.sleeps == 0 {
				for i := range got {
					if got[i] != want[i] {
						t.Errorf("bucket %d has %v tokens, want %v (calls %v)", i, got[i], want[i], fake.calls)
					}
				}
			}
			if n := len(clk.sleeps()); n != tc.sleeps {
				t.Errorf("%d sleeps (%v), want %d", n, clk.sleeps(), tc.sleeps)
			}
			if tc.sleeps > 0 && slept != 200*time.Millisecond {
				t.Errorf("slept %v, want 200ms (one mutating token owed)", slept)
			}
		})
	}
}
