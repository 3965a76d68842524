package fleetrt

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/config"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
)

func TestMain(m *testing.M) { motoserver.Main(m) }

// The engine takes the lease holder from the request when it names one:
// a group leased by "lambda:req-1" is changed by a request of that holder
// (an engine holder would wait for the lease and fail).
func TestEngineUsesRequestHolder(t *testing.T) {
	srv := motoserver.Shared(t)
	srv.Reset(t)
	cfg := srv.Config(t)
	motoserver.CreateTable(t, cfg, "ledger")
	motoserver.CreateBucket(t, cfg, "rules", false)
	vpc := motoserver.CreateVPC(t, cfg)
	web := motoserver.CreateGroup(t, cfg, vpc, "web", nil)
	ctx := context.Background()
	if _, err := s3.NewFromConfig(cfg, awsconfig.S3Options).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("rules"), Key: aws.String("rules/web.yaml"),
		Body: strings.NewReader("rules:\n  ssh:\n    securityGroup: " + web + "\n    type: ingress\n    protocol: tcp\n    fromPort: 22\n    toPort: 22\n    cidrBlocks: [10.0.0.0/8]\n")}); err != nil {
		t.Fatal(err)
	}
	ledger := ddbledger.New(dynamodb.NewFromConfig(cfg), "ledger")
	unlock, err := ledger.Lock(ctx, []string{web}, "lambda:req-1", ddbledger.MaxLeaseTTL, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock(ctx)
	eng, _, err := NewEngine(config.Config{Table: "ledger", Bucket: "rules", Prefix: "rules/", MaxRevoke: 50}, cfg, EngineOptions{Holder: "someone-else"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	res, err := eng.Reconcile(ctx, reconcile.Request{All: true, Holder: "lambda:req-1", Reason: "test"})
	if err != nil {
		t.Fatalf("Reconcile under the request's own lease: %v", err)
	}
	if !res.Executed || len(res.Plan.Actions) != 1 {
		t.Errorf("result = executed %v, actions %+v", res.Executed, res.Plan.Actions)
	}
}
