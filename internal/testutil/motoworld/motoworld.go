package motoworld

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
)

// Spec says what to create.
type Spec struct {
	// Groups are Name tags: each gets a group called NAME-sg, tagged
	// Name=NAME, in one VPC (10.0.0.0/16).
	Groups []string
	// Bucket, when set, is created, with versioning when Versioned.
	Bucket    string
	Versioned bool
	// Table, when set, is created as the ledger table
	// (ddbledger.CreateTable).
	Table string
}

// World is the state Build created, with clients on the config it was
// given.
type World struct {
	Config aws.Config
	VPC    string
	// IDs are the group ids in Spec.Groups order; Groups maps Name tag →
	// id.
	IDs    []string
	Groups map[string]string
	EC2    *ec2.Client
	S3     *s3.Client // path-style (awsconfig.S3Options)
	DDB    *dynamodb.Client
}

// Build creates spec's resources with clients on cfg.
func Build(ctx context.Context, cfg aws.Config, spec Spec) (*World, error) {
	w := &World{
		Config: cfg,
		Groups: make(map[string]string, len(spec.Groups)),
		EC2:    ec2.NewFromConfig(cfg),
		S3:     s3.NewFromConfig(cfg, awsconfig.S3Options),
		DDB:    dynamodb.NewFromConfig(cfg),
	}
	var err error
	if w.VPC, err = CreateVPC(ctx, w.EC2); err != nil {
		return nil, err
	}
	for _, name := range spec.Groups {
		id, err := CreateGroup(ctx, w.EC2, w.VPC, name+"-sg", map[string]string{"Name": name})
		if err != nil {
			return nil, err
		}
		w.IDs = append(w.IDs, id)
		w.Groups[name] = id
	}
	if spec.Bucket != "" {
		if err := CreateBucket(ctx, w.S3, spec.Bucket, spec.Versioned); err != nil {
			return nil, err
		}
	}
	if spec.Table != "" {
		if err := ddbledger.CreateTable(ctx, w.DDB, spec.Table); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// CreateVPC creates a VPC (10.0.0.0/16) and returns its id.
func CreateVPC(ctx context.Context, c *ec2.Client) (string, error) {
	out, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
	if err != nil {
		return "", fmt.Errorf("create vpc: %w", err)
	}
	return aws.ToString(out.Vpc.VpcId), nil
}

// CreateGroup creates a security group called name in vpcID, tagged with
// tags, and returns its id.
func CreateGroup(ctx context.Context, c *ec2.Client, vpcID, name string, tags map[string]string) (string, error) {
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
	out, err := c.CreateSecurityGroup(ctx, in)
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "InvalidGroup.Duplicate" {
		// The SDK retried a request moto had already served (moto drops
		// kept-alive connections now and then): find the group it created.
		found, derr := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
			{Name: aws.String("group-name"), Values: []string{name}},
			{Name: aws.String("vpc-id"), Values: []string{vpcID}},
		}})
		if derr == nil && len(found.SecurityGroups) == 1 {
			return aws.ToString(found.SecurityGroups[0].GroupId), nil
		}
	}
	if err != nil {
		return "", fmt.Errorf("create security group %s: %w", name, err)
	}
	return aws.ToString(out.GroupId), nil
}

// CreateBucket creates an S3 bucket, with versioning enabled when
// versioned is true.
func CreateBucket(ctx context.Context, c *s3.Client, name string, versioned bool) error {
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	if !versioned {
		return nil
	}
	_, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
		Bucket:                  aws.String(name),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled},
	})
	if err != nil {
		return fmt.Errorf("enable versioning on %s: %w", name, err)
	}
	return nil
}
