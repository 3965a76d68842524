package main

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/sgrules/sgrules/internal/config"
	"github.com/sgrules/sgrules/internal/fleetrt"
	"github.com/sgrules/sgrules/pkg/rules"
)

func init() {
	register(&command{
		name:    "offboard",
		summary: "settle the ledger records of an account taken out of the target accounts",
		usage: `Usage: sgrules offboard --account ACCOUNT [--region REGION] (--revoke | --forget) [flags]

An account taken out of the target accounts (TARGET_ACCOUNTS) keeps its
ledger records: sweeps leave it alone and report it as offboarded, so
nothing is revoked there without a decision. offboard makes it:

  --revoke  revokes every rule the ledger proves sgrules created or adopted
            in the account (its rule id, still of the recorded permission;
            one call per group and direction) through the target role, while
            the hub may still assume it, then deletes the account's records.
            Rules the ledger does not name are never touched.
  --forget  deletes the account's records and leaves every rule in place
            (access is gone, or the rules stay with the account).

--region limits it to one region (default: every region with records). The
account must no longer be a target account (--target-accounts, env
TARGET_ACCOUNTS) nor the caller's: a sweep would otherwise apply its files
again or clean its rules up. Run it as the hub (the ledger's account and
region). See docs/multi-account.md.

Exit status: 0 done (or nothing recorded); 1 error in any region (the
others are done; run it again); 2 usage error.

Examples:
  sgrules offboard --table sgrules-ledger --account 111122223333 --revoke
  sgrules offboard --table sgrules-ledger --account 111122223333 --region eu-west-1 --forget
`,
		run: runOffboard,
	})
}

func runOffboard(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(commands["offboard"], stderr)
	var w wiring
	if err := w.addEngineFlags(fs); err != nil {
		fmt.Fprintf(stderr, "sgrules offboard: %v\n", err)
		return exitUsage
	}
	revoke := fs.Bool("revoke", false, "revoke the rules the ledger proves sgrules made in the account, then forget its records")
	forget := fs.Bool("forget", false, "forget the account's records, leaving every rule in place")
	if code, done := parseFlags(fs, interleave(fs, args), stdout); done {
		return code
	}
	usage := func(msg string) int {
		fmt.Fprintf(stderr, "sgrules offboard: %s\n", msg)
		return exitUsage
	}
	accounts, err := config.TargetAccounts(w.targetAccounts)
	switch {
	case err != nil:
		return usage("--target-accounts: " + err.Error())
	case w.table == "":
		return usage("no ledger: set --table (or STATE_TABLE)")
	case len(fs.Args()) > 0:
		return usage("takes no arguments")
	case *revoke == *forget:
		return usage("say what to do with the account's rules: --revoke or --forget")
	case w.account == "":
		return usage("--account is required")
	}
	if a, err := config.TargetAccounts(w.account); err != nil || len(a) != 1 {
		return usage("--account " + w.account + ": want one 12-digit account id")
	}
	if slices.Contains(accounts, w.account) {
		return usage("account " + w.account + " is still a target account (--target-accounts, env TARGET_ACCOUNTS): take it out first")
	}
	// The rule files play no part: only the ledger and EC2 are read.
	w.dir, w.bucket = "", "-"
	fl, err := w.fleet(ctx, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "sgrules offboard: %v\n", w.explain(err))
		return exitFail
	}
	done, err := fl.Offboard(ctx, w.account, w.region, *revoke)
	if err != nil {
		fmt.Fprintf(stderr, "sgrules offboard: %v\n", w.explain(err))
		return exitFail
	}
	if len(done) == 0 {
		fmt.Fprintf(stdout, "account %s: no records%s; nothing to do\n", w.account, inRegion(w.region))
		return exitOK
	}
	code := exitOK
	for _, d := range done {
		if d.Err != nil {
			fmt.Fprintf(stderr, "sgrules offboard: %v\n", w.explain(d.Err))
			code = exitFail
			continue
		}
		fmt.Fprintf(stdout, "account %s region %s: %s\n", d.Target.Account, d.Target.Region, offboardSummary(d, *revoke))
	}
	return code
}

func inRegion(r string) string {
	if r == "" {
		return ""
	}
	return " in region " + r
}

// offboardSummary is one target's line: "1 rule revoked, 1 record forgotten".
func offboardSummary(d fleetrt.OffboardedTarget, revoke bool) string {
	s := ""
	if revoke {
		s = count(len(d.Revoked), "rule") + " revoked, "
		if d.Gone > 0 {
			s += count(d.Gone, "recorded rule") + " already gone, "
		}
	}
	return s + count(d.Sources, "record") + " forgotten (" + count(d.Permissions, "owned permission") + ")"
}

func count(n int, word string) string { return fmt.Sprintf("%d %s", n, plural(n, word)) }

// offboardedNote is what a sweep says of an offboarded target.
func offboardedNote(t rules.Target) string {
	return fmt.Sprintf("account %s region %s: offboarded (no longer one of the target accounts): its ledger records are kept and not swept; "+
		"run sgrules offboard --account %s --revoke (or --forget)", t.Account, t.Region, t.Account)
}
