package render

import (
	"bytes"
	"testing"
	"time"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/pkg/rules"
)

// expiryResult: a temporary rule added, one adopted, a permanent one, and
// a temporary rule revoked because it expired.
func expiryResult() reconcile.Result {
	deadline := time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC)
	alice := rules.Owner{Source: "rules/break-glass.yaml", Rule: "ssh-alice"}
	res := reconcile.Result{Plan: reconcile.Plan{Actions: []reconcile.Action{
		{Kind: reconcile.ActAuthorize, Key: key(web, rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "198.51.100.7/32"),
			Description: "incident 4711", Owners: []rules.Owner{alice}, Reason: "declared by " + alice.String(), ExpiresAt: deadline},
		{Kind: reconcile.ActAdopt, Key: key(web, rules.Ingress, "tcp", 8443, 8443, rules.PeerCIDR4, "203.0.113.0/24"),
			Description: "vendor", Owners: []rules.Owner{{Source: "rules/vendor.yaml", Rule: "vendor"}}, RuleID: "sgr-0000000000000000a",
			ExpiresAt: deadline.Add(26 * time.Hour)},
		{Kind: reconcile.ActAuthorize, Key: key(web, rules.Ingress, "tcp", 443, 443, rules.PeerCIDR4, "10.0.0.0/8"),
			Description: "https", Owners: []rules.Owner{{Source: "rules/web.yaml", Rule: "https"}}, Reason: "declared by rules/web.yaml#https"},
		{Kind: reconcile.ActRevoke, Key: key(web, rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "198.51.100.8/32"), RuleID: "sgr-0000000000000000b",
			Owners: []rules.Owner{{Source: "rules/break-glass.yaml", Rule: "ssh-bob"}}, Reason: "expired at 2026-12-07T09:00:00Z",
			Loss: true, LossSource: "rules/break-glass.yaml", ExpiresAt: deadline.Add(-9 * time.Hour)},
	}}}
	reconcile.SortActions(res.Plan.Actions)
	return res
}

// TestExpiryGolden: the markdown and text plans show every deadline,
// measured from the time of the plan.
func TestExpiryGolden(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 1, 30, 0, time.UTC)
	var md, txt bytes.Buffer
	Markdown(&md, expiryResult(), MarkdownOptions{Names: names, Now: now})
	golden(t, "plan-expiry.md", md.Bytes())
	Plan(&txt, expiryResult(), Options{Names: names, Now: now})
	golden(t, "plan-expiry.txt", txt.Bytes())
}

func TestExpiry(t *testing.T) {
	at := time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC)
	a := reconcile.Action{Kind: reconcile.ActAuthorize, ExpiresAt: at}
	for _, tc := range []struct {
		a    reconcile.Action
		now  time.Time
		want string
	}{
		{a, at.Add(-7*time.Hour - 58*time.Minute - 30*time.Second), "expires in 7 h 58 min (2026-12-07T18:00:00Z)"},
		{a, time.Time{}, "expires at 2026-12-07T18:00:00Z"},
		{a, at, "expired at 2026-12-07T18:00:00Z"},
		{reconcile.Action{Kind: reconcile.ActAuthorize}, at, ""},
		{reconcile.Action{Kind: reconcile.ActRevoke, ExpiresAt: at}, at, ""},
	} {
		if got := Expiry(tc.a, tc.now); got != tc.want {
			t.Errorf("Expiry(%v, %v) = %q, want %q", tc.a.Kind, tc.now, got, tc.want)
		}
	}
}

// TestExpiryJSON: the JSON plan carries each deadline.
func TestExpiryJSON(t *testing.T) {
	var b bytes.Buffer
	if err := report.JSON(&b, report.NewPlanDoc(expiryResult(), names)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"expiresAt": "2026-12-07T18:00:00Z"`, `"expiresAt": "2026-12-08T20:00:00Z"`, `"expiresAt": "2026-12-07T09:00:00Z"`} {
		if !bytes.Contains(b.Bytes(), []byte(want)) {
			t.Errorf("JSON plan lacks %s:\n%s", want, b.String())
		}
	}
}
