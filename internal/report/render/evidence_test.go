package render

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

var usageNow = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// usageResult is reviewResult with traffic evidence: the mysql removal
// carried traffic (acknowledged), the udp one none, the 8080 → 8443
// replacement's old rule is unknown, and one removal was refused.
func usageResult() reconcile.Result {
	res := reviewResult()
	res.Usage.Since = usageNow.Add(-30 * 24 * time.Hour)
	for i, a := range res.Plan.Actions {
		if a.Kind != reconcile.ActRevoke {
			continue
		}
		var u reconcile.RuleUse
		switch a.Key.FromPort {
		case 3306:
			u = reconcile.RuleUse{Known: true, Flows: 1234, Bytes: 99000, Last: usageNow.Add(-3 * time.Hour), Peer: "10.1.4.7"}
		case 1000:
			u = reconcile.RuleUse{Known: true}
		}
		res.Plan.Actions[i].Usage = &u
	}
	kept := reconcile.Action{Kind: reconcile.ActRevoke, Cause: reconcile.CauseUndeclared, Key: key(db, rules.Ingress, "tcp", 5433, 5433, rules.PeerCIDR4, "10.1.0.0/16"),
		RuleID: "sgr-00000000000000099", Owners: []rules.Owner{{Source: "rules/db.yaml", Rule: "replica"}}, Loss: true}
	use := reconcile.RuleUse{Known: true, Flows: 12, Bytes: 3400, Last: usageNow.Add(-26 * time.Hour), Peer: "10.1.9.9"}
	kept.Usage = &use
	res.Usage.Refused = []reconcile.UsageRefusal{{Action: kept, Owner: kept.Owners[0], Use: use}}
	return res
}

func TestUsageGolden(t *testing.T) {
	for _, tc := range []struct {
		name   string
		render func(*bytes.Buffer)
	}{
		{"plan-usage.md", func(b *bytes.Buffer) { Markdown(b, usageResult(), MarkdownOptions{Names: names, Now: usageNow}) }},
		{"plan-usage.txt", func(b *bytes.Buffer) { Plan(b, usageResult(), Options{Names: names, Now: usageNow}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			tc.render(&b)
			golden(t, tc.name, b.Bytes())
		})
	}
}

// TestMarkdownUsedRemovalRisk: a removal of a rule that carried traffic
// ranks riskier than the other removals (rows a comment keeps first when
// it must leave some out) and is counted in the heading.
func TestMarkdownUsedRemovalRisk(t *testing.T) {
	res := usageResult()
	var b bytes.Buffer
	Markdown(&b, res, MarkdownOptions{Names: names, Now: usageNow})
	if md := b.String(); !strings.Contains(md, "**1 removal of rules that carried traffic**") {
		t.Errorf("heading does not count the used removal:\n%s", md)
	}
	o := MarkdownOptions{}
	got := map[string]risk{}
	for _, c := range PairReplacements(res.Plan.Actions) {
		if c.Old != nil {
			got[portsText(c.Old.Key)] = o.changeRisk(c)
		}
	}
	if got["3306"] != riskUsed || got["1000-2000"] != riskRemove || got["8080"] != riskRemove || !(riskUsed < riskRemove) {
		t.Errorf("risks %v: want the used removal (3306) riskUsed, the others riskRemove", got)
	}
}

func TestUsageNote(t *testing.T) {
	since := usageNow.Add(-30 * 24 * time.Hour)
	for _, tc := range []struct {
		u    *reconcile.RuleUse
		now  time.Time
		want string
	}{
		{nil, usageNow, ""},
		{&reconcile.RuleUse{}, usageNow, "usage unknown (no flow log here)"},
		{&reconcile.RuleUse{Known: true}, usageNow, "no traffic in 30 d"},
		{&reconcile.RuleUse{Known: true}, time.Time{}, "no traffic since 2026-11-06T12:00:00Z"},
		{&reconcile.RuleUse{Known: true, Flows: 1, Last: usageNow.Add(-3 * time.Hour), Peer: "10.1.4.7"}, usageNow, "last used 3 h ago, 1 flow from 10.1.4.7"},
		{&reconcile.RuleUse{Known: true, Flows: 1234, Last: usageNow.Add(-90 * time.Minute)}, usageNow, "last used 1 h 30 min ago, 1.2k flows"},
		{&reconcile.RuleUse{Known: true, Flows: 56_789, Last: usageNow}, time.Time{}, "last used 2026-12-06T12:00:00Z, 56k flows"},
		{&reconcile.RuleUse{Known: true, Flows: 5_600_000, Peer: "2001:db8::1"}, usageNow, "5.6M flows from 2001:db8::1"},
		{&reconcile.RuleUse{Known: true, Flows: 25_000_000}, usageNow, "25M flows"},
	} {
		if got := UsageNote(tc.u, since, tc.now); got != tc.want {
			t.Errorf("UsageNote(%+v) = %q, want %q", tc.u, got, tc.want)
		}
	}
}
