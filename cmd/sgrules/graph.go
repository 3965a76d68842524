package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/config"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/internal/report/render"
	"github.com/sgrules/sgrules/pkg/rules"
)

func init() {
	register(&command{
		name:    "graph",
		summary: "draw who can reach whom (Mermaid, Graphviz DOT or JSON)",
		usage: `Usage: sgrules graph [flags] [DIR]

Draws the rules as a graph of who can reach whom: security groups are
nodes, CIDR peers and prefix lists are sources (ingress) or destinations
(egress), and each arrow is labelled with its protocol and ports.
World-open arrows (from 0.0.0.0/0 or ::/0) are thick and red.

From the rule files alone (DIR, or --bucket) it works offline: groups
referenced by name or tags appear by their reference text ("Name=web"),
without any AWS call. A group id is one node however the files spell it;
references that may name one group (a Name tag and a group name that
differ by a "-sg" suffix) are linked by a dotted "maybe the same group"
line, and --group follows it. --resolve (the default with --bucket, whose
credentials can describe the groups) asks EC2 what the references name, so
each group is one node under its id and name. With --live it resolves the files' groups and draws
the rules EC2 really has in them (DescribeSecurityGroupRules, many groups
per call): managed rules solid, unmanaged ones dotted and grey. Managed
means recorded in this deployment's ledger (--table or STATE_TABLE),
adopted rules included; without a table, rules are marked by their
sgrules tags alone, which cannot tell adopted rules from hand-made ones.
--live --group needs no rule files.

--group limits the picture to what can reach one group: its ingress rules
and, transitively, those of every group that is a source of one of them.
Give a group id (sg-…) or its Name tag (offline: the name in a reference
{tags: {Name: NAME}} or {groupName: NAME, …}).

Formats: mermaid (default; GitHub renders it in Markdown), dot (Graphviz:
dot -Tsvg), json.

Exit status: 0 success; 1 an invalid rule file, an unknown --group or an
AWS error; 2 usage error.

Examples:
  sgrules graph examples/
  sgrules graph --group database examples/
  sgrules graph --format dot examples/ | dot -Tsvg > rules.svg
  sgrules graph --live --bucket my-rules --format json
  sgrules graph --live --group sg-0123456789abcdef0
`,
		run: runGraph,
	})
}

func runGraph(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(commands["graph"], stderr)
	var w wiring
	w.addFileFlags(fs)
	w.addAWSFlags(fs)
	format := fs.String("format", "mermaid", "output format: mermaid, dot or json")
	live := fs.Bool("live", false, "draw the rules EC2 has in the groups (needs AWS), managed and unmanaged, instead of the files'")
	fs.StringVar(&w.table, "table", os.Getenv(config.EnvStateTable), "with --live: the ledger table; a rule is managed when the ledger records it (adopted rules too); without it only tags mark rules (env STATE_TABLE)")
	group := fs.String("group", "", "only what can reach this group, transitively through group references (sg-… or its Name tag)")
	resolve := fs.Bool("resolve", false, "resolve the files' group references in EC2 (one node per group); the default with --bucket")
	if code, done := parseFlags(fs, interleave(fs, args), stdout); done {
		return code
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "sgrules graph: "+format+"\n", a...)
		return code
	}
	switch *format {
	case "mermaid", "dot", "json":
	default:
		return fail(exitUsage, "--format must be mermaid, dot or json, got %q", *format)
	}
	noFiles := *live && *group != "" && fs.NArg() == 0 && w.dir == "" && !flagSet(fs, "bucket")
	if noFiles {
		w.bucket = ""
	} else if msg := w.checkFiles(fs); msg != "" {
		return fail(exitUsage, "%s", msg)
	}

	var g render.Graph
	var err error
	if *live {
		g, err = liveGraph(ctx, &w, *group, noFiles, stderr)
	} else {
		res := *resolve || (w.dir == "" && !flagSet(fs, "resolve"))
		g, err = filesGraph(ctx, &w, *group, res, stderr)
	}
	if err != nil {
		return fail(exitFail, "%v", err)
	}
	switch *format {
	case "dot":
		render.DOT(stdout, g)
	case "json":
		if err := report.JSON(stdout, render.NewGraphDoc(g)); err != nil {
			return fail(exitFail, "%v", err)
		}
	default:
		render.Mermaid(stdout, g)
	}
	return exitOK
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// errInvalid: a rule file is invalid (its diagnostics went to stderr).
var errInvalid = errors.New("invalid rule files: nothing drawn")

