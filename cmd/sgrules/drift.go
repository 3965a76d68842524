package main

import (
	"context"
	"fmt"
	"io"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/internal/report/render"
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

Exit status: 0 no drift (or drift reverted); 3 drift found, a rule
violating the policy left in place, or a correction the policy refused; 1 error, or
an invalid or held rule file (even with drift found: the report still
shows it); 2 usage error.

Examples:
  sgrules drift --bucket my-rules --table sgrules-ledger
  sgrules drift --table sgrules-ledger ./rules || echo "drift: $?"
  sgrules drift --revert --bucket my-rules --table sgrules-ledger
  sgrules drift --output json --bucket my-rules --table sgrules-ledger | jq .drifted
  sgrules drift --policy policy/sgrules.yaml --table sgrules-ledger ./rules
  sgrules drift --revert --account 111122223333 --region eu-west-1 --table sgrules-ledger ./rules
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
	// A sweep revokes what no file declares: with traffic evidence it
	// keeps the rules a refusal kept, as apply and the functions do.
	w.addEvidenceFlags(fs)
	if code, done := parseFlags(fs, interleave(fs, args), stdout); done {
		return code
	}
	if !checkOutput("drift", *output, stderr) {
		return exitUsage
	}
	msg := w.checkSource(fs)
	if msg == "" {
		msg = w.checkEvidence()
	}
	if msg != "" {
		fmt.Fprintf(stderr, "sgrules drift: %s\n", msg)
		return exitUsage
	}
	// Drift in paused groups is reported (marked paused) and never reverted.
	req := reconcile.Request{All: true, DryRun: !*revert, Reason: "cli drift"}
	msg = "checking for drift…"
	if *revert {
		msg = "reverting drift…"
	}
	runs, single, failed, ok := w.runFleet(ctx, "drift", req, msg, stderr)
	w.warnEvidence("drift", stderr)
	if !ok {
		return exitFail
	}
	docs := []report.TargetDoc{}
	problems, drifted, violations := 0, 0, false
	for _, r := range runs {
		res := r.Result
		// Policy violations left in place (reported, managed, paused, or
		// not revoked because this is a report) are found drift too.
		// So is drift the policy refuses to correct (a restore refused).
		if len(res.Policy.Violations) > res.Policy.Revoked() || (!*revert && len(res.Policy.Violations) > 0) || len(res.Policy.Refused) > 0 {
			violations = true
		}
		if *output == "json" {
			docs = append(docs, targetDoc(r, report.NewDriftDoc(res, r.pauses, *revert, r.names)))
		} else {
			if !single {
				heading(stdout, *output, r.Target)
			}
			render.Drift(stdout, res, r.pauses, render.Options{Color: useColor(stdout), Names: r.names, Past: *revert})
		}
		invalid, held := report.SourceProblems(res.Sources)
		problems += invalid + held
		drifted += len(res.Drift.Drifted)
	}
	if *output == "json" {
		var doc any = docs
		if single && len(docs) == 1 {
			doc = docs[0].Result
		}
		if err := report.JSON(stdout, doc); err != nil {
			fmt.Fprintf(stderr, "sgrules drift: %v\n", err)
			return exitFail
		}
	}
	// An invalid or held source (or a failed target) is exit 1, as for
	// plan and apply, and it outranks drift found (as an error outranks
	// changes with plan --detailed-exitcode): the report above still lists
	// the drift.
	if failed || problems > 0 {
		return exitFail
	}
	if !*revert && drifted > 0 || violations {
		return exitDrift
	}
	return exitOK
}
