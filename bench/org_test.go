package bench

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/sgrules/sgrules/internal/dev/motoproc"
)

// TestOrgFanOutItemsPerTargetFlat runs the organisation sweep of make
// bench small (10 rules per target) at 2 and 6 targets against moto: the
// fan-out, driven as the drift function is (the planner's Survey, then
// one sweep message per target carrying its route), reads per target
// about the same DynamoDB items at 6 targets as at 2 (at most 1.25x, the
// bound issue 24 sets from 2 to 30 targets), and the sequential sweep's
// items grow linearly with the targets, not with their square. Counts,
// never time.
func TestOrgFanOutItemsPerTargetFlat(t *testing.T) {
	ctx := context.Background()
	p, stop, err := startMoto(ctx, true)
	if errors.Is(err, motoproc.ErrNotInstalled) && os.Getenv("CI") == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	scale := map[int]OrgScale{}
	for _, size := range []struct{ accounts, regions int }{{2, 1}, {2, 3}} {
		if err := p.Reset(ctx); err != nil {
			t.Fatal(err)
		}
		org, err := runOrg(ctx, p.URL, OrgOptions{Accounts: size.accounts, Regions: size.regions, Rules: 10, Workers: 2}, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		s := scaleOf(org)
		t.Logf("%d targets: fan-out %d items (%.1f per target), sequential %d (%.1f per target)", s.Targets,
			s.FanOutItemsRead, s.FanOutItemsReadPerTarget, s.SeqItemsRead, s.SeqItemsReadPerTarget)
		scale[s.Targets] = s
	}
	small, large := scale[2], scale[6]
	if large.FanOutItemsReadPerTarget > 1.25*small.FanOutItemsReadPerTarget {
		t.Errorf("fan-out items read per target: %.1f at 2 targets, %.1f at 6 (more than 1.25x)",
			small.FanOutItemsReadPerTarget, large.FanOutItemsReadPerTarget)
	}
	if large.SeqItemsReadPerTarget > 1.25*small.SeqItemsReadPerTarget {
		t.Errorf("sequential items read per target: %.1f at 2 targets, %.1f at 6 (more than 1.25x)",
			small.SeqItemsReadPerTarget, large.SeqItemsReadPerTarget)
	}
}
