package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/internal/report/render"
)

// Exit code of plan --detailed-exitcode when the plan has changes.
const exitChanges = 2

// detailedExitcode reports whether args ask for --detailed-exitcode (even
// when they do not parse: a usage error then exits 1, not 2).
func detailedExitcode(args []string) bool {
	on := false
	for _, a := range args {
		if a == "--" {
			break
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "detailed-exitcode" {
			continue
		}
		on = !hasVal
		if hasVal {
			on, _ = strconv.ParseBool(val)
		}
	}
	return on
}

func init() {
	register(&command{
		name:    "plan",
		summary: "show what apply would change, without changing anything",
		usage: `Usage: sgrules plan [flags] [DIR]

Reads every rule file (from S3, or from the local directory DIR), the
ownership ledger and the security groups, and shows what "sgrules apply"
would do, like "terraform plan", per security group:

  + authorize a rule            - revoke a rule
  ~ update a description        = adopt an existing rule (ledger only;
                                  now managed: removing it from the
                                  files revokes it)
  x forget a ledger record whose rule is already gone

with the rule (direction, protocol, ports, peer), its owners
("file#rule") and the reason. Invalid or held rule files are listed with
their diagnostics, conflicting descriptions too, and a summary line ends
the plan. Nothing in EC2 or the ledger changes. Rule files that are gone
(deleted, or not in DIR) are named first. A plan the mass-revoke guards
hold (see apply) is shown held; --allow-mass-revoke plans what
"apply --allow-mass-revoke" would do.

--output markdown writes the plan for a pull request comment: a summary
per group (to add, to change, to remove), rule files not applied,
warnings, the table of changes (group, direction, protocol, ports, peer,
description, file#rule) and a Mermaid flowchart of the flows that change
(docs/pull-requests.md). It stays under GitHub's comment size limit by
summarising the last groups, saying so.

With --policy FILE, every rule file is checked against the guardrail
policy with the groups' EC2 facts, as the reconcile function checks it
against the bucket's policy (docs/policy.md): a file with a violation is
invalid, located FILE:LINE:COL: RULE: violates policy ID: MESSAGE, and
keeps what it applied. Tenant prefixes are relative to --prefix.

With --flow-logs s3://BUCKET/PREFIX (or FLOW_LOGS_URL), every revoke and
modify is marked with its usage from the VPC Flow Logs of the window
--used-within (default 30d) ending now ("last used 3 h ago, 1 flow from
10.0.1.7", "no traffic in 30 d"), and the removals of rules that carried
traffic are shown refused, as apply would refuse them (docs/usage.md).

With a directory, the files' keys are the prefix plus their path in it
("rules/web.yaml"), the keys they have in the bucket: a plan from a
checkout previews exactly what uploading it would do.

Exit status: 0 success; 1 error, an invalid or held rule file, or a
removal refused (a used rule); 2 usage error. With --detailed-exitcode, as terraform: 0 no changes, 2 changes
present (any action, adoptions included), 1 any error (usage errors
included).

Examples:
  sgrules plan --bucket my-rules --table sgrules-ledger
  SGRULES_BUCKET=my-rules STATE_TABLE=sgrules-ledger sgrules plan
  sgrules plan --table sgrules-ledger ./rules          # local files as rules/…
  sgrules plan --output json ./rules | jq '.actions[] | select(.action == "revoke")'
  sgrules plan --detailed-exitcode ./rules || echo "changes or errors: $?"
  sgrules plan --output markdown ./rules > plan.md   # for a pull request comment
  sgrules plan --endpoint-url http://localhost:5000 --region us-east-1 ./rules
  sgrules plan --policy policy/sgrules.yaml --table sgrules-ledger ./rules
  sgrules plan --account 111122223333 --region eu-west-1 --table sgrules-ledger ./rules

Rule files with account: or region: are planned in that target (the
role --target-role in another account; only --target-accounts may be
named); --account and --region narrow the run to those targets, and the
output has one part per target ("== account A / region R ==").
`,
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
			return runReconcile(ctx, "plan", args, stdout, stderr)
		},
	})
	register(&command{
		name:    "apply",
		summary: "make the security groups match the rule files",
		usage: `Usage: sgrules apply [flags] [DIR]

Does what "sgrules plan" shows: authorizes new rules first, then updates
descriptions, then revokes (make before break), records ownership in the
ledger, and prints what it did. Invalid rule files are left as they were
last applied; the rest is applied. --policy FILE checks the files (and
the live rules) against a guardrail policy, as plan does.

The mass-revoke guards hold a plan (its files keep what they applied)
unless --allow-mass-revoke is given, when rules or files disappeared and it
would revoke: more rules than --max-revoke; or, at least 5 rules, more
than half of the rules the files owned, or every rule sgrules manages in a
group (a wrong directory or prefix). The plan's first line names the rule
files that are gone.

With --flow-logs s3://BUCKET/PREFIX (or FLOW_LOGS_URL), a rule that
carried traffic within --used-within (default 30d) is not revoked or
narrowed: the removal is refused and named (file, rule, last flow,
peer), the rest is applied. --allow-used-removal, or the rule's name in
its file's allowUsedRemoval list, lets it go (docs/usage.md).

Exit status: 0 success; 1 error, or a rule file was invalid or held, or
a removal refused (after applying the others); 2 usage error.

Examples:
  sgrules apply --bucket my-rules --table sgrules-ledger
  sgrules apply --table sgrules-ledger ./rules
  sgrules apply --allow-mass-revoke --table sgrules-ledger ./rules
  sgrules apply --flow-logs s3://my-flow-logs/vpc --table sgrules-ledger ./rules
  sgrules apply --output json ./rules > applied.json
  sgrules apply --policy policy/sgrules.yaml --table sgrules-ledger ./rules
  sgrules apply --account 111122223333 --table sgrules-ledger ./rules
`,
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
			return runReconcile(ctx, "apply", args, stdout, stderr)
		},
	})
}

