package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
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
rules declare, the groups with managed rules and no network interface
(DescribeNetworkInterfaces), and the stale group references: the rules
of the managed groups that reference a deleted group or one of a VPC no
longer peered (DescribeStaleSecurityGroups, per VPC).
Attribution and its limits: docs/usage.md.

With --write DIR, the rule files under DIR (a checkout of the rules) are
rewritten without the unused rules, for a pull request: the plan of that
change shows their revokes. Only rules whose usage the logs can tell are
removed: a rule of a group with no network interface, or whose group's
interfaces no record of the window names, is listed ("usage unknown")
and kept; so is a rule any permission of which carried traffic or is
not applied. YAML files keep their comments, order and layout (a removed
rule goes with the comment lines right above it); JSON files are written
again with sorted keys. A file left with no rule keeps "rules: {}".
--write never changes AWS.

Exit status: 0 success (unused rules or not); 1 an invalid rule file or
an AWS error; 2 usage error.

Examples:
  sgrules unused --flow-logs s3://my-flow-logs/vpc --table sgrules-ledger ./rules
  sgrules unused --flow-logs s3://my-flow-logs --since 180d --output json --bucket my-rules
  sgrules unused --flow-logs s3://my-flow-logs --write ./rules ./rules
`,
		run: runUnused,
	})
}

func runUnused(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(commands["unused"], stderr)
	var u usageRun
	u.addFlags(fs, "90d")
	write := fs.String("write", "", "rewrite the rule files under this directory without the unused rules whose usage is known (never AWS)")
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
	usageDoc := render.NewUsageDoc(res.usage, res.read, res.attr, u.from, u.to, res.names)
	doc := render.NewUnusedDoc(usageDoc, subsumed, lonely)
	stale, err := staleReferences(ctx, res.ec2, groups)
	if err != nil {
		return fail(exitFail, "%v", err)
	}
	doc.AddStale(stale, usageDoc)
	covered, err := coveredGroups(ctx, res)
	if err != nil {
		return fail(exitFail, "%v", err)
	}
	doc.MarkUnknown(covered)
	if *write != "" {
		if doc.Removed, err = writeUnused(*write, u.w.prefix, res.usage, doc); err != nil {
			return fail(exitFail, "%v", err)
		}
	}
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

// coveredGroups returns the groups of the interfaces the window's
// accepted flows were logged on: the groups whose usage the logs tell.
func coveredGroups(ctx context.Context, res usageResult) (map[string]bool, error) {
	seen := map[string]bool{}
	var ids []string
	for k := range res.flows {
		if !seen[k.Interface] {
			seen[k.Interface] = true
			ids = append(ids, k.Interface)
		}
	}
	sort.Strings(ids)
	ifaces, err := res.lookup.Interfaces(ctx, ids)
	if err != nil {
		return nil, err
	}
	covered := map[string]bool{}
	for _, in := range ifaces {
		for _, g := range in.Groups {
			covered[g] = true
		}
	}
	return covered, nil
}

// writeUnused rewrites the rule files under dir without the rules every
// permission of which is applied, carried no traffic and has a known
// usage; rules of files not under dir are left alone. A rule's file is
// its source key less the rules prefix, under dir.
func writeUnused(dir, prefix string, usage []flowlog.Usage, doc render.UnusedDoc) ([]render.RemovedRules, error) {
	unknown := map[string]bool{} // groups whose usage the logs cannot tell
	for _, r := range doc.Unused {
		if r.Unknown != "" {
			unknown[r.GroupID] = true
		}
	}
	removable, keep := map[rules.Owner]bool{}, map[rules.Owner]bool{}
	for _, us := range usage {
		if us.RuleID == "" || us.Used() || unknown[us.Key.GroupID] {
			keep[us.Owner] = true
		} else {
			removable[us.Owner] = true
		}
	}
	byFile := map[string][]string{}
	for o := range removable {
		if !keep[o] {
			byFile[o.Source] = append(byFile[o.Source], o.Rule)
		}
	}
	sources := make([]string, 0, len(byFile))
	for src := range byFile {
		sources = append(sources, src)
	}
	sort.Strings(sources)
	out := []render.RemovedRules{}
	for _, src := range sources {
		rel, ok := strings.CutPrefix(src, prefix)
		if !ok || !filepath.IsLocal(filepath.FromSlash(rel)) {
			continue
		}
		path := filepath.Join(dir, filepath.FromSlash(rel))
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // not a file under dir
		}
		if err != nil {
			return nil, err
		}
		body, removed, err := rules.RemoveRules(path, data, byFile[src])
		if err != nil {
			return nil, err
		}
		if len(removed) == 0 {
			continue
		}
		info, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, body, info.Mode().Perm()); err != nil {
			return nil, err
		}
		out = append(out, render.RemovedRules{File: filepath.ToSlash(rel), Rules: removed})
	}
	return out, nil
}

// staleReferences asks EC2 for the stale rules of the managed groups:
// DescribeStaleSecurityGroups for each of their VPCs.
func staleReferences(ctx context.Context, api *ec2.Client, groups []string) ([]render.StaleReference, error) {
	if len(groups) == 0 {
		return nil, nil
	}
	infos, err := ec2sg.New(api).DescribeGroups(ctx, groups)
	if err != nil {
		return nil, err
	}
	only, vpcSet := map[string]bool{}, map[string]bool{}
	for _, g := range groups {
		only[g] = true
	}
	for _, in := range infos {
		if in.VPCID != "" {
			vpcSet[in.VPCID] = true
		}
	}
	vpcs := make([]string, 0, len(vpcSet))
	for v := range vpcSet {
		vpcs = append(vpcs, v)
	}
	refs, err := ec2sg.StaleReferences(ctx, api, vpcs, only)
	if err != nil {
		return nil, err
	}
	out := make([]render.StaleReference, 0, len(refs))
	for _, r := range refs {
		dir := rules.Ingress
		if r.Egress {
			dir = rules.Egress
		}
		proto := r.Protocol
		if p, err := rules.NormalizeProtocol(proto); err == nil {
			proto = p
		}
		out = append(out, render.StaleReference{GroupID: r.GroupID, Direction: string(dir), Protocol: proto, FromPort: r.FromPort, ToPort: r.ToPort,
			RefGroupID: r.RefGroupID, RefVPCID: r.RefVPCID, PeeringStatus: r.PeeringStatus})
	}
	return out, nil
}
