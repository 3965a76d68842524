package report

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sgrules/sgrules/internal/strutil"
)

// What found the drift of a report (Report.FoundBy).
const (
	// FoundByCloudTrail: a CloudTrail event of a security group API call
	// (delivered by EventBridge) made the drift function look.
	FoundByCloudTrail = "cloudtrail"
	// FoundBySchedule: the scheduled sweep (or one of its sweep messages)
	// found it; nobody is named.
	FoundBySchedule = "schedule"
)

// Actor is who made the API call a drift run looked at: the caller of a
// CloudTrail event.
type Actor struct {
	// Principal is the caller as people read it: the resource of its ARN
	// ("assumed-role/Admin/alice" for a role session, "user/bob", "root"),
	// or, without an ARN, the service that called ("AWSService
	// elasticloadbalancing.amazonaws.com").
	Principal string `json:"principal"`
	// ARN is userIdentity.arn.
	ARN       string    `json:"arn,omitempty"`
	EventName string    `json:"eventName"`
	EventID   string    `json:"eventId,omitempty"`
	EventTime time.Time `json:"eventTime"`
	SourceIP  string    `json:"sourceIp,omitempty"`
	UserAgent string    `json:"userAgent,omitempty"`
	// Groups are the security groups the event named; the changes in
	// them are attributed to the actor.
	Groups []string `json:"groups,omitempty"`
}

// Principal renders a CloudTrail userIdentity for people: the resource of
// arn (after its fifth colon: "assumed-role/ROLE/SESSION", "user/NAME",
// "root"); without an ARN, the identity type and the service that called;
// "unknown" when there is neither.
func Principal(arn, identityType, invokedBy string) string {
	if parts := strings.SplitN(arn, ":", 6); len(parts) == 6 && parts[5] != "" {
		return parts[5]
	}
	if arn != "" {
		return arn
	}
	who := strings.TrimSpace(identityType + " " + invokedBy)
	if who == "" {
		return "unknown"
	}
	return who
}

// Name is the last element of the principal: the session name of an
// assumed role ("alice"), the user name ("bob").
func (a Actor) Name() string {
	return a.Principal[strings.LastIndex(a.Principal, "/")+1:]
}

// Text renders the actor for people: "assumed-role/Admin/alice
// (RevokeSecurityGroupIngress at 2026-03-02T11:02:17Z, from 203.0.113.9,
// aws-cli/2.22.0)". The user agent is cut to its first product token.
func (a Actor) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s", a.Principal, a.EventName)
	if !a.EventTime.IsZero() {
		fmt.Fprintf(&b, " at %s", a.EventTime.UTC().Format(time.RFC3339))
	}
	if a.SourceIP != "" {
		fmt.Fprintf(&b, ", from %s", a.SourceIP)
	}
	if ua, _, _ := strings.Cut(a.UserAgent, " "); ua != "" {
		fmt.Fprintf(&b, ", %s", ua)
	}
	b.WriteString(")")
	return b.String()
}

// Attribute records what found the drift of r. For a CloudTrail event
// (foundBy FoundByCloudTrail, by its caller) every change and every
// refused write in a group the event named (by.Groups) gets By: the event
// is taken to have made every drift found in the groups it named, since
// the drift function looks only at those right after the call. An event
// that named no group id (a call by group name) attributes nothing; its
// report keeps the event in Event. A schedule (FoundBySchedule, by nil)
// names nobody.
func (r Report) Attribute(foundBy string, by *Actor) Report {
	r.FoundBy, r.Event = foundBy, by
	if by == nil {
		return r
	}
	r.Drifted = slices.Clone(r.Drifted)
	for i, c := range r.Drifted {
		if slices.Contains(by.Groups, c.Group) {
			r.Drifted[i].By = by
		}
	}
	r.Refused = slices.Clone(r.Refused)
	for i, x := range r.Refused {
		if slices.Contains(by.Groups, x.Group) {
			r.Refused[i].By = by
		}
	}
	return r
}

