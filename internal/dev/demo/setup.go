package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Names of the demo's resources.
const (
	Bucket = "sgrules-demo"
	Prefix = "rules/"
	// PolicyKey is where the functions read the guardrail policy (the
	// default POLICY_KEY).
	PolicyKey = "policy/sgrules.yaml"
	Queue     = "sgrules-demo-rule-events"
	Table     = "sgrules-demo-ledger"
	Region    = "us-east-1"
	// nameTag is the tag the examples reference groups by.
	nameTag = "Name"
)

// clients are the SDK clients of the demo, all on the emulator: the home
// target's, or a second target's (with the hub's ledger).
type clients struct {
	ec2 *ec2.Client
	s3  *s3.Client
	sqs *sqs.Client
	ddb *dynamodb.Client
	// sched and sns are the hub's only (expiry schedules, alerts).
	sched *scheduler.Client
	sns   *sns.Client
	// scope is the target whose ledger records snapshot reads (zero: the
	// home target's); account is the account of ec2's credentials when
	// not the hub's.
	scope   rules.Target
	account string
}

func newClients(endpoint string) clients {
	return newClientsOn(clientConfig(endpoint, Region, credentials.NewStaticCredentialsProvider("test", "test", "")))
}

func clientConfig(endpoint, region string, creds aws.CredentialsProvider) aws.Config {
	return aws.Config{
		Region:       region,
		Credentials:  creds,
		BaseEndpoint: aws.String(endpoint),
		Retryer:      awsconfig.NewRetryer,
	}
}

func newClientsOn(cfg aws.Config) clients {
	return clients{
		ec2:   ec2.NewFromConfig(cfg),
		s3:    s3.NewFromConfig(cfg, awsconfig.S3Options),
		sqs:   sqs.NewFromConfig(cfg),
		ddb:   dynamodb.NewFromConfig(cfg),
		sched: scheduler.NewFromConfig(cfg),
		sns:   sns.NewFromConfig(cfg),
	}
}

// example is one rule file of the examples directory.
type example struct {
	Name string // base name, "web.yaml"
	Body []byte
	File *rules.File
}

// Key is the object key the file is uploaded to.
func (e example) Key() string { return Prefix + e.Name }

// loadExamples reads the rule files directly in dir (not subdirectories).
// Files that reference a group by literal id are returned in skipped: such a
// group exists only in the account the file was written for.
func loadExamples(dir string) (files []example, skipped []string, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("read examples: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() || !rules.IsRuleFile(e.Name()) {
			continue
		}
		body, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, nil, fmt.Errorf("read examples: %w", err)
		}
		f, diags := rules.Parse(e.Name(), body)
		if diags.HasErrors() {
			return nil, nil, fmt.Errorf("example %s is invalid: %w", e.Name(), diags.Err())
		}
		if referencesID(f) {
			skipped = append(skipped, e.Name())
			continue
		}
		files = append(files, example{Name: e.Name(), Body: body, File: f})
	}
	if len(files) == 0 {
		return nil, nil, fmt.Errorf("no rule files in %s", dir)
	}
	return files, skipped, nil
}

func referencesID(f *rules.File) bool {
	for _, r := range f.Rules {
		if r.SecurityGroup.IsID() || slices.ContainsFunc(r.SourceSecurityGroups, rules.GroupRef.IsID) {
			return true
		}
	}
	return slices.ContainsFunc(f.ExclusiveGroups, rules.GroupRef.IsID)
}

