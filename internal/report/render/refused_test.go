package render

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/pkg/rules"
)

// A write the policy refused is listed with what it was for and why, in
// the text of plan and drift and in their JSON documents.
func TestPolicyRefusedIsListed(t *testing.T) {
	k := rules.Key{GroupID: "sg-1", Direction: rules.Ingress, Protocol: rules.ProtoTCP, FromPort: 22, ToPort: 22,
		Peer: rules.Peer{Kind: rules.PeerCIDR4, Value: "0.0.0.0/0"}}
	res := reconcile.Result{Policy: reconcile.PolicyReport{Name: "policy/sgrules.yaml", Refused: []reconcile.PolicyRefusal{{
		Action: reconcile.Action{Kind: reconcile.ActAuthorize, Cause: reconcile.CauseDriftDeleted, Key: k},
		Owner:  rules.Owner{Source: "rules/ssh.yaml", Rule: "ssh"}, Policy: "no-world-ssh",
		Reason: "violates policy NO-WORLD-SSH: ingress tcp 22 from 0.0.0.0/0"}}}}
	var b strings.Builder
	PolicyViolations(&b, res, Options{})
	want := "Refused by the guardrail policy, not written (policy/sgrules.yaml):\n" +
		"  sg-1 ingress tcp 22 from 0.0.0.0/0\n" +
		"      restore for rules/ssh.yaml rule ssh: violates policy NO-WORLD-SSH: ingress tcp 22 from 0.0.0.0/0\n\n"
	if got := b.String(); got != want {
		t.Errorf("text:\n%s\nwant:\n%s", got, want)
	}
	for name, doc := range map[string]any{"plan": report.NewPlanDoc(res, nil), "drift": report.NewDriftDoc(res, nil, false, nil)} {
		out, _ := json.Marshal(doc)
		if !strings.Contains(string(out), `"policyRefused":[{"group":"sg-1","direction":"ingress","rule":"tcp 22 from 0.0.0.0/0","action":"authorize","cause":"drift-deleted","source":"rules/ssh.yaml","ruleName":"ssh","policy":"no-world-ssh"`) {
			t.Errorf("%s JSON: %s", name, out)
		}
	}
}
