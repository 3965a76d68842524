package ddbledger_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

func day(s string) time.Time {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestCountersAddOnce: an object's counters are added once however often
// it is delivered; other objects of the same day add up; Read sums the
// days of the window (whole days) with the earliest first and the latest
// last and its peer; another target's counters are apart.
func TestCountersAddOnce(t *testing.T) {
	l, _, _ := setup(t)
	ctx := context.Background()
	c := l.CountersFor(rules.Target{})
	https, ssh := key("sg-1", 443, "0.0.0.0/0"), key("sg-2", 22, "10.0.0.0/8")
	at := func(s string) time.Time { return time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC).Add(mustDur(s)) }
	obj1 := ddbledger.ObjectID{Bucket: "b", Key: "AWSLogs/1/x.log.gz", ETag: `"e1"`}
	one := []ddbledger.RuleCounter{
		{Key: https, RuleID: "sgr-1", Flows: 3, Bytes: 300, First: at("1h"), Last: at("2h"), LastPeer: netip.MustParseAddr("198.51.100.1")},
		{Key: ssh, RuleID: "sgr-2", Flows: 1, Bytes: 10, AmbiguousFlows: 1, First: at("1h"), Last: at("1h"), LastPeer: netip.MustParseAddr("10.1.1.1")},
		{Key: key("sg-3", 80, "0.0.0.0/0"), RuleID: "sgr-3"}, // no flows: not written
	}
	for i, want := range []bool{true, false, false} {
		added, err := c.Add(ctx, obj1, day("2025-12-01"), one)
		if err != nil || added != want {
			t.Fatalf("delivery %d: added %v, %v; want %v", i+1, added, err, want)
		}
	}
	// Same key, new content (new ETag): counted.
	obj2 := ddbledger.ObjectID{Bucket: "b", Key: "AWSLogs/1/x.log.gz", ETag: `"e2"`}
	if added, err := c.Add(ctx, obj2, day("2025-12-01"), []ddbledger.RuleCounter{
		{Key: https, RuleID: "sgr-1", Flows: 2, Bytes: 20, First: at("30m"), Last: at("90m"), LastPeer: netip.MustParseAddr("198.51.100.2")}}); err != nil || !added {
		t.Fatalf("second object: %v %v", added, err)
	}
	obj3 := ddbledger.ObjectID{Bucket: "b", Key: "AWSLogs/1/y.log.gz", ETag: `"e3"`}
	if _, err := c.Add(ctx, obj3, day("2025-12-03"), []ddbledger.RuleCounter{
		{Key: https, RuleID: "sgr-1", Flows: 5, Bytes: 5, First: at("49h"), Last: at("50h"), LastPeer: netip.MustParseAddr("198.51.100.3")}}); err != nil {
		t.Fatal(err)
	}
	// Another target: apart.
	if _, err := l.CountersFor(rules.Target{Account: "111122223333", Region: "eu-west-1"}).Add(ctx, obj1, day("2025-12-01"), one); err != nil {
		t.Fatal(err)
	}

	got, err := c.Read(ctx, []string{"sg-1", "sg-2", "sg-3"}, at("23h"), at("25h")) // Dec 1 and 2
	if err != nil {
		t.Fatal(err)
	}
	want := []ddbledger.RuleCounter{
		{Key: https, RuleID: "sgr-1", Flows: 5, Bytes: 320, First: at("30m"), Last: at("2h"), LastPeer: netip.MustParseAddr("198.51.100.1")},
		{Key: ssh, RuleID: "sgr-2", Flows: 1, Bytes: 10, AmbiguousFlows: 1, First: at("1h"), Last: at("1h"), LastPeer: netip.MustParseAddr("10.1.1.1")},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("read\n%v\nwant\n%v", got, want)
	}
	got, err = c.Read(ctx, []string{"sg-1", "sg-1"}, day("2025-11-01"), day("2025-12-31"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Flows != 10 || !got[0].Last.Equal(at("50h")) || got[0].LastPeer.String() != "198.51.100.3" {
		t.Errorf("whole month: %v", got)
	}
}

// TestCountersConcurrent: objects of the same group and day added at
// once all count (a lost race is merged again), each once.
func TestCountersConcurrent(t *testing.T) {
	l, _, _ := setup(t)
	ctx := context.Background()
	c := l.CountersFor(rules.Target{})
	k := key("sg-1", 443, "0.0.0.0/0")
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			obj := ddbledger.ObjectID{Bucket: "b", Key: fmt.Sprintf("o%d", i%4), ETag: "e"} // each object twice
			if _, err := c.Add(ctx, obj, day("2025-12-01"), []ddbledger.RuleCounter{{Key: k, RuleID: "sgr-1", Flows: 1, Bytes: 1}}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, err := c.Read(ctx, []string{"sg-1"}, day("2025-12-01"), day("2025-12-01"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Flows != 4 {
		t.Errorf("got %v, want 4 flows (4 objects, each delivered twice)", got)
	}
}

func mustDur(s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return d
}

// TestEvidence: the counters answer the engine's question per rule: used
// (by rule id, or by permission), unused in a group with counters, unknown
// in a group without any; a last flow before since is no use.
func TestEvidence(t *testing.T) {
	l, _, _ := setup(t)
	ctx := context.Background()
	target := rules.Target{Account: "111122223333", Region: "eu-west-1"}
	c := l.CountersFor(target)
	at := func(s string) time.Time { return time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC).Add(mustDur(s)) }
	https, http, old, ssh := key("sg-1", 443, "0.0.0.0/0"), key("sg-1", 80, "0.0.0.0/0"), key("sg-1", 8080, "0.0.0.0/0"), key("sg-2", 22, "10.0.0.0/8")
	if _, err := c.Add(ctx, ddbledger.ObjectID{Bucket: "b", Key: "k1", ETag: "e"}, day("2025-12-01"), []ddbledger.RuleCounter{
		{Key: https, RuleID: "sgr-1", Flows: 3, Bytes: 300, Last: at("10h"), LastPeer: netip.MustParseAddr("198.51.100.1")},
		{Key: old, RuleID: "sgr-3", Flows: 1, Bytes: 1, Last: at("1h")},
	}); err != nil {
		t.Fatal(err)
	}
	ev := l.Evidence()
	got, err := ev.RuleUsage(ctx, target, []reconcile.UsageRule{
		{RuleID: "sgr-1", Key: key("sg-1", 443, "10.0.0.0/8")}, // modified since: matched by id
		{RuleID: "", Key: https},                               // by permission
		{RuleID: "sgr-2", Key: http},                           // unused, group counted
		{RuleID: "sgr-3", Key: old},                            // last flow before since
		{RuleID: "sgr-4", Key: ssh},                            // group without counters: unknown
	}, at("2h"))
	if err != nil {
		t.Fatal(err)
	}
	want := []reconcile.RuleUse{
		{Known: true, Flows: 3, Bytes: 300, Last: at("10h"), Peer: "198.51.100.1"},
		{Known: true, Flows: 3, Bytes: 300, Last: at("10h"), Peer: "198.51.100.1"},
		{Known: true},
		{Known: true},
		{},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got\n%v\nwant\n%v", got, want)
	}
	// Another target has none of these counters.
	got, err = ev.RuleUsage(ctx, rules.Target{}, []reconcile.UsageRule{{RuleID: "sgr-1", Key: https}}, at("2h"))
	if err != nil || got[0].Known {
		t.Errorf("home target: %v %v", got, err)
	}
}
