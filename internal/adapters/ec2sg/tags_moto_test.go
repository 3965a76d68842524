package ec2sg_test

import (
	"context"
	"testing"
)

// Tags on security groups and on rules are written in one call for many
// resources; removing by key leaves the other tags alone, whatever the
// value of the removed one.
func TestTagAndUntag(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	a := e.group(t, "a", map[string]string{"team": "a"})
	b := e.group(t, "b", nil)
	mark := "sgrules:exclusive:dep-1"
	if err := e.client.TagGroups(ctx, []string{a, b, a}, map[string]string{mark: "true"}); err != nil {
		t.Fatal(err)
	}
	if n := e.count("CreateTags"); n != 1 {
		t.Errorf("TagGroups of 2 groups made %d CreateTags calls, want 1", n)
	}
	tagsOf := func() map[string]map[string]string {
		infos, err := e.client.DescribeGroups(ctx, []string{a, b})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]map[string]string{}
		for _, g := range infos {
			out[g.GroupID] = g.Tags
		}
		return out
	}
	got := tagsOf()
	if got[a][mark] != "true" || got[b][mark] != "true" || got[a]["team"] != "a" {
		t.Fatalf("after TagGroups: %v", got)
	}
	if err := e.client.UntagGroups(ctx, []string{a, b}, []string{mark}); err != nil {
		t.Fatal(err)
	}
	if n := e.count("DeleteTags"); n != 1 {
		t.Errorf("UntagGroups of 2 groups made %d DeleteTags calls, want 1", n)
	}
	got = tagsOf()
	if _, ok := got[a][mark]; ok || got[a]["team"] != "a" {
		t.Errorf("after UntagGroups a has %v, want only team=a", got[a])
	}
	if _, ok := got[b][mark]; ok {
		t.Errorf("after UntagGroups b has %v", got[b])
	}

	// Rules: tag two rules of a group in one call.
	perms := mixedBatch(a, b, e.prefixList(t), "ingress")[:2]
	if err := e.client.Authorize(ctx, a, "ingress", perms, nil); err != nil {
		t.Fatal(err)
	}
	var ruleIDs []string
	for _, r := range e.rulesOf(t, a, "ingress") {
		ruleIDs = append(ruleIDs, r.RuleID)
	}
	if len(ruleIDs) != 2 {
		t.Fatalf("%d rules, want 2", len(ruleIDs))
	}
	before := e.count("CreateTags")
	if err := e.client.TagRules(ctx, a, ruleIDs, map[string]string{"sgrules:claim:dep-1": "true"}); err != nil {
		t.Fatal(err)
	}
	if n := e.count("CreateTags") - before; n != 1 {
		t.Errorf("TagRules of 2 rules made %d CreateTags calls, want 1", n)
	}
	for _, r := range e.rulesOf(t, a, "ingress") {
		if r.Tags["sgrules:claim:dep-1"] != "true" {
			t.Errorf("rule %s %s not tagged: %v", r.RuleID, r.Key, r.Tags)
		}
	}
}
