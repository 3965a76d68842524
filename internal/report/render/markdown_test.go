package render

import (
	"bytes"
	"fmt"
	"github.com/sgrules/sgrules/internal/report"
	"regexp"
	"strings"
	"testing"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/testutil/graphviz"
	"github.com/sgrules/sgrules/pkg/rules"
)

// reviewResult is sampleResult plus a replacement: rules/web.yaml#app
// moves from tcp 8080 to tcp 8443 (a revoke that is not a loss and an
// authorize with the same owner).
func reviewResult() reconcile.Result {
	res := unsortedResult()
	res.Plan.Actions = append(res.Plan.Actions,
		reconcile.Action{Kind: reconcile.ActRevoke, Key: key(web, rules.Ingress, "tcp", 8080, 8080, rules.PeerGroup, lb), RuleID: "sgr-00000000000000012",
			Owners: []rules.Owner{{Source: "rules/web.yaml", Rule: "app"}}, Reason: "no longer declared"},
		reconcile.Action{Kind: reconcile.ActAuthorize, Key: key(web, rules.Ingress, "tcp", 8443, 8443, rules.PeerGroup, lb),
			Description: "app | from alb", Owners: []rules.Owner{{Source: "rules/web.yaml", Rule: "app"}}, Reason: "declared by rules/web.yaml#app"},
	)
	reconcile.SortActions(res.Plan.Actions)
	return res
}

