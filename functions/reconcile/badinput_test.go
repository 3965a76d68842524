package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

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

// fakeSecret is the secret access key of the Lambda in these tests:
// distinctive, so that a log line carrying it can be found.
const fakeSecret = "sgrulesFAKEsecretKEY0b1c2d3e4f5a6b7c8d9e0XyZ"

// Markers in the content of good rule files: none may reach the logs.
const (
	descMarker    = "GOODDESC"
	commentMarker = "CONTENTMARKER-comment"
	bodyMarker    = "SQSBODYMARKER"
)

type badCase struct {
	name string // file name under rules/
	body []byte
	// golden diagnostics (with the file name as in Parse), when known.
	golden []string
}

// badCases are the parser's bad files (pkg/rules/testdata/bad, with their
// golden diagnostics) plus cases only the full path can show: an object
// over the size limit, references to groups that do not exist, JSON in a
// .yaml file, binary content.
func badCases(t *testing.T) []badCase {
	t.Helper()
	dir := "../../pkg/rules/testdata/bad"
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []badCase
	for _, e := range entries {
		if !rules.IsRuleFile(e.Name()) {
			continue
		}
		body, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		g, err := os.ReadFile(filepath.Join(dir, e.Name()+".golden"))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, badCase{name: e.Name(), body: body, golden: strings.Split(strings.TrimSpace(string(g)), "\n")})
	}
	rule := func(extra string) []byte {
		return []byte("rules:\n  r1:\n    securityGroup: {tags: {Name: web}}\n    type: ingress\n    protocol: tcp\n    fromPort: 22\n    toPort: 22\n" + extra)
	}
	out = append(out,
		badCase{name: "oversize.yaml", body: append(rule("    cidrBlocks: [10.9.0.0/16]\n"), bytes.Repeat([]byte("# padding\n"), rules.MaxFileSize/10+1)...)},
		badCase{name: "missing-group-tag.yaml", body: []byte("rules:\n  r1:\n    securityGroup: {tags: {Name: nosuch}}\n    type: ingress\n    protocol: tcp\n    fromPort: 22\n    toPort: 22\n    cidrBlocks: [10.9.0.0/16]\n")},
		badCase{name: "missing-group-id.yaml", body: []byte("rules:\n  r1:\n    securityGroup: sg-0123456789abcdef0\n    type: ingress\n    protocol: tcp\n    fromPort: 22\n    toPort: 22\n    cidrBlocks: [10.9.0.0/16]\n")},
		badCase{name: "missing-peer-group.yaml", body: rule("    sourceSecurityGroups: [{tags: {Name: nosuch}}]\n")},
		badCase{name: "json-named-yaml.yaml", body: []byte(`{"rules": {"r1": {"securityGroup": {"tags": {"Name": "web"}}, "type": "ingress", "protocol": "tcp", "fromPort": "ssh", "toPort": 22, "cidrBlocks": ["10.9.0.0/16"]}}}`)},
		badCase{name: "binary.yaml", body: []byte{0x00, 0x01, 0xff, 0xfe, 'r', 'u', 'l', 'e', 's', ':', 0x00}},
		badCase{name: "yaml-named-json.json", body: rule("    cidrBlocks: [10.9.0.0/16]\n")},
	)
	return out
}

// goodVersion is the valid file first applied under a bad case's key: one
// permission of its own (port 1000+i), a description and a comment that
// must never be logged.
func goodVersion(i int, name string) []byte {
	g := goodGroups[i%len(goodGroups)]
	if strings.HasSuffix(name, ".json") {
		return fmt.Appendf(nil, `{"rules": {"good%d": {"securityGroup": {"tags": {"Name": "%s"}}, "type": "ingress", "protocol": "tcp", "fromPort": %d, "toPort": %d, "cidrBlocks": ["10.%d.0.0/16"], "description": "%s %d"}}}`,
			i, g, 1000+i, 1000+i, i, descMarker, i)
	}
	return fmt.Appendf(nil, "# %s %d\nrules:\n  good%d:\n    securityGroup: {tags: {Name: %s}}\n    type: ingress\n    protocol: tcp\n    fromPort: %d\n    toPort: %d\n    cidrBlocks: [10.%d.0.0/16]\n    description: %s %d\n",
		commentMarker, i, i, g, 1000+i, 1000+i, i, descMarker, i)
}

