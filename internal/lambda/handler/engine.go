package handler

import (
	"context"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/sgrules/sgrules/internal/reconcile"
)

// holderEngine names the Lambda invocation in every request it passes on
// (reconcile.Request.Holder = "lambda:" + request id), so a group lease
// says which invocation holds it. Outside Lambda (no request id) the
// engine's own holder is used. One engine serves every invocation.
type holderEngine struct{ Engine }

func (e holderEngine) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	req.Holder = holderOf(ctx, req.Holder)
	return e.Engine.Reconcile(ctx, req)
}

func holderOf(ctx context.Context, holder string) string {
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" && holder == "" {
		return "lambda:" + lc.AwsRequestID
	}
	return holder
}
