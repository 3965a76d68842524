package flowlog

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"
)

// benchLog is a day-like log: 200 interfaces, mostly accepted TCP to a
// few service ports from many clients, in the custom format with
// flow-direction and tcp-flags, n records.
func benchLog(n int) string {
	rnd := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	b.WriteString("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status vpc-id flow-direction tcp-flags pkt-srcaddr pkt-dstaddr\n")
	ports := []int{443, 80, 22, 5432, 8080, 53}
	for i := 0; i < n; i++ {
		eni := rnd.IntN(200)
		local := fmt.Sprintf("10.0.%d.%d", eni/250, eni%250+1)
		peer := fmt.Sprintf("10.%d.%d.%d", rnd.IntN(4), rnd.IntN(256), rnd.IntN(256))
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
// one streaming pass; it reports records per second (on one core: the
// pass is sequential).
func BenchmarkAggregateGzip(b *testing.B) {
	const n = 200_000
	data := gz(b, benchLog(n))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		ag := NewAggregator(zeroTime, zeroTime)
		if err := ag.AddObject("bench.log.gz", bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
		if ag.Stats().Records != n {
			b.Fatalf("read %d records", ag.Stats().Records)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	// On a shared machine wall time counts others' work too: records per
	// second of this process's CPU time is the per-core rate.
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(n)*float64(b.N)/cpu.Seconds(), "records/cpu-s")
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
