// Command sgrules keeps AWS security group rules exactly as declared in rule
// files.
//
// Subcommands live in a table: each is a *command registered from its own
// file with register in an init function (validate.go, version.go; plan,
// apply, drift, import and demo are added the same way), so adding one
// never touches this file. A command parses its own flags with its own
// flag.FlagSet (see newFlags), writes results to stdout and problems to
// stderr, and returns the exit code: 0 success, 1 failure (invalid input,
// an AWS error), 2 usage error.
//
// It may import everything above; main only wires things up.
package main
