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

// motoPatch is bench/motopatch/sitecustomize.py: it makes moto's
// DynamoDB TransactWriteItems snapshot each table once per transaction
// instead of once per item (same snapshot, same rollback). Without it a
// 100-item transaction on a table of T items deep-copies 100·T items, and
// the ledger commits of N = 5000 take most of an hour.
//
//go:embed motopatch/sitecustomize.py
var motoPatch []byte

// MotoPatchNote describes the patch in reports.
const MotoPatchNote = "moto DynamoDB TransactWriteItems: table snapshot for rollback taken once per transaction, not once per item (bench/motopatch)"

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
