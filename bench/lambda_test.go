package bench_test

import (
	"os"
	"testing"
	"time"

	"github.com/sgrules/sgrules/internal/testutil/rie"
)

func TestMain(m *testing.M) { rie.Main(m) }

// BenchmarkLambdaInit starts each function's bootstrap (built for the host
// architecture as the Lambda build is for arm64) under the Runtime
// Interface Emulator and invokes it once with an event that needs no AWS
// call, reporting the init duration the emulator measures (process start
// to the runtime asking for its first event) and the first invoke's round
// trip. Run: go test -run '^$' -bench LambdaInit -benchtime 10x ./bench/
func BenchmarkLambdaInit(b *testing.B) {
	env := []string{
		"STATE_TABLE=ledger", "RULES_BUCKET=bench-rules", "RULES_PREFIX=rules/", "MAX_REVOKE=50",
		"AWS_REGION=eu-west-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_LAMBDA_LOG_FORMAT=JSON",
	}
	for _, fn := range []struct{ name, pkg, event string }{
		{"reconcile", "./functions/reconcile", "../functions/reconcile/testdata/s3-test-event.json"},
	} {
		b.Run(fn.name, func(b *testing.B) {
			bin := rie.Build(b, fn.pkg)
			payload, err := os.ReadFile(fn.event)
			if err != nil {
				b.Fatal(err)
			}
			var inits, firsts []time.Duration
			for b.Loop() {
				f := rie.Start(b, bin, env)
				t0 := time.Now()
				f.Invoke(b, payload)
				firsts = append(firsts, time.Since(t0))
				if d, ok := f.InitDuration(); ok {
					inits = append(inits, d)
				}
			}
			b.ReportMetric(ms(median(inits)), "ms-init-median")
			b.ReportMetric(ms(maxOf(inits)), "ms-init-max")
			b.ReportMetric(ms(median(firsts)), "ms-first-invoke-median")
		})
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}

func maxOf(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}
