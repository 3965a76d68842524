package rules

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Expiry: a rule may carry expiresAt, an RFC 3339 time with a zone. Before
// it the rule is declared like any other; from that moment on (the
// deadline included) it is not declared at all, so every path that expands
// the file (plan, apply, the sweeps, CloudFormation) treats it as removed.
// Parsing never looks at a clock: the file's validity does not change with
// time. Expand takes the current time from its caller.

// Expired reports whether the rule's deadline has passed at now: it has
// one and now is at or after it. A zero now counts as after every
// deadline (fail closed: a caller that forgot the clock never keeps a
// temporary rule alive).
func (r *Rule) Expired(now time.Time) bool {
	return ExpiredAt(r.ExpiresAt, now)
}

// ExpiredAt reports whether a permission with deadline at (zero: none) has
// expired at now, as Rule.Expired.
func ExpiredAt(at, now time.Time) bool {
	return !at.IsZero() && (now.IsZero() || !now.Before(at))
}

// FormatExpiresAt renders a deadline as expiresAt is written back (RFC 3339
// in UTC, whole seconds unless the deadline has a fraction).
func FormatExpiresAt(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

var (
	reDateOnly = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	reNoZone   = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$`)
	reSpaceT   = regexp.MustCompile(`^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2})`)
)

const expiresExample = "2026-12-07T18:00:00Z"

// expiresAt reads an RFC 3339 time with a zone ("Z" or an offset such as
// "+01:00"), returned in UTC.
func (p *parser) expiresAt(n *yaml.Node, rule string) (time.Time, bool) {
	const field = "expiresAt"
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		p.errf(n, rule, field, "%s: want a time with a zone such as %s (RFC 3339), got %s", field, expiresExample, kindName(n))
		return time.Time{}, false
	}
	s := n.Value
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), true
	}
	switch {
	case reDateOnly.MatchString(s):
		p.errf(n, rule, field, "%s: %q is a date without a time: write a time with a zone, such as %sT00:00:00Z", field, s, s)
	case reNoZone.MatchString(s):
		fix := strings.Replace(strings.Replace(s, " ", "T", 1), "t", "T", 1)
		if len(fix) == len("2006-01-02T15:04") {
			fix += ":00"
		}
		p.errf(n, rule, field, "%s: %q has no time zone: write %sZ for UTC, or an offset such as %s+01:00", field, s, fix, fix)
	case reSpaceT.MatchString(s):
		p.errf(n, rule, field, "%s: %q: write a T between the date and the time (%s)", field, s, reSpaceT.ReplaceAllString(s, "${1}T${2}"))
	default:
		p.errf(n, rule, field, "%s: %q is not an RFC 3339 time with a zone, such as %s or 2026-12-07T19:00:00+01:00", field, s, expiresExample)
	}
	return time.Time{}, false
}

// expiredNotice is the warning Expand gives for a rule whose deadline has
// passed at now.
func expiredNotice(r *Rule, now time.Time) string {
	ago := ""
	if !now.IsZero() {
		ago = " (" + FormatDuration(now.Sub(r.ExpiresAt)) + " ago)"
	}
	return fmt.Sprintf("expiresAt: expired at %s%s: the rule is no longer declared (revoked where sgrules created or adopted it, never authorized)",
		FormatExpiresAt(r.ExpiresAt), ago)
}

// FormatDuration renders a duration for people, to the minute: "7 h 58
// min", "3 min", "2 d 4 h", "less than a minute". Negative durations are
// rendered as their absolute value.
func FormatDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	if d < time.Minute {
		return "less than a minute"
	}
	m := int64(d / time.Minute)
	days, hours, mins := m/(24*60), (m/60)%24, m%60
	switch {
	case days > 0 && hours > 0:
		return fmt.Sprintf("%d d %d h", days, hours)
	case days > 0:
		return fmt.Sprintf("%d d", days)
	case hours > 0 && mins > 0:
		return fmt.Sprintf("%d h %d min", hours, mins)
	case hours > 0:
		return fmt.Sprintf("%d h", hours)
	}
	return fmt.Sprintf("%d min", mins)
}
