package policy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/sgrules/sgrules/pkg/rules"
)

func mustPolicy(t *testing.T, src string) *Policy {
	t.Helper()
	p, diags := Parse("policy.yaml", []byte(src))
	if p == nil {
		t.Fatalf("Parse: %s", strings.Join(diags.Strings(), "\n"))
	}
	return p
}

func key(t *testing.T, s string) rules.Key {
	t.Helper()
	k, err := rules.ParseKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const (
	sgWeb  = "sg-0000000000000000a"
	sgDB   = "sg-0000000000000000b"
	sgBG   = "sg-0000000000000000c"
	sgNone = "sg-0000000000000000d"
)

// live are the facts of the groups as EC2 would report them.
var live = Facts{
	Groups: map[string]Group{
		sgWeb: {ID: sgWeb, Name: "web-sg", VPCID: "vpc-0a1b2c3d", Tags: map[string]string{"Name": "web", "tier": "web"}, Complete: true},
		sgDB:  {ID: sgDB, Name: "db-sg", VPCID: "vpc-0a1b2c3d", Tags: map[string]string{"Name": "db", "tier": "db"}, Complete: true},
		sgBG:  {ID: sgBG, Name: "bg-sg", VPCID: "vpc-0a1b2c3d", Tags: map[string]string{"Name": "bg", "tier": "db", "break-glass": "yes"}, Complete: true},
	},
	PrefixLists: map[string][]netip.Prefix{"pl-0123456789abcdef0": {netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("0.0.0.0/0")}},
}

// TestCheckRule: each clause field, one table row per decision.
func TestCheckRule(t *testing.T) {
	tests := []struct {
		name   string
		clause string // the fields of one clause "x", in flow style
		key    string
		want   string // "violates", "skipped" or ""
	}{
		// type
		{"type matches", "type: ingress", sgWeb + "|ingress|tcp|22|22|cidr4:10.0.0.0/8", "violates"},
		{"type differs", "type: egress", sgWeb + "|ingress|tcp|22|22|cidr4:10.0.0.0/8", ""},
		// protocol
		{"protocol matches", "protocol: udp", sgWeb + "|ingress|udp|53|53|cidr4:10.0.0.0/8", "violates"},
		{"protocol number normalised", "protocol: 17", sgWeb + "|ingress|udp|53|53|cidr4:10.0.0.0/8", "violates"},
		{"protocol differs", "protocol: udp", sgWeb + "|ingress|tcp|53|53|cidr4:10.0.0.0/8", ""},
		{"all traffic rule is every protocol", "protocol: udp", sgWeb + "|ingress|-1|-1|-1|cidr4:10.0.0.0/8", "violates"},
		{"all traffic clause: only -1 rules", "protocol: all", sgWeb + "|ingress|tcp|0|65535|cidr4:10.0.0.0/8", ""},
		{"all traffic clause matches -1", "protocol: -1", sgWeb + "|ingress|-1|-1|-1|cidr4:10.0.0.0/8", "violates"},
		{"numbered protocol", "protocol: 47", sgWeb + "|ingress|47|-1|-1|cidr4:10.0.0.0/8", "violates"},
		// ports
		{"port inside range", "ports: 22", sgWeb + "|ingress|tcp|0|1024|cidr4:10.0.0.0/8", "violates"},
		{"port outside range", "ports: 22", sgWeb + "|ingress|tcp|23|1024|cidr4:10.0.0.0/8", ""},
		{"range overlaps at the edge", "ports: '1000-2000'", sgWeb + "|ingress|tcp|2000|3000|cidr4:10.0.0.0/8", "violates"},
		{"range does not overlap", "ports: '1000-2000'", sgWeb + "|ingress|tcp|2001|3000|cidr4:10.0.0.0/8", ""},
		{"list of ports", "ports: [22, 3389]", sgWeb + "|ingress|udp|3389|3389|cidr4:10.0.0.0/8", "violates"},
		{"all ports rule", "protocol: tcp, ports: 22", sgWeb + "|ingress|tcp|0|65535|cidr4:10.0.0.0/8", "violates"},
		{"ports match all traffic", "ports: 22", sgWeb + "|ingress|-1|-1|-1|cidr4:10.0.0.0/8", "violates"},
		{"ports without protocol skip icmp", "ports: 8", sgWeb + "|ingress|icmp|8|-1|cidr4:10.0.0.0/8", ""},
		{"ports without protocol skip gre", "ports: 22", sgWeb + "|ingress|47|-1|-1|cidr4:10.0.0.0/8", ""},
		{"icmp type", "protocol: icmp, ports: 8", sgWeb + "|ingress|icmp|8|-1|cidr4:10.0.0.0/8", "violates"},
		{"icmp other type", "protocol: icmp, ports: 8", sgWeb + "|ingress|icmp|0|-1|cidr4:10.0.0.0/8", ""},
		{"icmp all types", "protocol: icmp, ports: 8", sgWeb + "|ingress|icmp|-1|-1|cidr4:10.0.0.0/8", "violates"},
		{"icmp clause, tcp rule", "protocol: icmp, ports: 8", sgWeb + "|ingress|tcp|8|8|cidr4:10.0.0.0/8", ""},
		{"icmp clause, all traffic rule", "protocol: icmp, ports: 8", sgWeb + "|ingress|-1|-1|-1|cidr4:10.0.0.0/8", "violates"},
		{"icmpv6", "protocol: icmpv6, ports: 128", sgWeb + "|ingress|icmpv6|128|0|cidr6:::/0", "violates"},
		// cidrs: containment, as the issue states
		{"world matches world", "cidrs: [0.0.0.0/0]", sgWeb + "|ingress|tcp|22|22|cidr4:0.0.0.0/0", "violates"},
		{"world does not match a /8", "cidrs: [0.0.0.0/0]", sgWeb + "|ingress|tcp|22|22|cidr4:10.0.0.0/8", ""},
		{"/8 matches itself", "cidrs: [10.0.0.0/8]", sgWeb + "|ingress|tcp|22|22|cidr4:10.0.0.0/8", "violates"},
		{"/8 matches world", "cidrs: [10.0.0.0/8]", sgWeb + "|ingress|tcp|22|22|cidr4:0.0.0.0/0", "violates"},
		{"/8 matches a /7 around it", "cidrs: [10.0.0.0/8]", sgWeb + "|ingress|tcp|22|22|cidr4:10.0.0.0/7", "violates"},
		{"/8 does not match a /16 inside", "cidrs: [10.0.0.0/8]", sgWeb + "|ingress|tcp|22|22|cidr4:10.1.0.0/16", ""},
		{"/8 does not match another /8", "cidrs: [10.0.0.0/8]", sgWeb + "|ingress|tcp|22|22|cidr4:11.0.0.0/8", ""},
		{"ipv6 world", "cidrs: ['::/0']", sgWeb + "|ingress|tcp|22|22|cidr6:::/0", "violates"},
		{"families do not mix", "cidrs: [0.0.0.0/0]", sgWeb + "|ingress|tcp|22|22|cidr6:::/0", ""},
		{"cidrs vs group peer", "cidrs: [0.0.0.0/0]", sgWeb + "|ingress|tcp|22|22|sg:" + sgDB, ""},
		{"cidrs vs known prefix list", "cidrs: [0.0.0.0/0]", sgWeb + "|ingress|tcp|22|22|pl:pl-0123456789abcdef0", "violates"},
		{"cidrs vs unknown prefix list", "cidrs: [0.0.0.0/0]", sgWeb + "|ingress|tcp|22|22|pl:pl-0123456789abcdef1", "skipped"},
		// broaderThan
		{"broader v4", "broaderThan: {ipv4: 8}", sgWeb + "|ingress|tcp|22|22|cidr4:10.0.0.0/7", "violates"},
		{"not broader v4", "broaderThan: {ipv4: 8}", sgWeb + "|ingress|tcp|22|22|cidr4:10.0.0.0/8", ""},
		{"broader v6", "broaderThan: {ipv6: 48}", sgWeb + "|ingress|tcp|22|22|cidr6:2001:db8::/32", "violates"},
		{"v6 limit unset", "broaderThan: {ipv4: 8}", sgWeb + "|ingress|tcp|22|22|cidr6:::/0", ""},
		{"broader and cidrs both", "cidrs: [0.0.0.0/0], broaderThan: {ipv4: 8}", sgWeb + "|ingress|tcp|22|22|cidr4:0.0.0.0/0", "violates"},
		{"broader vs group", "broaderThan: {ipv4: 8}", sgWeb + "|ingress|tcp|22|22|sg:" + sgDB, ""},
		{"broader vs prefix list", "broaderThan: {ipv4: 8}", sgWeb + "|ingress|tcp|22|22|pl:pl-0123456789abcdef0", "violates"},
		// groups
		{"groups tags", "groups: {tags: {tier: db}}", sgDB + "|ingress|tcp|22|22|cidr4:10.0.0.0/8", "violates"},
		{"groups other tags", "groups: {tags: {tier: db}}", sgWeb + "|ingress|tcp|22|22|cidr4:10.0.0.0/8", ""},
		{"groups id", "groups: " + sgWeb, sgWeb + "|ingress|tcp|22|22|cidr4:10.0.0.0/8", "violates"},
		{"groups name", "groups: {groupName: web-sg, vpcId: vpc-0a1b2c3d}", sgWeb + "|ingress|tcp|22|22|cidr4:10.0.0.0/8", "violates"},
		{"groups name other vpc", "groups: {groupName: web-sg, vpcId: vpc-0a1b2c3e}", sgWeb + "|ingress|tcp|22|22|cidr4:10.0.0.0/8", ""},
		{"groups any of", "groups: [{tags: {tier: cache}}, {tags: {Name: web}}]", sgWeb + "|ingress|tcp|22|22|cidr4:10.0.0.0/8", "violates"},
		{"groups unknown group", "groups: {tags: {tier: db}}", sgNone + "|ingress|tcp|22|22|cidr4:10.0.0.0/8", "skipped"},
		// peerGroups
		{"peer group", "peerGroups: {tags: {tier: web}}", sgDB + "|ingress|tcp|5432|5432|sg:" + sgWeb, "violates"},
		{"peer group other", "peerGroups: {tags: {tier: web}}", sgWeb + "|ingress|tcp|5432|5432|sg:" + sgDB, ""},
		{"peer group vs cidr", "peerGroups: {tags: {tier: web}}", sgDB + "|ingress|tcp|5432|5432|cidr4:0.0.0.0/0", ""},
		// exempt
		{"exempt", "type: ingress, exempt: [{tags: {break-glass: 'yes'}}]", sgBG + "|ingress|tcp|22|22|cidr4:0.0.0.0/0", ""},
		{"not exempt", "type: ingress, exempt: [{tags: {break-glass: 'yes'}}]", sgDB + "|ingress|tcp|22|22|cidr4:0.0.0.0/0", "violates"},
		{"exempt unknown", "type: ingress, exempt: [{tags: {break-glass: 'yes'}}]", sgNone + "|ingress|tcp|22|22|cidr4:0.0.0.0/0", "skipped"},
		{"exempt unknown but no match anyway", "type: egress, exempt: [{tags: {break-glass: 'yes'}}]", sgNone + "|ingress|tcp|22|22|cidr4:0.0.0.0/0", ""},
		// every field must match
		{"all fields", "type: ingress, protocol: tcp, ports: 22, cidrs: [0.0.0.0/0], groups: {tags: {tier: db}}", sgDB + "|ingress|tcp|22|22|cidr4:0.0.0.0/0", "violates"},
		{"one field differs", "type: ingress, protocol: tcp, ports: 22, cidrs: [0.0.0.0/0], groups: {tags: {tier: db}}", sgDB + "|ingress|tcp|22|22|cidr4:10.0.0.0/8", ""},
		{"a decided no beats an unknown", "ports: 22, groups: {tags: {tier: db}}", sgNone + "|ingress|tcp|80|80|cidr4:0.0.0.0/0", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustPolicy(t, "deny:\n  - {id: x, "+tc.clause+"}\n")
			ms := p.CheckRule(key(t, tc.key), live)
			got := ""
			if len(ms) == 1 {
				got = "violates"
				if ms[0].Skipped {
					got = "skipped"
					if len(ms[0].Need) == 0 {
						t.Error("skipped without saying what it needs")
					}
				}
			} else if len(ms) > 1 {
				t.Fatalf("%d matches for one clause", len(ms))
			}
			if got != tc.want {
				t.Errorf("CheckRule(%s) with {%s} = %q, want %q (%+v)", tc.key, tc.clause, got, tc.want, ms)
			}
		})
	}
}

