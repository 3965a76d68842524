package main

import (
	"context"
	"fmt"
	"io"

	"github.com/sgrules/sgrules/internal/cli/render"
	"github.com/sgrules/sgrules/internal/reconcile"
)

// Exit code of drift when drift was found (and not reverted).
const exitDrift = 3

func init() {
	register(&command{
		name:    "drift",
		summary: "report (or --revert) changes made outside sgrules",
		usage: `Usage: sgrules drift [--revert] [flags] [DIR]

Compares the security groups with what sgrules applied and reports every
rule changed outside sgrules: owned rules deleted, descriptions edited,
rules edited in place, undeclared rules in exclusive groups, rules tagged
as created by sgrules that nothing declares any more. Each drifted rule
is shown with its state before and after correction, then the number of
groups checked, of unmanaged rules (left alone) and the paused groups
(tag sgrules:pause-until with a future RFC 3339 time).

Without --revert nothing changes. With --revert the drift is corrected,
except in paused groups, as the scheduled drift function does.

With --policy FILE every rule of the groups read is also checked against
the guardrail policy's deny clauses (docs/policy.md): violations are listed
with what is done about them. With "enforce: revoke" in the policy,
--revert revokes the unmanaged ones (under the blast-radius guard, never in
paused groups); managed ones are reported until their file is fixed.

Exit status: 0 no drift (or drift reverted); 3 drift found, or a rule
violating the policy left in place; 1 error, or
an invalid or held rule file (even with drift found: the report still
shows it); 2 usage error.

Examples:
  sgrules drift --bucket my-rules --table sgrules-ledger
  sgrules drift --table sgrules-ledger ./rules || echo "drift: $?"
  sgrules drift --revert --bucket my-rules --table sgrules-ledger
  sgrules drift --output json --bucket my-rules --table sgrules-ledger | jq .drifted
  sgrules drift --policy policy/sgrules.yaml --table sgrules-ledger ./rules
`,
		run: runDrift,
	})
}

func runDrift(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(commands["drift"], stderr)
	var w wiring
	if err := w.addEngineFlags(fs); err != nil {
		fmt.Fprintf(stderr, "sgrules drift: %v\n", err)
		return exitUsage
	}
	output := fs.String("output", "table", "output format: table or json")
	revert := fs.Bool("revert", false, "correct the drift (paused groups excepted) instead of only reporting it")
	if code, done := parseFlags(fs, interleave(fs, args), stdout); done {
		return code
	}
	if !checkOutput("drift", *output, stderr) {
		return exitUsage
	}
	if msg := w.checkSource(fs); msg != "" {
		fmt.Fprintf(stderr, "sgrules drift: %s\n", msg)
		return exitUsage
	}
	eng, groups, err := w.engine(ctx, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "sgrules drift: %v\n", err)
		return exitFail
	}
	// Drift in paused groups is reported (marked paused) and never reverted.
	req := reconcile.Request{All: true, DryRun: !*revert, Reason: "cli drift"}
	msg := "checking for drift…"
	if *revert {
		msg = "reverting drift…"
	}
	stop := progress(stderr, msg)
	res, err := eng.Reconcile(ctx, req)
	stop()
	if err != nil {
		fmt.Fprintf(stderr, "sgrules drift: %v\n", w.explain(err))
		return exitFail
	}
	names, pauses := groupNames(ctx, groups, render.GroupIDs(res))
	if *output == "json" {
		if err := render.JSON(stdout, render.NewDriftDoc(res, pauses, *revert, names)); err != nil {
			fmt.Fprintf(stderr, "sgrules drift: %v\n", err)
			return exitFail
		}
	} else {
		render.Drift(stdout, res, pauses, render.Options{Color: useColor(stdout), Names: names, Past: *revert})
	}
	// An invalid or held source is exit 1, as for plan and apply, and it
	// outranks drift found (as an error outranks changes with plan
	// --detailed-exitcode): the report above still lists the drift.
	if invalid, held := render.SourceProblems(res.Sources); invalid+held > 0 {
		return exitFail
	}
	if !*revert && len(res.Drift.Drifted) > 0 {
		return exitDrift
	}
	// Policy violations left in place (reported, managed, paused, or not
	// revoked because this is a report) are found drift too.
	if len(res.Policy.Violations) > res.Policy.Revoked() || (!*revert && len(res.Policy.Violations) > 0) {
		return exitDrift
	}
	return exitOK
}
