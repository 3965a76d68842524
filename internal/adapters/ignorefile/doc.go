// Package ignorefile reads .sgrulesignore: glob patterns of files and
// directories that directory walks (sgrules validate DIR, the directory
// source) skip, so a folder of rule files can also hold other YAML, such as
// a CI workflow or a CloudFormation template.
//
// One pattern per line; blank lines and lines starting with # are ignored.
// Patterns use path.Match syntax against slash-separated paths relative to
// the directory holding the file. A pattern without a slash also matches a
// base name at any depth; a trailing slash matches directories only.
//
// It may import the AWS SDK, pkg/rules, internal/reconcile (the ports it
// implements) and internal/strutil; never a Lambda shell or the CLI.
package ignorefile
