package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/report/render"
	"github.com/sgrules/sgrules/internal/testutil/flowcorpus"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
	"github.com/sgrules/sgrules/pkg/flowlog/flowlogtest"
	"github.com/sgrules/sgrules/pkg/rules"
)

// usageWorld applies the labelled traffic corpus's rule files to its
// world in moto and delivers its flow logs to s3://flow-logs/vpc/.
// extra rule files (placeholders allowed) are applied with the corpus's;
// extraGroups are created (tagged Name) first.
func usageWorld(t *testing.T, extraGroups []string, extra map[string]string) (*cliWorld, *flowlogtest.Corpus, flowlogtest.IDs) {
	t.Helper()
	w := newCLIWorld(t)
	ctx := context.Background()
	corpus, err := flowlogtest.Load()
	if err != nil {
		t.Fatal(err)
	}
	ids, err := flowcorpus.Build(ctx, w.ec2, corpus)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range extraGroups {
		ids["sg:"+g] = motoserver.CreateGroup(t, w.cfg, ids["vpc"], g+"-sg", map[string]string{"Name": g})
	}
	for name, body := range corpus.Rules {
		w.write(name, ids.Expand(body))
	}
	for name, body := range extra {
		w.write(name, ids.Expand(body))
	}
	w.expect(0, []string{"Applied:"}, "apply", w.dir)
	motoserver.CreateBucket(t, w.cfg, "flow-logs", false)
	if _, err := flowcorpus.PutLogs(ctx, s3.NewFromConfig(w.cfg, awsconfig.S3Options), "flow-logs", "vpc/", w.cfg.Region, "2025/12/01", corpus, ids); err != nil {
		t.Fatal(err)
	}
	return w, corpus, ids
}

// TestUsageCorpus runs "sgrules usage --output json" over the corpus
// applied by "sgrules apply": every managed permission is listed with the
// rule id EC2 gave it and the ledger recorded, and its usage agrees with
// the labels (100%, no false "unused").
func TestUsageCorpus(t *testing.T) {
	w, corpus, ids := usageWorld(t, nil, nil)
	out := w.expect(0, nil, "usage", "--flow-logs", "s3://flow-logs/vpc", "--since", "2d", "--until", "2025-12-02", "--output", "json", w.dir)
	var doc render.UsageDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	live, err := ec2sg.New(w.ec2).DescribeRules(context.Background(), []string{ids["sg:web"], ids["sg:admin"], ids["sg:app"], ids["sg:db"], ids["sg:batch"]})
	if err != nil {
		t.Fatal(err)
	}
	liveIDs := map[rules.Key]string{}
	for _, a := range live {
		liveIDs[a.Key] = a.RuleID
	}
	var results []flowlogtest.Result
	for _, r := range doc.Rules {
		key, err := rules.ParseKey(fmt.Sprintf("%s|%s|%s|%d|%d|%s", r.GroupID, r.Direction, r.Protocol, r.FromPort, r.ToPort, r.Peer))
		if err != nil {
			t.Fatal(err)
		}
		if r.RuleID == "" || r.RuleID != liveIDs[key] {
			t.Errorf("%s#%s %s: ruleId %q, EC2 has %q", r.Source, r.Rule, key, r.RuleID, liveIDs[key])
		}
		res := flowlogtest.Result{Source: strings.TrimPrefix(r.Source, "rules/"), Rule: r.Rule, Peer: r.Peer, Flows: r.Flows, Bytes: r.Bytes,
			AmbiguousFlows: r.AmbiguousFlows, LastPeer: r.LastPeer, HasAmbiguous: true, HasPeer: true}
		if r.LastSeen != nil {
			last, err := time.Parse(time.RFC3339, *r.LastSeen)
			if err != nil {
				t.Fatal(err)
			}
			res.LastSeen = &last
		}
		results = append(results, res)
	}
	for _, d := range corpus.Check(results, ids) {
		t.Error(d)
	}
	want := corpus.Expected
	if doc.Read.Objects != want.Read.Objects || doc.Read.BadObjects != want.Read.BadObjects || doc.Read.Malformed != want.Read.Malformed ||
		doc.Attribution.Credited != want.Attribution.Credited || doc.Window.From != "2025-11-30T00:00:00Z" || doc.Window.To != "2025-12-02T00:00:00Z" {
		t.Errorf("read %+v attribution %+v window %+v", doc.Read, doc.Attribution, doc.Window)
	}
}