// readFiles reads and parses every rule file of the source; diagnostics
// of invalid files go to stderr and make it fail.
func readFiles(ctx context.Context, src reconcile.Source, stderr io.Writer) ([]*rules.File, []string, error) {
	objs, err := src.List(ctx)
	if err != nil {
		return nil, nil, err
	}
	var files []*rules.File
	var keys []string
	bad := false
	for _, info := range objs {
		if info.Size > rules.MaxFileSize {
			fmt.Fprintf(stderr, "%s:1:1: file is %d bytes, over the limit of %d bytes\n", info.Key, info.Size, rules.MaxFileSize)
			bad = true
			continue
		}
		obj, err := src.Get(ctx, info.Key)
		if err != nil {
			return nil, nil, err
		}
		f, diags := rules.Parse(info.Key, obj.Body)
		if diags.HasErrors() {
			for _, d := range diags {
				fmt.Fprintln(stderr, d.String())
			}
			bad = true
			continue
		}
		files = append(files, f)
		keys = append(keys, info.Key)
	}
	if bad {
		return nil, nil, errInvalid
	}
	return files, keys, nil
}

// expandAll expands every file with resolve; any error fails.
func expandAll(files []*rules.File, keys []string, resolve rules.Resolver, stderr io.Writer) ([]rules.Permission, []string, error) {
	var perms []rules.Permission
	var exclusive []string
	bad := false
	for i, f := range files {
		ps, ex, diags := rules.ExpandAt(f, keys[i], resolve, time.Now())
		if diags.HasErrors() {
			for _, d := range diags {
				fmt.Fprintln(stderr, d.String())
			}
			bad = true
			continue
		}
		perms = append(perms, ps...)
		exclusive = append(exclusive, ex...)
	}
	if bad {
		return nil, nil, errInvalid
	}
	return perms, exclusive, nil
}

// filesGraph draws the files offline: references stay as their text.
// With resolve it asks EC2 what the references name (one node per group);
// when EC2 cannot say, it warns and draws them offline.
func filesGraph(ctx context.Context, w *wiring, group string, resolve bool, stderr io.Writer) (render.Graph, error) {
	var src reconcile.Source
	var cfg aws.Config
	if w.dir != "" && !resolve {
		src = w.source(aws.Config{})
	} else {
		var err error
		if cfg, err = w.awsConfig(ctx); err != nil {
			return render.Graph{}, err
		}
		src = w.source(cfg)
	}
	files, keys, err := readFiles(ctx, src, stderr)
	if err != nil {
		return render.Graph{}, err
	}
	resolved := map[string][]string{}
	var names map[string]string
	if resolve {
		groups := ec2sg.New(ec2.NewFromConfig(cfg))
		var refs []rules.GroupRef
		for _, f := range files {
			refs = append(refs, f.Refs()...)
		}
		if resolved, err = groups.ResolveGroups(ctx, refs); err != nil {
			fmt.Fprintf(stderr, "sgrules graph: the group references are drawn as written: %v\n", err)
			resolved = map[string][]string{}
		}
	}
	perms, _, err := expandAll(files, keys, func(g rules.GroupRef) []string {
		if ids := resolved[g.String()]; len(ids) > 0 {
			return ids
		}
		return []string{g.String()}
	}, stderr)
	if err != nil {
		return render.Graph{}, err
	}
	if resolve {
		ids := map[string]bool{}
		for _, p := range perms {
			ids[p.Key.GroupID] = true
			if p.Key.Peer.Kind == rules.PeerGroup {
				ids[p.Key.Peer.Value] = true
			}
		}
		var all []string
		for id := range ids {
			if strings.HasPrefix(id, "sg-") {
				all = append(all, id)
			}
		}
		sort.Strings(all)
		names, _ = groupNames(ctx, ec2sg.New(ec2.NewFromConfig(cfg)), all)
	}
	g := render.GraphOfPermissions(perms, names)
	if group == "" {
		return g, nil
	}
	ids := g.FindGroup(group)
	if len(ids) == 0 {
		return render.Graph{}, fmt.Errorf("--group %s: no group of the rule files matches (give sg-… or a Name tag)", group)
	}
	return g.Reaching(ids...), nil
}

