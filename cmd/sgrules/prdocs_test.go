package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/sgrules/sgrules/internal/adapters/dirsource"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/report/render"
	"github.com/sgrules/sgrules/pkg/rules"
)

// examplesWorld is a moto account with one group per Name tag the rule
// files of examples/ reference, and those files (without
// raw-group-id.yaml, whose group id exists nowhere) copied to w.dir and
// applied: the state of the main branch. ids maps each group id to its
// Name.
func examplesWorld(t *testing.T) (w *cliWorld, ids map[string]string) {
	t.Helper()
	w = newCLIWorld(t)
	src := dirsource.New("../../examples")
	ctx := context.Background()
	objs, err := src.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, info := range objs {
		if path.Base(info.Key) == "raw-group-id.yaml" {
			continue
		}
		obj, err := src.Get(ctx, info.Key)
		if err != nil {
			t.Fatal(err)
		}
		f, diags := rules.Parse(info.Key, obj.Body)
		if diags.HasErrors() {
			t.Fatalf("%s: %v", info.Key, diags)
		}
		for _, ref := range f.Refs() {
			names[ref.Tags["Name"]] = true
		}
		dst := filepath.Join(w.dir, filepath.FromSlash(info.Key))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, obj.Body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ids = map[string]string{}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		ids[w.group(n)] = n
	}
	w.expect(0, nil, "apply", w.dir)
	return w, ids
}

// edit replaces old by new in a file of w.dir (the test fails if old is
// not there).
func (w *cliWorld) edit(name, old, new string) {
	w.t.Helper()
	p := filepath.Join(w.dir, name)
	b, err := os.ReadFile(p)
	if err != nil {
		w.t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		w.t.Fatalf("%s does not contain %q", name, old)
	}
	w.write(name, strings.Replace(string(b), old, new, 1))
}

// stableIDs replaces moto's random group ids by ids derived from the
// group's Name, so the generated example is the same on every run.
func stableIDs(s string, ids map[string]string) string {
	for id, name := range ids {
		sum := sha256.Sum256([]byte(name))
		s = strings.ReplaceAll(s, id, "sg-0"+hex.EncodeToString(sum[:])[:16])
	}
	return s
}

// The pull request of docs/pull-requests.md: on top of examples/, it
// changes the Redis port, adds SSH from anywhere to the admin hosts,
// drops the ESP rule of the VPN and rewords a description.
func prEdits(w *cliWorld) {
	w.edit("database.json", `"fromPort": 6379,
      "toPort": 6379`, `"fromPort": 6380,
      "toPort": 6380`)
	w.edit("admin.yaml", "  allow-ping-rule:", `  bastion-ssh-anywhere:
    securityGroup: {tags: {Name: admin}}
    type: ingress
    protocol: tcp
    fromPort: 22
    toPort: 22
    cidrBlocks: [0.0.0.0/0]
    description: Temporary - SSH from anywhere during the migration

  allow-ping-rule:`)
	w.edit("vpn.yaml", `
  vpn-esp-rule:
    securityGroup: {tags: {Name: vpn}}
    type: ingress
    protocol: "50" # ESP; a quoted number works too
    cidrBlocks: [203.0.113.0/24]
    description: Allow ESP for IPSec VPN
`, "")
	w.edit("web.yaml", "description: Allow HTTP traffic to ALB from internet", "description: HTTP to the ALB (it redirects to HTTPS)")
}

