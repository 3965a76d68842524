package main

import (
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/internal/report/render"
	"github.com/sgrules/sgrules/pkg/flowlog"
	"github.com/sgrules/sgrules/pkg/rules"
)

func init() {
	register(&command{
		name:    "unused",
		summary: "list the rules that carried no traffic, from VPC Flow Logs",
		usage: `Usage: sgrules unused --flow-logs s3://BUCKET/PREFIX [flags] [DIR]

Reads the flow logs over the window as "sgrules usage" does (default the
last 90 days) and lists the managed rules that carried no traffic in it:
candidates for removal by a reviewed change to the rule files, never a
silent revoke. The same report names the rules that allow nothing
another rule of their group does not (subsumed), the permissions several
rules declare, and the groups with managed rules and no network
interface (DescribeNetworkInterfaces).
Attribution and its limits: docs/usage.md. Rewriting the files without
the unused rules (--write) is not built yet.

Exit status: 0 success (unused rules or not); 1 an invalid rule file or
an AWS error; 2 usage error.

Examples:
  sgrules unused --flow-logs s3://my-flow-logs/vpc --table sgrules-ledger ./rules
  sgrules unused --flow-logs s3://my-flow-logs --since 180d --output json --bucket my-rules
`,
		run: runUnused,
	})
}

func runUnused(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(commands["unused"], stderr)
	var u usageRun
	u.addFlags(fs, "90d")
	if code, done := parseFlags(fs, interleave(fs, args), stdout); done {
		return code
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "sgrules unused: "+format+"\n", a...)
		return code
	}
	if msg := u.check(fs); msg != "" {
		return fail(exitUsage, "%s", msg)
	}
	res, err := u.run(ctx, stderr)
	if err != nil {
		return fail(exitFail, "%v", err)
	}
	var keys []rules.Key
	idOf := map[rules.Key]string{}
	groupSet := map[string]bool{}
	for _, us := range res.usage {
		if _, dup := idOf[us.Key]; dup || us.RuleID == "" {
			continue
		}
		keys = append(keys, us.Key)
		idOf[us.Key] = us.RuleID
		groupSet[us.Key.GroupID] = true
	}
	subsumed := map[string]string{}
	for a, b := range flowlog.Subsumed(keys) {
		subsumed[idOf[a]] = idOf[b]
	}
	groups := make([]string, 0, len(groupSet))
	for g := range groupSet {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	counts, err := res.lookup.GroupInterfaces(ctx, groups)
	if err != nil {
		return fail(exitFail, "%v", err)
	}
	var lonely []string
	for _, g := range groups {
		if counts[g] == 0 {
			lonely = append(lonely, g)
		}
	}
	doc := render.NewUnusedDoc(render.NewUsageDoc(res.usage, res.read, res.attr, u.from, u.to, res.names), subsumed, lonely)
	u.warn("unused", doc.Read, stderr)
	if u.output == "json" {
		err = report.JSON(stdout, doc)
	} else {
		err = render.UnusedText(stdout, doc)
	}
	if err != nil {
		return fail(exitFail, "%v", err)
	}
	return exitOK
}