const webFile = `rules:
  ssh:
    securityGroup: {tags: {Name: web, team: a}}
    type: ingress
    protocol: tcp
    fromPort: 22
    toPort: 22
    cidrBlocks: [10.0.0.0/8, 0.0.0.0/0]
    ipv6CidrBlocks: ["::/0"]
  db:
    securityGroup: {tags: {Name: db}}
    type: ingress
    protocol: tcp
    fromPort: 5432
    toPort: 5432
    sourceSecurityGroups: [{tags: {Name: admin}}, {tags: {Name: web, team: a}}]
`

func mustFile(t *testing.T, name, src string) *rules.File {
	t.Helper()
	f, diags := rules.Parse(name, []byte(src))
	if f == nil {
		t.Fatalf("rules.Parse: %s", strings.Join(diags.Strings(), "\n"))
	}
	return f
}

func offlineSource(t *testing.T, f *rules.File, path string) (Source, Facts) {
	t.Helper()
	resolve, facts := Offline(f)
	perms, _, diags := rules.Expand(f, f.Name, resolve)
	if diags.HasErrors() {
		t.Fatal(diags.Strings())
	}
	return Source{File: f, Perms: perms, Resolve: resolve, Path: path}, facts
}

func lines(ds []rules.Diagnostic) string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return strings.Join(out, "\n")
}

