package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
)

func init() {
	register(&command{
		name:    "init",
		summary: "create the DynamoDB ledger table",
		usage: `Usage: sgrules init --table T [--region R] [--endpoint-url URL]

Creates the ownership ledger table the other commands need, exactly as
template.yaml defines it: pk (string) hash key and sk (string) range key,
on-demand billing, encryption with the AWS managed KMS key, TTL on "ttl"
and point-in-time recovery. Waits until the table is active.

Idempotent: an existing table with those keys is fine (TTL and
point-in-time recovery are turned on if they are off); a table with other
keys is an error and is left alone. A stack deployed from template.yaml
already has its table (output LedgerTable): use that one, do not init
another.

Exit status: 0 the table is ready; 1 error (an AWS error, a table with
other keys); 2 usage error.

Examples:
  sgrules init --table sgrules-ledger
  STATE_TABLE=sgrules-ledger sgrules init
  sgrules init --table sgrules-ledger --endpoint-url http://localhost:5000 --region us-east-1
`,
		run: runInit,
	})
}

func runInit(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(commands["init"], stderr)
	var w wiring
	fs.StringVar(&w.table, "table", os.Getenv("STATE_TABLE"), "name of the DynamoDB table to create (env STATE_TABLE; required)")
	w.addAWSFlags(fs)
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, "sgrules init: takes no arguments; name the table with --table")
		return exitUsage
	}
	if w.table == "" {
		fmt.Fprintln(stderr, "sgrules init: no table: set --table (or STATE_TABLE)")
		return exitUsage
	}
	cfg, err := w.awsConfig(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "sgrules init: %v\n", err)
		return exitFail
	}
	stop := progress(stderr, "creating table "+w.table+" and waiting until it is active…")
	err = ddbledger.CreateTable(ctx, dynamodb.NewFromConfig(cfg), w.table)
	stop()
	if err != nil {
		fmt.Fprintf(stderr, "sgrules init: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "Ledger table %s is active in %s. Use it with --table %s or STATE_TABLE=%s.\n", w.table, w.where(), w.table, w.table)
	return exitOK
}

// where names the region (and endpoint) the commands talk to.
func (w *wiring) where() string {
	s := "region " + w.resolvedRegion
	if w.endpoint != "" {
		s += " at " + w.endpoint
	} else if e := os.Getenv("AWS_ENDPOINT_URL"); e != "" {
		s += " at " + e
	}
	return s
}

// explain turns an engine error into what the user can act on: a missing
// ledger table names the table, the region (and endpoint) and how to
// create it; any other error is returned as it is.
func (w *wiring) explain(err error) error {
	var notFound *ddbtypes.ResourceNotFoundException
	if errors.As(err, &notFound) {
		return fmt.Errorf("ledger table %q not found in %s: create it with 'sgrules init --table %s' (same --region and --endpoint-url), or deploy template.yaml, which creates one (stack output LedgerTable); is --table right? (%w)",
			w.table, w.where(), w.table, err)
	}
	return err
}
