package bench

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/sgrules/sgrules/internal/testutil/motoserver"
)

// motoPatch is bench/motopatch/sitecustomize.py: it removes three
// quadratic spots of moto with index lookups that give the same results:
// DynamoDB TransactWriteItems deep-copies the table once per item (100·T
// item copies per call on a table of T items), EC2 looks up each rule's
// tags by scanning every tag of the region (R² to describe R rules), and
// DynamoDB Query walks and sorts the whole table for one partition. See
// docs/benchmarks.md for the measurements.
//
//go:embed motopatch/sitecustomize.py
var motoPatch []byte

// MotoPatchNote describes the patch in reports.
const MotoPatchNote = "bench/motopatch: moto DynamoDB TransactWriteItems snapshots each table once per transaction (not per item); EC2 get_tags reads the resource's own tags (not a scan of all); DynamoDB Query walks the partition (not the table). Same responses."

// envMu serialises the PYTHONPATH change around starting moto_server.
var envMu sync.Mutex

// startMoto starts moto_server, with the patch when patch is true. The
// child inherits the environment at start, so PYTHONPATH is set only
// around StartProcess. The returned cleanup stops moto and removes the
// patch directory.
func startMoto(ctx context.Context, patch bool) (*motoserver.Process, func(), error) {
	if !patch {
		p, err := motoserver.StartProcess(ctx)
		if err != nil {
			return nil, nil, err
		}
		return p, p.Stop, nil
	}
	dir, err := os.MkdirTemp("", "sgbench-motopatch-")
	if err != nil {
		return nil, nil, fmt.Errorf("moto patch: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sitecustomize.py"), motoPatch, 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("moto patch: %w", err)
	}
	envMu.Lock()
	old, had := os.LookupEnv("PYTHONPATH")
	pp := dir
	if had && old != "" {
		pp = dir + string(os.PathListSeparator) + old
	}
	os.Setenv("PYTHONPATH", pp)
	p, err := motoserver.StartProcess(ctx)
	if had {
		os.Setenv("PYTHONPATH", old)
	} else {
		os.Unsetenv("PYTHONPATH")
	}
	envMu.Unlock()
	if err != nil {
		os.RemoveAll(dir)
		if strings.Contains(err.Error(), "motopatch") {
			return nil, nil, fmt.Errorf("moto patch does not apply to this moto (run with -moto-patch=false): %w", err)
		}
		return nil, nil, err
	}
	return p, func() { p.Stop(); os.RemoveAll(dir) }, nil
}
