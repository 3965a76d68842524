package main

import (
	"context"
	"fmt"
	"io"

	"github.com/sgrules/sgrules/internal/dev/demo"
)

func init() {
	register(&command{
		name:    "demo",
		summary: "run sgrules end to end on this machine, without an AWS account",
		usage: `Usage: sgrules demo [flags]

Runs sgrules end to end against moto_server, a local AWS emulator: creates
a VPC, the security groups the example rule files reference, a versioned
rules bucket that notifies an SQS queue, and the ledger table; uploads
examples/ under rules/; delivers the queued S3 events to the real reconcile
Lambda function running under the Lambda Runtime Interface Emulator; prints
the resulting rules; changes rules by hand and runs the drift function,
showing what it reverted and what it left alone; has a temporary rule
revoked at its deadline by the drift function its expiry schedule invokes;
sends the drift function a CloudTrail event of a rule deleted by
assumed-role/Admin/alice and shows the revert naming her (report, alert,
"sgrules history"); and runs "sgrules usage" over a flow log it writes. It stops everything it
started when it ends, fails if the result is not exactly as declared, and
changes nothing outside this machine.

It runs in a clone of the sgrules repository (it builds the functions from
source with Go) and needs moto_server (pip install "moto[server]") and
aws-lambda-rie (make tools installs it into ./bin; "make demo" does both).

Examples:
  make demo
  sgrules demo
  sgrules demo --keep       # then explore with the AWS CLI; Ctrl-C stops
`,
		run: runDemo,
	})
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(commands["demo"], stderr)
	var o demo.Options
	fs.BoolVar(&o.Keep, "keep", false, "keep moto_server running after the demo, until Ctrl-C, and print its URL")
	fs.BoolVar(&o.Verbose, "verbose", false, "print the Lambda functions' logs")
	fs.StringVar(&o.ExamplesDir, "examples", "", "directory of rule files to upload (default: examples/ of the repository)")
	fs.StringVar(&o.RIEPath, "rie", "", "aws-lambda-rie binary (default: $SGRULES_RIE, ./bin/aws-lambda-rie, then PATH)")
	fs.DurationVar(&o.Timeout, "timeout", demo.DefaultTimeout, "give up after this long")
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, "sgrules demo: takes no arguments")
		return exitUsage
	}
	o.Out = stdout
	if err := demo.Run(ctx, o); err != nil {
		fmt.Fprintf(stderr, "sgrules demo: %v\n", err)
		return exitFail
	}
	return exitOK
}
