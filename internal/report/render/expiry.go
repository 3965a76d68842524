package render

import (
	"time"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Expiry says when a declared permission's rule expires, measured from
// now: "expires in 7 h 58 min (2026-12-07T18:00:00Z)", "expires at
// 2026-12-07T18:00:00Z" without a clock (now zero), "expired at …" once
// passed. It is "" for permissions without a deadline and for revokes (a
// revoke of an expired rule says so in its reason).
func Expiry(a reconcile.Action, now time.Time) string {
	if a.ExpiresAt.IsZero() || a.Kind == reconcile.ActRevoke {
		return ""
	}
	at := rules.FormatExpiresAt(a.ExpiresAt)
	switch {
	case now.IsZero():
		return "expires at " + at
	case !now.Before(a.ExpiresAt):
		return "expired at " + at
	}
	return "expires in " + rules.FormatDuration(a.ExpiresAt.Sub(now)) + " (" + at + ")"
}

// changeExpiry is the deadline note of a markdown row: "⏳ expires in …"
// for a declared permission, "⌛ expired at …" for a removal because of
// its deadline; "" otherwise.
func changeExpiry(c Change, now time.Time) string {
	switch {
	case c.New != nil:
		if exp := Expiry(*c.New, now); exp != "" {
			return "⏳ " + report.MarkdownCell(exp)
		}
	case c.Old != nil && !c.Old.ExpiresAt.IsZero():
		return "⌛ expired at " + report.MarkdownCell(rules.FormatExpiresAt(c.Old.ExpiresAt))
	}
	return ""
}
