package ratelimit

import (
	"context"
	"math"
	"sync"
	"time"
)

// Clock is the time source of a Bucket; tests use a fake one.
type Clock interface {
	Now() time.Time
	// Sleep waits for d, or until ctx is done (then it returns ctx.Err()).
	Sleep(ctx context.Context, d time.Duration) error
}

// SystemClock is the real clock.
type SystemClock struct{}

func (SystemClock) Now() time.Time { return time.Now() }

func (SystemClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Limit is the shape of one bucket. A Burst or PerSecond of zero or less
// means no limit.
type Limit struct {
	// Burst is the bucket's capacity: calls that may go at once.
	Burst int
	// PerSecond is the refill rate: the sustained calls per second.
	PerSecond float64
}

func (l Limit) unlimited() bool { return l.Burst <= 0 || l.PerSecond <= 0 }

// Bucket is a token bucket. It starts full. Waiters reserve their tokens
// in the order they arrive (the balance may go negative: a later waiter
// waits for the earlier ones' tokens too), so concurrent callers are served
// first come, first served without a queue. Safe for concurrent use.
type Bucket struct {
	limit Limit
	clock Clock

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// NewBucket returns a full bucket; a nil clock means SystemClock. It
// returns nil for an unlimited Limit; a nil *Bucket never waits.
func NewBucket(l Limit, clock Clock) *Bucket {
	if l.unlimited() {
		return nil
	}
	if clock == nil {
		clock = SystemClock{}
	}
	return &Bucket{limit: l, clock: clock, tokens: float64(l.Burst), last: clock.Now()}
}

// refill adds the tokens earned since last; b.mu is held.
func (b *Bucket) refill() {
	now := b.clock.Now()
	if el := now.Sub(b.last); el > 0 {
		b.tokens = math.Min(float64(b.limit.Burst), b.tokens+el.Seconds()*b.limit.PerSecond)
		b.last = now
	}
}

// Wait takes n tokens, sleeping until they are available. If ctx ends
// first, the tokens are given back and ctx.Err() is returned. n may exceed
// Burst (it then waits for the refill).
func (b *Bucket) Wait(ctx context.Context, n int) error {
	if b == nil || n <= 0 {
		return nil
	}
	d := b.reserve(n)
	if d <= 0 {
		return nil
	}
	if err := b.clock.Sleep(ctx, d); err != nil {
		b.mu.Lock()
		b.refill()
		b.tokens = math.Min(float64(b.limit.Burst), b.tokens+float64(n))
		b.mu.Unlock()
		return err
	}
	return nil
}

// reserve takes n tokens and returns how long to wait until the balance
// they leave is back at zero.
func (b *Bucket) reserve(n int) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill()
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(math.Ceil(-b.tokens / b.limit.PerSecond * float64(time.Second)))
}

// Tokens returns the tokens available now (negative when callers owe).
func (b *Bucket) Tokens() float64 {
	if b == nil {
		return math.Inf(1)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill()
	return b.tokens
}