// TestUsageText: the text lists used rules with their last flow and
// unused ones as "no traffic in the window"; broken objects and lines are
// warnings on stderr, not failures. A window before the logs finds no
// traffic at all.
func TestUsageText(t *testing.T) {
	w, _, ids := usageWorld(t, nil, nil)
	code, out, errs := runCmd(t, "usage", "--flow-logs", "s3://flow-logs/vpc/", "--since", "1d", "--until", "2025-12-01T23:00:00Z", w.dir)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	t.Logf("stdout:\n%s\nstderr:\n%s", out, errs)
	lines := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		// FILE RULE ID sg-… (NAME) PERMISSION…: the permission is in the
		// rule files' words, "tcp 443 from 0.0.0.0/0".
		f := strings.Fields(l)
		for i := 5; i+1 < len(f); i++ {
			if f[i] == "from" || f[i] == "to" {
				lines[f[1]+" "+f[i+1]] = l
				break
			}
		}
		if strings.Contains(l, "cidr4:") || strings.Contains(l, "cidr6:") {
			t.Errorf("a machine key, not the rule files' words: %s", l)
		}
	}
	for rule, want := range map[string]string{
		"web-https-in 0.0.0.0/0":    "2025-12-01T10:11:00Z from 198.51.100.8",
		"web-https-in ::/0":         "2025-12-01T10:02:40Z from 2001:db8:ff::5",
		"web-http-in 0.0.0.0/0":     render.NoTraffic,
		"web-http-in 0.0.0.0/0 ":    ids["sg:web"] + " (web)",
		"web-ping 10.0.0.0/16":      "1*",
		"db-from-admin 10.0.9.0/24": render.NoTraffic,
	} {
		if want == "" {
			continue
		}
		if !strings.Contains(lines[strings.TrimSpace(rule)], want) {
			t.Errorf("%s: line %q does not contain %q\n%s", rule, lines[rule], want, out)
		}
	}
	for _, s := range []string{"16 rules: 12 used, 4 with no traffic in the window 2025-11-30T23:00:00Z to 2025-12-01T23:00:00Z.",
		"Read 3 log objects (1 unreadable)", "3 malformed lines skipped"} {
		if !strings.Contains(out, s) {
			t.Errorf("stdout lacks %q:\n%s", s, out)
		}
	}
	for _, s := range []string{"warning: s3://flow-logs/vpc/AWSLogs/", "broken.log.gz: flow-log header", "warning: s3://flow-logs/", ":7: dstaddr: \"999.1.1.1\""} {
		if !strings.Contains(errs, s) {
			t.Errorf("stderr lacks %q:\n%s", s, errs)
		}
	}

	code, out, errs = runCmd(t, "usage", "--flow-logs", "s3://flow-logs/vpc/", "--since", "7d", "--until", "2025-11-30", w.dir)
	if code != 0 || !strings.Contains(out, "16 rules: 0 used, 16 with no traffic in the window") || !strings.Contains(out, "Read 0 log objects") {
		t.Errorf("window before the logs: exit %d\n%s\n%s", code, out, errs)
	}
}

func TestUsageFlags(t *testing.T) {
	t.Setenv(envFlowLogs, "")
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{dir}, "no flow logs: set --flow-logs"},
		{[]string{"--flow-logs", "my-bucket", dir}, "want s3://BUCKET"},
		{[]string{"--flow-logs", "s3://b", "--since", "soon", dir}, `--since "soon": want days`},
		{[]string{"--flow-logs", "s3://b", "--since", "0d", dir}, "longer than zero"},
		{[]string{"--flow-logs", "s3://b", "--until", "yesterday", dir}, `--until "yesterday"`},
		{[]string{"--flow-logs", "s3://b", "--output", "xml", dir}, "--output must be text or json"},
	} {
		code, _, errs := runCmd(t, append([]string{"usage"}, tc.args...)...)
		if code != exitUsage || !strings.Contains(errs, tc.want) {
			t.Errorf("usage %v: exit %d, stderr %q, want 2 and %q", tc.args, code, errs, tc.want)
		}
	}
}

// TestUnused lists the rules with no traffic (the corpus's four and a
// rule of a group with no interface), a rule another rule of its group
// allows entirely, and the group with no interface.
func TestUnused(t *testing.T) {
	w, _, ids := usageWorld(t, []string{"lonely"}, map[string]string{"extra.yaml": `rules:
  web-https-partners:
    securityGroup: {tags: {Name: web}}
    type: ingress
    protocol: tcp
    fromPort: 443
    toPort: 443
    cidrBlocks: [198.51.100.0/24]
  web-http-again:
    securityGroup: {tags: {Name: web}}
    type: ingress
    protocol: tcp
    fromPort: 80
    toPort: 80
    cidrBlocks: [0.0.0.0/0]
    description: HTTP from anywhere (only replies to web1 own HTTP and a rejected probe reach it)
  lonely-ssh:
    securityGroup: {tags: {Name: lonely}}
    type: ingress
    protocol: tcp
    fromPort: 22
    toPort: 22
    cidrBlocks: [10.0.0.0/8]
`})
	out := w.expect(0, nil, "unused", "--flow-logs", "s3://flow-logs/vpc", "--until", "2025-12-02", "--output", "json", w.dir)
	var doc render.UnusedDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var unused []string
	for _, r := range doc.Unused {
		unused = append(unused, r.Rule)
	}
	if got, want := strings.Join(unused, " "), "admin-rdp app-from-batch db-from-admin lonely-ssh web-http-again web-http-in"; got != want {
		t.Errorf("unused %q, want %q", got, want)
	}
	if len(doc.Subsumed) != 1 || doc.Subsumed[0].Rule != "web-https-partners" || doc.Subsumed[0].By.Rule != "web-https-in" ||
		doc.Subsumed[0].By.Peer != "cidr4:0.0.0.0/0" || doc.Subsumed[0].By.RuleID == "" {
		t.Errorf("subsumed %+v", doc.Subsumed)
	}
	if len(doc.GroupsWithoutInterface) != 1 || doc.GroupsWithoutInterface[0] != ids["sg:lonely"] {
		t.Errorf("groups without interface %v, want [%s]", doc.GroupsWithoutInterface, ids["sg:lonely"])
	}
	if len(doc.DeclaredTwice) != 1 || strings.Join(doc.DeclaredTwice[0].Owners, " ") != "rules/extra.yaml#web-http-again rules/web.yaml#web-http-in" {
		t.Errorf("declared twice %+v", doc.DeclaredTwice)
	}
	if doc.Window.From != "2025-09-03T00:00:00Z" {
		t.Errorf("default window %+v, want 90 days", doc.Window)
	}

	text := w.expect(0, []string{"1 rules are declared more than once:", "6 rules carried no traffic in the window", "group has no network interface",
		"1 rules allow nothing that another rule of their group does not", "rules/web.yaml#web-https-in",
		"Groups with managed rules and no network interface: " + ids["sg:lonely"]}, "unused", "--flow-logs", "s3://flow-logs/vpc", "--until", "2025-12-02", w.dir)
	t.Logf("%s", text)
}

