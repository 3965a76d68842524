package report

import (
	"time"

	"github.com/sgrules/sgrules/internal/reconcile"
)

// UsageEvidenceDoc is the JSON form of a rule's traffic evidence: known
// false when the evidence cannot tell; lastSeen (RFC 3339) and peer when
// it carried traffic.
type UsageEvidenceDoc struct {
	Known    bool   `json:"known"`
	Flows    int64  `json:"flows"`
	Bytes    int64  `json:"bytes"`
	LastSeen string `json:"lastSeen,omitempty"`
	Peer     string `json:"peer,omitempty"`
}

func usageEvidenceDoc(u *reconcile.RuleUse) *UsageEvidenceDoc {
	if u == nil {
		return nil
	}
	d := &UsageEvidenceDoc{Known: u.Known, Flows: u.Flows, Bytes: u.Bytes, Peer: u.Peer}
	if !u.Last.IsZero() {
		d.LastSeen = u.Last.UTC().Format(time.RFC3339)
	}
	return d
}

// UsageRefusalDoc is one refused removal of a used rule: the revoke or
// the modify refused (its usage set), and the file and rule that no
// longer declare the permission.
type UsageRefusalDoc struct {
	ActionDoc
	Owner string `json:"owner"`
}

func usageRefusalDocs(res reconcile.Result, names map[string]string) []UsageRefusalDoc {
	var out []UsageRefusalDoc
	for _, r := range res.Usage.Refused {
		out = append(out, UsageRefusalDoc{ActionDoc: actionDoc(r.Action, names), Owner: r.Owner.String()})
	}
	return out
}