// liveGraph draws the rules EC2 has in the files' groups, or (--group)
// in the group and, level by level, in the groups that can reach it.
func liveGraph(ctx context.Context, w *wiring, group string, noFiles bool, stderr io.Writer) (render.Graph, error) {
	cfg, err := w.awsConfig(ctx)
	if err != nil {
		return render.Graph{}, err
	}
	groups := ec2sg.New(ec2.NewFromConfig(cfg))
	var scope []string
	if !noFiles {
		files, keys, err := readFiles(ctx, w.source(cfg), stderr)
		if err != nil {
			return render.Graph{}, err
		}
		var refs []rules.GroupRef
		for _, f := range files {
			refs = append(refs, f.Refs()...)
		}
		resolved, err := groups.ResolveGroups(ctx, refs)
		if err != nil {
			return render.Graph{}, err
		}
		perms, exclusive, err := expandAll(files, keys, func(g rules.GroupRef) []string { return resolved[g.String()] }, stderr)
		if err != nil {
			return render.Graph{}, err
		}
		set := map[string]bool{}
		for _, p := range perms {
			set[p.Key.GroupID] = true
		}
		for _, id := range exclusive {
			set[id] = true
		}
		for id := range set {
			scope = append(scope, id)
		}
		sort.Strings(scope)
	}
	var actual []reconcile.ActualRule
	var start []string
	if group == "" {
		if actual, err = groups.DescribeRules(ctx, scope); err != nil {
			return render.Graph{}, err
		}
	} else {
		if start, err = findLiveGroup(ctx, groups, group); err != nil {
			return render.Graph{}, err
		}
		// One DescribeRules per level of group references.
		seen := map[string]bool{}
		level := start
		for len(level) > 0 {
			for _, id := range level {
				seen[id] = true
			}
			rs, err := groups.DescribeRules(ctx, level)
			if err != nil {
				return render.Graph{}, err
			}
			actual = append(actual, rs...)
			next := map[string]bool{}
			for _, r := range rs {
				if r.Key.Direction == rules.Ingress && r.Key.Peer.Kind == rules.PeerGroup && !seen[r.Key.Peer.Value] {
					next[r.Key.Peer.Value] = true
				}
			}
			level = level[:0:0]
			for id := range next {
				level = append(level, id)
			}
			sort.Strings(level)
		}
	}
	ids := map[string]bool{}
	for _, r := range actual {
		ids[r.Key.GroupID] = true
		if r.Key.Peer.Kind == rules.PeerGroup {
			ids[r.Key.Peer.Value] = true
		}
	}
	all := make([]string, 0, len(ids))
	for id := range ids {
		all = append(all, id)
	}
	sort.Strings(all)
	names, _ := groupNames(ctx, groups, all)
	// Managed is what this deployment's ledger records, adopted rules
	// included; a tag alone proves nothing (anyone may set one).
	var owned map[string]bool
	if w.table != "" {
		var scope []string
		for id := range ids {
			if strings.HasPrefix(id, "sg-") {
				scope = append(scope, id)
			}
		}
		sort.Strings(scope)
		perms, err := ddbledger.New(dynamodb.NewFromConfig(cfg), w.table).GroupPermissions(ctx, scope)
		if err != nil {
			return render.Graph{}, fmt.Errorf("read the ledger %s: %w", w.table, err)
		}
		owned = map[string]bool{}
		for _, p := range perms {
			if p.RuleID != "" {
				owned[p.RuleID] = true
			}
		}
	}
	g := render.GraphOfRules(actual, names, owned)
	if group != "" {
		g = g.Reaching(start...)
	}
	return g, nil
}

// findLiveGroup resolves --group: an id as it is, else the Name tag.
func findLiveGroup(ctx context.Context, groups *ec2sg.Client, group string) ([]string, error) {
	if strings.HasPrefix(group, "sg-") {
		return []string{group}, nil
	}
	ref := rules.GroupRef{Tags: map[string]string{"Name": group}}
	resolved, err := groups.ResolveGroups(ctx, []rules.GroupRef{ref})
	if err != nil {
		return nil, err
	}
	ids := resolved[ref.String()]
	if len(ids) == 0 {
		return nil, fmt.Errorf("--group %s: no security group has the Name tag %q", group, group)
	}
	return ids, nil
}