func TestPairReplacements(t *testing.T) {
	var got []string
	for _, c := range PairReplacements(reviewResult().Plan.Actions) {
		s := string(c.Kind)
		if c.Old != nil {
			s += " old=" + report.Ports(c.Old.Key)
		}
		if c.New != nil {
			s += " new=" + report.Ports(c.New.Key)
		}
		got = append(got, s)
	}
	want := []string{ // in SortActions order
		"add new=all traffic", "forget new=protocol 47", "add new=icmp type 8", "add new=tcp 443",
		"change old=tcp 8080 new=tcp 8443", // the same owner: a replacement
		"adopt new=tcp 80", "change new=tcp 22", "remove old=udp 1000-2000",
		"add new=tcp 5432", "change old=tcp 6379 new=tcp 6380", "remove old=tcp 3306", // the mysql rule is a loss, not a change
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("PairReplacements:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestMarkdownGolden(t *testing.T) {
	tests := []struct {
		name   string
		render func(*bytes.Buffer)
	}{
		{"plan.md", func(b *bytes.Buffer) { Markdown(b, reviewResult(), MarkdownOptions{Names: names}) }},
		{"plan-empty.md", func(b *bytes.Buffer) { Markdown(b, reconcile.Result{}, MarkdownOptions{}) }},
		// The seams for policies and targets: sections and columns appear
		// when given data.
		{"plan-seams.md", func(b *bytes.Buffer) {
			Markdown(b, reviewResult(), MarkdownOptions{Names: names,
				Violations: []Violation{{Where: "rules/web.yaml:9:7", Rule: "https", Clause: "no-world-ssh", Message: "SSH must not be open"}},
				Target: func(k rules.Key) string {
					if k.GroupID == db {
						return "111122223333/eu-west-1"
					}
					return ""
				}})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			tc.render(&b)
			golden(t, tc.name, b.Bytes())
			if chart, ok := mermaidBlock(b.String()); ok {
				if err := CheckMermaid(chart); err != nil {
					t.Errorf("flowchart: %v\n%s", err, chart)
				}
			}
		})
	}
}

// mermaidBlock returns the content of the ```mermaid block of a markdown
// text.
func mermaidBlock(md string) (string, bool) {
	_, rest, ok := strings.Cut(md, "```mermaid\n")
	if !ok {
		return "", false
	}
	chart, _, _ := strings.Cut(rest, "```")
	return chart, true
}

// bigResult is a synthetic plan of groups × perGroup changes of each kind.
func bigResult(groups, perGroup int) reconcile.Result {
	var res reconcile.Result
	for g := range groups {
		id := fmt.Sprintf("sg-%017x", g)
		for i := range perGroup {
			owner := rules.Owner{Source: fmt.Sprintf("rules/team-%04d/service.yaml", g), Rule: fmt.Sprintf("rule-%03d", i)}
			res.Plan.Actions = append(res.Plan.Actions,
				reconcile.Action{Kind: reconcile.ActAuthorize, Key: key(id, rules.Ingress, "tcp", int32(1000+i), int32(1000+i), rules.PeerCIDR4, "10.0.0.0/8"),
					Description: "a description of what this rule is for, as people write them", Owners: []rules.Owner{owner}},
				reconcile.Action{Kind: reconcile.ActRevoke, Key: key(id, rules.Ingress, "udp", int32(2000+i), int32(2000+i), rules.PeerCIDR4, "10.0.0.0/8"),
					Owners: []rules.Owner{{Source: owner.Source, Rule: owner.Rule + "-old"}}, Loss: true},
				reconcile.Action{Kind: reconcile.ActUpdate, Key: key(id, rules.Egress, "tcp", int32(3000+i), int32(3000+i), rules.PeerCIDR4, "0.0.0.0/0"),
					Description: "new", OldDescription: "old", Owners: []rules.Owner{{Source: owner.Source, Rule: owner.Rule + "-desc"}}},
			)
		}
	}
	for i := range 400 {
		res.Sources = append(res.Sources, reconcile.SourceResult{Key: fmt.Sprintf("rules/bad-%03d.yaml", i), Status: reconcile.StatusInvalid,
			Diagnostics: rules.Diagnostics{{File: fmt.Sprintf("rules/bad-%03d.yaml", i), Line: 1, Col: 1, Severity: rules.SeverityError, Msg: "broken"}}})
	}
	reconcile.SortActions(res.Plan.Actions)
	return res
}

// A large plan stays under GitHub's limit: the last groups are summarised
// (counted in the summary, with a note), never cut silently.
func TestMarkdownLarge(t *testing.T) {
	for _, tc := range []struct{ groups, perGroup int }{{2000, 10}, {40, 60}, {1, 3000}} {
		t.Run(fmt.Sprintf("%dx%d", tc.groups, tc.perGroup), func(t *testing.T) {
			var b bytes.Buffer
			Markdown(&b, bigResult(tc.groups, tc.perGroup), MarkdownOptions{})
			out := b.String()
			if len(out) > MaxCommentBytes || len([]rune(out)) > 65536 {
				t.Fatalf("markdown is %d bytes, over %d", len(out), MaxCommentBytes)
			}
			n := tc.groups * tc.perGroup
			if head := fmt.Sprintf("### sgrules plan: %d to add, %d to change, %d to remove\n", n, n, n); !strings.HasPrefix(out, head) {
				t.Errorf("headline: want %q, got %q", head, strings.SplitN(out, "\n", 2)[0])
			}
			if !regexp.MustCompile(`left out to stay under GitHub's comment size limit|more groups \|`).MatchString(out) {
				t.Errorf("a large plan says nothing about what it left out")
			}
			if !strings.Contains(out, "- … and 350 more") {
				t.Errorf("the list of invalid files is not capped with a count")
			}
			if strings.Contains(out, "cut at") {
				t.Errorf("the plan was cut as a last resort instead of summarised")
			}
			if chart, ok := mermaidBlock(out); ok {
				if err := CheckMermaid(chart); err != nil {
					t.Errorf("flowchart: %v", err)
				}
			}
			t.Logf("%d bytes", len(out))
		})
	}
}

func TestMarkdownMaxBytes(t *testing.T) {
	var b bytes.Buffer
	Markdown(&b, bigResult(50, 5), MarkdownOptions{MaxBytes: 8000})
	if b.Len() > 8000 {
		t.Fatalf("%d bytes, over 8000", b.Len())
	}
	if !strings.Contains(b.String(), "left out") {
		t.Errorf("no note on what was left out:\n%s", b.String())
	}
}

func TestGraphGolden(t *testing.T) {
	g := GraphOfPermissions(samplePermissions(), names)
	// Managed is "in the ledger": sgr-4 was adopted (no tags), sgr-5 only
	// carries a tag (hand-made, or spoofed).
	live := GraphOfRules([]reconcile.ActualRule{
		{Key: key(db, rules.Ingress, "tcp", 5432, 5432, rules.PeerGroup, web), RuleID: "sgr-1", Tags: map[string]string{reconcile.TagManaged: "true"}},
		{Key: key(db, rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "0.0.0.0/0"), RuleID: "sgr-2", Description: `hand "made"`},
		{Key: key(web, rules.Ingress, "tcp", 443, 443, rules.PeerPrefixList, "pl-0123456789abcdef0"), RuleID: "sgr-3", Tags: map[string]string{reconcile.TagManaged: "true"}},
		{Key: key(web, rules.Ingress, "tcp", 80, 80, rules.PeerCIDR4, "10.0.0.0/8"), RuleID: "sgr-4", Description: "adopted"},
		{Key: key(web, rules.Ingress, "tcp", 8080, 8080, rules.PeerCIDR4, "10.0.0.0/8"), RuleID: "sgr-5", Tags: map[string]string{reconcile.TagManaged: "true"}},
	}, names, map[string]bool{"sgr-1": true, "sgr-3": true, "sgr-4": true})
	for _, tc := range []struct {
		name string
		g    Graph
		f    func(*bytes.Buffer, Graph)
	}{
		{"graph.mmd", g, func(b *bytes.Buffer, g Graph) { Mermaid(b, g) }},
		{"graph.dot", g, func(b *bytes.Buffer, g Graph) { DOT(b, g) }},
		{"graph.json", g, func(b *bytes.Buffer, g Graph) { _ = report.JSON(b, NewGraphDoc(g)) }},
		{"graph-live.mmd", live, func(b *bytes.Buffer, g Graph) { Mermaid(b, g) }},
		{"graph-live.dot", live, func(b *bytes.Buffer, g Graph) { DOT(b, g) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			tc.f(&b, tc.g)
			golden(t, tc.name, b.Bytes())
			switch {
			case strings.HasSuffix(tc.name, ".mmd"):
				if err := CheckMermaid(b.String()); err != nil {
					t.Error(err)
				}
			case strings.HasSuffix(tc.name, ".dot"):
				graphviz.Check(t, b.Bytes())
			}
		})
	}
}

// samplePermissions has a reference that was not resolved, a label that
// needs escaping, world-open ingress and egress.
func samplePermissions() []rules.Permission {
	o := func(r string) rules.Owner { return rules.Owner{Source: "rules/web.yaml", Rule: r} }
	return []rules.Permission{
		{Key: key(web, rules.Ingress, "tcp", 443, 443, rules.PeerCIDR4, "0.0.0.0/0"), Owner: o("https")},
		{Key: key(web, rules.Ingress, "tcp", 443, 443, rules.PeerCIDR6, "::/0"), Owner: o("https")},
		{Key: key(web, rules.Egress, "-1", -1, -1, rules.PeerCIDR4, "0.0.0.0/0"), Owner: o("out")},
		{Key: key(db, rules.Ingress, "tcp", 5432, 5432, rules.PeerGroup, web), Owner: o("pg")},
		{Key: key(db, rules.Ingress, "tcp", 5432, 5432, rules.PeerGroup, `tags:Name=a"b#c<d>|e`), Owner: o("odd")},
		{Key: key(`tags:Name=cache`, rules.Ingress, "tcp", 6379, 6379, rules.PeerGroup, web), Owner: o("redis")},
	}
}

func TestGraphReaching(t *testing.T) {
	g := GraphOfPermissions(samplePermissions(), names)
	r := g.Reaching(g.FindGroup("database")...)
	var got []string
	for _, e := range r.Edges {
		got = append(got, e.From+" -> "+e.To+" "+e.Label)
	}
	want := []string{
		// by the name of the group reached (database, web), then the source
		`tags:Name=a"b#c<d>|e -> ` + db + " tcp 5432", web + " -> " + db + " tcp 5432",
		"0.0.0.0/0 -> " + web + " tcp 443", "::/0 -> " + web + " tcp 443",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Reaching(database):\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCheckMermaidRejects(t *testing.T) {
	for _, bad := range []string{
		"graph TD\n",
		"flowchart TD\n",
		"flowchart LR\n  n1[\"a\"b\"]\n",
		"flowchart LR\n  n1[\"a\"]\n  n1 -->|\"x\"| n2\n",
		"flowchart LR\n  n1[\"a\"]\n  n1[\"b\"]\n",
		"flowchart LR\n  n1[\"a\"]\n  class n1 world\n",
		"flowchart LR\n  n1[\"a\"]\n  n2[\"b\"]\n  n1 -->|\"x\"| n2\n  linkStyle 1 stroke:#fff\n",
		"flowchart LR\n  n1[\"a#b\"]\n",
	} {
		if CheckMermaid(bad) == nil {
			t.Errorf("CheckMermaid accepted %q", bad)
		}
	}
}

// riskyResult is the plan a reviewer could be fooled by: many harmless
// adds, many world-open udp 53 rules (each with its warning) and one
// world-open SSH rule in a file sorting last, plus invalid files.
func riskyResult(harmlessGroups, harmless, dns, invalid, errsPerFile int) reconcile.Result {
	var res reconcile.Result
	for g := range harmlessGroups {
		id := fmt.Sprintf("sg-%017x", g+1)
		for i := range harmless {
			res.Plan.Actions = append(res.Plan.Actions, reconcile.Action{Kind: reconcile.ActAuthorize,
				Key:         key(id, rules.Ingress, "tcp", int32(1000+i), int32(1000+i), rules.PeerCIDR4, "10.0.0.0/8"),
				Description: "a harmless internal port", Owners: []rules.Owner{{Source: fmt.Sprintf("rules/bulk-%d.yaml", g), Rule: fmt.Sprintf("r%04d", i)}}})
		}
	}
	dnsGroup := "sg-0000000000000d115"
	for i := range dns {
		src := fmt.Sprintf("rules/dns-%02d.yaml", i)
		res.Plan.Actions = append(res.Plan.Actions, reconcile.Action{Kind: reconcile.ActAuthorize,
			Key:         key(dnsGroup, rules.Ingress, "udp", int32(5300+i), int32(5300+i), rules.PeerCIDR4, "0.0.0.0/0"),
			Description: "dns", Owners: []rules.Owner{{Source: src, Rule: "dns"}}})
		res.Sources = append(res.Sources, reconcile.SourceResult{Key: src, Status: reconcile.StatusApplied,
			Diagnostics: rules.Diagnostics{{File: src, Line: 4, Col: 5, Rule: "dns", Field: "cidrBlocks", Severity: rules.SeverityWarning,
				Msg: "cidrBlocks: udp 53 is open to the world (0.0.0.0/0); only tcp 80 and 443 are expected to be"}}})
	}
	evil := "sg-0000000000000e111"
	res.Plan.Actions = append(res.Plan.Actions, reconcile.Action{Kind: reconcile.ActAuthorize,
		Key:         key(evil, rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "0.0.0.0/0"),
		Description: "ssh", Owners: []rules.Owner{{Source: "rules/zz-evil.yaml", Rule: "ssh"}}})
	res.Sources = append(res.Sources, reconcile.SourceResult{Key: "rules/zz-evil.yaml", Status: reconcile.StatusApplied,
		Diagnostics: rules.Diagnostics{{File: "rules/zz-evil.yaml", Line: 3, Col: 5, Rule: "ssh", Field: "cidrBlocks", Severity: rules.SeverityWarning,
			Msg: "cidrBlocks: tcp 22 is open to the world (0.0.0.0/0); only tcp 80 and 443 are expected to be"}}})
	for i := range invalid {
		src := fmt.Sprintf("rules/broken-%02d.yaml", i)
		var ds rules.Diagnostics
		for j := range errsPerFile {
			ds = append(ds, rules.Diagnostic{File: src, Line: j + 1, Col: 3, Field: "toPort", Severity: rules.SeverityError, Msg: "toPort: 70000 is not a port (0-65535)"})
		}
		res.Sources = append(res.Sources, reconcile.SourceResult{Key: src, Status: reconcile.StatusInvalid, Diagnostics: ds})
	}
	reconcile.SortActions(res.Plan.Actions)
	return res
}

// The cases a reviewer met: the one world-open SSH change is never left
// out, whatever else the plan holds and whatever the size limit.
func TestMarkdownRiskFirst(t *testing.T) {
	ssh := regexp.MustCompile(`(?m)^\| \+ add \| sg-0000000000000e111 \| ingress \| tcp \| 22 \| 0\.0\.0\.0/0 ⚠️ world \|`)
	sshWarning := "zz-evil.yaml:3:5: warning: ssh: cidrBlocks: tcp 22 is open to the world"
	for _, tc := range []struct {
		name                                           string
		groups, harmless, dns, invalid, errs, maxBytes int
	}{
		{"1000 adds, 60 dns, 7 KB", 1, 1000, 60, 0, 0, 7377},
		{"1000 adds, 60 dns", 1, 1000, 60, 0, 0, 0},
		{"3000 adds over 3 groups", 3, 1000, 0, 0, 0, 0},
		{"3000 adds over 3 groups, 7 KB", 3, 1000, 0, 0, 0, 7377},
		{"30 invalid files", 1, 200, 60, 30, 3, 0},
		{"30 invalid files, 12 KB", 1, 200, 60, 30, 3, 12000},
		{"one file with 3000 errors", 1, 100, 0, 1, 3000, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			max := tc.maxBytes
			if max == 0 {
				max = MaxCommentBytes
			}
			Markdown(&b, riskyResult(tc.groups, tc.harmless, tc.dns, tc.invalid, tc.errs), MarkdownOptions{MaxBytes: max})
			out := b.String()
			if len(out) > max {
				t.Fatalf("%d bytes, over %d", len(out), max)
			}
			if !ssh.MatchString(out) {
				t.Errorf("the world-open SSH row is not shown")
			}
			if tc.dns > 0 && !strings.Contains(out, report.MarkdownCell(sshWarning)) {
				t.Errorf("the SSH warning is not shown")
			}
			if strings.Contains(out, "cut at") {
				t.Errorf("cut as a last resort")
			}
			// Every group with changes shows some of its rows (budgets
			// are shared between groups), when the world-open rows leave
			// room for any.
			for g := range tc.groups {
				if tc.maxBytes > 0 && tc.dns > 0 {
					break
				}
				if !strings.Contains(out, fmt.Sprintf("| + add | sg-%017x |", g+1)) {
					t.Errorf("group %d shows no row", g+1)
				}
			}
			// Every invalid file is named.
			for i := range tc.invalid {
				if !strings.Contains(out, fmt.Sprintf("rules/broken-%02d.yaml", i)) {
					t.Errorf("invalid file %d is not named", i)
				}
			}
			if t.Failed() {
				t.Logf("%d bytes:\n%s", len(out), out)
			}
		})
	}
}

// Text from tags and rule files cannot act in the comment: no Mermaid
// directive, no mention, no link.
func TestMarkdownInjection(t *testing.T) {
	evil := "web\"]\n%%{init: {'theme':'dark'}}%%\nn1[\"x"
	res := reconcile.Result{Plan: reconcile.Plan{Actions: []reconcile.Action{{Kind: reconcile.ActAuthorize,
		Key:         key(web, rules.Ingress, "tcp", 22, 22, rules.PeerGroup, db),
		Description: "ask @octocat, see https://evil.example/x and www.evil.example",
		Owners:      []rules.Owner{{Source: "rules/web.yaml", Rule: "ssh"}}}}}}
	var b bytes.Buffer
	Markdown(&b, res, MarkdownOptions{Names: map[string]string{web: evil, db: "db @octocat"}})
	out := b.String()
	chart, ok := mermaidBlock(out)
	if !ok {
		t.Fatalf("no flowchart:\n%s", out)
	}
	if strings.Contains(chart, "%%") || strings.Contains(chart, "init:") && strings.Contains(chart, "%") {
		t.Errorf("a Mermaid directive reaches the chart:\n%s", chart)
	}
	if err := CheckMermaid(chart); err != nil {
		t.Errorf("flowchart: %v\n%s", err, chart)
	}
	// Outside the chart (GitHub reads no mentions or links in a code
	// block).
	text := strings.Replace(out, chart, "", 1)
	for _, live := range []string{"@octocat", "https://evil", "www.evil"} {
		if strings.Contains(text, live) {
			t.Errorf("%q is live in the comment:\n%s", live, out)
		}
	}
}

// An ingress rule of db from app and an egress rule of app to db are two
// arrows, each saying whose rule it is; a world-open arrow is thick
// whatever its state.
func TestPictureDirectionAndWorld(t *testing.T) {
	b := &GraphBuilder{Names: names}
	b.Add(key(db, rules.Ingress, "tcp", 5432, 5432, rules.PeerGroup, web), "")
	b.Add(key(web, rules.Egress, "tcp", 5432, 5432, rules.PeerGroup, db), "")
	b.Add(key(web, rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "0.0.0.0/0"), "").Status = StatusAdded
	var out bytes.Buffer
	Mermaid(&out, b.Graph())
	text := out.String()
	for _, want := range []string{`|"in: tcp 5432"|`, `|"out: tcp 5432"|`, `==>|"in: + tcp 22"|`} {
		if !strings.Contains(text, want) {
			t.Errorf("no arrow %s in\n%s", want, text)
		}
	}
	if strings.Contains(text, "tcp 5432, tcp 5432") {
		t.Errorf("ingress and egress merged into one arrow:\n%s", text)
	}
	if !regexp.MustCompile(`linkStyle [0-9]+ stroke:#1a7f37,stroke-width:4px`).MatchString(text) {
		t.Errorf("the new world-open arrow is not thick:\n%s", text)
	}
	if err := CheckMermaid(text); err != nil {
		t.Error(err)
	}
}

// World-open written differently is world-open in the review: halves
// taken together, and 2000::/3 (all global unicast IPv6).
func TestMarkdownWorldSpellings(t *testing.T) {
	add := func(port int32, kind rules.PeerKind, cidr string) reconcile.Action {
		return reconcile.Action{Kind: reconcile.ActAuthorize, Key: key(web, rules.Ingress, "tcp", port, port, kind, cidr),
			Owners: []rules.Owner{{Source: "rules/sneaky.yaml", Rule: cidr}}}
	}
	res := reconcile.Result{Plan: reconcile.Plan{Actions: []reconcile.Action{
		add(22, rules.PeerCIDR4, "0.0.0.0/1"), add(22, rules.PeerCIDR4, "128.0.0.0/1"),
		add(3389, rules.PeerCIDR6, "2000::/3"),
		add(5432, rules.PeerCIDR4, "10.0.0.0/8"), add(5432, rules.PeerCIDR4, "128.0.0.0/1"), // not together
	}}}
	reconcile.SortActions(res.Plan.Actions)
	var b bytes.Buffer
	Markdown(&b, res, MarkdownOptions{})
	out := b.String()
	section, _, _ := strings.Cut(out, "#### Other changes")
	if !strings.Contains(section, "Review first: 3 world-open changes") {
		t.Fatalf("want 3 world-open changes in the review section:\n%s", out)
	}
	for _, want := range []string{"0.0.0.0/1 ⚠️ world", "128.0.0.0/1 ⚠️ world", "2000::/3 ⚠️ world"} {
		if !strings.Contains(section, want) {
			t.Errorf("%q not in the review section:\n%s", want, section)
		}
	}
	if strings.Contains(section, "5432") {
		t.Errorf("10.0.0.0/8 + 128.0.0.0/1 is not the internet:\n%s", section)
	}
}

// TestGraphTwentyGroups is the live graph of 20 groups, each with the
// default egress rule EC2 gives a new group: the 20 default egress arrows
// are one note, a declared egress to the world is still drawn, and the
// picture is laid out top-down.
func TestGraphTwentyGroups(t *testing.T) {
	var actual []reconcile.ActualRule
	owned := map[string]bool{}
	names := map[string]string{}
	for i := range 20 {
		g := fmt.Sprintf("sg-%017x", i+1)
		names[g] = fmt.Sprintf("tier-%02d", i+1)
		actual = append(actual,
			reconcile.ActualRule{Key: key(g, rules.Egress, "-1", -1, -1, rules.PeerCIDR4, "0.0.0.0/0"), RuleID: fmt.Sprintf("sgr-e4-%d", i)},
			reconcile.ActualRule{Key: key(g, rules.Egress, "-1", -1, -1, rules.PeerCIDR6, "::/0"), RuleID: fmt.Sprintf("sgr-e6-%d", i)})
		if i > 0 {
			id := fmt.Sprintf("sgr-in-%d", i)
			actual = append(actual, reconcile.ActualRule{Key: key(g, rules.Ingress, "tcp", 443, 443, rules.PeerGroup, fmt.Sprintf("sg-%017x", i)), RuleID: id})
			owned[id] = true
		}
	}
	// The IPv4 egress of tier-01 is declared (in the ledger): it is drawn;
	// its IPv6 default egress is folded with the others.
	owned["sgr-e4-0"] = true
	actual = append(actual, reconcile.ActualRule{Key: key(fmt.Sprintf("sg-%017x", 1), rules.Ingress, "tcp", 443, 443, rules.PeerCIDR4, "0.0.0.0/0"), RuleID: "sgr-web"})
	owned["sgr-web"] = true
	g := GraphOfRules(actual, names, owned)

	var m, d bytes.Buffer
	Mermaid(&m, g)
	DOT(&d, g)
	golden(t, "graph-20.mmd", m.Bytes())
	golden(t, "graph-20.dot", d.Bytes())
	if err := CheckMermaid(m.String()); err != nil {
		t.Error(err)
	}
	graphviz.Check(t, d.Bytes())
	for _, s := range []string{m.String(), d.String()} {
		if n := strings.Count(s, "out: all traffic"); n != 1 {
			t.Errorf("%d egress arrows to the world, want 1 (the declared one):\n%s", n, s)
		}
		if !strings.Contains(s, "default egress (all traffic to the internet, unmanaged): 20 groups") {
			t.Errorf("no note folding the 20 default egress rules:\n%s", s)
		}
	}
	if !strings.HasPrefix(m.String(), "flowchart TB\n") || !strings.Contains(d.String(), "rankdir=TB;") {
		t.Errorf("20 groups not laid out top-down:\n%s\n%s", m.String(), d.String())
	}
}

// Spellings of one group that only AWS could equate are flagged when
// their names match (issue 22.4); different names are not.
func TestMaybeSame(t *testing.T) {
	tests := []struct {
		name string
		a, b Node
		want bool
	}{
		{"tag and group name with -sg", Node{ID: "tags:Name=shop-web", Kind: NodeRef}, Node{ID: "name:shop-web-sg@vpc-1", Kind: NodeRef}, true},
		{"tag among others, case", Node{ID: "tags:Name=Web,env=prod", Kind: NodeRef}, Node{ID: "name:web@vpc-1", Kind: NodeRef}, true},
		{"named id and tag", Node{ID: "sg-1", Kind: NodeGroup, Name: "db"}, Node{ID: "tags:Name=db", Kind: NodeRef}, true},
		{"different names", Node{ID: "tags:Name=web", Kind: NodeRef}, Node{ID: "name:db@vpc-1", Kind: NodeRef}, false},
		{"tags without Name", Node{ID: "tags:tier=web", Kind: NodeRef}, Node{ID: "tags:tier=web,env=prod", Kind: NodeRef}, false},
		{"id without a name", Node{ID: "sg-1", Kind: NodeGroup}, Node{ID: "tags:Name=sg-1", Kind: NodeRef}, false},
		{"a CIDR", Node{ID: "10.0.0.0/8", Kind: NodeCIDR}, Node{ID: "tags:Name=10.0.0.0/8", Kind: NodeRef}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := maybeSame([]Node{tc.a, tc.b})
			if (len(got) == 1) != tc.want {
				t.Errorf("maybeSame = %+v, want %v", got, tc.want)
			}
		})
	}
}