func TestCheckOffline(t *testing.T) {
	p := mustPolicy(t, `deny:
  - id: no-world-ssh
    message: SSH must not be open to the internet
    type: ingress
    ports: 22
    cidrs: [0.0.0.0/0, "::/0"]
  - id: no-web-to-db
    message: the web tier must not reach databases directly
    groups: {tags: {Name: db}}
    peerGroups: {tags: {tier: web}}
  - id: no-admin-to-db
    peerGroups: {tags: {Name: admin}}
    groups: {tags: {Name: db}}
`)
	f := mustFile(t, "rules/web.yaml", webFile)
	src, facts := offlineSource(t, f, "web.yaml")
	res := p.Check(src, facts)
	wantV := `rules/web.yaml:8:30: ssh: violates policy NO-WORLD-SSH: SSH must not be open to the internet (ingress tcp 22 from 0.0.0.0/0)
rules/web.yaml:9:22: ssh: violates policy NO-WORLD-SSH: SSH must not be open to the internet (ingress tcp 22 from ::/0)
rules/web.yaml:16:28: db: violates policy NO-ADMIN-TO-DB: ingress tcp 5432 from {tags: {Name: admin}}`
	if got := lines(res.Diagnostics()); got != wantV {
		t.Errorf("violations:\n%s\nwant:\n%s", got, wantV)
	}
	// The peers {Name: admin} and {Name: web, team: a} may or may not
	// carry tier=web: that needs AWS.
	wantS := `rules/web.yaml:16:28: db: skipped policy NO-WEB-TO-DB: needs the tags of group {tags: {Name: admin}}
rules/web.yaml:16:51: db: skipped policy NO-WEB-TO-DB: needs the tags of group {tags: {Name: web, team: a}}`
	var skips []rules.Diagnostic
	for _, s := range res.Skipped {
		skips = append(skips, s.Diagnostic)
	}
	if got := lines(skips); got != wantS {
		t.Errorf("skipped:\n%s\nwant:\n%s", got, wantS)
	}
	v := res.Violations[0]
	if v.Policy != "no-world-ssh" || v.Field != "cidrBlocks[1]" || v.Key.Peer.Value != "0.0.0.0/0" || v.Severity != rules.SeverityError {
		t.Errorf("violation = %+v", v)
	}
	if err := res.Err(); err == nil || !strings.Contains(err.Error(), "violates policy NO-WORLD-SSH") {
		t.Errorf("Err() = %v", err)
	}

	// Online: the same file with group facts from EC2 decides every clause.
	ids := map[string]string{"tags:Name=web,team=a": sgWeb, "tags:Name=db": sgDB, "tags:Name=admin": sgNone}
	resolve := func(g rules.GroupRef) []string { return []string{ids[g.String()]} }
	perms, _, diags := rules.Expand(f, f.Name, resolve)
	if diags.HasErrors() {
		t.Fatal(diags.Strings())
	}
	online := Facts{Groups: map[string]Group{sgNone: {ID: sgNone, Tags: map[string]string{"Name": "admin"}, Complete: true}}}
	for id, g := range live.Groups {
		online.Groups[id] = g
	}
	res = p.Check(Source{File: f, Perms: perms, Resolve: resolve, Path: "web.yaml"}, online)
	if len(res.Skipped) != 0 {
		t.Errorf("online skipped: %+v", res.Skipped)
	}
	want := []string{"NO-WORLD-SSH", "NO-WORLD-SSH", "NO-ADMIN-TO-DB", "NO-WEB-TO-DB: the web tier must not reach databases directly (ingress tcp 5432 from " + sgWeb + ")"}
	if len(res.Violations) != len(want) {
		t.Fatalf("online violations:\n%s", lines(res.Diagnostics()))
	}
	for i, w := range want {
		if !strings.Contains(res.Violations[i].Msg, w) {
			t.Errorf("online violation %d = %s, want %s", i, res.Violations[i].Msg, w)
		}
	}
	if !strings.Contains(res.Violations[2].Msg, "from "+sgNone) {
		t.Errorf("online message names the group by id: %s", res.Violations[2].Msg)
	}
}