func badS3Event(bucket string, keys ...string) []byte {
	type rec struct {
		EventSource string `json:"eventSource"`
		EventName   string `json:"eventName"`
		S3          struct {
			Bucket struct {
				Name string `json:"name"`
			} `json:"bucket"`
			Object struct {
				Key string `json:"key"`
			} `json:"object"`
		} `json:"s3"`
	}
	var ev struct {
		Records []rec `json:"Records"`
	}
	for _, k := range keys {
		r := rec{EventSource: "aws:s3", EventName: "ObjectCreated:Put"}
		r.S3.Bucket.Name, r.S3.Object.Key = bucket, k
		ev.Records = append(ev.Records, r)
	}
	b, _ := json.Marshal(ev)
	return b
}

var goodGroups = []string{"web", "app", "cache"}

var located = regexp.MustCompile(`^rules/[^:]+:[0-9]+:[0-9]+: `)

// TestBadInputThroughTheLambda: every bad rule file, uploaded over a good
// version that was applied, and delivered as an S3 event to the real
// bootstrap under the emulator against moto, leaves EC2 exactly as it was
// (the file's previous permissions and every other file's), records the
// file as invalid in the ledger with located diagnostics, and succeeds
// (no retry). The Lambda's logs carry no rule content beyond rule names
// and diagnostics, and never the secret key.
func TestBadInputThroughTheLambda(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	srv := motoserver.Start(t)
	cfg := srv.Config(t)
	ctx := context.Background()
	const bucket, table = "rules-bucket", "ledger"
	vpc := motoserver.CreateVPC(t, cfg)
	// Good versions are spread over three groups (moto allows 60 rules
	// per group and direction).
	var gids []string
	for _, name := range goodGroups {
		gids = append(gids, motoserver.CreateGroup(t, cfg, vpc, name+"-sg", map[string]string{"Name": name}))
	}
	motoserver.CreateBucket(t, cfg, bucket, true)
	motoserver.CreateTable(t, cfg, table)
	s3c := s3.NewFromConfig(cfg, awsconfig.S3Options)
	groups := ec2sg.New(ec2.NewFromConfig(cfg))
	ledger := ddbledger.New(dynamodb.NewFromConfig(cfg), table)
	put := func(key string, body []byte) {
		t.Helper()
		if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	snapshot := func() []string {
		t.Helper()
		rs, err := groups.DescribeRules(ctx, gids)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]string, len(rs))
		for i, r := range rs {
			out[i] = r.RuleID + " " + r.Key.String() + " " + r.Description
		}
		sort.Strings(out)
		return out
	}

	env := slices.DeleteFunc(srv.Env(), func(s string) bool { return strings.HasPrefix(s, "AWS_SECRET_ACCESS_KEY=") })
	env = append(env, "AWS_SECRET_ACCESS_KEY="+fakeSecret, "STATE_TABLE="+table, "RULES_BUCKET="+bucket,
		"RULES_PREFIX=rules/", "MAX_REVOKE=50", "AWS_LAMBDA_LOG_FORMAT=JSON")
	fn := rie.Start(t, rie.Build(t, "./functions/reconcile"), env)
	invoke := func(payload []byte) string {
		t.Helper()
		out := string(fn.Invoke(t, payload))
		if strings.Contains(out, "errorMessage") {
			t.Fatalf("invocation failed (would be retried): %s", out)
		}
		return out
	}

	// A neighbour file that no bad file may disturb, and the good version
	// of every bad case, applied in one event.
	cases := badCases(t)
	if len(cases) < 30 {
		t.Fatalf("only %d bad cases", len(cases))
	}
	keys := []string{"rules/neighbour.yaml"}
	put("rules/neighbour.yaml", []byte("rules:\n  neighbour:\n    securityGroup: {tags: {Name: web}}\n    type: ingress\n    protocol: tcp\n    fromPort: 443\n    toPort: 443\n    cidrBlocks: [0.0.0.0/0]\n    description: "+descMarker+" neighbour\n"))
	for i, c := range cases {
		key := "rules/" + c.name
		put(key, goodVersion(i, c.name))
		keys = append(keys, key)
	}
	invoke(badS3Event(bucket, keys...))
	before := snapshot()
	if len(before) < len(cases)+1 {
		t.Fatalf("good versions not applied: %d rules for %d files", len(before), len(cases)+1)
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := "rules/" + c.name
			put(key, c.body)
			invoke(badS3Event(bucket, key))
			if after := snapshot(); !slices.Equal(after, before) {
				t.Errorf("EC2 changed:\n got %v\nwant %v", after, before)
			}
			rec, ok, err := ledger.GetSource(ctx, key)
			if err != nil || !ok {
				t.Fatalf("ledger record: %v %v", ok, err)
			}
			if rec.Status != reconcile.StatusInvalid || len(rec.Diagnostics) == 0 {
				t.Fatalf("ledger record: status %s, diagnostics %v", rec.Status, rec.Diagnostics)
			}
			for _, d := range rec.Diagnostics {
				if !located.MatchString(d) || !strings.HasPrefix(d, key+":") {
					t.Errorf("diagnostic not located at FILE:LINE:COL: %q", d)
				}
			}
			if c.golden != nil {
				want := make([]string, len(c.golden))
				for i, g := range c.golden {
					want[i] = "rules/" + g
				}
				if !slices.Equal(rec.Diagnostics, want) {
					t.Errorf("diagnostics:\n got %q\nwant %q", rec.Diagnostics, want)
				}
			}
			// What it applied before is still what it owns.
			if len(rec.Permissions) != 1 || !strings.HasPrefix(rec.Permissions[0].Owner.Rule, "good") {
				t.Errorf("recorded permissions: %+v", rec.Permissions)
			}
		})
	}

	// Oversized or undecodable SQS bodies are dropped without being
	// logged; the invocation succeeds (a poison message is not retried).
	big := `{"Records":[{"eventSource":"aws:s3","s3":{"bucket":{"name":"` + bucket + `"},"object":{"key":"rules/` + bodyMarker + strings.Repeat("x", 300<<10) + `.yaml"}}}]}`
	sqs, _ := json.Marshal(map[string]any{"Records": []map[string]any{
		{"eventSource": "aws:sqs", "messageId": "m-big", "body": big},
		{"eventSource": "aws:sqs", "messageId": "m-bad", "body": bodyMarker + ` {not json`},
	}})
	if out := invoke(sqs); !strings.Contains(out, `"batchItemFailures":[]`) {
		t.Errorf("SQS batch with poison messages: %s", out)
	}
	if after := snapshot(); !slices.Equal(after, before) {
		t.Errorf("EC2 changed by poison SQS messages")
	}

	logs := fn.Logs()
	for _, secret := range []string{fakeSecret, descMarker, commentMarker, bodyMarker, "10.7.0.0/16", "0.0.0.0/0"} {
		if strings.Contains(logs, secret) {
			for _, line := range strings.Split(logs, "\n") {
				if strings.Contains(line, secret) {
					t.Errorf("a log line carries rule or event content %q: %.300s", secret, line)
					break
				}
			}
		}
	}
	if !strings.Contains(logs, "invalid rule source") {
		t.Errorf("the logs do not report the invalid sources")
	}
	t.Logf("%d bad files through the Lambda; %d log bytes checked", len(cases), len(logs))
}
