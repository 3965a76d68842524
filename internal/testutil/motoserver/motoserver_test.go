package motoserver_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/sgrules/sgrules/internal/testutil/motoserver"
)

func TestMain(m *testing.M) { motoserver.Main(m) }

func TestSharedResetAndFixtures(t *testing.T) {
	srv := motoserver.Shared(t)
	if srv2 := motoserver.Shared(t); srv2.URL != srv.URL {
		t.Fatalf("Shared started a second server: %s vs %s", srv2.URL, srv.URL)
	}
	srv.Reset(t)
	cfg := srv.Config(t)
	vpc := motoserver.CreateVPC(t, cfg)
	sg := motoserver.CreateGroup(t, cfg, vpc, "web", map[string]string{"app": "web"})
	motoserver.CreateBucket(t, cfg, "bucket", true)
	motoserver.CreateTable(t, cfg, "ledger")

	c := ec2.NewFromConfig(cfg)
	out, err := c.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{GroupIds: []string{sg}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.SecurityGroups) != 1 || aws.ToString(out.SecurityGroups[0].VpcId) != vpc || len(out.SecurityGroups[0].Tags) != 1 {
		t.Fatalf("group = %+v", out.SecurityGroups)
	}

	srv.Reset(t)
	if _, err := c.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{GroupIds: []string{sg}}); err == nil {
		t.Fatal("group survived Reset")
	}
}
