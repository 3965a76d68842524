package flowlog

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// benchLog is a day-like log: 200 interfaces, mostly accepted TCP to a
// few service ports from up to peers clients, in the custom format with
// flow-direction and tcp-flags, n records.
func benchLog(n, peers int) string {
	rnd := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	b.WriteString("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status vpc-id flow-direction tcp-flags pkt-srcaddr pkt-dstaddr\n")
	ports := []int{443, 80, 22, 5432, 8080, 53}
	for i := 0; i < n; i++ {
		eni := rnd.IntN(200)
		local := fmt.Sprintf("10.0.%d.%d", eni/250, eni%250+1)
		p := rnd.IntN(peers)
		peer := fmt.Sprintf("10.%d.%d.%d", p>>16&255, p>>8&255, p&255)
		port, eph := ports[rnd.IntN(len(ports))], 32768+rnd.IntN(28000)
		action := "ACCEPT"
		if rnd.IntN(20) == 0 {
			action = "REJECT"
		}
		start := 1764583200 + i/1000
		if rnd.IntN(2) == 0 {
			fmt.Fprintf(&b, "5 123456789012 eni-%017x %s %s %d %d 6 %d %d %d %d %s OK vpc-0a0a0a0a0a0a0a0a0 ingress 2 %s %s\n",
				eni, peer, local, eph, port, 1+rnd.IntN(50), 60+rnd.IntN(9000), start, start+60, action, peer, local)
		} else {
			fmt.Fprintf(&b, "5 123456789012 eni-%017x %s %s %d %d 6 %d %d %d %d %s OK vpc-0a0a0a0a0a0a0a0a0 egress 18 %s %s\n",
				eni, local, peer, port, eph, 1+rnd.IntN(50), 60+rnd.IntN(9000), start, start+60, action, local, peer)
		}
	}
	return b.String()
}

// BenchmarkAggregateGzip reads and aggregates a gzip-compressed log in
// one streaming pass; it reports records per second of CPU (the pass is
// sequential: per core). "ManyFlows" has nearly one distinct flow per
// record (random clients among 262,144), "FewFlows" 20 clients (at most 24,000 flows).
func BenchmarkAggregateGzip(b *testing.B) {
	for _, bc := range []struct {
		name  string
		peers int
	}{{"ManyFlows", 1 << 18}, {"FewFlows", 20}} {
		b.Run(bc.name, func(b *testing.B) {
			const n = 200_000
			data := gz(b, benchLog(n, bc.peers))
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			cpu0 := cpuTime()
			var flows int
			for b.Loop() {
				ag := NewAggregator(zeroTime, zeroTime)
				if err := ag.AddObject("bench.log.gz", bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
				if ag.Stats().Records != n {
					b.Fatalf("read %d records", ag.Stats().Records)
				}
				flows = len(ag.Flows())
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
			// On a shared machine wall time counts others' work too:
			// records per second of this process's CPU time is the
			// per-core rate.
			if cpu := cpuTime() - cpu0; cpu > 0 {
				b.ReportMetric(float64(n)*float64(b.N)/cpu.Seconds(), "records/cpu-s")
			}
			b.ReportMetric(float64(flows), "flows")
		})
	}
}

// BenchmarkDayGiB streams 1 GiB of log text (gzip-compressed: a 64 MiB
// chunk of 20 clients repeated as gzip members, as a day's objects
// would repeat its flows) through one aggregator, and reports records per
// CPU second and the peak heap: memory is bounded by distinct flows, not
// by records. Set FLOWLOG_BENCH_GIB to the GiB to read (it is skipped
// without it: it takes a minute).
func BenchmarkDayGiB(b *testing.B) {
	gib, _ := strconv.ParseFloat(os.Getenv("FLOWLOG_BENCH_GIB"), 64)
	if gib <= 0 {
		b.Skip("set FLOWLOG_BENCH_GIB=1 to stream 1 GiB")
	}
	text := benchLog(64<<20/170, 20)
	header, body, _ := strings.Cut(text, "\n")
	chunk := gz(b, body)
	first := gz(b, header+"\n"+body)
	records := int64(strings.Count(body, "\n"))
	reps := int(gib * (1 << 30) / float64(len(body)))
	text, header, body = "", "", ""
	for b.Loop() {
		// The peak is counted above what the test holds before reading
		// (the compressed chunks).
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		var peak uint64
		done := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			var ms runtime.MemStats
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			for {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
				select {
				case <-done:
					return
				case <-t.C:
				}
			}
		}()
		readers := []io.Reader{bytes.NewReader(first)}
		for range reps - 1 {
			readers = append(readers, bytes.NewReader(chunk))
		}
		ag := NewAggregator(zeroTime, zeroTime)
		cpu0 := cpuTime()
		if err := ag.AddObject("day.log.gz", io.MultiReader(readers...)); err != nil {
			b.Fatal(err)
		}
		cpu := cpuTime() - cpu0
		close(done)
		<-sampled
		n := records * int64(reps)
		if got := ag.Stats().Records; got != n {
			b.Fatalf("read %d records, want %d", got, n)
		}
		b.ReportMetric(float64(n)/cpu.Seconds(), "records/cpu-s")
		b.ReportMetric(float64(peak-min(peak, base.HeapInuse))/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(len(ag.Flows())), "flows")
		b.ReportMetric(float64(n), "records")
	}
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var zeroTime time.Time
