package render

import (
	"bytes"
	"regexp"
	"testing"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/pkg/rules"
)

// The CLI looks up the names of report.GroupIDs(res) only: every group id the
// plan or the drift report prints must be among them, or a group is shown
// with its name in one run and without it in the next (a policy violation
// alone, a refusal, a quota warning).
func TestEveryPrintedGroupHasItsName(t *testing.T) {
	const (
		bastion = "sg-6c62000000000001"
		quota   = "sg-6c62000000000002"
		refused = "sg-6c62000000000003"
	)
	all := map[string]string{web: "web", db: "database", lb: "alb", bastion: "shop-bastion", quota: "big", refused: "locked"}
	res := sampleResult()
	res.Quota = append(res.Quota, reconcile.QuotaWarning{Group: quota, Direction: rules.Ingress, Family: "IPv4", Rules: 61})
	res.Policy.Name = "policy/sgrules.yaml"
	res.Policy.Violations = []reconcile.PolicyViolation{{
		Rule:    reconcile.ActualRule{Key: key(bastion, rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "0.0.0.0/0"), RuleID: "sgr-1"},
		Clauses: []reconcile.PolicyClause{{ID: "no-world-ssh"}},
	}}
	res.Policy.Refused = []reconcile.PolicyRefusal{{
		Action: reconcile.Action{Kind: reconcile.ActAuthorize, Key: key(refused, rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "0.0.0.0/0")},
		Owner:  rules.Owner{Source: "rules/a.yaml", Rule: "ssh"},
	}}
	known := map[string]string{}
	for _, id := range report.GroupIDs(res) {
		known[id] = all[id]
	}
	var b bytes.Buffer
	Plan(&b, res, Options{Names: known})
	Drift(&b, res, nil, Options{Names: known})
	Markdown(&b, res, MarkdownOptions{Names: known})
	printed := 0
	for _, m := range regexp.MustCompile(`(sg-[0-9a-f]+)( \()?`).FindAllStringSubmatch(b.String(), -1) {
		if all[m[1]] == "" {
			continue
		}
		printed++
		if m[2] == "" {
			t.Errorf("%s printed without its name", m[1])
		}
	}
	if printed < 10 {
		t.Errorf("only %d group ids printed: is the test still looking at the output?", printed)
	}
	for id, name := range all {
		if known[id] != name {
			t.Errorf("GroupIDs misses %s (%s)", id, name)
		}
	}
}
