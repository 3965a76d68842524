package main

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
	"github.com/sgrules/sgrules/internal/testutil/rie"
	"github.com/sgrules/sgrules/pkg/rules"
)

const usedRules = `rules:
  pg:
    securityGroup: {tags: {Name: db}}
    type: ingress
    protocol: tcp
    fromPort: 5432
    toPort: 5432
    cidrBlocks: [10.0.1.0/24]
  ssh:
    securityGroup: {tags: {Name: db}}
    type: ingress
    protocol: tcp
    fromPort: 22
    toPort: 22
    cidrBlocks: [10.0.2.0/24]
`

// The real bootstrap under the emulator, against moto, with FLOW_LOGS_URL
// (flow logs are ingested): a file that drops a rule which carried traffic
// three hours ago (the ledger's counters, written by the same adapter the
// flow-log function writes them with, say so) keeps it and revokes the
// unused one; listing it in allowUsedRemoval lets it go.
func TestUsedRuleRefusedByTheFunction(t *testing.T) {
	srv := motoserver.Start(t)
	cfg := srv.Config(t)
	ctx := context.Background()
	vpc := motoserver.CreateVPC(t, cfg)
	db := motoserver.CreateGroup(t, cfg, vpc, "db-sg", map[string]string{"Name": "db"})
	const bucket, table, key = "rules-bucket", "ledger", "rules/db.yaml"
	motoserver.CreateBucket(t, cfg, bucket, true)
	motoserver.CreateTable(t, cfg, table)
	s3c := s3.NewFromConfig(cfg, awsconfig.S3Options)
	ec2c := ec2.NewFromConfig(cfg)
	live := func() []reconcile.ActualRule {
		t.Helper()
		rs, err := ec2sg.New(ec2c).DescribeRules(ctx, []string{db})
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	ports := func() string {
		t.Helper()
		var out []string
		for _, r := range live() {
			if r.Key.Direction == "ingress" {
				out = append(out, r.Key.Peer.Value+":"+strconv.Itoa(int(r.Key.FromPort)))
			}
		}
		sort.Strings(out)
		return strings.Join(out, " ")
	}
	env := append(srv.Env(), "STATE_TABLE="+table, "RULES_BUCKET="+bucket, "RULES_PREFIX=rules/", "AWS_LAMBDA_LOG_FORMAT=JSON",
		"FLOW_LOGS_URL=s3://flow-logs/vpc/", "USED_WITHIN=2d")
	fn := rie.Start(t, rie.Build(t, "./functions/reconcile"), env)
	seq := 0
	upload := func(body string) string {
		t.Helper()
		if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader([]byte(body))}); err != nil {
			t.Fatal(err)
		}
		seq++
		out := string(fn.Invoke(t, s3Event(bucket, "ObjectCreated:Put", key, fmt.Sprintf("%016d", seq))))
		if strings.Contains(out, "errorMessage") {
			t.Fatalf("invocation failed: %s\nlogs:\n%s", out, fn.Logs())
		}
		return out
	}

	upload(usedRules)
	if got := ports(); got != "10.0.1.0/24:5432 10.0.2.0/24:22" {
		t.Fatalf("after the first upload: %s", got)
	}
	// The flow-log function counted a connection from 10.0.1.7 to pg
	// three hours ago; ssh's group has counters too (known: no traffic).
	last := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	var counts []ddbledger.RuleCounter
	for _, r := range live() {
		if r.Key.Direction == "ingress" && r.Key.FromPort == 5432 {
			counts = append(counts, ddbledger.RuleCounter{Key: r.Key, RuleID: r.RuleID, Flows: 1, Bytes: 840, First: last, Last: last,
				LastPeer: netip.MustParseAddr("10.0.1.7")})
		}
	}
	led := ddbledger.New(dynamodb.NewFromConfig(cfg), table)
	if _, err := led.CountersFor(rules.Target{}).Add(ctx, ddbledger.ObjectID{Bucket: "flow-logs", Key: "vpc/a.log.gz", ETag: "1"}, last, counts); err != nil || len(counts) != 1 {
		t.Fatalf("counters %v: %v", counts, err)
	}
	upload("rules: {}\n")
	if got := ports(); got != "10.0.1.0/24:5432" {
		t.Fatalf("the used rule must stay and the unused one go: %s\nlogs:\n%s", got, fn.Logs())
	}
	if logs := fn.Logs(); !strings.Contains(logs, "removals of rules that carried traffic refused") || !strings.Contains(logs, "rules/db.yaml rule pg") ||
		!strings.Contains(logs, "from 10.0.1.7") {
		t.Errorf("the refusal is not logged with the rule, file and peer:\n%s", logs)
	}
	upload("allowUsedRemoval: [pg]\nrules: {}\n")
	if got := ports(); got != "" {
		t.Fatalf("acknowledged in the file, the used rule must go: %s\nlogs:\n%s", got, fn.Logs())
	}
}
