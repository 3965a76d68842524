package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/adapters/ratelimit"
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

// fakeAPI is an EC2 API that records the calls that reach it; every
// describe answers pages empty pages, the last without a NextToken.
type fakeAPI struct {
	mu    sync.Mutex
	calls []string
	pages int // pages of every describe (0: 1)
}

func (f *fakeAPI) rec(op string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, op)
}

// next returns the NextToken after the page the call with token tok asked for.
func (f *fakeAPI) next(op string, tok *string) *string {
	f.rec(op)
	page := 1
	if tok != nil {
		fmt.Sscan(*tok, &page)
		page++
	}
	if page >= f.pages {
		return nil
	}
	return aws.String(fmt.Sprint(page))
}

func (f *fakeAPI) DescribeSecurityGroups(_ context.Context, in *ec2.DescribeSecurityGroupsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error) {
	return &ec2.DescribeSecurityGroupsOutput{NextToken: f.next("DescribeSecurityGroups", in.NextToken)}, nil
}

func (f *fakeAPI) DescribeSecurityGroupRules(_ context.Context, in *ec2.DescribeSecurityGroupRulesInput, _ ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupRulesOutput, error) {
	return &ec2.DescribeSecurityGroupRulesOutput{NextToken: f.next("DescribeSecurityGroupRules", in.NextToken)}, nil
}

func (f *fakeAPI) AuthorizeSecurityGroupIngress(context.Context, *ec2.AuthorizeSecurityGroupIngressInput, ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error) {
	f.rec("AuthorizeSecurityGroupIngress")
	return &ec2.AuthorizeSecurityGroupIngressOutput{}, nil
}

func (f *fakeAPI) AuthorizeSecurityGroupEgress(context.Context, *ec2.AuthorizeSecurityGroupEgressInput, ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupEgressOutput, error) {
	f.rec("AuthorizeSecurityGroupEgress")
	return &ec2.AuthorizeSecurityGroupEgressOutput{}, nil
}

func (f *fakeAPI) RevokeSecurityGroupIngress(context.Context, *ec2.RevokeSecurityGroupIngressInput, ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupIngressOutput, error) {
	f.rec("RevokeSecurityGroupIngress")
	return &ec2.RevokeSecurityGroupIngressOutput{}, nil
}

func (f *fakeAPI) RevokeSecurityGroupEgress(context.Context, *ec2.RevokeSecurityGroupEgressInput, ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupEgressOutput, error) {
	f.rec("RevokeSecurityGroupEgress")
	return &ec2.RevokeSecurityGroupEgressOutput{}, nil
}

func (f *fakeAPI) GetManagedPrefixListEntries(context.Context, *ec2.GetManagedPrefixListEntriesInput, ...func(*ec2.Options)) (*ec2.GetManagedPrefixListEntriesOutput, error) {
	f.rec("GetManagedPrefixListEntries")
	return &ec2.GetManagedPrefixListEntriesOutput{}, nil
}

func (f *fakeAPI) DescribeManagedPrefixLists(context.Context, *ec2.DescribeManagedPrefixListsInput, ...func(*ec2.Options)) (*ec2.DescribeManagedPrefixListsOutput, error) {
	f.rec("DescribeManagedPrefixLists")
	return &ec2.DescribeManagedPrefixListsOutput{}, nil
}

func (f *fakeAPI) ModifySecurityGroupRules(context.Context, *ec2.ModifySecurityGroupRulesInput, ...func(*ec2.Options)) (*ec2.ModifySecurityGroupRulesOutput, error) {
	f.rec("ModifySecurityGroupRules")
	return &ec2.ModifySecurityGroupRulesOutput{}, nil
}

// family is the bucket EC2 charges op to: 0 mutating, 1 ingress, 2 describe.
func family(op string) int {
	switch {
	case strings.HasPrefix(op, "Describe"):
		return 2
	case strings.HasSuffix(op, "SecurityGroupIngress"):
		return 1
	default:
		return 0
	}
}

// tokensTaken returns the tokens each bucket (mutating, ingress,
// describe) gave since it was full; the fake clock must not have moved.
func tokensTaken(c *ratelimit.Client) [3]float64 {
	mb, ib, db := c.Buckets()
	d := ratelimit.Defaults()
	return [3]float64{
		float64(d.Mutating.Burst) - mb.Tokens(),
		float64(d.Ingress.Burst) - ib.Tokens(),
		float64(d.Describe.Burst) - db.Tokens(),
	}
}

// callsByFamily counts ops per bucket family.
func callsByFamily(ops map[string]int) [3]float64 {
	var out [3]float64
	for op, n := range ops {
		out[family(op)] += float64(n)
	}
	return out
}