// groupNames returns the Name tags the files reference, sorted. A file
// referencing groups by anything else than their Name tag cannot be set up
// by the demo.
func groupNames(files []example) ([]string, error) {
	seen := map[string]bool{}
	for _, e := range files {
		for _, ref := range e.File.Refs() {
			name, ok := ref.Tags[nameTag]
			if !ok || len(ref.Tags) != 1 {
				return nil, fmt.Errorf("example %s references group %s: the demo creates groups by their Name tag only", e.Name, ref)
			}
			seen[name] = true
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// createGroups creates a VPC and one group per name, tagged Name=name and
// called NAME-sg. It returns the VPC id and the group ids by name.
func createGroups(ctx context.Context, c clients, names []string) (string, map[string]string, error) {
	vpc, err := c.ec2.CreateVpc(ctx, &ec2.CreateVpcInput{
		CidrBlock: aws.String("10.0.0.0/16"),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeVpc,
			Tags: []ec2types.Tag{{Key: aws.String(nameTag), Value: aws.String("sgrules-demo")}}}},
	})
	if err != nil {
		return "", nil, fmt.Errorf("create vpc: %w", err)
	}
	vpcID := aws.ToString(vpc.Vpc.VpcId)
	ids := make(map[string]string, len(names))
	for _, name := range names {
		id, err := createGroup(ctx, c.ec2, vpcID, name)
		if err != nil {
			return "", nil, err
		}
		ids[name] = id
	}
	return vpcID, ids, nil
}

func createGroup(ctx context.Context, c *ec2.Client, vpcID, name string) (string, error) {
	groupName := name + "-sg"
	out, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName:   aws.String(groupName),
		Description: aws.String("sgrules demo: " + name),
		VpcId:       aws.String(vpcID),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSecurityGroup,
			Tags: []ec2types.Tag{{Key: aws.String(nameTag), Value: aws.String(name)}}}},
	})
	if errorCode(err) == "InvalidGroup.Duplicate" {
		// The SDK retried a create the emulator had already served.
		found, derr := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
			{Name: aws.String("group-name"), Values: []string{groupName}},
			{Name: aws.String("vpc-id"), Values: []string{vpcID}},
		}})
		if derr == nil && len(found.SecurityGroups) == 1 {
			return aws.ToString(found.SecurityGroups[0].GroupId), nil
		}
	}
	if err != nil {
		return "", fmt.Errorf("create security group %s: %w", groupName, err)
	}
	return aws.ToString(out.GroupId), nil
}

// createQueue creates the queue S3 notifies and returns its URL and ARN.
func createQueue(ctx context.Context, c clients) (url, arn string, err error) {
	out, err := c.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName:  aws.String(Queue),
		Attributes: map[string]string{string(sqstypes.QueueAttributeNameVisibilityTimeout): "30"},
	})
	if err != nil {
		return "", "", fmt.Errorf("create queue %s: %w", Queue, err)
	}
	url = aws.ToString(out.QueueUrl)
	attrs, err := c.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", "", fmt.Errorf("get attributes of queue %s: %w", Queue, err)
	}
	return url, attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)], nil
}

// createBucket creates the versioned rules bucket and has it notify
// queueARN of objects created and removed under Prefix.
func createBucket(ctx context.Context, c clients, queueARN string) error {
	if _, err := c.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(Bucket)}); err != nil {
		return fmt.Errorf("create bucket %s: %w", Bucket, err)
	}
	if _, err := c.s3.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
		Bucket:                  aws.String(Bucket),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled},
	}); err != nil {
		return fmt.Errorf("enable versioning on %s: %w", Bucket, err)
	}
	_, err := c.s3.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{
		Bucket: aws.String(Bucket),
		NotificationConfiguration: &s3types.NotificationConfiguration{
			QueueConfigurations: []s3types.QueueConfiguration{{
				Id:       aws.String("sgrules-demo-rules"),
				QueueArn: aws.String(queueARN),
				Events:   []s3types.Event{"s3:ObjectCreated:*", "s3:ObjectRemoved:*"},
				Filter: &s3types.NotificationConfigurationFilter{Key: &s3types.S3KeyFilter{
					FilterRules: []s3types.FilterRule{{Name: s3types.FilterRuleNamePrefix, Value: aws.String(Prefix)}},
				}},
			}},
		},
	})
	if err != nil {
		return fmt.Errorf("configure notifications of %s: %w", Bucket, err)
	}
	return nil
}

func createTable(ctx context.Context, c clients) error {
	return ddbledger.CreateTable(ctx, c.ddb, Table)
}

// putObject puts one object into the demo bucket.
func putObject(ctx context.Context, c clients, key string, body []byte) error {
	if _, err := c.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(Bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
		return fmt.Errorf("upload s3://%s/%s: %w", Bucket, key, err)
	}
	return nil
}

// upload puts every file under Prefix.
func upload(ctx context.Context, c clients, files []example) error {
	for _, e := range files {
		ct := "application/yaml"
		if strings.EqualFold(filepath.Ext(e.Name), ".json") {
			ct = "application/json"
		}
		if _, err := c.s3.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(Bucket), Key: aws.String(e.Key()), Body: bytes.NewReader(e.Body), ContentType: aws.String(ct),
		}); err != nil {
			return fmt.Errorf("upload s3://%s/%s: %w", Bucket, e.Key(), err)
		}
	}
	return nil
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
