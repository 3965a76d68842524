package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"sort"
	"strings"
	"syscall"
)

// Exit codes shared by every command.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// command is one subcommand.
type command struct {
	// name as typed: "validate".
	name string
	// summary is one line for the command list.
	summary string
	// usage is the full help: synopsis, description and examples. Flag
	// defaults are appended by newFlags.
	usage string
	// run executes the command with the arguments after its name.
	run func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

var commands = map[string]*command{}

// register adds a command to the table; call it from an init function.
func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("sgrules: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches to a command; it is main without the process around it,
// for tests.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		mainUsage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && args[0] == "help" {
			if c, ok := commands[args[1]]; ok {
				return c.run(ctx, []string{"--help"}, stdout, stderr)
			}
			fmt.Fprintf(stderr, "sgrules help: unknown command %q\n", args[1])
			return exitUsage
		}
		mainUsage(stdout)
		return exitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "sgrules: unknown command %q\n\n", args[0])
		mainUsage(stderr)
		return exitUsage
	}
	return c.run(ctx, args[1:], stdout, stderr)
}

func mainUsage(w io.Writer) {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "sgrules keeps AWS security group rules exactly as declared in rule files.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: sgrules COMMAND [flags] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, `Run "sgrules COMMAND --help" for a command's flags and examples.`)
}

// newFlags returns a flag set for c that reports errors to stderr and
// prints c.usage and the flag defaults on --help.
func newFlags(c *command, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("sgrules "+c.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprint(out, strings.TrimLeft(c.usage, "\n"))
		if !strings.HasSuffix(c.usage, "\n") {
			fmt.Fprintln(out)
		}
		var has bool
		fs.VisitAll(func(*flag.Flag) { has = true })
		if has {
			fmt.Fprintln(out, "\nFlags:")
			printDefaults(fs, out)
		}
	}
	return fs
}

// printDefaults is flag.PrintDefaults with the flags written as the docs
// write them, with two dashes ("  --region string").
func printDefaults(fs *flag.FlagSet, out io.Writer) {
	var b strings.Builder
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(out)
	for _, line := range strings.SplitAfter(b.String(), "\n") {
		if strings.HasPrefix(line, "  -") {
			line = "  --" + line[len("  -"):]
		}
		fmt.Fprint(out, line)
	}
}

// reDash finds a flag the flag package names with one dash in its errors.
var reDash = regexp.MustCompile(`(^|[\s:])-([A-Za-z][\w-]*)`)

// parseFlags parses args with fs. On --help it prints the usage once, to
// stdout, and returns exitOK with done set; on a bad flag it returns
// exitUsage after one line on stderr saying what was wrong, and where the
// help is ("run 'sgrules validate --help'").
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) (code int, done bool) {
	// The flag package prints its error and the usage itself on every
	// parse error, ErrHelp included; print them here instead, where the
	// target is known.
	usage, out := fs.Usage, fs.Output()
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.Usage = usage
	fs.SetOutput(out)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return exitOK, true
		}
		fmt.Fprintf(out, "%s: %s (run '%s --help' for the flags)\n", fs.Name(), reDash.ReplaceAllString(err.Error(), "$1--$2"), fs.Name())
		return exitUsage, true
	}
	return exitOK, false
}
