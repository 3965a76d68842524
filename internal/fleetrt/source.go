package fleetrt

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/sgrules/sgrules/internal/config"
	"github.com/sgrules/sgrules/internal/reconcile"
)

// noPolicy is a Source that never lists or serves the policy object:
// with RULES_PREFIX=/ the rules prefix holds it, and it is the policy, not
// a rule file.
type noPolicy struct {
	reconcile.Source
	key string
}

// withoutPolicy returns src, leaving out c's policy key when the rules
// prefix holds it.
func withoutPolicy(c config.Config, src reconcile.Source) reconcile.Source {
	if c.PolicyKey == "" || !strings.HasPrefix(c.PolicyKey, c.Prefix) {
		return src
	}
	return noPolicy{Source: src, key: c.PolicyKey}
}

func (s noPolicy) List(ctx context.Context) ([]reconcile.ObjectInfo, error) {
	objs, err := s.Source.List(ctx)
	return slices.DeleteFunc(objs, func(o reconcile.ObjectInfo) bool { return o.Key == s.key }), err
}

func (s noPolicy) Get(ctx context.Context, key string) (reconcile.Object, error) {
	if key == s.key {
		return reconcile.Object{}, fmt.Errorf("%s is the guardrail policy, not a rule file: %w", key, reconcile.ErrNotFound)
	}
	return s.Source.Get(ctx, key)
}
