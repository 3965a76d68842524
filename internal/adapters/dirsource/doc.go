// Package dirsource reads rule files from a local directory tree; it
// implements reconcile.Source for the CLI and tests.
//
// Keys are slash-separated paths relative to the directory ("team/web.yaml").
// Hidden directories and files (name starting with ".") are skipped, as are
// files that are not .yaml, .yml or .json (any case) and symlinks that
// dangle or point out of the directory. The ETag of a file is
// the hex SHA-256 of its content; there are no version ids.
//
// It may import the AWS SDK, pkg/rules, internal/reconcile (the ports it
// implements) and internal/strutil; never a Lambda shell or the CLI.
package dirsource
