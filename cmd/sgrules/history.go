package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/config"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/pkg/rules"
)

func init() {
	register(&command{
		name:    "history",
		summary: "print what happened to a rule, newest first",
		usage: `Usage: sgrules history [flags] sg-…|sgr-…|FILE#RULE

Prints the history the ledger keeps of security group rules, newest first:
created, modified, adopted, drifted (with who did it, when a CloudTrail
event named them), reverted, expired, revoked, and writes the guardrail
policy refused; each with its time, the rule file and rule that declare it,
the file's S3 version id and the commit it was uploaded from (when the
object carries one, x-amz-meta-sgrules-commit). The ledger keeps the last
50 events of each rule, for a year at most (docs/drift.md, History).

  sg-…        every rule of the group
  sgr-…       the rule with that id, and its earlier ids (a rule deleted
              and put back gets a new id)
  FILE#RULE   the rules a rule of a file declared (rules/web.yaml#https)

Exit status: 0 (also when there is no history); 1 error; 2 usage error.

Examples:
  sgrules history --table sgrules-ledger sg-0123456789abcdef0
  sgrules history --table sgrules-ledger rules/web.yaml#https
  sgrules history --output json --table sgrules-ledger sgr-0123456789abcdef0 | jq '.[0].by'
  sgrules history --account 111122223333 --region eu-west-1 --table sgrules-ledger sg-0123456789abcdef0
`,
		run: runHistory,
	})
}

func runHistory(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(commands["history"], stderr)
	env, err := config.CLI.Load(os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "sgrules history: %v\n", err)
		return exitUsage
	}
	var w wiring
	fs.StringVar(&w.table, "table", env.Table, "DynamoDB table of the ownership ledger (env STATE_TABLE; required)")
	fs.StringVar(&w.account, "account", "", "the target account of the group or rule (default: the caller's)")
	w.addAWSFlags(fs)
	output := fs.String("output", "text", "output format: text or json")
	if code, done := parseFlags(fs, interleave(fs, args), stdout); done {
		return code
	}
	if *output != "text" && *output != "json" {
		fmt.Fprintf(stderr, "sgrules history: --output must be text or json, got %q\n", *output)
		return exitUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "sgrules history: give one sg-…, sgr-… or FILE#RULE")
		return exitUsage
	}
	what := fs.Arg(0)
	if !strings.HasPrefix(what, "sg-") && !strings.HasPrefix(what, "sgr-") && !strings.Contains(what, "#") {
		fmt.Fprintf(stderr, "sgrules history: %q is not a group id (sg-…), a rule id (sgr-…) or FILE#RULE\n", what)
		return exitUsage
	}
	if w.table == "" {
		fmt.Fprintln(stderr, "sgrules history: no ledger: set --table (or STATE_TABLE) to the DynamoDB table sgrules records ownership in")
		return exitUsage
	}
	cfg, err := w.awsConfig(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "sgrules history: %v\n", err)
		return exitFail
	}
	led, err := w.historyLedger(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "sgrules history: %v\n", err)
		return exitFail
	}
	var evs []reconcile.HistoryEvent
	switch {
	case strings.HasPrefix(what, "sgr-"):
		evs, err = led.RuleHistory(ctx, what)
	case strings.HasPrefix(what, "sg-"):
		evs, err = led.GroupHistory(ctx, what)
	default:
		evs, err = led.OwnerHistory(ctx, rules.ParseOwner(what))
	}
	if err != nil {
		fmt.Fprintf(stderr, "sgrules history: read the ledger %s: %v\n", w.table, err)
		return exitFail
	}
	entries := report.History(evs)
	if *output == "json" {
		err = report.JSON(stdout, entries)
	} else {
		err = report.WriteHistory(stdout, what, entries)
	}
	if err != nil {
		fmt.Fprintf(stderr, "sgrules history: %v\n", err)
		return exitFail
	}
	return exitOK
}

// historyReader is what `sgrules history` reads of the ledger.
type historyReader interface {
	GroupHistory(ctx context.Context, group string) ([]reconcile.HistoryEvent, error)
	RuleHistory(ctx context.Context, ruleID string) ([]reconcile.HistoryEvent, error)
	OwnerHistory(ctx context.Context, owner rules.Owner) ([]reconcile.HistoryEvent, error)
}

// historyLedger is the ledger of the target --account names (with the
// configuration's region), the caller's own without it.
func (w *wiring) historyLedger(ctx context.Context, cfg aws.Config) (historyReader, error) {
	led := ddbledger.New(dynamodb.NewFromConfig(cfg), w.table)
	if w.account == "" {
		return led, nil
	}
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return nil, fmt.Errorf("who am I (sts:GetCallerIdentity): %w", err)
	}
	home := rules.Target{Account: aws.ToString(id.Account), Region: cfg.Region}
	led = ddbledger.New(dynamodb.NewFromConfig(cfg), w.table, ddbledger.WithHome(home))
	t, ok := led.For(rules.Target{Account: w.account, Region: cfg.Region}).(historyReader)
	if !ok {
		return nil, fmt.Errorf("the ledger of %s/%s keeps no history", w.account, cfg.Region)
	}
	return t, nil
}
