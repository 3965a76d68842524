package reconcile_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/adapters/s3source"
	"github.com/sgrules/sgrules/internal/reconcile"
)

// sgrules:pause-until is capped (MaxPause, default 24h): a pause within
// the cap holds the group's drift; one further ahead (a year, by mistake
// or to switch drift correction off for good) pauses nothing and is
// reported.
func TestPauseUntilIsCapped(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.put("rules/web.yaml", []byte("rules:\n  r:\n    securityGroup: {tags: {Name: web}}\n    type: ingress\n    protocol: tcp\n    fromPort: 8443\n    toPort: 8443\n    cidrBlocks: [10.9.0.0/16]\n"))
	w.reconcile(reconcile.Request{All: true})
	web := w.groups["web"]
	revoke := func() {
		t.Helper()
		if _, err := w.ec2.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(web),
			IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(8443), ToPort: aws.Int32(8443),
				IpRanges: []ec2types.IpRange{{CidrIp: aws.String("10.9.0.0/16")}}}}}); err != nil {
			t.Fatal(err)
		}
	}
	tag := func(d time.Duration) {
		t.Helper()
		if _, err := w.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{web},
			Tags: []ec2types.Tag{{Key: aws.String(reconcile.TagPause), Value: aws.String(time.Now().Add(d).UTC().Format(time.RFC3339))}}}); err != nil {
			t.Fatal(err)
		}
	}
	eng, err := reconcile.New(reconcile.Config{Source: s3source.New(w.s3, w.bucket, "rules/"), Groups: ec2sg.New(w.ec2),
		Ledger: ddbledger.New(dynamodb.NewFromConfig(w.cfg), "ledger"), LedgerID: "ledger"})
	if err != nil {
		t.Fatal(err)
	}
	has := func() bool { return strings.Contains(strings.Join(w.rules(), "\n"), web+"|ingress|tcp|8443|8443|") }

	// Within the cap: paused, drift reported, not reverted.
	tag(time.Hour)
	revoke()
	res, err := eng.Reconcile(ctx, reconcile.Request{All: true, Reason: "schedule"})
	if err != nil {
		t.Fatal(err)
	}
	if has() || len(res.Drift.Paused) != 1 || len(res.Drift.PauseTooLong) != 0 {
		t.Fatalf("pause of an hour: rule back %v, paused %v, too long %v", has(), res.Drift.Paused, res.Drift.PauseTooLong)
	}
	// A year ahead: not paused, reverted, reported.
	tag(365 * 24 * time.Hour)
	res, err = eng.Reconcile(ctx, reconcile.Request{All: true, Reason: "schedule"})
	if err != nil {
		t.Fatal(err)
	}
	if !has() || len(res.Drift.Paused) != 0 || strings.Join(res.Drift.PauseTooLong, ",") != web {
		t.Fatalf("pause of a year: rule back %v, paused %v, too long %v; want reverted and reported", has(), res.Drift.Paused, res.Drift.PauseTooLong)
	}
}
