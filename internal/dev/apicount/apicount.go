package apicount

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// Counter counts calls. The zero value is ready to use.
type Counter struct {
	mu     sync.Mutex
	counts map[string]int
}

// Attach makes every client built from cfg count its calls in c.
func (c *Counter) Attach(cfg *aws.Config) {
	cfg.APIOptions = append(cfg.APIOptions, func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("sgrules/apicount",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				c.add(awsmiddleware.GetServiceID(ctx) + "." + awsmiddleware.GetOperationName(ctx))
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	})
}

func (c *Counter) add(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[string]int{}
	}
	c.counts[op]++
}

// Snapshot returns the counts so far, keyed "Service.Operation"
// (e.g. "EC2.AuthorizeSecurityGroupIngress").
func (c *Counter) Snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}

// Reset sets every count to zero.
func (c *Counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts = nil
}

// Sum adds the counts of the operations of service for which match is true
// (nil matches all).
func (c *Counter) Sum(service string, match func(op string) bool) int {
	n := 0
	for k, v := range c.Snapshot() {
		svc, op, _ := strings.Cut(k, ".")
		if svc == service && (match == nil || match(op)) {
			n += v
		}
	}
	return n
}

// IsEC2Mutating reports whether an EC2 operation changes security group rules.
func IsEC2Mutating(op string) bool {
	for _, p := range []string{"Authorize", "Revoke", "Modify", "UpdateSecurityGroupRuleDescriptions", "Create", "Delete"} {
		if strings.HasPrefix(op, p) {
			return true
		}
	}
	return false
}

// IsDynamoDBWrite reports whether a DynamoDB operation writes.
func IsDynamoDBWrite(op string) bool {
	switch op {
	case "PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem":
		return true
	}
	return false
}

// String renders the counts sorted, one "Service.Operation=N" per entry.
func (c *Counter) String() string {
	snap := c.Snapshot()
	keys := make([]string, 0, len(snap))
	for k := range snap {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, snap[k])
	}
	return strings.Join(parts, " ")
}
