package apicount

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
)

// Items counts the DynamoDB items read: what a Scan or a Query evaluated
// (ScannedCount, before any filter: what DynamoDB reads and bills), one
// per GetItem that found an item, and the items of BatchGetItem. The zero
// value is ready to use.
type Items struct {
	mu    sync.Mutex
	n     int
	scans int
}

// Attach makes every DynamoDB client built from cfg count its reads in c.
func (c *Items) Attach(cfg *aws.Config) {
	cfg.APIOptions = append(cfg.APIOptions, func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("sgrules/apicount-items",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleInitialize(ctx, in)
				if err == nil {
					c.count(out.Result)
				}
				return out, md, err
			}), middleware.After)
	})
}

func (c *Items) count(res any) {
	n, scan := 0, 0
	switch r := res.(type) {
	case *dynamodb.ScanOutput:
		n, scan = int(r.ScannedCount), 1
	case *dynamodb.QueryOutput:
		n = int(r.ScannedCount)
	case *dynamodb.GetItemOutput:
		if r.Item != nil {
			n = 1
		}
	case *dynamodb.BatchGetItemOutput:
		for _, items := range r.Responses {
			n += len(items)
		}
	default:
		return
	}
	c.mu.Lock()
	c.n += n
	c.scans += scan
	c.mu.Unlock()
}

// Read returns the items read so far.
func (c *Items) Read() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// Scans returns the Scan calls so far.
func (c *Items) Scans() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.scans
}

// Reset sets the counts to zero.
func (c *Items) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n, c.scans = 0, 0
}
