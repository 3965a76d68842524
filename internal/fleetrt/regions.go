package fleetrt

import (
	"context"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/pkg/rules"
)

// RegionCheck tells whether a region a rule file names exists: offline a
// file may name any region name (rules.IsRegionName), so plan, apply,
// the functions and validate --online ask here.
type RegionCheck struct {
	cfg aws.Config
	api ec2sg.RegionsAPI

	mu    sync.Mutex
	names []string // what DescribeRegions answered (nil: not asked yet)
}

// NewRegionCheck asks DescribeRegions with cfg (the hub's configuration).
func NewRegionCheck(cfg aws.Config) *RegionCheck {
	return &RegionCheck{cfg: cfg, api: ec2.NewFromConfig(cfg)}
}

// Exists reports whether region exists in the partition of cfg's
// credentials: cfg's own region and the regions the SDK knows
// (rules.Regions; their partition is checked by the caller) without a
// call, any other name by one DescribeRegions (AllRegions) call, asked
// once (a failure is asked again on the next use).
func (c *RegionCheck) Exists(ctx context.Context, region string) (bool, error) {
	if region == c.cfg.Region || rules.IsRegion(region) {
		return true, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.names == nil {
		names, err := ec2sg.Regions(ctx, c.api)
		if err != nil {
			return false, err
		}
		c.names = names
	}
	return slices.Contains(c.names, region), nil
}
