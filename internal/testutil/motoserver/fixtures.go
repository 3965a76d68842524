package motoserver

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/testutil/motoworld"
)

// World resets the server and builds spec's resources with clients on cfg
// (usually s.Config(tb), perhaps with another retryer), failing tb on
// error.
func (s *Server) World(tb testing.TB, cfg aws.Config, spec motoworld.Spec) *motoworld.World {
	tb.Helper()
	s.Reset(tb)
	w, err := motoworld.Build(context.Background(), cfg, spec)
	if err != nil {
		tb.Fatal(err)
	}
	return w
}

// CreateVPC creates a VPC (10.0.0.0/16) and returns its id.
func CreateVPC(tb testing.TB, cfg aws.Config) string {
	tb.Helper()
	id, err := motoworld.CreateVPC(context.Background(), ec2.NewFromConfig(cfg))
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

// CreateGroup creates a security group in vpcID, tagged with tags, and
// returns its id.
func CreateGroup(tb testing.TB, cfg aws.Config, vpcID, name string, tags map[string]string) string {
	tb.Helper()
	id, err := motoworld.CreateGroup(context.Background(), ec2.NewFromConfig(cfg), vpcID, name, tags)
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

// CreateBucket creates an S3 bucket, with versioning enabled when
// versioned is true.
func CreateBucket(tb testing.TB, cfg aws.Config, name string, versioned bool) {
	tb.Helper()
	if err := motoworld.CreateBucket(context.Background(), s3.NewFromConfig(cfg, awsconfig.S3Options), name, versioned); err != nil {
		tb.Fatal(err)
	}
}

// CreateTable creates the ledger table (ddbledger.CreateTable).
func CreateTable(tb testing.TB, cfg aws.Config, name string) {
	tb.Helper()
	if err := ddbledger.CreateTable(context.Background(), dynamodb.NewFromConfig(cfg), name); err != nil {
		tb.Fatal(err)
	}
}
