package ddbledger

import "time"

// SetClock makes l read the time leases expire by from now.
func SetClock(l *Ledger, now func() time.Time) { l.now = now }
