package reconcile

import (
	"context"
	"fmt"

	"github.com/sgrules/sgrules/pkg/rules"
)

// checkRegion returns the located error of a file naming a region that
// does not exist (exists, nil: every name exists) or that is in another
// partition than partition ("": no check). The error is for a failed
// existence check.
func checkRegion(ctx context.Context, f *rules.File, exists func(context.Context, string) (bool, error), partition string) (rules.Diagnostics, error) {
	if f == nil || f.Target.Region == "" {
		return nil, nil
	}
	r := f.Target.Region
	found := true
	if exists != nil && (partition == "" || rules.RegionPartition(r) == partition) {
		var err error
		if found, err = exists(ctx, r); err != nil {
			return nil, fmt.Errorf("does region %s exist: %w", r, err)
		}
	}
	return rules.CheckRegion(f, func(string) bool { return found }, partition), nil
}
