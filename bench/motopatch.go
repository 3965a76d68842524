package bench

import (
	"context"
	_ "embed"
	"fmt"
	"strings"

	"github.com/sgrules/sgrules/internal/dev/motoproc"
)

// motoPatch is bench/motopatch/sgbench_motopatch.py: it removes three
// quadratic spots of moto with index lookups that give the same results:
// DynamoDB TransactWriteItems deep-copies the table once per item (100·T
// item copies per call on a table of T items), EC2 looks up each rule's
// tags by scanning every tag of the region (R² to describe R rules), and
// DynamoDB Query walks and sorts the whole table for one partition. See
// docs/benchmarks.md for the measurements.
//
//go:embed motopatch/sgbench_motopatch.py
var motoPatch []byte

// MotoPatchNote describes the patch in reports.
const MotoPatchNote = "bench/motopatch: moto DynamoDB TransactWriteItems snapshots each table once per transaction (not per item); EC2 get_tags reads the resource's own tags (not a scan of all); DynamoDB Query walks the partition (not the table). Same responses."

// startMoto starts moto_server (always with motoproc.Atomic), with
// bench/motopatch too when patch is true. The returned cleanup stops moto.
func startMoto(ctx context.Context, patch bool) (*motoproc.Process, func(), error) {
	var patches []motoproc.Patch
	if patch {
		patches = append(patches, motoproc.Patch{Module: "sgbench_motopatch", Source: motoPatch, Applied: "sgbench motopatch: applied"})
	}
	p, err := motoproc.StartProcess(ctx, patches...)
	if err != nil {
		if patch && strings.Contains(err.Error(), "sgbench motopatch") {
			return nil, nil, fmt.Errorf("moto patch does not apply to this moto (run with -moto-patch=false): %w", err)
		}
		return nil, nil, err
	}
	return p, p.Stop, nil
}
