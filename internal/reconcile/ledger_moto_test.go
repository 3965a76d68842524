package reconcile_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sgrules/sgrules/internal/reconcile"
)

// A source item without ver and with perms that are not gzip (written by
// hand, or by a tool that knows nothing of versions) must not stop sweeps:
// it is skipped and reported by the ledger, the other sources are
// reconciled, and the next write of the source replaces it.
func TestSweepWithUndecodableSourceItem(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	file := func(port string) []byte {
		return []byte("rules:\n  r:\n    securityGroup: {tags: {Name: web}}\n    type: ingress\n    protocol: tcp\n    fromPort: " + port +
			"\n    toPort: " + port + "\n    cidrBlocks: [10.9.0.0/16]\n")
	}
	w.put("rules/good.yaml", file("8443"))
	w.put("rules/broken.yaml", file("9443"))
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	ddb := dynamodb.NewFromConfig(w.cfg)
	for _, key := range []string{"rules/broken.yaml", "rules/gone.yaml"} {
		if _, err := ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("ledger"), Item: map[string]types.AttributeValue{
			"pk": s("t#home"), "sk": s("source#" + key), "kind": s("file"), "status": s("applied"),
			"perms": &types.AttributeValueMemberB{Value: []byte("not gzip")},
		}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		res, err := w.eng.Reconcile(ctx, reconcile.Request{All: true, Reason: "schedule"})
		if err != nil {
			t.Fatalf("sweep %d with an undecodable source item: %v", i+1, err)
		}
		status := map[string]reconcile.Status{}
		for _, r := range res.Sources {
			status[r.Key] = r.Status
		}
		if status["rules/good.yaml"] != reconcile.StatusApplied || status["rules/broken.yaml"] != reconcile.StatusApplied {
			t.Fatalf("sweep %d: sources %+v; want good.yaml and broken.yaml applied", i+1, res.Sources)
		}
	}
	got := strings.Join(w.rules(), "\n")
	for _, port := range []string{"8443", "9443"} {
		if k := w.groups["web"] + "|ingress|tcp|" + port + "|" + port + "|cidr4:10.9.0.0/16"; !strings.Contains(got, k) {
			t.Errorf("%s not applied; rules:\n%s", k, got)
		}
	}
}
