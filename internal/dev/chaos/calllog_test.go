package chaos_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/sgrules/sgrules/internal/testutil/faultproxy"
)

func TestCallLogNamesMutatingCalls(t *testing.T) {
	var l callLog
	rec := l.record("dep-a")
	rec(faultproxy.Call{Service: faultproxy.EC2, Action: "DescribeSecurityGroupRules", Params: url.Values{"Action": {"DescribeSecurityGroupRules"}}})
	rec(faultproxy.Call{Service: faultproxy.EC2, Action: "CreateTags", Mutating: true, Params: url.Values{
		"Action": {"CreateTags"}, "Version": {"2016-11-15"}, "ResourceId.1": {"sgr-1"},
		"Tag.1.Key": {"sgrules:owner"}, "Tag.1.Value": {"rules/f1.yaml"}}})
	rec(faultproxy.Call{Service: faultproxy.DynamoDB, Action: "PutItem", Mutating: true, Body: []byte(`{"TableName":"t"}`)})
	rec(faultproxy.Call{Service: faultproxy.S3, Action: "PUT /b/k", Mutating: true})
	want := `[dep-a ec2:CreateTags ResourceId.1=sgr-1 Tag.1.Key=sgrules:owner Tag.1.Value=rules/f1.yaml; ` +
		`dep-a dynamodb:PutItem {"TableName":"t"}; dep-a s3:PUT /b/k]`
	if got := l.String(); got != want {
		t.Errorf("log:\n got %s\nwant %s", got, want)
	}
	long := describeCall(faultproxy.Call{Service: faultproxy.DynamoDB, Action: "TransactWriteItems", Mutating: true, Body: []byte(strings.Repeat("x", 5000))})
	if !strings.HasSuffix(long, "...") || len(long) > 1600 {
		t.Errorf("a long request is not cut: %d characters", len(long))
	}
}
