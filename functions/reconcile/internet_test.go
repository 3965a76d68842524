package main

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
	"github.com/sgrules/sgrules/internal/testutil/rie"
	"github.com/sgrules/sgrules/pkg/rules"
)

// TestWorldOpenSpellingsThroughTheLambda (issue 20.4): the real bootstrap
// under the emulator with examples/policy/sgrules.yaml in the bucket. SSH
// to a web group (exempt from no-broad-ranges) from the two halves of
// IPv4, from 2000::/3, from a prefix list whose only entry is 0.0.0.0/0,
// from a prefix list that does not exist, and from a group in another
// listed account whose tags a clause needs: each file is invalid at the
// peer, naming what opens it or what was missing, and nothing is written.
func TestWorldOpenSpellingsThroughTheLambda(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const bucket, table, other = "rules-bucket", "ledger", "111122223333"
	srv := motoserver.Start(t)
	cfg := srv.Config(t)
	ctx := context.Background()
	motoserver.CreateBucket(t, cfg, bucket, true)
	motoserver.CreateTable(t, cfg, table)
	vpc := motoserver.CreateVPC(t, cfg)
	web := motoserver.CreateGroup(t, cfg, vpc, "web-sg", map[string]string{"Name": "web"})
	db := motoserver.CreateGroup(t, cfg, vpc, "db-sg", map[string]string{"Name": "database"})
	pl, err := ec2.NewFromConfig(cfg).CreateManagedPrefixList(ctx, &ec2.CreateManagedPrefixListInput{
		PrefixListName: aws.String("everyone"), AddressFamily: aws.String("IPv4"), MaxEntries: aws.Int32(5),
		Entries: []ec2types.AddPrefixListEntry{{Cidr: aws.String("0.0.0.0/0")}}})
	if err != nil {
		t.Fatal(err)
	}
	world := aws.ToString(pl.PrefixList.PrefixListId)
	policy, err := os.ReadFile("../../examples/policy/sgrules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rule := func(group string, port int, peer string) string {
		p := strconv.Itoa(port)
		return "rules:\n  r:\n    securityGroup: " + group + "\n    type: ingress\n    protocol: tcp\n    fromPort: " + p + "\n    toPort: " + p + "\n    " + peer + "\n"
	}
	files := map[string]string{
		"rules/halves.yaml":  rule(web, 22, "cidrBlocks: [0.0.0.0/1, 128.0.0.0/1]"),
		"rules/v6.yaml":      rule(web, 22, `ipv6CidrBlocks: ["2000::/3"]`),
		"rules/list.yaml":    rule(web, 22, "prefixListIds: ["+world+"]"),
		"rules/missing.yaml": rule(web, 22, "prefixListIds: [pl-0123456789abcdef0]"),
		// moto finds a group whatever account a reference names: the web
		// group stands for the other account's.
		"rules/peer.yaml": rule(db, 5432, `sourceSecurityGroups: [{groupId: `+web+`, account: "`+other+`"}]`),
	}
	want := map[string]string{
		"rules/halves.yaml":  "rules/halves.yaml:8:18: r: violates policy NO-WORLD-SSH: SSH must not be open to the internet; use the VPN range or SSM Session Manager (ingress tcp 22 from 0.0.0.0/1; with ingress tcp 22 from 128.0.0.0/1 it covers the internet (0.0.0.0/0))",
		"rules/v6.yaml":      "rules/v6.yaml:8:22: r: violates policy NO-WORLD-SSH: SSH must not be open to the internet; use the VPN range or SSM Session Manager (ingress tcp 22 from 2000::/3, which covers the internet (::/0))",
		"rules/list.yaml":    "rules/list.yaml:8:21: r: violates policy NO-WORLD-SSH: SSH must not be open to the internet; use the VPN range or SSM Session Manager (ingress tcp 22 from " + world + ", which covers the internet (0.0.0.0/0))",
		"rules/missing.yaml": "rules/missing.yaml:8:21: r: cannot decide policy NO-WORLD-SSH: needs the entries of prefix list pl-0123456789abcdef0 (it does not exist); a check that cannot be decided refuses the file",
		"rules/peer.yaml":    "rules/peer.yaml:8:28: r: cannot decide policy NO-DEV-TO-DATABASES: needs the tags of group " + other + "/" + web + "; a check that cannot be decided refuses the file",
	}
	s3c := s3.NewFromConfig(cfg, awsconfig.S3Options)
	put := func(k, body string) {
		if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: strings.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	put("policy/sgrules.yaml", string(policy))
	var keys []string
	for k, body := range files {
		put(k, body)
		keys = append(keys, k)
	}
	fn := rie.Start(t, rie.Build(t, "./functions/reconcile"), append(srv.Env(),
		"STATE_TABLE="+table, "RULES_BUCKET="+bucket, "RULES_PREFIX=rules/", "MAX_REVOKE=50",
		"TARGET_ACCOUNTS="+other, "AWS_LAMBDA_LOG_FORMAT=JSON"))
	raw := fn.Invoke(t, badS3Event(bucket, keys...))
	var resp report.Response
	if strings.Contains(string(raw), "errorMessage") || json.Unmarshal(raw, &resp) != nil {
		t.Fatalf("invocation: %s", raw)
	}
	got := map[string]report.SourceDoc{}
	for _, s := range resp.Sources {
		got[s.Key] = s
	}
	for k, w := range want {
		s := got[k]
		if s.Status != "invalid" || !strings.Contains(strings.Join(s.Diagnostics.Strings(), "\n"), w) {
			t.Errorf("%s: %s %q\nwant invalid: %s", k, s.Status, s.Diagnostics.Strings(), w)
		}
	}
	rs, err := ec2sg.New(ec2.NewFromConfig(cfg)).DescribeRules(ctx, []string{web, db})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Key.Direction == rules.Ingress {
			t.Errorf("written: %s", r.Key)
		}
	}
}
