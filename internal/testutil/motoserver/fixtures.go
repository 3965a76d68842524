package motoserver

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/sgrules/sgrules/internal/ddbledger"
)

// CreateVPC creates a VPC (10.0.0.0/16) and returns its id.
func CreateVPC(tb testing.TB, cfg aws.Config) string {
	tb.Helper()
	out, err := ec2.NewFromConfig(cfg).CreateVpc(context.Background(), &ec2.CreateVpcInput{
		CidrBlock: aws.String("10.0.0.0/16"),
	})
	if err != nil {
		tb.Fatalf("create vpc: %v", err)
	}
	return aws.ToString(out.Vpc.VpcId)
}

// CreateGroup creates a security group in vpcID, tagged with tags, and
// returns its id.
func CreateGroup(tb testing.TB, cfg aws.Config, vpcID, name string, tags map[string]string) string {
	tb.Helper()
	in := &ec2.CreateSecurityGroupInput{
		GroupName:   aws.String(name),
		Description: aws.String("test group " + name),
		VpcId:       aws.String(vpcID),
	}
	if len(tags) > 0 {
		spec := ec2types.TagSpecification{ResourceType: ec2types.ResourceTypeSecurityGroup}
		for k, v := range tags {
			spec.Tags = append(spec.Tags, ec2types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		in.TagSpecifications = []ec2types.TagSpecification{spec}
	}
	c := ec2.NewFromConfig(cfg)
	out, err := c.CreateSecurityGroup(context.Background(), in)
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "InvalidGroup.Duplicate" {
		// The SDK retried a request moto had already served (moto drops
		// kept-alive connections now and then): find the group it created.
		found, derr := c.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
			{Name: aws.String("group-name"), Values: []string{name}},
			{Name: aws.String("vpc-id"), Values: []string{vpcID}},
		}})
		if derr == nil && len(found.SecurityGroups) == 1 {
			return aws.ToString(found.SecurityGroups[0].GroupId)
		}
	}
	if err != nil {
		tb.Fatalf("create security group %s: %v", name, err)
	}
	return aws.ToString(out.GroupId)
}

// CreateBucket creates an S3 bucket, with versioning enabled when
// versioned is true.
func CreateBucket(tb testing.TB, cfg aws.Config, name string, versioned bool) {
	tb.Helper()
	ctx := context.Background()
	c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		tb.Fatalf("create bucket %s: %v", name, err)
	}
	if !versioned {
		return
	}
	_, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
		Bucket:                  aws.String(name),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled},
	})
	if err != nil {
		tb.Fatalf("enable versioning on %s: %v", name, err)
	}
}

// CreateTable creates the ledger table (ddbledger.CreateTable).
func CreateTable(tb testing.TB, cfg aws.Config, name string) {
	tb.Helper()
	if err := ddbledger.CreateTable(context.Background(), dynamodb.NewFromConfig(cfg), name); err != nil {
		tb.Fatal(err)
	}
}
