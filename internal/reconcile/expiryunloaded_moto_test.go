package reconcile_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// actionsText renders a plan's actions as "kind port reason", one a line.
func actionsText(res reconcile.Result) string {
	var out []string
	for _, a := range res.Plan.Actions {
		out = append(out, string(a.Kind)+" "+a.Key.String()+" "+a.Reason)
	}
	return strings.Join(out, "\n")
}

// TestExpiryOfUnloadedFile: an engine without a Source (CloudFormation
// only) sweeping a ledger shared with files does not load the files, but
// their records keep each permission's deadline: past it, a rule deleted
// by hand is not created again (its record is forgotten), one still there
// is revoked, and the permanent rules stay.
func TestExpiryOfUnloadedFile(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	w, clk := expiryWorld(t, t0)
	web := w.groups["web"]
	body := "rules:\n  https:\n    securityGroup: " + web + "\n    type: ingress\n    protocol: tcp\n    fromPort: 443\n    toPort: 443\n    cidrBlocks: [10.0.0.0/8]\n" +
		"  ssh-alice:\n" + sshRule(web, "198.51.100.7/32", "2026-12-07T11:00:00Z") +
		"  vendor:\n" + strings.ReplaceAll(sshRule(web, "203.0.113.0/24", "2026-12-07T11:00:00Z"), "Port: 22", "Port: 8443") +
		"  ssh-bob:\n" + strings.ReplaceAll(sshRule(web, "198.51.100.8/32", "2026-12-07T11:00:00Z"), "Port: 22", "Port: 2222")
	w.put("rules/tmp.yaml", []byte(body))
	if res := w.reconcile(reconcile.Request{Keys: []string{"rules/tmp.yaml"}, Reason: "test"}); res.Plan.Count(reconcile.ActAuthorize) != 4 {
		t.Fatalf("apply: %+v", res.Plan.Actions)
	}
	cfnOnly, err := reconcile.New(reconcile.Config{
		Groups:   ec2sg.New(w.ec2),
		Ledger:   ddbledger.New(dynamodb.NewFromConfig(w.cfg), "ledger"),
		LedgerID: "ledger",
		Now:      clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	sweep := func() reconcile.Result {
		t.Helper()
		res, err := cfnOnly.Reconcile(context.Background(), reconcile.Request{All: true, Reason: "sweep"})
		if err != nil {
			t.Fatalf("sweep: %v", err)
		}
		return res
	}
	if res := sweep(); !res.Plan.Empty() {
		t.Fatalf("sweep before the deadline: %s", actionsText(res))
	}
	// Before the deadline, a temporary rule deleted by hand is put back
	// with its deadline (the record's), as its tag shows.
	clk.Set(time.Date(2026, 12, 7, 10, 30, 0, 0, time.UTC))
	w.revokeByHand(web, 2222)
	bob := web + "|ingress|tcp|2222|2222|cidr4:198.51.100.8/32"
	if res := sweep(); res.Plan.Count(reconcile.ActAuthorize) != 1 || len(res.Plan.Actions) != 1 {
		t.Fatalf("sweep after a deletion by hand: %s", actionsText(res))
	}
	if got := w.tagged(reconcile.TagExpiresAt)[bob]; got != "2026-12-07T11:00:00Z" {
		t.Errorf("the rule put back carries %s %q, want 2026-12-07T11:00:00Z", reconcile.TagExpiresAt, got)
	}

	clk.Set(time.Date(2026, 12, 7, 11, 0, 0, 0, time.UTC))
	w.revokeByHand(web, 22)
	alice := web + "|ingress|tcp|22|22|cidr4:198.51.100.7/32"
	vendor := web + "|ingress|tcp|8443|8443|cidr4:203.0.113.0/24"
	res := sweep()
	want := "revoke " + bob + " expired at 2026-12-07T11:00:00Z\nrevoke " + vendor + " expired at 2026-12-07T11:00:00Z\nforget " + alice + " no longer declared; rule already gone"
	if got := actionsText(res); got != want {
		t.Errorf("sweep at the deadline:\n%s\nwant:\n%s", got, want)
	}
	tags := w.tagged(reconcile.TagExpiresAt)
	if _, ok := tags[alice]; ok {
		t.Error("the expired rule deleted by hand was created again")
	}
	if _, ok := tags[vendor]; ok {
		t.Error("the expired rule is still in EC2")
	}
	if _, ok := tags[web+"|ingress|tcp|443|443|cidr4:10.0.0.0/8"]; !ok {
		t.Error("the permanent rule was revoked")
	}
	if res := sweep(); !res.Plan.Empty() {
		t.Errorf("second sweep: %s", actionsText(res))
	}
}

// TestExpiryOfUnreadCustomResource: a custom resource whose ledger record
// no longer decodes (status unknown) is left out of sweeps until
// CloudFormation sends it again, and what it declares is unknown. Its
// rules created with a deadline carry it as a tag: past it, the rule is
// revoked. A rule of it deleted by hand is not created again by a sweep,
// with or without a deadline (nothing proves the resource still declares
// it, nor until when); the rules still there without a deadline stay.
func TestExpiryOfUnreadCustomResource(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	w, clk := expiryWorld(t, t0)
	web := w.groups["web"]
	const key = "cfn/stack/VendorAccess"
	rule := func(port, cidr, expires string) map[string]any {
		r := map[string]any{"securityGroup": web, "type": "ingress", "protocol": "tcp", "fromPort": port, "toPort": port, "cidrBlocks": []any{cidr}}
		if expires != "" {
			r["expiresAt"] = expires
		}
		return r
	}
	f, diags := rules.ParseValue(key, map[string]any{"rules": map[string]any{
		"Gone":     rule("8443", "203.0.113.0/24", "2026-12-07T12:00:00Z"),
		"Kept":     rule("8444", "203.0.113.0/24", "2026-12-07T12:00:00Z"),
		"Deleted":  rule("443", "10.0.0.0/8", ""),
		"Standing": rule("444", "10.0.0.0/8", ""),
	}}, rules.ValueOptions{NumericStrings: true})
	if f == nil {
		t.Fatal(diags.Strings())
	}
	if res := w.reconcile(reconcile.Request{Inline: map[string]reconcile.Inline{key: {File: f}}, Reason: "cloudformation:Create"}); res.Plan.Count(reconcile.ActAuthorize) != 4 {
		t.Fatalf("create: %+v", res.Plan.Actions)
	}
	ctx := context.Background()
	if _, err := dynamodb.NewFromConfig(w.cfg).UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String("ledger"),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "t#home"},
			"sk": &types.AttributeValueMemberS{Value: "source#" + key}},
		UpdateExpression:          aws.String("SET perms = :p"),
		ConditionExpression:       aws.String("attribute_exists(sk)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": &types.AttributeValueMemberB{Value: []byte("not gzip")}},
	}); err != nil {
		t.Fatalf("break the custom resource's record: %v", err)
	}

	clk.Set(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
	w.revokeByHand(web, 8443)
	w.revokeByHand(web, 443)
	res := w.reconcile(reconcile.Request{All: true, Reason: "sweep"})
	kept := web + "|ingress|tcp|8444|8444|cidr4:203.0.113.0/24"
	if got, want := actionsText(res), "revoke "+kept+" expired at 2026-12-07T12:00:00Z"; got != want {
		t.Errorf("sweep at the deadline:\n%s\nwant:\n%s", got, want)
	}
	tags := w.tagged(reconcile.TagExpiresAt)
	for _, port := range []string{"8443", "8444", "443"} {
		if _, ok := tags[web+"|ingress|tcp|"+port+"|"+port+"|cidr4:"+map[bool]string{true: "203.0.113.0/24", false: "10.0.0.0/8"}[port != "443"]]; ok {
			t.Errorf("the rule on port %s is in EC2", port)
		}
	}
	if _, ok := tags[web+"|ingress|tcp|444|444|cidr4:10.0.0.0/8"]; !ok {
		t.Error("the permanent rule still there was revoked")
	}
	if res := w.reconcile(reconcile.Request{All: true, Reason: "sweep"}); !res.Plan.Empty() {
		t.Errorf("second sweep: %s", actionsText(res))
	}
}
