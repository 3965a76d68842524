package ddbledger_test

import (
	"context"
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

var (
	home     = rules.Target{Account: "123456789012", Region: "us-east-1"}
	targetA  = rules.Target{Account: "111122223333", Region: "eu-west-1"}
	targetA2 = rules.Target{Account: "111122223333", Region: "us-east-1"} // same account, other region
	targetB  = rules.Target{Account: "444455556666", Region: "eu-west-1"}
)

// The same group id and source key in every target: only the scope tells
// them apart.
const (
	sameGroup  = "sg-0123456789abcdef0"
	sameSource = "team/web.yaml"
)

// writeTarget writes one source owning one permission in led, with the
// target's name in the description and ETag.
func writeTarget(t *testing.T, led reconcile.Ledger, name string) {
	t.Helper()
	k := key(sameGroup, 443, "10.0.0.0/8")
	owner := rules.Owner{Source: sameSource, Rule: "https"}
	err := led.Write(context.Background(), reconcile.Commit{
		Sources: []reconcile.SourceRecord{{Key: sameSource, Kind: reconcile.KindFile, ETag: name, Status: reconcile.StatusApplied,
			Permissions: []rules.Permission{{Key: k, Description: name, Owner: owner}}}},
		Put: []reconcile.OwnedPermission{{Key: k, RuleID: "sgr-" + name, Owners: map[rules.Owner]string{owner: name}, Description: name}},
	})
	if err != nil {
		t.Fatalf("write %s: %v", name, err)
	}
}

// checkOnly asserts led holds exactly the items writeTarget wrote as name.
func checkOnly(t *testing.T, led reconcile.Ledger, name string) {
	t.Helper()
	ctx := context.Background()
	rec, ok, err := led.GetSource(ctx, sameSource)
	if err != nil || !ok || rec.ETag != name || rec.Version != 1 {
		t.Errorf("%s: GetSource = %+v, %v, %v", name, rec, ok, err)
	}
	recs, err := led.ListSources(ctx)
	if err != nil || len(recs) != 1 || recs[0].ETag != name {
		t.Errorf("%s: ListSources = %+v, %v", name, recs, err)
	}
	perms, err := led.GroupPermissions(ctx, []string{sameGroup})
	if err != nil || len(perms) != 1 || perms[0].RuleID != "sgr-"+name {
		t.Errorf("%s: GroupPermissions = %+v, %v", name, perms, err)
	}
	all, err := led.AllPermissions(ctx)
	if err != nil || len(all) != 1 || all[0].RuleID != "sgr-"+name {
		t.Errorf("%s: AllPermissions = %+v, %v", name, all, err)
	}
}

// TestTargetsApart: the home target and three others (one in the same
// account and another region) write the same source key and group id;
// none sees another's items, versions count per target, and leases on the
// same group id in two targets do not block each other.
func TestTargetsApart(t *testing.T) {
	base, _, client := setup(t)
	l := ddbledger.New(client, table, ddbledger.WithHome(home))
	ctx := context.Background()
	leds := map[string]reconcile.Ledger{"home": l.For(home), "a": l.For(targetA), "a2": l.For(targetA2), "b": l.For(targetB)}
	names := []string{"home", "a", "a2", "b"}
	for _, n := range names {
		writeTarget(t, leds[n], n) // each a first write (version 0): no other target's item is in the way
	}
	for _, n := range names {
		checkOnly(t, leds[n], n)
	}
	checkOnly(t, base, "home") // New without WithHome reads the home scope too

	// A conditional delete in one target cannot touch another's item.
	rec, _, _ := leds["a"].GetSource(ctx, sameSource)
	perms, _ := leds["a"].GroupPermissions(ctx, []string{sameGroup})
	if err := leds["a"].Write(ctx, reconcile.Commit{Delete: perms, DeleteSources: []reconcile.SourceRecord{rec}}); err != nil {
		t.Fatal(err)
	}
	if recs, err := leds["a"].ListSources(ctx); err != nil || len(recs) != 0 {
		t.Errorf("a after delete: %+v, %v", recs, err)
	}
	for _, n := range []string{"home", "a2", "b"} {
		checkOnly(t, leds[n], n)
	}

	// Leases: the same group in two targets; a second holder in one.
	unlockA, err := leds["a"].Lock(ctx, []string{sameGroup}, "holder-a", time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	unlockB, err := leds["b"].Lock(ctx, []string{sameGroup}, "holder-b", time.Minute, 0)
	if err != nil {
		t.Fatalf("a lease in target a blocks the same group in target b: %v", err)
	}
	unlockHome, err := leds["home"].Lock(ctx, []string{sameGroup}, "holder-home", time.Minute, 0)
	if err != nil {
		t.Fatalf("a lease in target a blocks the home target: %v", err)
	}
	if _, err := leds["a"].Lock(ctx, []string{sameGroup}, "holder-x", time.Minute, 0); !errors.Is(err, reconcile.ErrLeaseHeld) {
		t.Errorf("second holder in target a: %v, want ErrLeaseHeld", err)
	}
	for _, u := range []func(context.Context) error{unlockA, unlockB, unlockHome} {
		if err := u(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := leds["a"].Lock(ctx, []string{sameGroup}, "holder-x", time.Minute, 0); err != nil {
		t.Errorf("after unlock: %v", err)
	}

	// The items themselves: one partition per target, the kind first in
	// the sort key.
	perm := "perm#" + key(sameGroup, 443, "10.0.0.0/8").String()
	keys := scanKeys(t, client)
	for _, want := range []string{
		"t#home source#" + sameSource, "t#home " + perm,
		"t#111122223333#us-east-1 source#" + sameSource, "t#111122223333#us-east-1 " + perm,
		"t#444455556666#eu-west-1 source#" + sameSource, "t#444455556666#eu-west-1 " + perm,
		"t#111122223333#eu-west-1 lease#" + sameGroup,
		"meta#targets t#home", "meta#targets t#111122223333#eu-west-1", "meta#layout meta",
	} {
		if !keys[want] {
			t.Errorf("no item with key %s in %v", want, keys)
		}
	}
}

// scanKeys returns "pk sk" of every item.
func scanKeys(t *testing.T, client *dynamodb.Client) map[string]bool {
	t.Helper()
	out, err := client.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, item := range out.Items {
		pk, _ := item["pk"].(*types.AttributeValueMemberS)
		sk, _ := item["sk"].(*types.AttributeValueMemberS)
		if pk != nil && sk != nil {
			keys[pk.Value+" "+sk.Value] = true
		}
	}
	return keys
}

// TestExistingLedgerIsHome: a ledger written before targets existed (New
// without WithHome) is, item for item, the home target's: For(home), For
// of the zero target and of a target naming only the home account read it
// without a migration; another target does not.
func TestExistingLedgerIsHome(t *testing.T) {
	old, _, client := setup(t)
	writeTarget(t, old, "old")
	l := ddbledger.New(client, table, ddbledger.WithHome(home))
	for _, tc := range []struct {
		name string
		t    rules.Target
	}{
		{"home", home}, {"zero", rules.Target{}}, {"home account only", rules.Target{Account: home.Account}},
		{"home region only", rules.Target{Region: home.Region}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkOnly(t, l.For(tc.t), "old") })
	}
	checkOnly(t, l, "old")
	other := l.For(rules.Target{Account: home.Account, Region: "eu-west-1"})
	if recs, err := other.ListSources(context.Background()); err != nil || len(recs) != 0 {
		t.Errorf("another region of the home account sees the home ledger: %+v, %v", recs, err)
	}
	all, err := l.ListAllSources(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || len(all[home]) != 1 || all[home][0].ETag != "old" {
		t.Errorf("ListAllSources = %+v, want the old records under %s", all, home)
	}
}

// TestListAllSources: the target registry and one Query per target
// return every target's records (the home partition's under the home
// target), sorted by key within each; permissions and leases are not
// records; nothing is scanned.
func TestListAllSources(t *testing.T) {
	l, calls, _ := setup(t, ddbledger.WithHome(home))
	ctx := context.Background()
	for _, tc := range []struct {
		t    rules.Target
		keys []string
	}{
		{home, []string{"z.yaml", "a.yaml"}},
		{targetA, []string{"m.yaml", "b#odd#key.yaml", "a.yaml"}},
		{targetB, []string{"only.yaml"}},
	} {
		led := l.For(tc.t)
		var recs []reconcile.SourceRecord
		for _, k := range tc.keys {
			recs = append(recs, reconcile.SourceRecord{Key: k, Kind: reconcile.KindFile, Status: reconcile.StatusApplied})
		}
		if err := led.Write(ctx, reconcile.Commit{Sources: recs}); err != nil {
			t.Fatal(err)
		}
		writeTarget(t, led, "x"+strings.ReplaceAll(tc.t.Region, "-", ""))
		unlock, err := led.Lock(ctx, []string{sameGroup}, "h", time.Minute, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = unlock(context.Background()) })
	}
	calls.Reset()
	all, err := l.ListAllSources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, q := calls.Sum("DynamoDB", nil), calls.Sum("DynamoDB", func(op string) bool { return op == "Query" }); n != 4 || q != 4 {
		t.Errorf("%d DynamoDB calls (%s), want 4 Queries (the registry, 3 targets)", n, calls)
	}
	want := map[string][]string{
		home.String():    {"a.yaml", sameSource, "z.yaml"},
		targetA.String(): {"a.yaml", "b#odd#key.yaml", "m.yaml", sameSource},
		targetB.String(): {"only.yaml", sameSource},
	}
	if got := sortedKeys(all); !reflect.DeepEqual(got, want) {
		t.Errorf("ListAllSources =\n%v\nwant\n%v", got, want)
	}
	// Each target's own ListSources agrees with its share.
	for tgt, recs := range all {
		own, err := l.For(tgt).ListSources(ctx)
		if err != nil || !reflect.DeepEqual(own, recs) {
			t.Errorf("%s: ListSources = %+v, %v; ListAllSources has %+v", tgt, own, err, recs)
		}
	}
}

// sortedKeys lists the source keys of each target, marking a list that is
// not sorted.
func sortedKeys(all map[rules.Target][]reconcile.SourceRecord) map[string][]string {
	out := map[string][]string{}
	for t, recs := range all {
		for _, r := range recs {
			out[t.String()] = append(out[t.String()], r.Key)
		}
		if !sort.StringsAreSorted(out[t.String()]) {
			out[t.String()] = append(out[t.String()], "(unsorted)")
		}
	}
	return out
}
