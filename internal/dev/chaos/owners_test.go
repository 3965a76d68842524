package chaos_test

import (
	"maps"
	"slices"
	"testing"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// TestRecordedOwnersFollowTheRuleID: the oracle's owners of a rule in EC2
// are those of its key and those of a record holding its rule id under
// another key (chaos seed 20265006: a run changed sgr-1 in place from A to
// B and its commit was cut, so the ledger held sgr-1 under A, owned by
// f1; f1 was deleted and f5 created declaring B; f1's run revoked its
// drifted rule, which the oracle, reading the owners of B alone, had
// protected). A rule nothing records (a crashed run's orphan) has no
// owner, so it stays protected while the bucket declares it.
func TestRecordedOwnersFollowTheRuleID(t *testing.T) {
	key := func(s string) rules.Key {
		k, err := rules.ParseKey(s)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	a := key("sg-1|ingress|udp|8000|8100|sg:sg-2")
	b := key("sg-1|ingress|udp|8000|8100|sg:sg-3")
	c := key("sg-1|ingress|udp|8000|8100|cidr4:10.0.0.0/8")
	owned := []reconcile.OwnedPermission{
		{Key: a, RuleID: "sgr-1", Owners: map[rules.Owner]string{{Source: "rules/f1.yaml", Rule: "r3"}: ""}},
		{Key: b, RuleID: "sgr-9", Owners: map[rules.Owner]string{{Source: "rules/f2.yaml", Rule: "r1"}: ""}},
		{Key: key("sg-1|ingress|tcp|22|22|cidr4:10.0.0.0/8"), Owners: map[rules.Owner]string{{Source: "rules/f4.yaml", Rule: "r1"}: ""}},
	}
	for _, tc := range []struct {
		name string
		rule reconcile.ActualRule
		want []string
	}{
		{"recorded under its key", reconcile.ActualRule{RuleID: "sgr-1", Key: a}, []string{"rules/f1.yaml"}},
		{"changed in place, commit lost", reconcile.ActualRule{RuleID: "sgr-1", Key: c}, []string{"rules/f1.yaml"}},
		{"its key recorded with another rule too", reconcile.ActualRule{RuleID: "sgr-1", Key: b}, []string{"rules/f1.yaml", "rules/f2.yaml"}},
		{"an orphan nothing records", reconcile.ActualRule{RuleID: "sgr-5", Key: c}, nil},
		{"a record without a rule id names no other rule", reconcile.ActualRule{RuleID: "", Key: c}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := slices.Sorted(maps.Keys(recordedOwners(owned, tc.rule)))
			if !slices.Equal(got, tc.want) {
				t.Errorf("owners %v, want %v", got, tc.want)
			}
		})
	}
}
