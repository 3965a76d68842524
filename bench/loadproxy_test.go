package bench

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The load proxy counts a function's calls from the wire: EC2 writes per
// group and direction (a modify for each direction of the rules it names),
// the permissions an authorize carries, the rule ids a revoke names, the
// lease transactions DynamoDB refuses.
func TestLoadCallsRecord(t *testing.T) {
	const ec2Auth = "AWS4-HMAC-SHA256 Credential=test/20261207/eu-west-1/ec2/aws4_request, SignedHeaders=host, Signature=x"
	const ddbAuth = "AWS4-HMAC-SHA256 Credential=test/20261207/eu-west-1/dynamodb/aws4_request, SignedHeaders=host, Signature=x"
	dirs := map[string]string{"sgr-1": "ingress", "sgr-2": "egress", "sgr-3": "ingress"}
	type counts struct{ mutating, authorized, revoked, modified, failedMutating, leaseRefusals int }
	type call struct {
		auth, target, body string
		status             int
		resp               string
	}
	for _, tc := range []struct {
		name  string
		calls []call
		want  counts
		pairs map[loadPair]int
	}{
		{"authorize carries one permission per peer", []call{{auth: ec2Auth, status: 200,
			body: "Action=AuthorizeSecurityGroupEgress&Version=2016-11-15&GroupId=sg-a&IpPermissions.1.FromPort=1&IpPermissions.1.IpRanges.1.CidrIp=10.0.0.0%2F24&IpPermissions.1.IpRanges.1.Description=x&IpPermissions.1.IpRanges.2.CidrIp=10.0.1.0%2F24&IpPermissions.2.Ipv6Ranges.1.CidrIpv6=%3A%3A%2F0"}},
			counts{mutating: 1, authorized: 3}, map[loadPair]int{{"sg-a", "egress"}: 1}},
		{"revoke names rule ids", []call{{auth: ec2Auth, status: 200,
			body: "Action=RevokeSecurityGroupIngress&Version=2016-11-15&GroupId=sg-a&SecurityGroupRuleId.1=sgr-1&SecurityGroupRuleId.2=sgr-3"}},
			counts{mutating: 1, revoked: 2}, map[loadPair]int{{"sg-a", "ingress"}: 1}},
		{"a modify counts for each direction it changes", []call{{auth: ec2Auth, status: 200,
			body: "Action=ModifySecurityGroupRules&Version=2016-11-15&GroupId=sg-a&SecurityGroupRule.1.SecurityGroupRuleId=sgr-1&SecurityGroupRule.1.SecurityGroupRule.FromPort=2&SecurityGroupRule.2.SecurityGroupRuleId=sgr-2&SecurityGroupRule.3.SecurityGroupRuleId=sgr-3"}},
			counts{mutating: 1, modified: 3}, map[loadPair]int{{"sg-a", "ingress"}: 1, {"sg-a", "egress"}: 1}},
		{"a refused write is counted, not its content", []call{{auth: ec2Auth, status: 400, resp: "InvalidPermission.Duplicate",
			body: "Action=AuthorizeSecurityGroupIngress&Version=2016-11-15&GroupId=sg-a&IpPermissions.1.IpRanges.1.CidrIp=10.0.0.0%2F24"}},
			counts{mutating: 1, failedMutating: 1}, map[loadPair]int{}},
		{"reads are not writes", []call{{auth: ec2Auth, status: 200, body: "Action=DescribeSecurityGroupRules&Version=2016-11-15&Filter.1.Name=group-id"}},
			counts{}, map[loadPair]int{}},
		{"a refused lease transaction, and a refused commit that is not one", []call{
			{auth: ddbAuth, target: "DynamoDB_20120810.TransactWriteItems", status: 400, resp: `{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException"}`,
				body: `{"TransactItems":[{"Put":{"Item":{"sk":{"S":"lease#sg-a"}}}}]}`},
			{auth: ddbAuth, target: "DynamoDB_20120810.TransactWriteItems", status: 400, resp: `{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException"}`,
				body: `{"TransactItems":[{"Put":{"Item":{"sk":{"S":"perm#sg-a"}}}}]}`},
			{auth: ddbAuth, target: "DynamoDB_20120810.TransactWriteItems", status: 200, body: `{"TransactItems":[{"Put":{"Item":{"sk":{"S":"lease#sg-a"}}}}]}`},
		}, counts{leaseRefusals: 1}, map[loadPair]int{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &loadCalls{}
			for _, cl := range tc.calls {
				r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(cl.body))
				r.Header.Set("Authorization", cl.auth)
				if cl.target != "" {
					r.Header.Set("X-Amz-Target", cl.target)
				}
				rec := &statusRecorder{ResponseWriter: httptest.NewRecorder(), status: http.StatusOK}
				rec.WriteHeader(cl.status)
				rec.Write([]byte(cl.resp))
				c.record(r, []byte(cl.body), rec, dirs)
			}
			got := counts{mutating: c.mutating, authorized: c.authorized, revoked: c.revoked, modified: c.modified,
				failedMutating: c.failedMutating, leaseRefusals: c.leaseRefusals}
			if got != tc.want {
				t.Errorf("counts %+v, want %+v", got, tc.want)
			}
			if len(c.pairs) != len(tc.pairs) {
				t.Errorf("pairs %v, want %v", c.pairs, tc.pairs)
			}
			for p, n := range tc.pairs {
				if c.pairs[p] != n {
					t.Errorf("pairs %v, want %v", c.pairs, tc.pairs)
				}
			}
		})
	}
}
