package importer

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

const (
	web = "sg-0aaaaaaaaaaaaaaa1"
	db  = "sg-0bbbbbbbbbbbbbbb2"
	pl  = "pl-0123456789abcdef0"
)

func actual(group string, dir rules.Direction, proto string, from, to int32, kind rules.PeerKind, peer, desc string) reconcile.ActualRule {
	return reconcile.ActualRule{
		Key:         rules.Key{GroupID: group, Direction: dir, Protocol: proto, FromPort: from, ToPort: to, Peer: rules.Peer{Kind: kind, Value: peer}},
		RuleID:      fmt.Sprintf("sgr-%s-%s-%s-%d-%s", group, dir, proto, from, peer),
		Description: desc,
	}
}

var groups = []reconcile.GroupInfo{
	{GroupID: web, Name: "web-sg", Tags: map[string]string{"Name": "Web Tier"}},
	{GroupID: db, Name: "db-sg"},
}

// everyKind has CIDR, IPv6, group, prefix-list, ICMP, numbered-protocol
// and all-traffic rules, some sharing ports and description.
var everyKind = []reconcile.ActualRule{
	actual(web, rules.Ingress, "tcp", 443, 443, rules.PeerCIDR4, "0.0.0.0/0", "HTTPS"),
	actual(web, rules.Ingress, "tcp", 443, 443, rules.PeerCIDR6, "::/0", "HTTPS"),
	actual(web, rules.Ingress, "tcp", 443, 443, rules.PeerCIDR4, "10.0.0.0/8", "office"),
	actual(web, rules.Ingress, "tcp", 80, 80, rules.PeerPrefixList, pl, ""),
	actual(web, rules.Ingress, "icmp", -1, -1, rules.PeerCIDR4, "10.0.0.0/8", ""),
	actual(web, rules.Ingress, "icmp", 3, 4, rules.PeerCIDR4, "10.0.0.0/8", ""),
	actual(web, rules.Ingress, "icmpv6", 128, -1, rules.PeerCIDR6, "2001:db8::/32", "ping6"),
	actual(web, rules.Ingress, "47", -1, -1, rules.PeerCIDR4, "192.168.0.0/16", ""),
	actual(web, rules.Egress, "-1", -1, -1, rules.PeerCIDR4, "0.0.0.0/0", ""),
	actual(web, rules.Egress, "tcp", 5432, 5432, rules.PeerGroup, db, "to db"),
	actual(db, rules.Ingress, "tcp", 5432, 5432, rules.PeerGroup, web, "from web"),
	actual(db, rules.Ingress, "tcp", 5432, 5432, rules.PeerGroup, db, "from web"),
	actual(db, rules.Ingress, "udp", 1000, 2000, rules.PeerCIDR4, "172.16.0.0/12", ""),
	otherAccount(actual(db, rules.Ingress, "tcp", 5432, 5432, rules.PeerGroup, "sg-0ccccccccccccccc3", "from web")),
}

// otherAccount makes a's group peer one of another account, as EC2
// reports a peer whose UserId is not the group's owner.
func otherAccount(a reconcile.ActualRule) reconcile.ActualRule {
	a.Key.Peer.Account = "111122223333"
	a.RuleID += "-x"
	return a
}

func ruleNames(f *rules.File) []string {
	var out []string
	for _, r := range f.Rules {
		out = append(out, r.Name)
	}
	sort.Strings(out)
	return out
}

