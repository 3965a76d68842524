// Package s3source reads rule files from an S3 bucket prefix; it
// implements reconcile.Source.
//
// Keys are full object keys ("rules/web.yaml"), exactly as S3 events carry
// them once URL-decoded, so a key from an event, from List and in the
// ledger is the same string.
//
// It may import the AWS SDK, pkg/rules, internal/reconcile (the ports it
// implements) and internal/strutil; never a Lambda shell or the CLI.
package s3source