// TestUsageCounters: with a ledger, usage adds what the flow-log function
// counted there over the window: a rule the logs read show unused is used
// by its counters; a rule both count keeps the larger count, never the
// sum; counters before the window add nothing.
func TestUsageCounters(t *testing.T) {
	w, _, ids := usageWorld(t, nil, nil)
	ctx := context.Background()
	led := ddbledger.New(dynamodb.NewFromConfig(w.cfg), "ledger")
	owned, err := led.GroupPermissions(ctx, []string{ids["sg:web"]})
	if err != nil {
		t.Fatal(err)
	}
	byRule := map[string]reconcile.OwnedPermission{}
	for _, o := range owned {
		for owner := range o.Owners {
			byRule[owner.Rule+" "+o.Key.Peer.String()] = o
		}
	}
	http, https := byRule["web-http-in cidr4:0.0.0.0/0"], byRule["web-https-in cidr4:0.0.0.0/0"]
	if http.RuleID == "" || https.RuleID == "" {
		t.Fatalf("rules not found in %v", byRule)
	}
	c := led.CountersFor(rules.Target{})
	last := time.Date(2025, 12, 1, 12, 0, 0, 0, time.UTC)
	for i, add := range []struct {
		day string
		rc  ddbledger.RuleCounter
	}{
		{"2025-12-01", ddbledger.RuleCounter{Key: http.Key, RuleID: http.RuleID, Flows: 4, Bytes: 400, First: last.Add(-time.Hour), Last: last, LastPeer: netip.MustParseAddr("192.0.2.9")}},
		{"2025-12-01", ddbledger.RuleCounter{Key: https.Key, RuleID: https.RuleID, Flows: 1, Bytes: 1, Last: last.Add(-11 * time.Hour)}},
		{"2025-11-01", ddbledger.RuleCounter{Key: byRule["web-ping cidr4:10.0.0.0/16"].Key, RuleID: byRule["web-ping cidr4:10.0.0.0/16"].RuleID, Flows: 50, Bytes: 50,
			Last: time.Date(2025, 11, 1, 1, 0, 0, 0, time.UTC)}},
	} {
		d, _ := time.Parse("2006-01-02", add.day)
		if _, err := c.Add(ctx, ddbledger.ObjectID{Bucket: "flow-logs", Key: fmt.Sprint(i), ETag: "e"}, d, []ddbledger.RuleCounter{add.rc}); err != nil {
			t.Fatal(err)
		}
	}
	out := w.expect(0, nil, "usage", "--flow-logs", "s3://flow-logs/vpc", "--since", "2d", "--until", "2025-12-02", "--output", "json", w.dir)
	var doc render.UsageDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got := map[string]string{}
	for _, r := range doc.Rules {
		ls := "never"
		if r.LastSeen != nil {
			ls = *r.LastSeen
		}
		got[r.Rule+" "+r.Peer] = fmt.Sprintf("%d flows %d bytes last %s from %s", r.Flows, r.Bytes, ls, r.LastPeer)
	}
	for rule, want := range map[string]string{
		"web-http-in cidr4:0.0.0.0/0":  "4 flows 400 bytes last 2025-12-01T12:00:00Z from 192.0.2.9",
		"web-https-in cidr4:0.0.0.0/0": "2 flows 7000 bytes last 2025-12-01T10:11:00Z from 198.51.100.8",
		"web-ping cidr4:10.0.0.0/16":   "1 flows 168 bytes last 2025-12-01T10:06:00Z from 10.0.2.20",
	} {
		if got[rule] != want {
			t.Errorf("%s: %q, want %q", rule, got[rule], want)
		}
	}
}
