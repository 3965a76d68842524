package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/testutil/flowcorpus"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
)

const evidenceFile = `rules:
  pg:
    securityGroup: {groupName: db-sg, vpcId: VPC}
    type: ingress
    protocol: tcp
    fromPort: 5432
    toPort: 5432
    cidrBlocks: [10.0.1.0/24]
  ssh:
    securityGroup: {groupName: db-sg, vpcId: VPC}
    type: ingress
    protocol: tcp
    fromPort: 22
    toPort: 22
    cidrBlocks: [10.0.2.0/24]
`

// evidenceWorld applies rules/db.yaml (pg and ssh into the db group, which
// one interface 10.0.0.10 carries) and delivers to s3://flow-logs/vpc/ a
// flow log in which 10.0.1.7 opened a connection to port 5432 three
// hours ago: pg carried traffic, ssh none.
func evidenceWorld(t *testing.T) (w *cliWorld, db string) {
	t.Helper()
	w = newCLIWorld(t)
	db = w.group("db")
	ctx := context.Background()
	eni, err := flowcorpus.Interface(ctx, w.ec2, w.vpc, "10.0.200.10", db)
	if err != nil {
		t.Fatal(err)
	}
	w.write("db.yaml", strings.ReplaceAll(evidenceFile, "VPC", w.vpc))
	w.expect(0, []string{"Applied: 2 authorized"}, "apply", w.dir)
	motoserver.CreateBucket(t, w.cfg, "flow-logs", false)
	at := time.Now().Add(-3 * time.Hour)
	if _, err := flowcorpus.PutLog(ctx, s3.NewFromConfig(w.cfg, awsconfig.S3Options), "flow-logs", "vpc/", w.cfg.Region, "a",
		[]flowcorpus.Flow{{ENI: eni, Peer: "10.0.1.7", Addr: "10.0.200.10", Port: 5432, At: at}}); err != nil {
		t.Fatal(err)
	}
	return w, db
}

// TestApplyRefusesUsedRemoval: with --flow-logs, apply refuses to revoke
// a rule that carried traffic (exit 1, the rule named with its file, its
// last flow and peer; the rule stays), removes the unused one in the same
// run, and revokes the used one with --allow-used-removal. plan marks
// each revoke with its usage.
func TestApplyRefusesUsedRemoval(t *testing.T) {
	w, db := evidenceWorld(t)
	w.write("db.yaml", "rules: {}\n")
	logs := []string{"--flow-logs", "s3://flow-logs/vpc"}

	plan := w.expect(1, []string{
		"- ingress tcp 22 from 10.0.2.0/24",
		"no traffic in 30 d",
		"Refused: these rules carried traffic, they are kept",
		"revoke refused for rules/db.yaml#pg",
		"1 flow from 10.0.1.7",
		"Plan: 0 to authorize, 0 to update, 1 to revoke, 0 to adopt.",
		"1 removal refused: the rules carried traffic (kept).",
	}, append([]string{"plan"}, append(logs, w.dir)...)...)
	if !strings.Contains(plan, "last used 3 h") && !strings.Contains(plan, "last used 2 h 59 min") {
		t.Errorf("the refusal does not say when the rule was last used:\n%s", plan)
	}
	md := w.expect(1, []string{"🚦 Removals refused", "`rules/db.yaml#pg`", "1 flow from 10.0.1.7", "no traffic in 30 d",
		"**1 removal refused: the rules carried traffic**"}, append([]string{"plan", "--output", "markdown"}, append(logs, w.dir)...)...)
	t.Logf("markdown:\n%s", md)
	w.expect(1, []string{`"usageRefused": [`, `"owner": "rules/db.yaml#pg"`, `"peer": "10.0.1.7"`, `"usage": {
        "known": true,
        "flows": 0,`}, append([]string{"plan", "--output", "json"}, append(logs, w.dir)...)...)

	w.expect(1, []string{"Applied: 0 authorized, 0 updated, 1 revoked", "revoke refused for rules/db.yaml#pg"},
		append([]string{"apply"}, append(logs, w.dir)...)...)
	if got := strings.Join(w.rules(db), "\n"); !strings.Contains(got, "5432") || strings.Contains(got, "|22|") {
		t.Fatalf("after apply: want pg kept and ssh revoked, have\n%s", got)
	}
	// A drift sweep with the evidence keeps it too.
	if code, out, errs := runCmd(t, append([]string{"drift", "--revert"}, append(logs, w.dir)...)...); code == exitUsage || !strings.Contains(strings.Join(w.rules(db), "\n"), "5432") {
		t.Fatalf("drift --revert --flow-logs: exit %d, rules %v\n%s\n%s", code, w.rules(db), out, errs)
	}
	// Level-based: the next apply refuses again (FLOW_LOGS_URL wires the
	// default), and without evidence nothing refuses.
	t.Setenv("FLOW_LOGS_URL", "s3://flow-logs/vpc/")
	w.expect(1, []string{"revoke refused for rules/db.yaml#pg"}, "plan", w.dir)
	w.expect(0, []string{"- ingress tcp 5432 from 10.0.1.0/24", "1 flow from 10.0.1.7"}, "plan", "--allow-used-removal", w.dir)
	w.expect(0, []string{"Applied: 0 authorized, 0 updated, 1 revoked"}, "apply", "--allow-used-removal", w.dir)
	if got := strings.Join(w.rules(db), "\n"); strings.Contains(got, "tcp") {
		t.Fatalf("after apply --allow-used-removal:\n%s", got)
	}
}

// TestApplyUsedRemovalAcknowledged: allowUsedRemoval in the file lets the
// used rule go; a narrowing of a used rule is refused (the old rule stays
// next to the new one), a widening is not.
func TestApplyUsedRemovalAcknowledged(t *testing.T) {
	w, db := evidenceWorld(t)
	logs := []string{"--flow-logs", "s3://flow-logs/vpc", "--used-within", "2d"}
	w.edit("db.yaml", "[10.0.1.0/24]", "[10.0.1.128/25]")
	w.expect(1, []string{"narrow to ingress tcp 5432 from 10.0.1.128/25 refused for rules/db.yaml#pg", "Applied: 1 authorized"},
		append([]string{"apply"}, append(logs, w.dir)...)...)
	if got := strings.Join(w.rules(db), "\n"); !strings.Contains(got, "10.0.1.0/24") || !strings.Contains(got, "10.0.1.128/25") {
		t.Fatalf("want the old and the new permission, have\n%s", got)
	}
	w.write("db.yaml", "allowUsedRemoval: [pg]\nrules: {}\n")
	w.expect(0, []string{"Applied: 0 authorized, 0 updated, 3 revoked"}, append([]string{"apply"}, append(logs, w.dir)...)...)
	if got := strings.Join(w.rules(db), "\n"); strings.Contains(got, "tcp") {
		t.Fatalf("after the acknowledged removal:\n%s", got)
	}
	w.expectErr(2, `--used-within "soon"`, "plan", "--used-within", "soon", w.dir)
}
