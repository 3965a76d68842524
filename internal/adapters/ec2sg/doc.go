// Package ec2sg is the EC2 adapter of sgrules: it implements
// reconcile.Groups on the security group rule APIs.
//
// Every method is batched: describes take up to MaxFilterValues group ids
// per call and follow every page; Authorize sends all permissions of one
// group and direction in one call; Revoke sends all rule ids in one call;
// ModifyRules sends one ModifySecurityGroupRules call per group.
// Rules are addressed by security group rule id (sgr-…) wherever the API
// allows, so a revoke never touches a rule that merely looks the same.
//
// EC2 error codes are mapped to the engine's sentinel errors:
//
//	InvalidPermission.Duplicate            → reconcile.ErrDuplicate
//	InvalidGroup.NotFound                  → reconcile.ErrGroupNotFound (nil on revoke)
//	RulesPerSecurityGroupLimitExceeded     → reconcile.ErrRulesLimit
//	InvalidSecurityGroupRuleId.NotFound,
//	InvalidPermission.NotFound             → reconcile.ErrNotFound
//
// Group peers in keys are group ids of the client's account, or, with
// Peer.Account set, of another account (VPC peering, shared VPCs): written
// as UserIdGroupPairs with UserId, read back from ReferencedGroupInfo's
// UserId when it is not the client's account (WithAccount).
// ModifySecurityGroupRules cannot name a peer's account (ReferencedGroupId
// only), so ModifyRules is for peers of the client's own account.
//
// It may import the AWS SDK, pkg/rules, internal/reconcile (the ports it
// implements) and internal/strutil; never a Lambda shell or the CLI.
package ec2sg
