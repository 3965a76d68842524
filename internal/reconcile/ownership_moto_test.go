package reconcile_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
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

// deploymentID reads the world's deployment identity from its ledger.
func (w *world) deploymentID() string {
	w.t.Helper()
	id, err := ddbledger.New(dynamodb.NewFromConfig(w.cfg), "ledger").DeploymentID(context.Background(), "")
	if err != nil || id == "" {
		w.t.Fatalf("deployment identity %q: %v", id, err)
	}
	return id
}

// TestSpoofedLedgerTagIsReportedNotRevoked: hand-made tcp 5432 rules in a
// group no file or record names, tagged only sgrules:ledger=<the value the
// deployment's rules carry> (its identity, or its table's name as before
// deployments had one), are never revoked: the sweep's read by tag finds
// the first, and both are reported as unproven.
func TestSpoofedLedgerTagIsReportedNotRevoked(t *testing.T) {
	w := newWorld(t)
	w.put("rules/web.yaml", []byte(ruleFile("web", "ingress", "tcp", 443, 443, "cidrBlocks: [0.0.0.0/0]")))
	w.reconcile(reconcile.Request{All: true})
	w.handRule(w.groups["database"], 5432, "10.0.0.0/8", map[string]string{reconcile.TagLedger: w.deploymentID()})
	w.handRule(w.groups["database"], 5432, "10.1.0.0/16", map[string]string{reconcile.TagLedger: "ledger"})

	res := w.reconcile(reconcile.Request{All: true})
	if n := res.Plan.Count(reconcile.ActRevoke); n != 0 {
		t.Fatalf("the sweep revoked %d rules: %+v", n, res.Plan.Actions)
	}
	got := strings.Join(w.rules(), "\n")
	if !strings.Contains(got, "|5432|5432|cidr4:10.0.0.0/8") || !strings.Contains(got, "|5432|5432|cidr4:10.1.0.0/16") {
		t.Fatalf("a rule with a spoofed tag is gone:\n%s", got)
	}
	if len(res.Plan.Unproven) != 2 {
		t.Fatalf("unproven rules: %+v", res.Plan.Unproven)
	}
	for _, u := range res.Plan.Unproven {
		if u.Key.GroupID != w.groups["database"] || u.Key.FromPort != 5432 {
			t.Errorf("unproven: %s", u.Key)
		}
	}
}