func runReconcile(ctx context.Context, name string, args []string, stdout, stderr io.Writer) int {
	c := commands[name]
	fs := newFlags(c, stderr)
	usage := exitUsage
	if name == "plan" && detailedExitcode(args) {
		// terraform's convention: 2 means changes, every error is 1.
		usage = exitFail
	}
	var w wiring
	if err := w.addEngineFlags(fs); err != nil {
		fmt.Fprintf(stderr, "sgrules %s: %v\n", name, err)
		return usage
	}
	outputs := "table or json"
	if name == "plan" {
		outputs = "table, json or markdown (a pull request comment)"
	}
	output := fs.String("output", "table", "output format: "+outputs)
	var detailed, massRevoke, usedRemoval bool
	w.addEvidenceFlags(fs)
	if name == "plan" {
		fs.BoolVar(&detailed, "detailed-exitcode", false, "exit 2 when the plan has changes, 0 when it has none (1 on errors)")
		fs.BoolVar(&massRevoke, "allow-mass-revoke", false, "plan what apply --allow-mass-revoke would do: no mass-revoke guard")
		fs.BoolVar(&usedRemoval, "allow-used-removal", false, "plan what apply --allow-used-removal would do: rules that carried traffic are removed too")
	} else {
		fs.BoolVar(&massRevoke, "allow-mass-revoke", false, "apply even a plan the mass-revoke guards hold (over --max-revoke, more than half of the files' rules, or every rule of a group)")
		fs.BoolVar(&usedRemoval, "allow-used-removal", false, "with --flow-logs: revoke and narrow rules even when they carried traffic within --used-within")
	}
	if code, done := parseFlags(fs, interleave(fs, args), stdout); done {
		if code == exitUsage {
			return usage
		}
		return code
	}
	switch {
	case name == "plan" && *output == "markdown":
	case name == "plan" && *output != "table" && *output != "json":
		fmt.Fprintf(stderr, "sgrules plan: --output must be table, json or markdown, got %q\n", *output)
		return usage
	case !checkOutput(name, *output, stderr):
		return usage
	}
	msg := w.checkSource(fs)
	if msg == "" {
		msg = w.checkEvidence()
	}
	if msg != "" {
		fmt.Fprintf(stderr, "sgrules %s: %s\n", name, msg)
		return usage
	}
	req := reconcile.Request{All: true, DryRun: name == "plan", AllowMassRevoke: massRevoke, AllowUsedRemoval: usedRemoval,
		RelativeGuard: true, Reason: "cli " + name}
	msg = "planning: reading rule files, the ledger and the security groups…"
	if !req.DryRun {
		msg = "applying: reconciling every rule file…"
	}
	runs, single, failed, ok := w.runFleet(ctx, name, req, msg, stderr)
	w.warnEvidence(name, stderr)
	if !ok {
		return exitFail
	}
	docs := []report.TargetDoc{}
	problems, changes := 0, 0
	for _, r := range runs {
		res := r.Result
		if !single && *output != "json" {
			heading(stdout, *output, r.Target)
		}
		switch *output {
		case "markdown":
			render.Markdown(stdout, res, render.MarkdownOptions{Names: r.names, Now: time.Now()})
		case "json":
			docs = append(docs, targetDoc(r, report.NewPlanDoc(res, r.names)))
		default:
			render.Plan(stdout, res, render.Options{Color: useColor(stdout), Names: r.names, Past: !req.DryRun, Now: time.Now()})
		}
		invalid, held := report.SourceProblems(res.Sources)
		problems += invalid + held + len(res.Usage.Refused)
		changes += len(res.Plan.Actions)
	}
	if *output == "json" {
		var doc any = docs
		if single && len(docs) == 1 {
			doc = docs[0].Result
		}
		if err := report.JSON(stdout, doc); err != nil {
			fmt.Fprintf(stderr, "sgrules %s: %v\n", name, err)
			return exitFail
		}
	}
	if failed || problems > 0 {
		return exitFail
	}
	if detailed && changes > 0 {
		return exitChanges
	}
	return exitOK
}
