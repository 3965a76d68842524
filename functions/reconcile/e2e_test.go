package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/dev/motoproc"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
	"github.com/sgrules/sgrules/internal/testutil/rie"
)

// s3Event renders an S3 notification as S3 sends it: the key URL-encoded
// (a space becomes '+').
func s3Event(bucket, eventName, key, sequencer string) []byte {
	ev := map[string]any{"Records": []any{map[string]any{
		"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": motoproc.Region, "eventName": eventName,
		"s3": map[string]any{
			"s3SchemaVersion": "1.0",
			"bucket":          map[string]any{"name": bucket, "arn": "arn:aws:s3:::" + bucket},
			"object":          map[string]any{"key": url.QueryEscape(key), "sequencer": sequencer},
		},
	}}}
	b, _ := json.Marshal(ev)
	return b
}

const ruleV1 = `rules:
  http:
    securityGroup: {tags: {Name: web}}
    type: ingress
    protocol: tcp
    fromPort: 80
    toPort: 80
    cidrBlocks: ["10.0.0.0/16", "10.1.0.0/16"]
    description: HTTP from the VPCs
`

// The real bootstrap under the emulator, against moto: a Put event for a
// key with a space, a duplicate of it, an older event arriving after a
// newer upload, and a Delete each end in the state of the bucket.
func TestEventsEndInTheStateOfTheBucket(t *testing.T) {
	srv := motoserver.Start(t)
	cfg := srv.Config(t)
	ctx := context.Background()
	vpc := motoserver.CreateVPC(t, cfg)
	web := motoserver.CreateGroup(t, cfg, vpc, "web-sg", map[string]string{"Name": "web"})
	const bucket, table, key = "rules-bucket", "ledger", "rules/team a/web.yaml"
	motoserver.CreateBucket(t, cfg, bucket, true)
	motoserver.CreateTable(t, cfg, table)
	s3c := s3.NewFromConfig(cfg, awsconfig.S3Options)
	ec2c := ec2.NewFromConfig(cfg)
	put := func(body string) {
		t.Helper()
		if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader([]byte(body))}); err != nil {
			t.Fatal(err)
		}
	}
	rulesOf := func() []string {
		t.Helper()
		rs, err := ec2sg.New(ec2c).DescribeRules(ctx, []string{web})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rs {
			if r.Key.Direction == "ingress" {
				out = append(out, fmt.Sprintf("%s %s %s", r.Key.String(), r.RuleID, r.Description))
			}
		}
		sort.Strings(out)
		return out
	}
	// An unmanaged rule that must survive everything.
	if _, err := ec2c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(web), IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), CidrIp: aws.String("192.0.2.0/24"),
	}); err != nil {
		t.Fatal(err)
	}

	env := append(srv.Env(), "STATE_TABLE="+table, "RULES_BUCKET="+bucket, "RULES_PREFIX=rules/", "MAX_REVOKE=50", "AWS_LAMBDA_LOG_FORMAT=JSON")
	fn := rie.Start(t, rie.Build(t, "./functions/reconcile"), env)
	invoke := func(payload []byte) string {
		t.Helper()
		out := string(fn.Invoke(t, payload))
		if strings.Contains(out, "errorMessage") {
			t.Fatalf("invocation failed: %s\nlogs:\n%s", out, fn.Logs())
		}
		return out
	}

	put(ruleV1)
	created := s3Event(bucket, "ObjectCreated:Put", key, "0000000000000002")
	resp := invoke(created)
	after1 := rulesOf()
	if len(after1) != 3 || !strings.Contains(strings.Join(after1, "\n"), "10.1.0.0/16") || !strings.Contains(strings.Join(after1, "\n"), "192.0.2.0/24") {
		t.Fatalf("after put: %v", after1)
	}
	// The response is the handler's camelCase document (docs/cli.md).
	var doc struct {
		Kind    string `json:"kind"`
		Request struct {
			Keys []string `json:"keys"`
		} `json:"request"`
		Sources []struct {
			Key     string   `json:"key"`
			Status  string   `json:"status"`
			RuleIDs []string `json:"ruleIds"`
		} `json:"sources"`
	}
	if err := json.Unmarshal([]byte(resp), &doc); err != nil {
		t.Fatalf("response %s: %v", resp, err)
	}
	if doc.Kind != "objects" || len(doc.Request.Keys) != 1 || len(doc.Sources) != 1 || doc.Sources[0].Key != key ||
		doc.Sources[0].Status != "applied" || len(doc.Sources[0].RuleIDs) == 0 || !strings.Contains(resp, `"ruleIds":[`) {
		t.Errorf("response = %s", resp)
	}
	for _, id := range doc.Sources[0].RuleIDs {
		if !strings.Contains(strings.Join(after1, "\n"), " "+id+" ") {
			t.Errorf("response names rule %s, not among %v", id, after1)
		}
	}

	// A duplicate delivery changes nothing (same rule ids).
	invoke(created)
	if got := rulesOf(); strings.Join(got, "\n") != strings.Join(after1, "\n") {
		t.Fatalf("duplicate event changed rules:\n%v\nwant:\n%v", got, after1)
	}

	// A newer upload whose event is lost, then an older event arrives: the
	// function reads the bucket as it is now, so the newer content wins.
	put(strings.Replace(ruleV1, `"10.1.0.0/16"`, `"10.2.0.0/16"`, 1))
	invoke(s3Event(bucket, "ObjectCreated:Put", key, "0000000000000001"))
	got := strings.Join(rulesOf(), "\n")
	if !strings.Contains(got, "10.2.0.0/16") || strings.Contains(got, "10.1.0.0/16") || !strings.Contains(got, "10.0.0.0/16") {
		t.Fatalf("after older event:\n%s", got)
	}

	// Delete: the file's rules go, the unmanaged rule stays.
	if _, err := s3c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		t.Fatal(err)
	}
	invoke(s3Event(bucket, "ObjectRemoved:Delete", key, "0000000000000003"))
	final := rulesOf()
	if len(final) != 1 || !strings.Contains(final[0], "192.0.2.0/24") {
		t.Fatalf("after delete: %v", final)
	}
	if !strings.Contains(fn.Logs(), `"msg":"plan"`) && !strings.Contains(fn.Logs(), `"message":"plan"`) {
		t.Errorf("no plan log line:\n%s", fn.Logs())
	}
}
