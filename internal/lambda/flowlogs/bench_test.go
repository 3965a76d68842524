package flowlogs_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/flowsrc"
	"github.com/sgrules/sgrules/internal/lambda/flowlogs"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// The function's path without the network: one object from a fake S3,
// interfaces from a fake EC2, the ledger a fake. What it measures is the
// object's streaming pass (gzip, parsing, folding), attribution and the
// counters handed to the ledger.

const benchInterfaces = 200

type fakeS3 struct{ data []byte }

func (f fakeS3) GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(f.data)), ETag: aws.String(`"e"`)}, nil
}

type fakeEC2 struct{}

func (fakeEC2) DescribeNetworkInterfaces(_ context.Context, in *ec2.DescribeNetworkInterfacesInput, _ ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error) {
	var out ec2.DescribeNetworkInterfacesOutput
	for _, f := range in.Filters {
		if aws.ToString(f.Name) != "network-interface-id" {
			continue
		}
		for _, id := range f.Values {
			var n int
			fmt.Sscanf(id, "eni-%x", &n)
			out.NetworkInterfaces = append(out.NetworkInterfaces, ec2types.NetworkInterface{NetworkInterfaceId: aws.String(id),
				VpcId: aws.String("vpc-1"), PrivateIpAddress: aws.String(fmt.Sprintf("10.0.%d.%d", n/250, n%250+1)),
				Groups: []ec2types.GroupIdentifier{{GroupId: aws.String("sg-web")}}})
		}
	}
	return &out, nil
}

func (fakeEC2) GetManagedPrefixListEntries(context.Context, *ec2.GetManagedPrefixListEntriesInput, ...func(*ec2.Options)) (*ec2.GetManagedPrefixListEntriesOutput, error) {
	return &ec2.GetManagedPrefixListEntriesOutput{}, nil
}

type fakeTargets struct{}

func (fakeTargets) EC2(context.Context, rules.Target) (flowsrc.EC2API, error) { return fakeEC2{}, nil }

type fakeLedger struct{ credited atomic.Int64 }

func (*fakeLedger) GroupPermissions(context.Context, rules.Target, []string) ([]reconcile.OwnedPermission, error) {
	var out []reconcile.OwnedPermission
	for i, port := range []int32{443, 80, 22, 5432, 8080, 53} {
		out = append(out, reconcile.OwnedPermission{RuleID: fmt.Sprintf("sgr-%d", i), Key: rules.Key{GroupID: "sg-web", Direction: rules.Ingress,
			Protocol: rules.ProtoTCP, FromPort: port, ToPort: port, Peer: rules.Peer{Kind: rules.PeerCIDR4, Value: "10.0.0.0/8"}}})
	}
	return out, nil
}

func (l *fakeLedger) AddCounters(_ context.Context, _ rules.Target, _ ddbledger.ObjectID, _ time.Time, counts []ddbledger.RuleCounter) (bool, error) {
	l.credited.Add(int64(len(counts)))
	return true, nil
}

// benchObject is one gzip log object of n records, inbound TCP to six
// service ports of 200 interfaces from peers clients (default version 2
// format: the ports tell the initiator).
func benchObject(b testing.TB, n, peers int) []byte {
	rnd := rand.New(rand.NewPCG(3, 4))
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	fmt.Fprintln(zw, "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status")
	ports := []int{443, 80, 22, 5432, 8080, 53}
	for i := range n {
		eni := rnd.IntN(benchInterfaces)
		p := rnd.IntN(peers)
		start := 1764583200 + i/1000
		fmt.Fprintf(zw, "2 123456789012 eni-%017x 10.%d.%d.%d 10.0.%d.%d %d %d 6 %d %d %d %d ACCEPT OK\n", eni, 1+p>>16&127, p>>8&255, p&255,
			eni/250, eni%250+1, 32768+rnd.IntN(28000), ports[rnd.IntN(len(ports))], 1+rnd.IntN(50), 60+rnd.IntN(9000), start, start+60)
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkObject: records per second of CPU (user and system time of the
// process: the pass is sequential, so per core, and a loaded machine does
// not skew it) of the function's pass over one object, and the peak heap
// while it runs.
func BenchmarkObject(b *testing.B) {
	for _, bc := range []struct {
		name  string
		peers int
	}{{"FewFlows", 20}, {"ManyFlows", 1 << 18}} {
		b.Run(bc.name, func(b *testing.B) {
			const n = 300_000
			data := benchObject(b, n, bc.peers)
			led := &fakeLedger{}
			h := &flowlogs.Handler{S3: fakeS3{data}, Ledger: led, Targets: fakeTargets{}, Logger: slog.New(slog.DiscardHandler)}
			key := "AWSLogs/123456789012/vpcflowlogs/eu-west-1/2025/12/01/x.log.gz"
			runtime.GC()
			var base runtime.MemStats
			runtime.ReadMemStats(&base)
			var peak atomic.Uint64
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				var m runtime.MemStats
				for {
					select {
					case <-stop:
						return
					case <-time.After(2 * time.Millisecond):
						runtime.ReadMemStats(&m)
						if m.HeapInuse > peak.Load() {
							peak.Store(m.HeapInuse)
						}
					}
				}
			}()
			b.SetBytes(int64(len(data)))
			cpu0 := cpuTime(b)
			b.ResetTimer()
			for range b.N {
				if err := h.Object(context.Background(), flowlogs.Notification{Bucket: "b", Key: key}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			cpu := cpuTime(b) - cpu0
			close(stop)
			<-done
			if led.credited.Load() == 0 {
				b.Fatal("nothing credited")
			}
			b.ReportMetric(float64(n)*float64(b.N)/cpu.Seconds(), "records/cpu-s")
			b.ReportMetric(float64(peak.Load()-min(peak.Load(), base.HeapInuse))/(1<<20), "MiB-heap-peak")
		})
	}
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
