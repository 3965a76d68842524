package report

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sgrules/sgrules/internal/reconcile"

	"github.com/sgrules/sgrules/pkg/rules"
)

// The JSON document of a rule carries the account of a source group of
// another account (issue 23.8).
func TestRuleDocPeerAccount(t *testing.T) {
	k := rules.Key{GroupID: "sg-0bbbbbbbbbbbbbbb2", Direction: rules.Ingress, Protocol: "tcp", FromPort: 5432, ToPort: 5432,
		Peer: rules.Peer{Kind: rules.PeerGroup, Value: "sg-0ccccccccccccccc3", Account: "111122223333"}}
	d := ruleDoc(k, nil)
	if d.Peer != "sg-0ccccccccccccccc3" || d.PeerAccount != "111122223333" {
		t.Errorf("peer %q, peerAccount %q", d.Peer, d.PeerAccount)
	}
	k.Peer.Account = ""
	if d := ruleDoc(k, nil); d.PeerAccount != "" {
		t.Errorf("same account: peerAccount %q", d.PeerAccount)
	}
}

// One SourceDoc for the Lambda response and the CLI's documents: a held
// source says why in both (guard), and the ledger's diagnostics appear
// under the name README.md documents (recorded) and the name the CLI's
// formatVersion 1 documents used (recordedDiagnostics).
func TestSourceDocIsShared(t *testing.T) {
	res := reconcile.Result{Sources: []reconcile.SourceResult{
		{Key: "rules/old.yaml", Status: reconcile.StatusHeld, Guard: &reconcile.GuardHold{Losses: 60, FromSource: 60, Limit: 50}},
		{Key: "cfn/stack/Rules", Status: reconcile.StatusInvalid, Recorded: []string{"cfn/stack/Rules:1:1: bad"}},
	}}
	plan, err := json.Marshal(NewPlanDoc(res, nil))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := json.Marshal(Response{Sources: NewSourceDocs(res.Sources)})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`{"key":"rules/old.yaml","status":"held","diagnostics":[],"guard":{"losses":60,"fromSource":60,"limit":50},"ruleIds":[]}`,
		`{"key":"cfn/stack/Rules","status":"invalid","diagnostics":[],"recorded":["cfn/stack/Rules:1:1: bad"],"recordedDiagnostics":["cfn/stack/Rules:1:1: bad"],"ruleIds":[]}`,
	} {
		for name, doc := range map[string][]byte{"plan": plan, "response": resp} {
			if !strings.Contains(string(doc), want) {
				t.Errorf("%s document lacks %s:\n%s", name, want, doc)
			}
		}
	}
}
