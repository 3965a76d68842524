package handler

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// The reconcile function's response lists the writes the policy refused.
func TestReconcileResponseListsRefusedWrites(t *testing.T) {
	h, eng, _ := newTest(t, false, Config{})
	k := rules.Key{GroupID: "sg-1", Direction: rules.Ingress, Protocol: rules.ProtoTCP, FromPort: 22, ToPort: 22,
		Peer: rules.Peer{Kind: rules.PeerCIDR4, Value: "0.0.0.0/0"}}
	eng.res = func(req reconcile.Request) reconcile.Result {
		return reconcile.Result{Policy: reconcile.PolicyReport{Refused: []reconcile.PolicyRefusal{{
			Action: reconcile.Action{Kind: reconcile.ActAuthorize, Cause: reconcile.CauseDeclared, Key: k},
			Owner:  rules.Owner{Source: req.Keys[0], Rule: "ssh"}, Policy: "no-world-ssh", Reason: "violates policy NO-WORLD-SSH"}}}}
	}
	out, err := h.Handle(context.Background(), sample(t, "reconcile", "s3-put.json"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(out)
	if !strings.Contains(string(b), `"policyRefused":[{"group":"sg-1","direction":"ingress","rule":"tcp 22 from 0.0.0.0/0","action":"authorize","cause":"declared","source":"rules/team a/web=prod.yaml","ruleName":"ssh","policy":"no-world-ssh","reason":"violates policy NO-WORLD-SSH"}]`) {
		t.Errorf("response: %s", b)
	}
}