// principals are the distinct actors the changes and refusals of r are
// attributed to, in order of first appearance.
func (r Report) principals() []*Actor {
	var out []*Actor
	add := func(a *Actor) {
		if a != nil && !slices.ContainsFunc(out, func(b *Actor) bool { return b.Text() == a.Text() }) {
			out = append(out, a)
		}
	}
	for _, c := range r.Drifted {
		add(c.By)
	}
	for _, x := range r.Refused {
		add(x.By)
	}
	return out
}

// writeDrifted writes the drifted rules, one line each. A report with an
// attribution groups them under one heading per principal, then the
// changes attributed to nobody under "Found by schedule" (or, for a
// CloudTrail event, "Not attributed"); a report without one lists them
// as they are.
func (r Report) writeDrifted(b *strings.Builder) {
	if r.FoundBy == "" {
		for _, c := range r.Drifted {
			fmt.Fprintf(b, "- %s %s: %s\n", c.Group, c.Direction, c.text())
		}
		return
	}
	for _, a := range r.principals() {
		var changes []Change
		var refused []Refusal
		for _, c := range r.Drifted {
			if c.By != nil && c.By.Text() == a.Text() {
				changes = append(changes, c)
			}
		}
		for _, x := range r.Refused {
			if x.By != nil && x.By.Text() == a.Text() {
				refused = append(refused, x)
			}
		}
		fmt.Fprintf(b, "%s: %s\n", a.Text(), counts(changes, refused))
		for _, c := range changes {
			fmt.Fprintf(b, "- %s %s: %s\n", c.Group, c.Direction, c.text())
		}
	}
	var rest []Change
	for _, c := range r.Drifted {
		if c.By == nil {
			rest = append(rest, c)
		}
	}
	if len(rest) == 0 {
		return
	}
	switch {
	case r.FoundBy == FoundBySchedule:
		fmt.Fprintf(b, "Found by schedule: %s\n", counts(rest, nil))
	case r.Event != nil && len(r.Event.Groups) == 0:
		fmt.Fprintf(b, "Not attributed (found after %s, which named no group id): %s\n", r.Event.Text(), counts(rest, nil))
	case r.Event != nil:
		fmt.Fprintf(b, "Not attributed (not in a group %s named): %s\n", r.Event.EventName, counts(rest, nil))
	default:
		fmt.Fprintf(b, "Not attributed: %s\n", counts(rest, nil))
	}
	for _, c := range rest {
		fmt.Fprintf(b, "- %s %s: %s\n", c.Group, c.Direction, c.text())
	}
}

// counts renders "2 rules reverted in sg-1", "1 rule changed, not
// reverted in sg-1, sg-2", "1 rule reverted, 1 restore refused in sg-1".
func counts(changes []Change, refused []Refusal) string {
	var groups, parts []string
	reverted := 0
	for _, c := range changes {
		groups = append(groups, c.Group)
		if c.Reverted {
			reverted++
		}
	}
	n := len(changes)
	switch {
	case n == 0:
	case reverted == n:
		parts = append(parts, fmt.Sprintf("%d %s reverted", n, strutil.Plural(n, "rule")))
	case reverted == 0:
		parts = append(parts, fmt.Sprintf("%d %s changed, not reverted", n, strutil.Plural(n, "rule")))
	default:
		parts = append(parts, fmt.Sprintf("%d %s changed, %d reverted", n, strutil.Plural(n, "rule"), reverted))
	}
	for _, x := range refused {
		groups = append(groups, x.Group)
	}
	if len(refused) > 0 {
		parts = append(parts, fmt.Sprintf("%d %s refused by the guardrail policy", len(refused), strutil.Plural(len(refused), "write")))
	}
	slices.Sort(groups)
	return strings.Join(parts, ", ") + " in " + strings.Join(slices.Compact(groups), ", ")
}
