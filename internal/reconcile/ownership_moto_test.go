package reconcile_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/sgrules/sgrules/internal/reconcile"
)

// handRule authorizes a tcp ingress rule by hand, with the given tags on
// the rule, and returns its key string.
func (w *world) handRule(group string, port int32, cidr string, tags map[string]string) {
	w.t.Helper()
	in := &ec2.AuthorizeSecurityGroupIngressInput{GroupId: &group,
		IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(port), ToPort: aws.Int32(port),
			IpRanges: []ec2types.IpRange{{CidrIp: aws.String(cidr)}}}}}
	if len(tags) > 0 {
		spec := ec2types.TagSpecification{ResourceType: ec2types.ResourceTypeSecurityGroupRule}
		for k, v := range tags {
			spec.Tags = append(spec.Tags, ec2types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		in.TagSpecifications = []ec2types.TagSpecification{spec}
	}
	if _, err := w.ec2.AuthorizeSecurityGroupIngress(context.Background(), in); err != nil {
		w.t.Fatal(err)
	}
}

// TestSpoofedLedgerTagIsReportedNotRevoked: a hand-made tcp 5432 rule in
// a group no file or record names, tagged only sgrules:ledger=<table>
// (the value every rule sgrules makes carries), is found by the sweep's
// read by tag and reported as unproven; it is never revoked.
func TestSpoofedLedgerTagIsReportedNotRevoked(t *testing.T) {
	w := newWorld(t)
	w.put("rules/web.yaml", []byte(ruleFile("web", "ingress", "tcp", 443, 443, "cidrBlocks: [0.0.0.0/0]")))
	w.reconcile(reconcile.Request{All: true})
	w.handRule(w.groups["database"], 5432, "10.0.0.0/8", map[string]string{reconcile.TagLedger: "ledger"})

	res := w.reconcile(reconcile.Request{All: true})
	if n := res.Plan.Count(reconcile.ActRevoke); n != 0 {
		t.Fatalf("the sweep revoked %d rules: %+v", n, res.Plan.Actions)
	}
	if !strings.Contains(strings.Join(w.rules(), "\n"), "|5432|5432|cidr4:10.0.0.0/8") {
		t.Fatal("the rule with a spoofed tag is gone")
	}
	if len(res.Plan.Unproven) != 1 || res.Plan.Unproven[0].Key.GroupID != w.groups["database"] || res.Plan.Unproven[0].Key.FromPort != 5432 {
		t.Fatalf("unproven rules: %+v", res.Plan.Unproven)
	}
}
