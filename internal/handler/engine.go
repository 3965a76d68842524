package handler

import (
	"context"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/sgrules/sgrules/internal/reconcile"
)

// PerInvocation returns an Engine that runs each request on a
// reconcile.Engine whose Holder is the Lambda request id (so a group lease
// names the invocation holding it), falling back to cfg.Holder outside
// Lambda. The configuration is checked once, here.
func PerInvocation(cfg reconcile.Config) (Engine, error) {
	if _, err := reconcile.New(cfg); err != nil {
		return nil, err
	}
	return perInvocation{cfg}, nil
}

type perInvocation struct{ cfg reconcile.Config }

func (p perInvocation) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	cfg := p.cfg
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		cfg.Holder = "lambda:" + lc.AwsRequestID
	}
	e, err := reconcile.New(cfg)
	if err != nil {
		return reconcile.Result{}, err
	}
	return e.Reconcile(ctx, req)
}