func TestConvertRoundTrip(t *testing.T) {
	f, skipped := Convert(groups, everyKind, Options{Exclusive: true})
	if len(skipped) != 0 {
		t.Fatalf("skipped %v", skipped)
	}
	want := []string{
		"db-sg-ingress-tcp-5432", "db-sg-ingress-udp-1000-2000",
		"web-tier-egress-all", "web-tier-egress-tcp-5432",
		"web-tier-ingress-icmp", "web-tier-ingress-icmp-3-4", "web-tier-ingress-icmpv6-128",
		"web-tier-ingress-proto-47", "web-tier-ingress-tcp-443", "web-tier-ingress-tcp-443-2", "web-tier-ingress-tcp-80",
	}
	if got := ruleNames(f); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("names\n got %v\nwant %v", got, want)
	}
	out, err := rules.MarshalYAML(f)
	if err != nil {
		t.Fatal(err)
	}
	back, diags := rules.Parse("import.yaml", out)
	if diags.HasErrors() {
		t.Fatalf("%v\n%s", diags.Err(), out)
	}
	perms, excl, diags := rules.Expand(back, "import.yaml", func(g rules.GroupRef) []string { return []string{g.ID} })
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	got := map[string]bool{}
	for _, p := range perms {
		got[p.Key.String()+" "+p.Description] = true
	}
	for _, a := range everyKind {
		k := a.Key.String() + " " + a.Description
		if !got[k] {
			t.Errorf("imported file does not declare %s", k)
		}
		delete(got, k)
	}
	for k := range got {
		t.Errorf("imported file declares extra %s", k)
	}
	if strings.Join(excl, ",") != web+","+db {
		t.Errorf("exclusive = %v", excl)
	}
	// The merged rule carries its peers in order: IPv4, IPv6.
	for _, r := range back.Rules {
		if r.Name == "web-tier-ingress-tcp-443" && (len(r.CIDRBlocks) != 1 || len(r.IPv6CIDRBlocks) != 1 || r.Description != "HTTPS") {
			t.Errorf("merged rule = %+v", r)
		}
	}
}

func TestConvert(t *testing.T) {
	tests := []struct {
		name    string
		groups  []reconcile.GroupInfo
		actual  []reconcile.ActualRule
		names   []string
		skipped int
	}{
		{"no rules", groups[:1], nil, nil, 0},
		{"same ports, other descriptions", groups[:1], []reconcile.ActualRule{
			actual(web, rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "10.0.0.0/8", "b"),
			actual(web, rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "10.1.0.0/16", "a"),
			actual(web, rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "10.2.0.0/16", "a"),
		}, []string{"web-tier-ingress-tcp-22", "web-tier-ingress-tcp-22-2"}, 0},
		{"other groups ignored", groups[:1], []reconcile.ActualRule{
			actual(db, rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "10.0.0.0/8", ""),
		}, nil, 0},
		{"duplicate key once", groups[:1], []reconcile.ActualRule{
			actual(web, rules.Egress, "-1", -1, -1, rules.PeerCIDR6, "::/0", ""),
			actual(web, rules.Egress, "-1", -1, -1, rules.PeerCIDR6, "::/0", ""),
		}, []string{"web-tier-egress-all"}, 0},
		{"icmpv6 with IPv4 skipped", groups[:1], []reconcile.ActualRule{
			actual(web, rules.Ingress, "icmpv6", -1, -1, rules.PeerCIDR4, "10.0.0.0/8", ""),
		}, nil, 1},
		{"label falls back to id", []reconcile.GroupInfo{{GroupID: web, Name: "!!!"}}, []reconcile.ActualRule{
			actual(web, rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "10.0.0.0/8", ""),
		}, []string{"sg-0aaaaaaaaaaaaaaa1-ingress-tcp-22"}, 0},
		{"same label in two groups", []reconcile.GroupInfo{{GroupID: web, Name: "app"}, {GroupID: db, Name: "app"}}, []reconcile.ActualRule{
			actual(web, rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "10.0.0.0/8", ""),
			actual(db, rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "10.0.0.0/8", ""),
		}, []string{"app-ingress-tcp-22", "app-ingress-tcp-22-2"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, skipped := Convert(tc.groups, tc.actual, Options{})
			if got := ruleNames(f); strings.Join(got, " ") != strings.Join(tc.names, " ") {
				t.Errorf("names %v, want %v", got, tc.names)
			}
			if len(skipped) != tc.skipped {
				t.Errorf("skipped %v, want %d", skipped, tc.skipped)
			}
			if _, err := rules.MarshalYAML(f); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestSanitize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"web", "web"},
		{"Web Tier (prod)", "web-tier-prod"},
		{"  --db_main.v2--", "db_main.v2"},
		{"ünïcode", "n-code"},
		{"!!!", ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := Sanitize(tc.in); got != tc.want {
				t.Errorf("Sanitize(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestRuleNameLength(t *testing.T) {
	long := strings.Repeat("a", 200)
	name := RuleName(long, rules.Ingress, "tcp", 1024, 65535)
	if len(name) != MaxNameLen || !strings.HasSuffix(name, "-ingress-tcp-1024-65535") {
		t.Errorf("RuleName = %q (%d)", name, len(name))
	}
	n := newNamer()
	n.next(name)
	if second := n.next(name); len(second) != MaxNameLen || !strings.HasSuffix(second, "-2") {
		t.Errorf("second = %q", second)
	}
}
