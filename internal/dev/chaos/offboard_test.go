package chaos_test

import (
	"context"
	"slices"
	"sync/atomic"

	"github.com/sgrules/sgrules/internal/reconcile"
)

// An account offboarded mid-scenario (issue 21.6): in half of the
// scenarios with a hub (seed/7 even), from the second step on, a step of
// the hub may take its second account out of the target accounts
// (AllowAccount says no from then on). The hub's files of that account
// are deleted from the bucket (their events delivered like any), a
// refused move into it is put back as the version in force, and no file
// names the account any more. From then on the hub's runs and sweeps
// keep working (a failed final sweep without faults is a violation), and
// nothing changes in the account: its rules stay exactly as they were
// when it was offboarded (nothing revoked, though the files declaring
// them are gone; it is offboarded once the ledger holds permissions
// there) and the ledger keeps its records there. A sweep reports
// it offboarded (Fleet.Survey).
type offboarding struct {
	done atomic.Bool
	// rules are the second account's rules, perms the number of the
	// ledger's permission records there, when it was offboarded.
	rules []reconcile.ActualRule
	perms int
}

// offboard takes the second account out, maybe; false when it did not.
func (f *fleet) offboard() bool {
	s := f.s
	if f.off.done.Load() || s.seed/7%2 != 0 || s.step < 2 || f.rng.IntN(3) != 0 {
		return false
	}
	perms, err := f.led.For(f.remote).AllPermissions(context.Background())
	if err != nil {
		s.t.Fatalf("seed %d: read the fleet's ledger: %v", s.seed, err)
	}
	if len(perms) == 0 {
		return false // nothing there yet to be left alone: later
	}
	f.off.rules, f.off.perms = f.remoteRules(), len(perms)
	f.off.done.Store(true)
	for _, key := range sortedFileKeys(f.files) {
		switch ff := f.files[key]; {
		case ff.remote:
			delete(f.files, key)
			delete(f.refused, key)
			s.w.remove(key)
			f.pending = append(f.pending, key)
		case f.refused[key] != "":
			delete(f.refused, key)
			s.w.put(key, ff.render())
			f.pending = append(f.pending, key)
		}
	}
	s.tot.ops["accounts offboarded"]++
	s.logf("fleet: account %s offboarded (%d rules, %d permission records there); its files deleted", fleetAcct, len(f.off.rules), f.off.perms)
	return true
}

// checkOffboarded checks the offboarded account after the final sweeps:
// its rules and the ledger's records there are as they were.
func (f *fleet) checkOffboarded(ctx context.Context) {
	s := f.s
	for _, v := range ec2Violations(f.remoteRules(), declared{}, f.off.rules) {
		s.violate("offboarded account, after the final sweeps: %s", v)
	}
	perms, err := f.led.For(f.remote).AllPermissions(ctx)
	if err != nil {
		s.t.Fatalf("seed %d: read the fleet's ledger: %v", s.seed, err)
	}
	if len(perms) != f.off.perms {
		s.violate("offboarded account: the ledger holds %d permission records there, %d when it was offboarded", len(perms), f.off.perms)
	}
}

// checkReported checks that a sweep reports the offboarded account.
func (f *fleet) checkReported() {
	if !f.off.done.Load() {
		return
	}
	sv, err := f.fl.Survey(context.Background())
	if err != nil {
		f.s.violate("the hub's survey: %v", err)
		return
	}
	if !slices.Contains(sv.Offboarded, f.remote) || slices.Contains(sv.Targets, f.remote) {
		f.s.violate("the hub does not report account %s offboarded: %+v", fleetAcct, sv)
	}
}
