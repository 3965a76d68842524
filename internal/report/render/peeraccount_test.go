package render

import (
	"strings"
	"testing"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/pkg/rules"
)

// A source group of another account is shown with its account: the bare
// id would name a group of the target's own account (issue 23.8).
func TestPeerOfAnotherAccount(t *testing.T) {
	names := map[string]string{"sg-0ccccccccccccccc3": "partner-web"}
	k := rules.Key{GroupID: "sg-0bbbbbbbbbbbbbbb2", Direction: rules.Ingress, Protocol: "tcp", FromPort: 5432, ToPort: 5432,
		Peer: rules.Peer{Kind: rules.PeerGroup, Value: "sg-0ccccccccccccccc3", Account: "111122223333"}}
	local := k
	local.Peer.Account = ""
	o := Options{Names: names}
	if got, want := o.Peer(k), "from 111122223333/sg-0ccccccccccccccc3 (partner-web)"; got != want {
		t.Errorf("Peer = %q, want %q", got, want)
	}
	if got, want := o.Peer(local), "from sg-0ccccccccccccccc3 (partner-web)"; got != want {
		t.Errorf("Peer (same account) = %q, want %q", got, want)
	}
	if got, want := o.Rule(k), "ingress tcp 5432 from 111122223333/sg-0ccccccccccccccc3 (partner-web)"; got != want {
		t.Errorf("Rule = %q, want %q", got, want)
	}
	m := MarkdownOptions{Names: names}
	if got := m.peerText(k); !strings.Contains(got, "111122223333/sg-0ccccccccccccccc3") {
		t.Errorf("markdown peer = %q, want the account before the id", got)
	}
	if got := m.peerText(local); strings.Contains(got, "111122223333") {
		t.Errorf("markdown peer (same account) = %q", got)
	}
	// A peer moved to the same id in another account is a change, and
	// says so.
	d := report.Drifted{Action: reconcile.Action{Key: k}, Declared: &reconcile.Action{Key: local}}
	if got, want := report.ModifiedReason(d), "source sg-0ccccccccccccccc3 -> 111122223333/sg-0ccccccccccccccc3"; !strings.Contains(got, want) {
		t.Errorf("ModifiedReason = %q, want it to contain %q", got, want)
	}
}
