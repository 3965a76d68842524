package bench

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go/middleware"

	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
)

// traceSlow and traceLogf are Options.SlowCall and Options.Logf of the
// current Run, for the timers of the worlds it makes.
var (
	traceSlow time.Duration
	traceLogf func(string, ...any)
)

// opTimer sums the client-side time of every AWS call per
// "Service.Operation" (from the start of the SDK's Initialize step to its
// end: serialisation, retries, the round trip to moto, deserialisation).
// Calls made concurrently each count their own time, so the sum can exceed
// the wall time of a scenario. Against moto it shows where moto spends
// its time; it says nothing about real AWS latency.
//
// It also counts the pages real EC2 would return for describes: moto
// ignores MaxResults and answers DescribeSecurityGroupRules and
// DescribeSecurityGroups in one page, while EC2 returns at most
// ec2sg.MaxResults (1000) items per page, so a call that got k items
// stands for ceil(k/1000) calls there (at least 1).
type opTimer struct {
	mu sync.Mutex
	ms map[string]float64
	// extraPages counts, per operation, the calls real EC2 would add.
	extraPages map[string]int
	// items counts the DynamoDB items read (itemsRead).
	items int
	// slow, if > 0, reports every call slower than it through logf.
	slow time.Duration
	logf func(string, ...any)
}

func (t *opTimer) attach(cfg *aws.Config) {
	cfg.APIOptions = append(cfg.APIOptions, func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("sgbench/optiming",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				op := awsmiddleware.GetServiceID(ctx) + "." + awsmiddleware.GetOperationName(ctx)
				t0 := time.Now()
				out, md, err := next.HandleInitialize(ctx, in)
				t.add(op, time.Since(t0), extraPages(out.Result), itemsRead(out.Result))
				return out, md, err
			}), middleware.Before)
	})
}

// extraPages is the number of calls beyond the first that real EC2 would
// need to return what one moto describe returned.
func extraPages(result any) int {
	n := 0
	switch r := result.(type) {
	case *ec2.DescribeSecurityGroupRulesOutput:
		n = len(r.SecurityGroupRules)
	case *ec2.DescribeSecurityGroupsOutput:
		n = len(r.SecurityGroups)
	default:
		return 0
	}
	return max(0, (n+ec2sg.MaxResults-1)/ec2sg.MaxResults-1)
}

// itemsRead is the number of DynamoDB items one call read, as DynamoDB
// charges reads: a Scan or Query every item it examined (ScannedCount,
// before any filter), GetItem the item if there is one, BatchGetItem and
// TransactGetItems the items returned.
func itemsRead(result any) int {
	switch r := result.(type) {
	case *dynamodb.ScanOutput:
		return int(r.ScannedCount)
	case *dynamodb.QueryOutput:
		return int(r.ScannedCount)
	case *dynamodb.GetItemOutput:
		if r.Item != nil {
			return 1
		}
	case *dynamodb.BatchGetItemOutput:
		n := 0
		for _, items := range r.Responses {
			n += len(items)
		}
		return n
	case *dynamodb.TransactGetItemsOutput:
		n := 0
		for _, it := range r.Responses {
			if it.Item != nil {
				n++
			}
		}
		return n
	}
	return 0
}

func (t *opTimer) add(op string, d time.Duration, extra, items int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.items += items
	if t.ms == nil {
		t.ms = map[string]float64{}
		t.extraPages = map[string]int{}
	}
	if extra > 0 {
		t.extraPages[op] += extra
	}
	t.ms[op] += float64(d.Microseconds()) / 1000
	if t.slow > 0 && d >= t.slow && t.logf != nil {
		t.logf("    slow call %s %.1fs", op, d.Seconds())
	}
}

// take returns the time sums, extra pages and DynamoDB items read so far
// and starts again from zero.
func (t *opTimer) take() (map[string]float64, map[string]int, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ms, pages, items := t.ms, t.extraPages, t.items
	t.ms, t.extraPages, t.items = nil, nil, 0
	if ms == nil {
		ms, pages = map[string]float64{}, map[string]int{}
	}
	return ms, pages, items
}

// topOps renders the n operations that took longest, "op=ms" sorted by
// time.
func topOps(ms map[string]float64, n int) []string {
	keys := make([]string, 0, len(ms))
	for k := range ms {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return ms[keys[i]] > ms[keys[j]] })
	if len(keys) > n {
		keys = keys[:n]
	}
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k + "=" + formatMS(ms[k])
	}
	return out
}

func formatMS(v float64) string {
	return time.Duration(v * float64(time.Millisecond)).Round(time.Millisecond).String()
}
