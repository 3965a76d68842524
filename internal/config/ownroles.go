package config

import (
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
)

// OwnRoleARNs are the role ARNs whose API calls are sgrules' own, so not
// drift (the drift function's handler.Config.IgnoreRoles). CloudTrail
// names a role session's role in userIdentity.sessionContext.sessionIssuer.arn
// as arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME, and only an exact match
// counts:
//
//   - the functions' own roles (SGRULES_ROLE_ARNS), as given;
//   - the target role in each of TargetAccounts,
//     arn:PARTITION:iam::ACCOUNT:role/TARGET_ROLE (its path, if any, as
//     TARGET_ROLE names it), except in the hub's own account, where
//     sgrules uses the functions' roles and never assumes the target
//     role.
//
// The hub's account and the partition are those of the functions' roles
// (partition aws without them). A role that merely has the target role's
// name, in the hub or in any account that is not a target, is not sgrules'.
func (c Config) OwnRoleARNs() []string {
	out := slices.Clone(c.RoleARNs)
	partition, hub := "aws", map[string]bool{}
	for _, r := range c.RoleARNs {
		if a, err := arn.Parse(r); err == nil {
			partition, hub[a.AccountID] = a.Partition, true
		}
	}
	role := c.TargetRole
	if role == "" {
		role = DefaultTargetRole
	}
	for _, acct := range c.TargetAccounts {
		if !hub[acct] {
			out = append(out, "arn:"+partition+":iam::"+acct+":role/"+strings.TrimPrefix(role, "/"))
		}
	}
	return out
}