func TestCheckTenants(t *testing.T) {
	p := mustPolicy(t, `tenants:
  - prefix: team-a/
    groups: {tags: {team: a}}
  - prefix: team-a/prod/
    groups: [{tags: {team: a, env: prod}}]
    accounts: ["111122223333"]
`)
	tests := []struct {
		name, path, account, file string
		violations, skipped       []string
	}{
		{name: "outside every tenant", path: "platform/web.yaml",
			file: "rules:\n  r:\n    securityGroup: {tags: {team: b}}\n    type: ingress\n    protocol: tcp\n    fromPort: 1\n    toPort: 1\n    cidrBlocks: [10.0.0.0/8]\n"},
		{name: "own group", path: "team-a/web.yaml",
			file: "rules:\n  r:\n    securityGroup: {tags: {team: a, Name: web}}\n    type: ingress\n    protocol: tcp\n    fromPort: 1\n    toPort: 1\n    cidrBlocks: [10.0.0.0/8]\n"},
		{name: "other team's group", path: "team-a/web.yaml",
			file:       "rules:\n  r:\n    securityGroup: {tags: {team: b}}\n    type: ingress\n    protocol: tcp\n    fromPort: 1\n    toPort: 1\n    cidrBlocks: [10.0.0.0/8]\n",
			violations: []string{"team-a/web.yaml:3:20: r: violates policy tenant team-a/: securityGroup {tags: {team: b}} is not a group of the tenant ({tags: {team: a}})"}},
		{name: "unknown group offline", path: "team-a/web.yaml",
			file:    "rules:\n  r:\n    securityGroup: {tags: {Name: web}}\n    type: ingress\n    protocol: tcp\n    fromPort: 1\n    toPort: 1\n    cidrBlocks: [10.0.0.0/8]\n",
			skipped: []string{"team-a/web.yaml:3:20: r: skipped policy tenant team-a/: needs the tags of group {tags: {Name: web}}"}},
		{name: "exclusive groups are checked", path: "team-a/x.yaml",
			file:       "exclusiveGroups: [{tags: {team: b}}]\nrules: {}\n",
			violations: []string{"team-a/x.yaml:1:19: violates policy tenant team-a/: exclusiveGroups[0] {tags: {team: b}} is not a group of the tenant ({tags: {team: a}})"}},
		{name: "nested tenants all apply", path: "team-a/prod/web.yaml", account: "111122223333",
			file:       "rules:\n  r:\n    securityGroup: {tags: {team: a, env: dev}}\n    type: ingress\n    protocol: tcp\n    fromPort: 1\n    toPort: 1\n    cidrBlocks: [10.0.0.0/8]\n",
			violations: []string{"team-a/prod/web.yaml:3:20: r: violates policy tenant team-a/prod/: securityGroup {tags: {env: dev, team: a}} is not a group of the tenant ({tags: {env: prod, team: a}})"}},
		{name: "wrong account", path: "team-a/prod/web.yaml", account: "444455556666",
			file:       "rules:\n  r:\n    securityGroup: {tags: {team: a, env: prod}}\n    type: ingress\n    protocol: tcp\n    fromPort: 1\n    toPort: 1\n    cidrBlocks: [10.0.0.0/8]\n",
			violations: []string{"team-a/prod/web.yaml:1:1: violates policy tenant team-a/prod/: account 444455556666 is not an account of the tenant (111122223333)"}},
		{name: "account unknown", path: "team-a/prod/web.yaml",
			file:    "rules:\n  r:\n    securityGroup: {tags: {team: a, env: prod}}\n    type: ingress\n    protocol: tcp\n    fromPort: 1\n    toPort: 1\n    cidrBlocks: [10.0.0.0/8]\n",
			skipped: []string{"team-a/prod/web.yaml:1:1: skipped policy tenant team-a/prod/: needs the account the file applies to"}},
		{name: "the file's literal account", path: "team-a/prod/web.yaml",
			file:       "account: \"444455556666\"\nrules:\n  r:\n    securityGroup: {tags: {team: a, env: prod}}\n    type: ingress\n    protocol: tcp\n    fromPort: 1\n    toPort: 1\n    cidrBlocks: [10.0.0.0/8]\n",
			violations: []string{"team-a/prod/web.yaml:1:10: violates policy tenant team-a/prod/: account 444455556666 is not an account of the tenant (111122223333)"}},
		{name: "the file's literal account allowed", path: "team-a/prod/web.yaml",
			file: "account: \"111122223333\"\nrules:\n  r:\n    securityGroup: {tags: {team: a, env: prod}}\n    type: ingress\n    protocol: tcp\n    fromPort: 1\n    toPort: 1\n    cidrBlocks: [10.0.0.0/8]\n"},
		{name: "prefix is not a folder prefix", path: "team-ab/web.yaml",
			file: "rules:\n  r:\n    securityGroup: {tags: {team: b}}\n    type: ingress\n    protocol: tcp\n    fromPort: 1\n    toPort: 1\n    cidrBlocks: [10.0.0.0/8]\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := mustFile(t, tc.path, tc.file)
			src, facts := offlineSource(t, f, tc.path)
			src.Account = tc.account
			res := p.Check(src, facts)
			if got, want := lines(res.Diagnostics()), strings.Join(tc.violations, "\n"); got != want {
				t.Errorf("violations:\n%s\nwant:\n%s", got, want)
			}
			var skips []rules.Diagnostic
			for _, s := range res.Skipped {
				skips = append(skips, s.Diagnostic)
			}
			if got, want := lines(skips), strings.Join(tc.skipped, "\n"); got != want {
				t.Errorf("skipped:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestNilPolicy(t *testing.T) {
	var p *Policy
	if res := p.Check(Source{File: &rules.File{}}, Facts{}); len(res.Violations)+len(res.Skipped) != 0 {
		t.Error("a nil policy found something")
	}
	if ms := p.CheckRule(rules.Key{}, Facts{}); ms != nil {
		t.Error("a nil policy matched")
	}
}

// The internet, taken together: a clause on 0.0.0.0/0 or ::/0 matches the
// rules of a group whose peers for one protocol and port cover the
// routable space of the family; one on another CIDR matches when they
// cover it. Each row checks keys together (with held rules as context) and
// lists, per key, "" or the keys responsible with it ("alone" when none),
// or "skipped".
func TestCheckRulesTogether(t *testing.T) {
	const ssh = "{id: x, type: ingress, protocol: tcp, ports: 22, cidrs: [0.0.0.0/0, '::/0']}"
	k := func(proto string, from, to int, peer string) string {
		return fmt.Sprintf("%s|ingress|%s|%d|%d|%s", sgWeb, proto, from, to, peer)
	}
	const plWorld, plPrivate, plUnknown, plEmpty = "pl-00000000000000001", "pl-00000000000000002", "pl-00000000000000003", "pl-00000000000000004"
	facts := Facts{Groups: live.Groups, PrefixLists: map[string][]netip.Prefix{
		plWorld:   {netip.MustParsePrefix("0.0.0.0/0")},
		plPrivate: {netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.0.0/16")},
		plEmpty:   nil,
	}}
	but10 := []string{"0.0.0.0/5", "8.0.0.0/7", "11.0.0.0/8", "12.0.0.0/6", "16.0.0.0/4", "32.0.0.0/3", "64.0.0.0/2", "128.0.0.0/1"}
	tests := []struct {
		name   string
		clause string
		keys   []string
		held   []string
		want   []string
	}{
		{"halves", ssh, []string{k("tcp", 22, 22, "cidr4:0.0.0.0/1"), k("tcp", 22, 22, "cidr4:128.0.0.0/1")}, nil,
			[]string{"cidr4:128.0.0.0/1", "cidr4:0.0.0.0/1"}},
		{"one half", ssh, []string{k("tcp", 22, 22, "cidr4:0.0.0.0/1")}, nil, []string{""}},
		{"global unicast", ssh, []string{k("tcp", 22, 22, "cidr6:2000::/3")}, nil, []string{"alone"}},
		{"half of global unicast", ssh, []string{k("tcp", 22, 22, "cidr6:2000::/4")}, nil, []string{""}},
		{"ipv4-mapped", ssh, []string{k("tcp", 22, 22, "cidr6:::ffff:0.0.0.0/96")}, nil, []string{""}},
		{"prefix list of the world", ssh, []string{k("tcp", 22, 22, "pl:"+plWorld)}, nil, []string{"alone"}},
		{"private prefix list", ssh, []string{k("tcp", 22, 22, "pl:"+plPrivate)}, nil, []string{""}},
		{"known empty prefix list", ssh, []string{k("tcp", 22, 22, "pl:"+plEmpty)}, nil, []string{""}},
		{"unknown prefix list", ssh, []string{k("tcp", 22, 22, "pl:"+plUnknown)}, nil, []string{"skipped"}},
		{"unknown prefix list beside the world", ssh, []string{k("tcp", 22, 22, "pl:"+plUnknown), k("tcp", 22, 22, "cidr4:0.0.0.0/0")}, nil,
			[]string{"skipped", "alone"}},
		{"all routable but 10/8", ssh, func() []string {
			var out []string
			for _, c := range but10 {
				out = append(out, k("tcp", 22, 22, "cidr4:"+c))
			}
			return out
		}(), nil, []string{"7", "7", "7", "7", "7", "7", "7", "7"}},
		{"a narrower one is not responsible", ssh, []string{k("tcp", 22, 22, "cidr4:0.0.0.0/1"), k("tcp", 22, 22, "cidr4:8.8.8.0/24"), k("tcp", 22, 22, "cidr4:128.0.0.0/1")}, nil,
			[]string{"cidr4:128.0.0.0/1", "", "cidr4:0.0.0.0/1"}},
		{"the world beside a private range", ssh, []string{k("tcp", 22, 22, "cidr4:10.0.0.0/8"), k("tcp", 22, 22, "cidr4:0.0.0.0/0")}, nil, []string{"", "alone"}},
		{"a port range and all traffic", ssh, []string{k("tcp", 0, 1024, "cidr4:0.0.0.0/2"), k("-1", -1, -1, "cidr4:64.0.0.0/2"), k("tcp", 22, 22, "cidr4:128.0.0.0/1")}, nil,
			[]string{"2", "2", "2"}},
		{"another protocol", ssh, []string{k("tcp", 22, 22, "cidr4:0.0.0.0/1"), k("udp", 22, 22, "cidr4:128.0.0.0/1")}, nil, []string{"", ""}},
		{"another port", ssh, []string{k("tcp", 22, 22, "cidr4:0.0.0.0/1"), k("tcp", 23, 23, "cidr4:128.0.0.0/1")}, nil, []string{"", ""}},
		{"another direction", ssh, []string{k("tcp", 22, 22, "cidr4:0.0.0.0/1"), sgWeb + "|egress|tcp|22|22|cidr4:128.0.0.0/1"}, nil, []string{"", ""}},
		{"another group", ssh, []string{k("tcp", 22, 22, "cidr4:0.0.0.0/1"), sgDB + "|ingress|tcp|22|22|cidr4:128.0.0.0/1"}, nil, []string{"", ""}},
		{"a group peer adds no addresses", ssh, []string{k("tcp", 22, 22, "cidr4:0.0.0.0/1"), k("tcp", 22, 22, "sg:"+sgDB)}, nil, []string{"", ""}},
		{"with a held rule", ssh, []string{k("tcp", 22, 22, "cidr4:128.0.0.0/1")}, []string{k("tcp", 22, 22, "cidr4:0.0.0.0/1")}, []string{"cidr4:0.0.0.0/1"}},
		{"held already open: a narrow one passes", ssh, []string{k("tcp", 22, 22, "cidr4:192.0.2.0/24")}, []string{k("-1", -1, -1, "cidr4:0.0.0.0/0")}, []string{""}},
		{"held already open: the world again violates", ssh, []string{k("tcp", 22, 22, "cidr4:0.0.0.0/1"), k("tcp", 22, 22, "cidr4:128.0.0.0/1")},
			[]string{k("-1", -1, -1, "cidr4:0.0.0.0/0")}, []string{"cidr4:128.0.0.0/1", "cidr4:0.0.0.0/1"}},
		{"held equal to a checked one counts once", ssh, []string{k("tcp", 22, 22, "cidr4:0.0.0.0/0")}, []string{k("tcp", 22, 22, "cidr4:0.0.0.0/0")}, []string{"alone"}},
		{"held unknown prefix list could complete", ssh, []string{k("tcp", 22, 22, "cidr4:0.0.0.0/1")}, []string{k("tcp", 22, 22, "pl:"+plUnknown)}, []string{"skipped"}},
		{"held unknown prefix list, private checked", ssh, []string{k("tcp", 22, 22, "cidr4:10.0.0.0/8")}, []string{k("tcp", 22, 22, "pl:"+plUnknown)}, []string{""}},
		{"a /8 by halves", "{id: x, cidrs: [10.0.0.0/8]}", []string{k("tcp", 5432, 5432, "cidr4:10.0.0.0/9"), k("tcp", 5432, 5432, "cidr4:10.128.0.0/9")}, nil,
			[]string{"cidr4:10.128.0.0/9", "cidr4:10.0.0.0/9"}},
		{"no protocol: tcp and udp do not add up", "{id: x, ports: 3389, cidrs: [0.0.0.0/0]}", []string{k("tcp", 3389, 3389, "cidr4:0.0.0.0/1"), k("udp", 3389, 3389, "cidr4:128.0.0.0/1")}, nil,
			[]string{"", ""}},
		{"no protocol: all traffic adds to udp", "{id: x, ports: 3389, cidrs: [0.0.0.0/0]}", []string{k("-1", -1, -1, "cidr4:0.0.0.0/1"), k("udp", 3000, 4000, "cidr4:128.0.0.0/1")}, nil,
			[]string{"cidr4:128.0.0.0/1", "cidr4:0.0.0.0/1"}},
		{"web ports only: 80 passes", "{id: x, ports: ['0-79', '81-442', '444-65535'], cidrs: [0.0.0.0/0]}",
			[]string{k("tcp", 80, 80, "cidr4:0.0.0.0/1"), k("tcp", 80, 80, "cidr4:128.0.0.0/1")}, nil, []string{"", ""}},
		{"web ports only: a range and a port", "{id: x, ports: ['0-79', '81-442', '444-65535'], cidrs: [0.0.0.0/0]}",
			[]string{k("tcp", 0, 65535, "cidr4:0.0.0.0/1"), k("tcp", 80, 80, "cidr4:128.0.0.0/1"), k("tcp", 22, 22, "cidr4:128.0.0.0/1")}, nil,
			[]string{"cidr4:128.0.0.0/1", "", "cidr4:0.0.0.0/1"}},
		{"icmp type and all types", "{id: x, protocol: icmp, ports: 8, cidrs: [0.0.0.0/0]}",
			[]string{sgWeb + "|ingress|icmp|8|-1|cidr4:0.0.0.0/1", sgWeb + "|ingress|icmp|-1|-1|cidr4:128.0.0.0/1"}, nil,
			[]string{"cidr4:128.0.0.0/1", "cidr4:0.0.0.0/1"}},
		{"icmp other type", "{id: x, protocol: icmp, ports: 8, cidrs: [0.0.0.0/0]}",
			[]string{sgWeb + "|ingress|icmp|8|-1|cidr4:0.0.0.0/1", sgWeb + "|ingress|icmp|0|-1|cidr4:128.0.0.0/1"}, nil, []string{"", ""}},
		{"broaderThan keeps only broad peers", "{id: x, cidrs: [0.0.0.0/0], broaderThan: {ipv4: 2}}",
			[]string{k("tcp", 22, 22, "cidr4:0.0.0.0/1"), k("tcp", 22, 22, "cidr4:128.0.0.0/2"), k("tcp", 22, 22, "cidr4:192.0.0.0/2")}, nil, []string{"", "", ""}},
		{"exempt group", "{id: x, cidrs: [0.0.0.0/0], exempt: {tags: {tier: web}}}",
			[]string{k("tcp", 22, 22, "cidr4:0.0.0.0/1"), k("tcp", 22, 22, "cidr4:128.0.0.0/1")}, nil, []string{"", ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustPolicy(t, "deny:\n  - "+tc.clause+"\n")
			var keys []rules.Key
			for _, s := range tc.keys {
				keys = append(keys, key(t, s))
			}
			f := facts
			f.Held = map[string][]rules.Key{}
			for _, s := range tc.held {
				h := key(t, s)
				f.Held[h.GroupID] = append(f.Held[h.GroupID], h)
			}
			got := p.CheckRules(keys, f)
			for i, ms := range got {
				g := ""
				switch {
				case len(ms) > 1:
					t.Fatalf("%d matches for one clause", len(ms))
				case len(ms) == 1 && ms[0].Skipped:
					g = "skipped"
					if len(ms[0].Need) == 0 {
						t.Error("skipped without saying what it needs")
					}
				case len(ms) == 1 && len(ms[0].With) == 0:
					g = "alone"
				case len(ms) == 1 && len(ms[0].With) > 1:
					g = strconv.Itoa(len(ms[0].With))
				case len(ms) == 1:
					g = ms[0].With[0].Peer.String()
				}
				if g != tc.want[i] {
					t.Errorf("%s: %q, want %q (%+v)", tc.keys[i], g, tc.want[i], ms)
				}
			}
		})
	}
}

// A file checked with a group's other rules: each responsible permission
// is a located violation naming the others and what they cover.
func TestCheckTogether(t *testing.T) {
	p := mustPolicy(t, "deny:\n  - {id: no-world-ssh, type: ingress, ports: 22, cidrs: [0.0.0.0/0, '::/0']}\n")
	f := mustFile(t, "rules/ssh.yaml", `rules:
  low:
    securityGroup: `+sgWeb+`
    type: ingress
    protocol: tcp
    fromPort: 22
    toPort: 22
    cidrBlocks: [0.0.0.0/1, 10.0.0.0/8]
    ipv6CidrBlocks: ["2000::/3"]
  pl:
    securityGroup: `+sgWeb+`
    type: ingress
    protocol: tcp
    fromPort: 22
    toPort: 22
    prefixListIds: [pl-00000000000000001]
`)
	resolve := func(g rules.GroupRef) []string { return []string{g.ID} }
	perms, _, diags := rules.Expand(f, f.Name, resolve)
	if diags.HasErrors() {
		t.Fatal(diags.Strings())
	}
	facts := Facts{Groups: live.Groups,
		PrefixLists: map[string][]netip.Prefix{"pl-00000000000000001": {netip.MustParsePrefix("128.0.0.0/1")}},
		Held:        map[string][]rules.Key{sgWeb: {key(t, sgWeb+"|ingress|tcp|22|22|cidr4:10.0.0.0/8")}}}
	res := p.Check(Source{File: f, Perms: perms, Resolve: resolve}, facts)
	want := `rules/ssh.yaml:8:18: low: violates policy NO-WORLD-SSH: ingress tcp 22 from 0.0.0.0/1; with ingress tcp 22 from pl-00000000000000001 it covers the internet (0.0.0.0/0)
rules/ssh.yaml:9:22: low: violates policy NO-WORLD-SSH: ingress tcp 22 from 2000::/3, which covers the internet (::/0)
rules/ssh.yaml:16:21: pl: violates policy NO-WORLD-SSH: ingress tcp 22 from pl-00000000000000001; with ingress tcp 22 from 0.0.0.0/1 it covers the internet (0.0.0.0/0)`
	if got := lines(res.Diagnostics()); got != want {
		t.Errorf("violations:\n%s\nwant:\n%s", got, want)
	}
	if len(res.Skipped) != 0 {
		t.Errorf("skipped: %+v", res.Skipped)
	}
	// Offline, the prefix list's entries are unknown: the other half is
	// undecided at the list, which says what it needs.
	delete(facts.PrefixLists, "pl-00000000000000001")
	res = p.Check(Source{File: f, Perms: perms, Resolve: resolve}, facts)
	var skips []rules.Diagnostic
	for _, s := range res.Skipped {
		skips = append(skips, s.Diagnostic)
	}
	if got, want := lines(skips), "rules/ssh.yaml:16:21: pl: skipped policy NO-WORLD-SSH: needs the entries of prefix list pl-00000000000000001"; got != want {
		t.Errorf("skipped:\n%s\nwant:\n%s", got, want)
	}
}

// match decides one permission with the group's held rules: the admission
// of one write.
func TestMatchOneWithHeld(t *testing.T) {
	p := mustPolicy(t, "deny:\n  - {id: x, ports: 22, cidrs: [0.0.0.0/0]}\n")
	c := &p.Deny[0]
	k := key(t, sgWeb+"|ingress|tcp|22|22|cidr4:128.0.0.0/1")
	if m, _ := c.match(k, live); m != no {
		t.Errorf("alone: %v", m)
	}
	f := live
	f.Held = map[string][]rules.Key{sgWeb: {key(t, sgWeb+"|ingress|-1|-1|-1|cidr4:0.0.0.0/1")}}
	if m, _ := c.match(k, f); m != yes {
		t.Errorf("with the other half held: %v", m)
	}
}

// A peer group in another account whose facts are not known: the check
// says which group it needs, with its account.
func TestPeerInAnotherAccountNeeds(t *testing.T) {
	p := mustPolicy(t, "deny:\n  - {id: x, peerGroups: {tags: {tier: web}}}\n")
	ms := p.CheckRule(key(t, sgDB+"|ingress|tcp|5432|5432|sg:111122223333/sg-0000000000000000e"), live)
	if len(ms) != 1 || !ms[0].Skipped || strings.Join(ms[0].Need, ",") != "the tags of group 111122223333/sg-0000000000000000e" {
		t.Errorf("%+v", ms)
	}
}

// Offline, a peer in another account is known by what its reference says
// (its id), not its tags; online, a group of the same id read in the
// permission's account is not taken for it.
func TestPeerInAnotherAccountFacts(t *testing.T) {
	p := mustPolicy(t, "deny:\n  - {id: by-id, peerGroups: sg-0000000000000000a}\n  - {id: by-tags, peerGroups: {tags: {tier: web}}}\n")
	f := mustFile(t, "x.yaml", "rules:\n  r:\n    securityGroup: sg-0000000000000000b\n    type: ingress\n    protocol: tcp\n    fromPort: 1\n    toPort: 1\n    sourceSecurityGroups: [{groupId: sg-0000000000000000a, account: \"111122223333\"}]\n")
	src, facts := offlineSource(t, f, "x.yaml")
	res := p.Check(src, facts)
	if got := lines(res.Diagnostics()); !strings.Contains(got, "violates policy BY-ID") {
		t.Errorf("offline violations: %s", got)
	}
	if len(res.Skipped) != 1 || strings.Join(res.Skipped[0].Need, "") != "the tags of group 111122223333/sg-0000000000000000a" {
		t.Errorf("offline skipped: %+v", res.Skipped)
	}
	resolve := func(g rules.GroupRef) []string { return []string{g.ID} }
	perms, _, _ := rules.Expand(f, f.Name, resolve)
	res = p.Check(Source{File: f, Perms: perms, Resolve: resolve}, live) // live knows sg-…a in its own account as tier web
	if len(res.Skipped) != 1 || !strings.Contains(res.Skipped[0].Msg, "needs the tags of group 111122223333/sg-0000000000000000a") {
		t.Errorf("online skipped: %+v; violations %s", res.Skipped, lines(res.Diagnostics()))
	}
}
