package render

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sgrules/sgrules/pkg/flowlog"
	"github.com/sgrules/sgrules/pkg/rules"
)

func TestUsageDocAndText(t *testing.T) {
	k := func(port int32, peer string) rules.Key {
		return rules.Key{GroupID: "sg-1", Direction: rules.Ingress, Protocol: "tcp", FromPort: port, ToPort: port, Peer: rules.Peer{Kind: rules.PeerCIDR4, Value: peer}}
	}
	last := time.Date(2025, 12, 1, 10, 0, 0, 0, time.UTC)
	usage := []flowlog.Usage{
		{Rule: flowlog.Rule{Key: k(443, "0.0.0.0/0"), RuleID: "sgr-b", Owner: rules.Owner{Source: "rules/web.yaml", Rule: "https"}},
			Flows: 3, Bytes: 900, AmbiguousFlows: 1, First: last.Add(-time.Hour), Last: last, LastPeer: netip.MustParseAddr("198.51.100.7")},
		{Rule: flowlog.Rule{Key: k(80, "0.0.0.0/0"), RuleID: "sgr-a", Owner: rules.Owner{Source: "rules/web.yaml", Rule: "http"}}},
		{Rule: flowlog.Rule{Key: k(22, "10.0.0.0/8"), Owner: rules.Owner{Source: "rules/admin.yaml", Rule: "ssh"}}},
		{Rule: flowlog.Rule{Key: k(80, "0.0.0.0/0"), RuleID: "sgr-a", Owner: rules.Owner{Source: "rules/old.yaml", Rule: "http-too"}}},
	}
	doc := NewUsageDoc(usage, flowlog.Stats{Objects: 2, BadObjects: 1, ReadStats: flowlog.ReadStats{Malformed: 4}, Accepted: 10, Rejected: 1},
		flowlog.AttributionStats{Credited: 3, Unmatched: 2}, last.Add(-24*time.Hour), last, map[string]string{"sg-1": "web"})
	var order []string
	for _, r := range doc.Rules {
		order = append(order, r.Source+"#"+r.Rule)
	}
	if got := strings.Join(order, " "); got != "rules/admin.yaml#ssh rules/old.yaml#http-too rules/web.yaml#http rules/web.yaml#https" {
		t.Errorf("order %s", got)
	}
	https := doc.Rules[3]
	if https.LastSeen == nil || *https.LastSeen != "2025-12-01T10:00:00Z" || https.LastPeer != "198.51.100.7" || https.GroupName != "web" || https.Peer != "cidr4:0.0.0.0/0" || https.PeerText != "0.0.0.0/0" {
		t.Errorf("https %+v", https)
	}
	if doc.Rules[2].LastSeen != nil || doc.Rules[0].RuleID != "" {
		t.Errorf("rules %+v", doc.Rules)
	}
	var b bytes.Buffer
	if err := UsageText(&b, doc); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.Contains(out, "cidr4:") {
		t.Errorf("text shows a machine key, not the rule files' vocabulary:\n%s", out)
	}
	for _, want := range []string{
		"FILE              RULE      RULE ID  GROUP       PERMISSION              FLOWS",
		"rules/admin.yaml  ssh       -        sg-1 (web)  tcp 22 from 10.0.0.0/8  0      0      not applied",
		"rules/web.yaml    http      sgr-a    sg-1 (web)  tcp 80 from 0.0.0.0/0   0      0      no traffic in the window",
		"rules/web.yaml    https     sgr-b    sg-1 (web)  tcp 443 from 0.0.0.0/0  3*     900    2025-12-01T10:00:00Z from 198.51.100.7",
		"* includes flows whose opener",
		"4 rules: 1 used, 2 with no traffic in the window 2025-11-30T10:00:00Z to 2025-12-01T10:00:00Z, 1 not applied.",
		"Read 2 log objects (1 unreadable): 10 accepted and 1 rejected records in the window, 4 malformed lines skipped.",
		"2 accepted flows credited no managed rule: 2 allowed by no managed rule",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}

	un := NewUnusedDoc(doc, map[string]string{"sgr-a": "sgr-b"}, []string{"sg-9"})
	var names []string
	for _, r := range un.Unused {
		names = append(names, r.Rule)
	}
	if strings.Join(names, " ") != "http-too http" || len(un.Subsumed) != 2 || un.Subsumed[0].By.Rule != "https" ||
		len(un.DeclaredTwice) != 1 || strings.Join(un.DeclaredTwice[0].Owners, " ") != "rules/old.yaml#http-too rules/web.yaml#http" {
		t.Errorf("unused %+v", un)
	}
	b.Reset()
	if err := UnusedText(&b, un); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "cidr4:") {
		t.Errorf("unused text shows a machine key:\n%s", b.String())
	}
	for _, want := range []string{"2 rules carried no traffic", "rules/web.yaml#https sgr-b (tcp 443 from 0.0.0.0/0)",
		"sgr-a (sg-1 tcp 80 from 0.0.0.0/0): rules/old.yaml#http-too, rules/web.yaml#http", "no network interface: sg-9."} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("unused text lacks %q:\n%s", want, b.String())
		}
	}
}
