// Package cfnresource implements the CloudFormation custom resource
// Custom::SecurityGroupRule on the sgrules engine: one resource is one rule,
// declared by its ResourceProperties (the rule-file field names), and is a
// rule source of its own keyed "cfn/STACK/LOGICAL_ID".
//
// Handle always answers CloudFormation at the pre-signed ResponseURL, once:
// SUCCESS or FAILED with a reason, also when the work panics or cannot
// finish before the Lambda deadline. The PhysicalResourceId is the source
// key, so it never changes for the life of the resource: an Update (even of
// the group) is done in place, make-before-break, and CloudFormation never
// issues a replacement Delete.
//
// It may import internal/reconcile, pkg/*, the Lambda libraries and
// adapters; never the CLI or development tooling.
package cfnresource