// TestPullRequestDocs regenerates the examples of docs/pull-requests.md
// (the PR comment of prEdits on top of examples/, and the graph of what
// reaches the database) and compares them with the page; -update rewrites
// the page. It is the golden test of the markdown plan from examples/.
func TestPullRequestDocs(t *testing.T) {
	w, ids := examplesWorld(t)
	prEdits(w)
	code, plan, errs := runCmd(t, "plan", "--output", "markdown", w.dir)
	if code != 0 {
		t.Fatalf("plan: exit %d: %s", code, errs)
	}
	plan = stableIDs(plan, ids)
	for _, want := range []string{"### sgrules plan: 1 to add, 2 to change, 1 to remove", "6379 → 6380", "0.0.0.0/0 ⚠️ world",
		"tcp 22 is open to the world", "`rules/vpn.yaml#vpn-esp-rule`", "```mermaid"} {
		if !strings.Contains(plan, want) {
			t.Errorf("the PR comment lacks %q:\n%s", want, plan)
		}
	}
	chart, _, _ := strings.Cut(strings.SplitN(plan, "```mermaid\n", 2)[1], "```")
	if err := render.CheckMermaid(chart); err != nil {
		t.Errorf("flowchart: %v", err)
	}
	code, graph, errs := runCmd(t, "graph", "--group", "database", "../../examples")
	if code != 0 {
		t.Fatalf("graph: exit %d: %s", code, errs)
	}
	golden(t, "examples-plan.md", []byte(plan))
	code, shop, errs := runCmd(t, "graph", "--group", "shop-db", "../../internal/report/render/testdata/shop")
	if code != 0 {
		t.Fatalf("graph shop: exit %d: %s", code, errs)
	}

	const doc = "../../docs/pull-requests.md"
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, s := range []struct{ name, body string }{
		{"pr-comment", plan},
		{"graph-database", "```mermaid\n" + graph + "```\n"},
		{"graph-shop", "```mermaid\n" + shop + "```\n"},
	} {
		re := regexp.MustCompile(`(?s)(<!-- generated: ` + s.name + ` -->\n).*?(<!-- end: ` + s.name + ` -->)`)
		if !re.MatchString(page) {
			t.Fatalf("%s has no <!-- generated: %s --> … <!-- end: %s --> section", doc, s.name, s.name)
		}
		page = re.ReplaceAllLiteralString(page, "<!-- generated: "+s.name+" -->\n"+s.body+"<!-- end: "+s.name+" -->")
	}
	if *update {
		if err := os.WriteFile(doc, []byte(page), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if page != string(b) {
		t.Errorf("%s is out of date: run go test ./cmd/sgrules -run TestPullRequestDocs -update", doc)
	}
}

// --live draws the rules EC2 has: managed ones as applied, unmanaged ones
// (a rule added by hand, the default egress) marked so, and --group
// follows the live group references.
func TestGraphLive(t *testing.T) {
	w, ids := examplesWorld(t)
	byName := map[string]string{}
	for id, n := range ids {
		byName[n] = id
	}
	p := ipPerm("tcp", 9000, 9000)
	p.IpRanges = []ec2types.IpRange{{CidrIp: aws.String("10.9.0.0/16")}}
	w.authorize(byName["app"], false, p)
	// Adopted: a hand-made rule a file then declares (apply records it in
	// the ledger and tags nothing). Spoofed: a hand-made rule carrying
	// sgrules' tag, in no ledger.
	adopted := ipPerm("tcp", 9001, 9001)
	adopted.IpRanges = []ec2types.IpRange{{CidrIp: aws.String("10.9.0.0/16")}}
	w.authorize(byName["app"], false, adopted)
	w.write("adopt.yaml", "rules:\n  r:\n    securityGroup: {tags: {Name: app}}\n    type: ingress\n    protocol: tcp\n    fromPort: 9001\n    toPort: 9001\n    cidrBlocks: [10.9.0.0/16]\n")
	w.expect(0, []string{"adopted"}, "apply", w.dir)
	spoof := ipPerm("tcp", 9002, 9002)
	spoof.IpRanges = []ec2types.IpRange{{CidrIp: aws.String("10.9.0.0/16")}}
	sr, err := w.ec2.AuthorizeSecurityGroupIngress(context.Background(), &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(byName["app"]), IpPermissions: []ec2types.IpPermission{spoof},
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSecurityGroupRule, Tags: []ec2types.Tag{{Key: aws.String(reconcile.TagManaged), Value: aws.String("true")}}}}})
	if err != nil || len(sr.SecurityGroupRules) != 1 {
		t.Fatalf("spoofed rule: %v", err)
	}

	code, out, errs := runCmd(t, "graph", "--live", "--format", "json", "--group", "database")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var doc render.GraphDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range doc.Edges {
		got = append(got, nameOr(ids, e.From)+" -> "+nameOr(ids, e.To)+": "+e.Label+" "+e.Managed)
	}
	joined := strings.Join(got, "\n")
	for _, want := range []string{
		"app -> database: tcp 3306 managed", "app -> database: tcp 5432 managed",
		"web -> app: tcp 8000-8999 managed", "10.9.0.0/16 -> app: tcp 9000 unmanaged",
		"alb -> web: tcp 8080 managed", "0.0.0.0/0 -> alb: tcp 443 managed",
		"10.9.0.0/16 -> app: tcp 9001 managed", "10.9.0.0/16 -> app: tcp 9002 unmanaged",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("live graph lacks %q:\n%s", want, joined)
		}
	}
	if strings.Contains(joined, "cache") || strings.Contains(joined, "admin") {
		t.Errorf("live --group database drew groups that cannot reach it:\n%s", joined)
	}

	// Without --group: every group of the files, the default egress
	// rules (unmanaged) folded into one note, not one arrow per group.
	code, out, errs = runCmd(t, "graph", "--live", w.dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if err := render.CheckMermaid(out); err != nil {
		t.Error(err)
	}
	if strings.Contains(out, `out: all traffic (unmanaged)`) {
		t.Errorf("the default egress rules are drawn as arrows:\n%s", out)
	}
	// Some groups of the examples declare their egress (or clear it):
	// the note counts the others, several of them.
	m := regexp.MustCompile(`default egress \(all traffic to the internet, unmanaged\): ([0-9]+) groups`).FindStringSubmatch(out)
	if m == nil || m[1] == "1" || strings.Count(out, "default egress") != 1 {
		t.Errorf("the default egress rules are not one note for several groups:\n%s", out)
	}
}

func nameOr(ids map[string]string, id string) string {
	if n, ok := ids[id]; ok {
		return n
	}
	return id
}
