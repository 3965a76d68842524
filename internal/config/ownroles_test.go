package config

import (
	"slices"
	"testing"
)

func TestOwnRoleARNs(t *testing.T) {
	const drift = "arn:aws:iam::123456789012:role/sgrules-drift-eu-west-1"
	tests := []struct {
		name string
		c    Config
		want []string
	}{
		{"functions' roles only", Config{RoleARNs: []string{drift}}, []string{drift}},
		{"target role in each target account, not in the hub's",
			Config{RoleARNs: []string{drift}, TargetAccounts: []string{"111122223333", "123456789012"}, TargetRole: "sgrules-target"},
			[]string{drift, "arn:aws:iam::111122223333:role/sgrules-target"}},
		{"role with a path, partition of the functions' roles",
			Config{RoleARNs: []string{"arn:aws-cn:iam::123456789012:role/d"}, TargetAccounts: []string{"111122223333"}, TargetRole: "/ops/sgrules-target"},
			[]string{"arn:aws-cn:iam::123456789012:role/d", "arn:aws-cn:iam::111122223333:role/ops/sgrules-target"}},
		{"default role name", Config{TargetAccounts: []string{"111122223333"}},
			[]string{"arn:aws:iam::111122223333:role/" + DefaultTargetRole}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.c.OwnRoleARNs(); !slices.Equal(got, tc.want) {
				t.Errorf("OwnRoleARNs = %q, want %q", got, tc.want)
			}
		})
	}
}