func TestClientBuckets(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// run makes calls; want the bucket balances after (mutating,
		// ingress, describe) and the sleeps.
		run                         func(c *ratelimit.Client)
		mutating, ingress, describe float64
		sleeps                      int
	}{
		{
			name: "ingress authorize and revoke use their own bucket",
			run: func(c *ratelimit.Client) {
				for range 25 {
					_, _ = c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{})
					_, _ = c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{})
				}
			},
			mutating: 50, ingress: 0, describe: 100,
		},
		{
			name: "egress and modify share the mutating bucket",
			run: func(c *ratelimit.Client) {
				for range 20 {
					_, _ = c.AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{})
					_, _ = c.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{})
				}
				for range 11 {
					_, _ = c.ModifySecurityGroupRules(ctx, &ec2.ModifySecurityGroupRulesInput{})
				}
			},
			mutating: -1, ingress: 50, describe: 100, sleeps: 1,
		},
		{
			name: "every describe call takes a describe token",
			run: func(c *ratelimit.Client) {
				for range 3 {
					_, _ = c.DescribeSecurityGroupRules(ctx, &ec2.DescribeSecurityGroupRulesInput{})
				}
				_, _ = c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{})
			},
			mutating: 50, ingress: 50, describe: 96,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			cfg := ratelimit.Defaults()
			cfg.Clock = clk
			fake := &fakeAPI{}
			c := ratelimit.New(fake, cfg)
			tc.run(c)
			// The fake clock moves only by the sleeps, so the balances are
			// exact when nobody slept.
			mb, ib, db := c.Buckets()
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

func TestCancelledWaitMakesNoCall(t *testing.T) {
	clk := newClock()
	cfg := ratelimit.Defaults()
	cfg.Clock = clk
	fake := &fakeAPI{}
	c := ratelimit.New(fake, cfg)
	for range 50 {
		if _, err := c.AuthorizeSecurityGroupIngress(context.Background(), &ec2.AuthorizeSecurityGroupIngressInput{}); err != nil {
			t.Fatal(err)
		}
	}
	clk.cancel = true
	if _, err := c.AuthorizeSecurityGroupIngress(context.Background(), &ec2.AuthorizeSecurityGroupIngressInput{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if len(fake.calls) != 50 {
		t.Fatalf("%d calls reached EC2, want 50", len(fake.calls))
	}
}

// TestAdapterPagesTakeOneTokenEach runs the EC2 adapter on the limiter:
// every page of a describe and every batch is one call and one token, the
// limiter knowing nothing of how the adapter splits its work.
func TestAdapterPagesTakeOneTokenEach(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	cfg := ratelimit.Defaults()
	cfg.Clock = clk
	fake := &fakeAPI{pages: 3}
	c := ratelimit.New(fake, cfg)
	groups := ec2sg.New(c)

	ids := make([]string, 450) // 3 filters of at most 200 ids
	for i := range ids {
		ids[i] = fmt.Sprintf("sg-%d", i)
	}
	if _, err := groups.DescribeRules(ctx, ids); err != nil {
		t.Fatal(err)
	}
	if _, err := groups.DescribeManagedRules(ctx, "ledger"); err != nil {
		t.Fatal(err)
	}
	if _, err := groups.DescribeGroups(ctx, ids[:5]); err != nil {
		t.Fatal(err)
	}
	ruleIDs := make([]string, 2500)
	for i := range ruleIDs {
		ruleIDs[i] = fmt.Sprintf("sgr-%d", i)
	}
	if err := groups.Revoke(ctx, "sg-1", rules.Ingress, ruleIDs); err != nil {
		t.Fatal(err)
	}
	if err := groups.Revoke(ctx, "sg-1", rules.Egress, ruleIDs[:3]); err != nil {
		t.Fatal(err)
	}

	ops := map[string]int{}
	for _, op := range fake.calls {
		ops[op]++
	}
	want := map[string]int{
		"DescribeSecurityGroupRules": 3*3 + 3, // 3 filters × 3 pages, 1 filter × 3 pages
		"DescribeSecurityGroups":     3,
		"RevokeSecurityGroupIngress": 3, // 2500 ids in batches of ec2sg.MaxEntries
		"RevokeSecurityGroupEgress":  1,
	}
	if !maps.Equal(ops, want) {
		t.Errorf("calls %v, want %v", ops, want)
	}
	if got, want := tokensTaken(c), callsByFamily(ops); got != want {
		t.Errorf("tokens taken (mutating, ingress, describe) %v, calls %v", got, want)
	}
}
