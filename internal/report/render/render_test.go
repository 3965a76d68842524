package render

import (
	"bytes"
	"flag"
	"github.com/sgrules/sgrules/internal/report"
	"os"
	"path/filepath"
	"testing"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const (
	web = "sg-0aaaaaaaaaaaaaaa1"
	db  = "sg-0bbbbbbbbbbbbbbb2"
	lb  = "sg-0ccccccccccccccc3"
)

var names = map[string]string{web: "web", db: "database", lb: "alb"}

func key(group string, dir rules.Direction, proto string, from, to int32, kind rules.PeerKind, peer string) rules.Key {
	return rules.Key{GroupID: group, Direction: dir, Protocol: proto, FromPort: from, ToPort: to, Peer: rules.Peer{Kind: kind, Value: peer}}
}

// sampleResult has every action kind, a conflict, an invalid, a held and
// a warned source, and unmanaged rules.
func sampleResult() reconcile.Result {
	res := unsortedResult()
	reconcile.SortActions(res.Plan.Actions)
	res.Quota = []reconcile.QuotaWarning{{Group: db, Direction: rules.Ingress, Family: "IPv4", Rules: 63}}
	return res
}

func unsortedResult() reconcile.Result {
	https := key(web, rules.Ingress, "tcp", 443, 443, rules.PeerCIDR4, "0.0.0.0/0")
	return reconcile.Result{
		Plan: reconcile.Plan{
			Actions: []reconcile.Action{
				{Kind: reconcile.ActModify, Cause: reconcile.CauseChanged, Key: key(db, rules.Ingress, "tcp", 6380, 6380, rules.PeerCIDR4, "10.1.0.0/16"),
					From: key(db, rules.Ingress, "tcp", 6379, 6379, rules.PeerCIDR4, "10.1.0.0/16"), RuleID: "sgr-00000000000000020",
					Description: "redis", OldDescription: "redis", Owners: []rules.Owner{{Source: "rules/db.yaml", Rule: "redis"}},
					Reason: "declared rule changed; modified in place"},
				{Kind: reconcile.ActAuthorize, Key: key(db, rules.Ingress, "tcp", 5432, 5432, rules.PeerGroup, web),
					Description: "postgres from web", Owners: []rules.Owner{{Source: "rules/db.yaml", Rule: "pg-from-web"}}, Reason: "declared by rules/db.yaml#pg-from-web"},
				{Kind: reconcile.ActRevoke, Key: key(db, rules.Ingress, "tcp", 3306, 3306, rules.PeerGroup, web), RuleID: "sgr-0000000000000000a",
					Owners: []rules.Owner{{Source: "rules/db.yaml", Rule: "mysql-from-web"}}, Reason: "no longer declared", Loss: true},
				{Kind: reconcile.ActAuthorize, Key: https, Description: "HTTPS", Owners: []rules.Owner{{Source: "rules/web.yaml", Rule: "https"}}, Reason: "declared by rules/web.yaml#https"},
				{Kind: reconcile.ActAuthorize, Key: key(web, rules.Ingress, "icmp", 8, -1, rules.PeerCIDR4, "10.0.0.0/8"),
					Owners: []rules.Owner{{Source: "rules/web.yaml", Rule: "ping"}}, Reason: "declared by rules/web.yaml#ping"},
				{Kind: reconcile.ActAdopt, Key: key(web, rules.Ingress, "tcp", 80, 80, rules.PeerPrefixList, "pl-0123456789abcdef0"), RuleID: "sgr-0000000000000000b",
					Description: "HTTP from CDN", Owners: []rules.Owner{{Source: "rules/web.yaml", Rule: "http"}}, Reason: "exists already; declared by rules/web.yaml#http"},
				{Kind: reconcile.ActUpdate, Key: key(web, rules.Ingress, "tcp", 22, 22, rules.PeerCIDR6, "2001:db8::/32"), RuleID: "sgr-0000000000000000c",
					Description: "SSH from office", OldDescription: "ssh", Owners: []rules.Owner{{Source: "rules/web.yaml", Rule: "ssh"}}, Reason: "description changed"},
				{Kind: reconcile.ActRevoke, Key: key(web, rules.Ingress, "udp", 1000, 2000, rules.PeerCIDR4, "192.168.0.0/16"), RuleID: "sgr-0000000000000000d",
					Description: "legacy", Reason: "exclusive group: not declared by any source", Loss: true, Cause: reconcile.CauseExclusive},
				{Kind: reconcile.ActAuthorize, Key: key(web, rules.Egress, "-1", -1, -1, rules.PeerCIDR4, "0.0.0.0/0"),
					Owners: []rules.Owner{{Source: "rules/web.yaml", Rule: "out"}}, Reason: "drift: rule deleted or changed outside sgrules", Cause: reconcile.CauseDriftDeleted},
				{Kind: reconcile.ActForget, Key: key(web, rules.Egress, "47", -1, -1, rules.PeerGroup, lb), RuleID: "sgr-0000000000000000e",
					Owners: []rules.Owner{{Source: "rules/web.yaml", Rule: "gre"}}, Reason: "no longer declared; rule already gone"},
			},
			Conflicts: []reconcile.Conflict{{Key: https,
				Descriptions: map[rules.Owner]string{{Source: "rules/web.yaml", Rule: "https"}: "HTTPS", {Source: "rules/z.yaml", Rule: "web"}: "web"},
				Winner:       rules.Owner{Source: "rules/web.yaml", Rule: "https"}}},
			Unmanaged: []reconcile.ActualRule{
				{Key: key(lb, rules.Ingress, "tcp", 443, 443, rules.PeerCIDR4, "0.0.0.0/0"), RuleID: "sgr-0000000000000000f", Description: "console"},
				{Key: key(lb, rules.Egress, "-1", -1, -1, rules.PeerCIDR6, "::/0"), RuleID: "sgr-00000000000000010"},
			},
		},
		Sources: []reconcile.SourceResult{
			{Key: "rules/bad.yaml", Status: reconcile.StatusInvalid, Diagnostics: rules.Diagnostics{
				{File: "rules/bad.yaml", Line: 3, Col: 15, Rule: "ssh", Field: "fromPort", Severity: rules.SeverityError, Msg: "fromPort: 70000 is out of range 0-65535"}}},
			{Key: "rules/db.yaml", Status: reconcile.StatusApplied, RuleIDs: []string{"sgr-0000000000000000a"}},
			{Key: "rules/mass.yaml", Status: reconcile.StatusHeld, Message: "plan holds: it would revoke 60 permissions"},
			{Key: "rules/web.yaml", Status: reconcile.StatusApplied, Diagnostics: rules.Diagnostics{
				{File: "rules/web.yaml", Line: 9, Col: 7, Rule: "out", Field: "cidrBlocks[0]", Severity: rules.SeverityWarning, Msg: "all traffic is open to the world"}}},
		},
		HeldCleanup: 2,
	}
}

func driftResult() reconcile.Result {
	res := sampleResult()
	var drifted []reconcile.Action
	for _, a := range res.Plan.Actions {
		if a.Drift() {
			drifted = append(drifted, a)
		}
	}
	drifted = append(drifted, reconcile.Action{Kind: reconcile.ActUpdate, Key: key(db, rules.Egress, "tcp", 443, 443, rules.PeerCIDR4, "10.1.0.0/16"),
		RuleID: "sgr-00000000000000011", Description: "api", OldDescription: "edited by hand", Owners: []rules.Owner{{Source: "rules/db.yaml", Rule: "api"}},
		Reason: "drift: description edited outside sgrules", Cause: reconcile.CauseDriftDescription})
	// A rule whose ports were modified in place (ModifySecurityGroupRules):
	// the authorize of the declared rule and the revoke of the modified one
	// are one drifted rule.
	admin := key(db, rules.Ingress, "tcp", 9443, 9443, rules.PeerCIDR4, "10.0.0.0/16")
	drifted = append(drifted,
		reconcile.Action{Kind: reconcile.ActAuthorize, Key: admin, Description: "admin", Owners: []rules.Owner{{Source: "rules/db.yaml", Rule: "admin"}},
			Reason: "drift: rule deleted or changed outside sgrules", Cause: reconcile.CauseDriftDeleted},
		reconcile.Action{Kind: reconcile.ActRevoke, Key: key(db, rules.Ingress, "tcp", 8443, 8443, rules.PeerCIDR4, "10.0.0.0/16"),
			RuleID: "sgr-00000000000000012", Owners: []rules.Owner{{Source: "rules/db.yaml", Rule: "admin"}},
			Reason: "drift: rule modified outside sgrules (was " + admin.String() + ")", Cause: reconcile.CauseDriftModified, Was: admin})
	reconcile.SortActions(drifted)
	return reconcile.Result{Drift: reconcile.DriftReport{GroupsChecked: 3, Drifted: drifted, Unmanaged: 2, Paused: []string{lb}},
		Sources: res.Sources[:2]}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update after checking):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestGolden(t *testing.T) {
	tests := []struct {
		name   string
		render func(*bytes.Buffer)
	}{
		{"plan.txt", func(b *bytes.Buffer) { Plan(b, sampleResult(), Options{Names: names}) }},
		{"plan-color.txt", func(b *bytes.Buffer) { Plan(b, sampleResult(), Options{Names: names, Color: true}) }},
		{"apply.txt", func(b *bytes.Buffer) {
			res := sampleResult()
			res.Executed = true
			Plan(b, res, Options{Names: names, Past: true})
		}},
		{"plan-empty.txt", func(b *bytes.Buffer) {
			Plan(b, reconcile.Result{Plan: reconcile.Plan{Unmanaged: sampleResult().Plan.Unmanaged[:1]}}, Options{})
		}},
		{"plan.json", func(b *bytes.Buffer) { _ = report.JSON(b, report.NewPlanDoc(sampleResult(), names)) }},
		{"plan-empty.json", func(b *bytes.Buffer) { _ = report.JSON(b, report.NewPlanDoc(reconcile.Result{}, nil)) }},
		{"drift.txt", func(b *bytes.Buffer) {
			Drift(b, driftResult(), map[string]string{lb: "2030-01-01T00:00:00Z"}, Options{Names: names})
		}},
		{"drift-reverted.txt", func(b *bytes.Buffer) {
			res := driftResult()
			res.Executed = true
			res.Drift.Reverted = len(res.Drift.Drifted)
			Drift(b, res, nil, Options{Names: names, Past: true})
		}},
		{"drift-none.txt", func(b *bytes.Buffer) {
			Drift(b, reconcile.Result{Drift: reconcile.DriftReport{GroupsChecked: 1}}, nil, Options{})
		}},
		{"drift.json", func(b *bytes.Buffer) {
			_ = report.JSON(b, report.NewDriftDoc(driftResult(), map[string]string{lb: "2030-01-01T00:00:00Z"}, false, names))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			tc.render(&b)
			golden(t, tc.name, b.Bytes())
		})
	}
}

func TestPorts(t *testing.T) {
	tests := []struct {
		proto    string
		from, to int32
		want     string
	}{
		{"tcp", 443, 443, "tcp 443"},
		{"udp", 1024, 65535, "udp 1024-65535"},
		{"icmp", -1, -1, "icmp all"},
		{"icmp", 8, -1, "icmp type 8"},
		{"icmpv6", 1, 4, "icmpv6 type 1 code 4"},
		{"-1", -1, -1, "all traffic"},
		{"47", -1, -1, "protocol 47"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := report.Ports(rules.Key{Protocol: tc.proto, FromPort: tc.from, ToPort: tc.to}); got != tc.want {
				t.Errorf("Ports = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestGroupIDs(t *testing.T) {
	got := report.GroupIDs(sampleResult())
	want := []string{web, db, lb}
	if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("GroupIDs = %v, want %v", got, want)
	}
}
