package ddbledger

import (
	"context"
	"time"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// SetClock makes l read the time leases expire by from now.
func SetClock(l *Ledger, now func() time.Time) { l.now = now }

// targetLedger restates reconcile.TargetLedger (added to internal/reconcile
// on another branch): *Ledger must satisfy it. Once it lands, this becomes
// var _ reconcile.TargetLedger = (*Ledger)(nil) in ledger.go.
type targetLedger interface {
	For(t rules.Target) reconcile.Ledger
	ListAllSources(ctx context.Context) (map[rules.Target][]reconcile.SourceRecord, error)
}

var _ targetLedger = (*Ledger)(nil)
