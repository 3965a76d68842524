package rules

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Resolver maps a group reference to the ids of every matching group (id
// refs map to themselves).
type Resolver func(GroupRef) []string

// Expand turns every rule into one Permission per source (each CIDR, IPv6
// CIDR, source group and prefix list), exactly as EC2 stores rules, with
// Owner{Source: source, Rule: rule name}, sorted with SortPermissions. It
// also returns the resolved exclusive group ids, sorted and deduplicated.
//
// Literal ids are used as they are, without calling resolve. A reference
// that resolves to no group or to several is an error at the reference's
// position; so is a permission declared twice (by two rules, or twice in one
// rule), naming both places. When there is any error, perms and exclusive
// are nil: a partial set must never be applied.
//
// Expand knows no clock: a rule with expiresAt declares nothing, as if its
// deadline had passed (fail closed). Callers that know the time use
// ExpandAt.
func Expand(f *File, source string, resolve Resolver) (perms []Permission, exclusive []string, diags Diagnostics) {
	return ExpandAt(f, source, resolve, time.Time{})
}

// ExpandAt is Expand at time now: a rule whose deadline has passed at now
// (Rule.Expired; a zero now counts as after every deadline) declares
// nothing, with a warning at its expiresAt saying so. It still takes part
// in the checks Expand makes, so a file's validity does not change with
// time. Each permission of a rule that has not expired carries its
// ExpiresAt. pkg/rules never reads the clock: now comes from the caller.
func ExpandAt(f *File, source string, resolve Resolver, now time.Time) (perms []Permission, exclusive []string, diags Diagnostics) {
	if f == nil {
		return nil, nil, nil
	}
	x := &expander{file: f.Name, resolve: resolve}
	if x.file == "" {
		x.file = source
	}
	groups := func(r *Rule) []string {
		return x.one(r.SecurityGroup, r.Name, "securityGroup", r.FieldPos["securityGroup"])
	}
	peerGroups := func(r *Rule, j int, g GroupRef) []string {
		field := fmt.Sprintf("sourceSecurityGroups[%d]", j)
		return x.one(g, r.Name, field, r.FieldPos[field])
	}
	eachPermission(f, groups, peerGroups, func(r *Rule, k Key, at site, first *site) {
		if first != nil {
			x.report(r.Name, at.field, at.pos, "%s: same permission as %s: %s", at.field, first, k)
			return
		}
		if r.Expired(now) {
			return
		}
		perms = append(perms, Permission{Key: k, Description: r.Description, Owner: Owner{Source: source, Rule: r.Name}, ExpiresAt: r.ExpiresAt})
	})
	for i := range f.Rules {
		if r := &f.Rules[i]; r.Expired(now) {
			pos := r.FieldPos["expiresAt"]
			x.diags = append(x.diags, Diagnostic{File: x.file, Line: pos.Line, Col: pos.Col, Rule: r.Name, Field: "expiresAt",
				Severity: SeverityWarning, Msg: expiredNotice(r, now)})
		}
	}
	for i, g := range f.ExclusiveGroups {
		var pos Pos
		if i < len(f.ExclusivePos) {
			pos = f.ExclusivePos[i]
		}
		exclusive = append(exclusive, x.one(g, "", fmt.Sprintf("exclusiveGroups[%d]", i), pos)...)
	}
	if x.diags.HasErrors() {
		return nil, nil, x.diags
	}
	SortPermissions(perms)
	return perms, dedupe(exclusive), x.diags
}

// expander resolves the group references of one file, collecting errors.
type expander struct {
	file    string
	resolve Resolver
	diags   Diagnostics
}

func (x *expander) report(rule, field string, pos Pos, format string, args ...any) {
	x.diags = append(x.diags, Diagnostic{File: x.file, Line: pos.Line, Col: pos.Col, Rule: rule, Field: field,
		Severity: SeverityError, Msg: fmt.Sprintf(format, args...)})
}

// one resolves a reference to exactly one id, reporting otherwise.
func (x *expander) one(g GroupRef, rule, field string, pos Pos) []string {
	if g.IsID() {
		return []string{g.ID}
	}
	var ids []string
	if x.resolve != nil {
		ids = dedupe(x.resolve(g))
	}
	switch len(ids) {
	case 1:
		return ids
	case 0:
		x.report(rule, field, pos, "%s %s: no security group matches", field, refText(g))
	default:
		x.report(rule, field, pos, "%s %s: matches %d groups: %s", field, refText(g), len(ids), strings.Join(ids, ", "))
	}
	return nil
}

// refText renders a reference as written: "sg-…", "{groupId: sg-…,
// account: "…"}", "{groupName: web, vpcId: vpc-1}" or "{tags: {Name: web}}".
func refText(g GroupRef) string {
	switch {
	case g.ID != "" && g.Account != "":
		return fmt.Sprintf("{groupId: %s, account: %q}", g.ID, g.Account)
	case g.ID != "":
		return g.ID
	case g.Name != "":
		return fmt.Sprintf("{groupName: %s, vpcId: %s}", g.Name, g.VPCID)
	}
	keys := make([]string, 0, len(g.Tags))
	for k := range g.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + g.Tags[k]
	}
	return "{tags: {" + strings.Join(parts, ", ") + "}}"
}

func dedupe(ids []string) []string {
	if len(ids) == 0 {
		return nil
	}
	out := append([]string(nil), ids...)
	sort.Strings(out)
	j := 0
	for i, s := range out {
		if i == 0 || s != out[j-1] {
			out[j] = s
			j++
		}
	}
	return out[:j]
}

// Refs returns every group reference of the file (securityGroup,
// sourceSecurityGroups, exclusiveGroups) that is not a literal id,
// deduplicated by String() and sorted by it.
func (f *File) Refs() []GroupRef {
	seen := map[string]GroupRef{}
	add := func(g GroupRef) {
		if !g.IsID() {
			seen[g.String()] = g
		}
	}
	for _, r := range f.Rules {
		add(r.SecurityGroup)
		for _, g := range r.SourceSecurityGroups {
			add(g)
		}
	}
	for _, g := range f.ExclusiveGroups {
		add(g)
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]GroupRef, len(keys))
	for i, k := range keys {
		out[i] = seen[k]
	}
	return out
}
