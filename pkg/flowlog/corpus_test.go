package flowlog_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sgrules/sgrules/pkg/flowlog"
	"github.com/sgrules/sgrules/pkg/flowlog/flowlogtest"
)

// fakeWorld is the corpus world with made-up ids, as a Lookup.
type fakeWorld struct {
	ids    flowlogtest.IDs
	ifaces map[string]flowlog.Interface
	pls    map[string][]netip.Prefix
}

func newFakeWorld(t *testing.T, c *flowlogtest.Corpus) *fakeWorld {
	t.Helper()
	w := &fakeWorld{ids: flowlogtest.IDs{"vpc": "vpc-0a0a0a0a0a0a0a0a0"}, ifaces: map[string]flowlog.Interface{}, pls: map[string][]netip.Prefix{}}
	for i, g := range c.World.Groups {
		w.ids["sg:"+g] = fmt.Sprintf("sg-%017x", 0x100+i)
	}
	for i, in := range c.World.Interfaces {
		id := fmt.Sprintf("eni-%017x", 0x200+i)
		w.ids["eni:"+in.Name] = id
		fi := flowlog.Interface{ID: id, VPCID: w.ids["vpc"]}
		for _, g := range in.Groups {
			fi.Groups = append(fi.Groups, w.ids["sg:"+g])
		}
		for _, a := range in.Addrs {
			addr := netip.MustParseAddr(a)
			fi.Addrs = append(fi.Addrs, netip.PrefixFrom(addr, addr.BitLen()))
		}
		w.ifaces[id] = fi
	}
	i := 0
	for name, entries := range c.World.PrefixLists {
		id := fmt.Sprintf("pl-%017x", 0x300+i)
		i++
		w.ids["pl:"+name] = id
		for _, e := range entries {
			w.pls[id] = append(w.pls[id], netip.MustParsePrefix(e))
		}
	}
	return w
}

func (w *fakeWorld) Interfaces(_ context.Context, ids []string) (map[string]flowlog.Interface, error) {
	out := map[string]flowlog.Interface{}
	for _, id := range ids {
		if in, ok := w.ifaces[id]; ok {
			out[id] = in
		}
	}
	return out, nil
}

func (w *fakeWorld) InterfacesByAddress(_ context.Context, addrs []netip.Addr) (map[netip.Addr][]flowlog.Interface, error) {
	out := map[netip.Addr][]flowlog.Interface{}
	for _, a := range addrs {
		for _, in := range w.ifaces {
			if in.Has(a) {
				out[a] = append(out[a], in)
			}
		}
	}
	return out, nil
}

func (w *fakeWorld) PrefixLists(_ context.Context, ids []string) (map[string][]netip.Prefix, error) {
	out := map[string][]netip.Prefix{}
	for _, id := range ids {
		if e, ok := w.pls[id]; ok {
			out[id] = e
		}
	}
	return out, nil
}

func gzipBytes(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestCorpus reads every log of the labelled corpus (the web log
// gzip-compressed, as flow logs arrive) and checks the usage of every
// managed permission and the counts against expected.json: 100%
// agreement, no false "unused".
func TestCorpus(t *testing.T) {
	c, err := flowlogtest.Load()
	if err != nil {
		t.Fatal(err)
	}
	w := newFakeWorld(t, c)
	managed, err := c.Managed(w.ids)
	if err != nil {
		t.Fatal(err)
	}
	ag := flowlog.NewAggregator(time.Time{}, time.Time{})
	var names []string
	for n := range c.Logs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		data := []byte(w.ids.Expand(c.Logs[n]))
		if strings.HasPrefix(n, "web") {
			data = gzipBytes(t, data)
		}
		err := ag.AddObject(n, bytes.NewReader(data))
		if (err != nil) != (n == "broken.log") {
			t.Errorf("%s: %v", n, err)
		}
	}
	rep, err := flowlog.Attribute(context.Background(), ag.Flows(), managed, w)
	if err != nil {
		t.Fatal(err)
	}
	var results []flowlogtest.Result
	for _, u := range rep.Rules {
		if !strings.HasPrefix(u.RuleID, "sgr-") {
			t.Errorf("rule id lost: %+v", u.Rule)
		}
		results = append(results, flowlogtest.FromUsage(u))
	}
	for _, d := range c.Check(results, w.ids) {
		t.Error(d)
	}
	for _, d := range c.CheckStats(ag.Stats(), rep.Stats) {
		t.Error(d)
	}
}

// TestMerge: objects read by forks and merged (in any order) give what
// one aggregator reading them all gives.
func TestMerge(t *testing.T) {
	c, err := flowlogtest.Load()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range c.Logs {
		names = append(names, n)
	}
	sort.Strings(names)
	one := flowlog.NewAggregator(time.Unix(1764583200, 0), time.Unix(1764583200+4000, 0))
	merged := flowlog.NewAggregator(time.Unix(1764583200, 0), time.Unix(1764583200+4000, 0))
	var forks []*flowlog.Aggregator
	for _, n := range names {
		_ = one.AddObject(n, strings.NewReader(c.Logs[n]))
		f := merged.Fork()
		_ = f.AddObject(n, strings.NewReader(c.Logs[n]))
		f2 := merged.Fork() // an object split over two forks
		_ = f2.AddObject(n, strings.NewReader(c.Logs[n]))
		forks = append(forks, f, f2)
	}
	for i := len(forks) - 1; i >= 0; i-- {
		merged.Merge(forks[i])
	}
	if len(one.Flows()) == 0 || len(one.Flows()) != len(merged.Flows()) {
		t.Fatalf("%d flows, merged %d", len(one.Flows()), len(merged.Flows()))
	}
	for k, c1 := range one.Flows() {
		c2 := merged.Flows()[k]
		want := *c1
		want.Fwd, want.Rev, want.FwdBytes, want.RevBytes = 2*c1.Fwd, 2*c1.Rev, 2*c1.FwdBytes, 2*c1.RevBytes
		if c2 == nil || *c2 != want {
			t.Errorf("%+v: %+v, want %+v", k, c2, want)
		}
	}
	s1, s2 := one.Stats(), merged.Stats()
	if s2.Objects != 2*s1.Objects || s2.Accepted != 2*s1.Accepted || s2.OutsideWindow != 2*s1.OutsideWindow || s2.Malformed != 2*s1.Malformed ||
		s2.BadObjects != 2*s1.BadObjects || len(s2.Examples) != 5 || s2.Examples[0].Object != "private.log" || len(s2.BadObjectErrors) != 2 {
		t.Errorf("stats %+v\nmerged %+v", s1, s2)
	}
}
