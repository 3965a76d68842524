package report_test

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/pkg/rules"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func key(group string, dir rules.Direction, proto string, from, to int32, peer rules.Peer) rules.Key {
	return rules.Key{GroupID: group, Direction: dir, Protocol: proto, FromPort: from, ToPort: to, Peer: peer}
}

var (
	anyV4    = rules.Peer{Kind: rules.PeerCIDR4, Value: "0.0.0.0/0"}
	office   = rules.Peer{Kind: rules.PeerCIDR4, Value: "192.0.2.0/24"}
	app      = rules.Peer{Kind: rules.PeerGroup, Value: "sg-app"}
	https    = key("sg-web", rules.Ingress, rules.ProtoTCP, 443, 443, anyV4)
	http     = key("sg-web", rules.Ingress, rules.ProtoTCP, 80, 80, anyV4)
	modified = key("sg-web", rules.Ingress, rules.ProtoTCP, 8443, 8443, anyV4)
	ssh      = key("sg-admin", rules.Ingress, rules.ProtoTCP, 22, 22, office)
	orphan   = key("sg-old", rules.Egress, rules.ProtoAll, -1, -1, app)
	stray    = key("sg-db", rules.Ingress, rules.ProtoTCP, 1024, 65535, office)
)

// sweep is a result with one drift of every kind, with the reasons the
// engine writes.
func sweep(executed bool) reconcile.Result {
	return reconcile.Result{
		Executed:    executed,
		HeldCleanup: 0,
		Drift: reconcile.DriftReport{
			GroupsChecked: 5,
			Unmanaged:     2,
			Paused:        []string{"sg-paused"},
			Drifted: []reconcile.Action{
				{Kind: reconcile.ActAuthorize, Key: ssh, Description: "SSH from the office", Owners: []rules.Owner{{Source: "rules/admin.yaml", Rule: "ssh"}},
					Reason: "drift: rule deleted or changed outside sgrules", Cause: reconcile.CauseDriftDeleted},
				{Kind: reconcile.ActRevoke, Key: stray, RuleID: "sgr-stray", Description: "temporary",
					Reason: "exclusive group: not declared by any source", Loss: true, Cause: reconcile.CauseExclusive},
				{Kind: reconcile.ActRevoke, Key: orphan, RuleID: "sgr-orphan",
					Reason: "created by sgrules, no longer declared by any source", Loss: true, Cause: reconcile.CauseOrphan},
				{Kind: reconcile.ActAuthorize, Key: https, Description: "HTTPS", Owners: []rules.Owner{{Source: "rules/web.yaml", Rule: "https"}},
					Reason: "drift: rule deleted or changed outside sgrules", Cause: reconcile.CauseDriftDeleted},
				{Kind: reconcile.ActUpdate, Key: http, RuleID: "sgr-http", Description: "HTTP", OldDescription: "edited",
					Owners: []rules.Owner{{Source: "rules/web.yaml", Rule: "http"}}, Reason: "drift: description edited outside sgrules", Cause: reconcile.CauseDriftDescription},
				{Kind: reconcile.ActRevoke, Key: modified, RuleID: "sgr-https", Owners: []rules.Owner{{Source: "rules/web.yaml", Rule: "https"}},
					Reason: "drift: rule modified outside sgrules (was " + https.String() + ")", Cause: reconcile.CauseDriftModified, Was: https},
			},
		},
	}
}

func TestBuild(t *testing.T) {
	tests := []struct {
		name string
		res  reconcile.Result
		want []string // kind group before → after
		// detected, reverted
		detected, reverted int
		reportOnly         bool
	}{
		{"nothing", reconcile.Result{Drift: reconcile.DriftReport{GroupsChecked: 3}}, nil, 0, 0, false},
		{"every kind reverted", sweep(true), []string{
			`deleted sg-admin missing → tcp 22 from 192.0.2.0/24 "SSH from the office"`,
			`exclusive sg-db tcp 1024-65535 from 192.0.2.0/24 "temporary" → missing`,
			`orphan sg-old all traffic to sg-app → missing`,
			`description sg-web edited → HTTP`,
			`modified sg-web tcp 8443 from 0.0.0.0/0 → tcp 443 from 0.0.0.0/0 "HTTPS"`,
		}, 5, 5, false},
		{"report mode", sweep(false), nil, 5, 0, true},
		{"modified without its pair", reconcile.Result{Executed: true, Drift: reconcile.DriftReport{Drifted: []reconcile.Action{
			{Kind: reconcile.ActRevoke, Key: modified, RuleID: "sgr-https", Reason: "drift: rule modified outside sgrules (was something else)", Cause: reconcile.CauseDriftModified},
		}}}, []string{`modified sg-web tcp 8443 from 0.0.0.0/0 → missing`}, 1, 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := report.Build(tc.res)
			if r.Detected != tc.detected || r.Reverted != tc.reverted || r.ReportOnly != tc.reportOnly {
				t.Errorf("detected %d reverted %d reportOnly %v, want %d %d %v", r.Detected, r.Reverted, r.ReportOnly, tc.detected, tc.reverted, tc.reportOnly)
			}
			if n := report.Count(tc.res); n != r.Detected {
				t.Errorf("Count = %d, want %d", n, r.Detected)
			}
			if tc.want == nil {
				return
			}
			var got []string
			for _, c := range r.Drifted {
				got = append(got, string(c.Kind)+" "+c.Group+" "+c.Before+" → "+c.After)
				if c.Reverted != tc.res.Executed {
					t.Errorf("%s: reverted %v", c.Rule, c.Reverted)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestEMF(t *testing.T) {
	r := report.Build(sweep(true)).WithError(nil)
	now := time.Date(2026, 3, 2, 10, 25, 0, 0, time.UTC)
	line := r.EMF(now)
	if !strings.HasSuffix(string(line), "}\n") || strings.Count(string(line), "\n") != 1 {
		t.Fatalf("not one line: %q", line)
	}
	var doc struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		Values map[string]any `json:"-"`
	}
	if err := json.Unmarshal(line, &doc); err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	_ = json.Unmarshal(line, &values)
	if doc.AWS.Timestamp != now.UnixMilli() || len(doc.AWS.CloudWatchMetrics) != 1 {
		t.Fatalf("_aws = %+v", doc.AWS)
	}
	d := doc.AWS.CloudWatchMetrics[0]
	if d.Namespace != "sgrules" || len(d.Dimensions) != 1 || len(d.Dimensions[0]) != 0 {
		t.Errorf("directive = %+v", d)
	}
	want := map[string]float64{"DriftDetected": 5, "DriftReverted": 5, "UnmanagedRules": 2, "ReconcileErrors": 0,
		"PolicyViolations": 0, "PolicyInvalid": 0, "ExclusiveConflicts": 0, "UnverifiedClaims": 0}
	if len(d.Metrics) != len(want) {
		t.Errorf("metrics = %+v", d.Metrics)
	}
	for _, m := range d.Metrics {
		v, ok := values[m.Name].(float64)
		if !ok || v != want[m.Name] || m.Unit != "Count" {
			t.Errorf("metric %s (%s) = %v, want %v", m.Name, m.Unit, values[m.Name], want[m.Name])
		}
	}

	failed := report.Build(reconcile.Result{}).WithError(errors.New("read ledger: throttled"))
	_ = json.Unmarshal(failed.EMF(now), &values)
	if values["ReconcileErrors"] != 1.0 || values["DriftDetected"] != 0.0 {
		t.Errorf("failed run: %v", values)
	}
}

// The report's JSON and Summary, as golden files (go test -update).
func TestGolden(t *testing.T) {
	tests := []struct {
		name string
		r    report.Report
	}{
		{"reverted", report.Build(sweep(true))},
		{"report-mode", report.Build(sweep(false))},
		{"clean", report.Build(reconcile.Result{Drift: reconcile.DriftReport{GroupsChecked: 1}})},
		{"failed", report.Build(reconcile.Result{}).WithError(errors.New("read ledger: throttled"))},
		{"attributed", report.Build(sweep(true)).Attribute(report.FoundByCloudTrail, alice)},
		{"schedule", report.Build(sweep(false)).Attribute(report.FoundBySchedule, nil)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			js, err := json.MarshalIndent(tc.r, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got := "Subject: " + tc.r.Subject() + "\n\n" + tc.r.Summary() + "\n" + string(js) + "\n"
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs:\n%s\nwant:\n%s", path, got, want)
			}
			if s := tc.r.Subject(); len(s) > 100 {
				t.Errorf("subject longer than 100: %q", s)
			}
		})
	}
}

func TestRuleText(t *testing.T) {
	tests := []struct {
		k    rules.Key
		desc string
		want string
	}{
		{https, "HTTPS", `tcp 443 from 0.0.0.0/0 "HTTPS"`},
		{stray, "", `tcp 1024-65535 from 192.0.2.0/24`},
		{orphan, "", `all traffic to sg-app`},
		{key("sg-a", rules.Ingress, rules.ProtoICMP, 8, -1, office), "", `icmp type 8 from 192.0.2.0/24`},
		{key("sg-a", rules.Ingress, "47", -1, -1, office), "", `protocol 47 from 192.0.2.0/24`},
		{key("sg-a", rules.Ingress, rules.ProtoTCP, 5432, 5432, rules.Peer{Kind: rules.PeerGroup, Account: "111122223333", Value: "sg-b"}), "", `tcp 5432 from 111122223333/sg-b`},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := report.RuleText(tc.k, tc.desc); got != tc.want {
				t.Errorf("got %s", got)
			}
		})
	}
}

func TestPolicyViolations(t *testing.T) {
	sshOpen := key("sg-web", rules.Ingress, rules.ProtoTCP, 22, 22, anyV4)
	clause := []reconcile.PolicyClause{{ID: "no-world-ssh", Message: "SSH must not be open to the internet"}}
	res := reconcile.Result{Executed: true, Drift: reconcile.DriftReport{GroupsChecked: 2}, Policy: reconcile.PolicyReport{
		Name: "policy/sgrules.yaml",
		Violations: []reconcile.PolicyViolation{
			{Rule: reconcile.ActualRule{Key: sshOpen, RuleID: "sgr-1", Description: "by hand"}, Clauses: clause, Revoke: true},
			{Rule: reconcile.ActualRule{Key: https, RuleID: "sgr-2"}, Clauses: []reconcile.PolicyClause{{ID: "web-only"}}, Managed: true},
		}}}
	r := report.Build(res)
	want := "No drift in 2 groups checked; 2 rules violate the guardrail policy.\n" +
		"Policy violations:\n" +
		`- sg-web ingress: tcp 22 from 0.0.0.0/0 "by hand" violates policy NO-WORLD-SSH: SSH must not be open to the internet (revoked)` + "\n" +
		"- sg-web ingress: tcp 443 from 0.0.0.0/0 violates policy WEB-ONLY (managed: kept until its rule file is fixed)\n"
	if got := r.Summary(); got != want {
		t.Errorf("Summary:\n%s\nwant:\n%s", got, want)
	}
	if got := r.Subject(); got != "sgrules: 2 security group rules violate the guardrail policy" {
		t.Errorf("Subject = %q", got)
	}
	var values map[string]any
	_ = json.Unmarshal(r.EMF(time.Unix(0, 0)), &values)
	if values["PolicyViolations"] != 2.0 || values["PolicyInvalid"] != 0.0 {
		t.Errorf("EMF: %v", values)
	}
	res.Executed = false
	if a := report.Build(res).Violations[0].Action; a != report.ViolationWouldRevoke {
		t.Errorf("dry run action = %q", a)
	}
	res.Policy = reconcile.PolicyReport{Invalid: &reconcile.PolicyError{Key: "policy/sgrules.yaml"}}
	_ = json.Unmarshal(report.Build(res).EMF(time.Unix(0, 0)), &values)
	if values["PolicyInvalid"] != 1.0 {
		t.Errorf("invalid policy EMF: %v", values)
	}
	_ = json.Unmarshal(report.PolicyInvalidEMF(time.Unix(0, 0)), &values)
	if values["PolicyInvalid"] != 1.0 {
		t.Errorf("PolicyInvalidEMF: %v", values)
	}
}

// A violating rule another deployment created or claims is reported as
// left to it, naming it.
func TestPolicyViolationOfAnotherDeployment(t *testing.T) {
	sshOpen := key("sg-web", rules.Ingress, rules.ProtoTCP, 22, 22, anyV4)
	res := reconcile.Result{Executed: true, Drift: reconcile.DriftReport{GroupsChecked: 1}, Policy: reconcile.PolicyReport{
		Name: "policy/sgrules.yaml",
		Violations: []reconcile.PolicyViolation{{Rule: reconcile.ActualRule{Key: sshOpen, RuleID: "sgr-1"},
			Clauses: []reconcile.PolicyClause{{ID: "no-world-ssh"}}, Others: []string{"dep-b"}}}}}
	r := report.Build(res)
	if v := r.Violations[0]; v.Action != report.ViolationOther || len(v.Deployments) != 1 || v.Deployments[0] != "dep-b" {
		t.Fatalf("violation %+v", v)
	}
	if got := r.Summary(); !strings.Contains(got, "(created or claimed by sgrules deployment dep-b: left to it)") {
		t.Errorf("Summary:\n%s", got)
	}
}

func TestPolicyRefused(t *testing.T) {
	sshOpen := key("sg-web", rules.Ingress, rules.ProtoTCP, 22, 22, anyV4)
	res := reconcile.Result{Executed: true, Drift: reconcile.DriftReport{GroupsChecked: 2}, Policy: reconcile.PolicyReport{
		Name: "policy/sgrules.yaml",
		Refused: []reconcile.PolicyRefusal{{
			Action: reconcile.Action{Kind: reconcile.ActAuthorize, Cause: reconcile.CauseDriftDeleted, Key: sshOpen},
			Owner:  rules.Owner{Source: "rules/ssh.yaml", Rule: "r"}, Policy: "no-world-ssh",
			Reason: "violates policy NO-WORLD-SSH: ingress tcp 22 from 0.0.0.0/0"}}}}
	r := report.Build(res)
	want := "2 groups checked; 1 rule not written: refused by the guardrail policy.\n" +
		"Refused by the guardrail policy, not written:\n" +
		"- sg-web ingress: tcp 22 from 0.0.0.0/0 (restore for rules/ssh.yaml rule r) not written: violates policy NO-WORLD-SSH: ingress tcp 22 from 0.0.0.0/0\n"
	if got := r.Summary(); got != want {
		t.Errorf("Summary:\n%s\nwant:\n%s", got, want)
	}
	if got := r.Subject(); got != "sgrules: 1 security group rule refused by the guardrail policy (not written)" {
		t.Errorf("Subject = %q", got)
	}
	b, _ := json.Marshal(r)
	if !strings.Contains(string(b), `"policyRefused":[{"group":"sg-web","direction":"ingress","rule":"tcp 22 from 0.0.0.0/0","action":"authorize","cause":"drift-deleted","source":"rules/ssh.yaml","ruleName":"r","policy":"no-world-ssh","reason":"violates policy NO-WORLD-SSH: ingress tcp 22 from 0.0.0.0/0"}]`) {
		t.Errorf("JSON: %s", b)
	}
}

// alice is the caller of a CloudTrail event that named sg-web and
// sg-admin.
var alice = &report.Actor{
	Principal: report.Principal("arn:aws:sts::123456789012:assumed-role/Admin/alice", "AssumedRole", ""),
	ARN:       "arn:aws:sts::123456789012:assumed-role/Admin/alice",
	EventName: "RevokeSecurityGroupIngress", EventID: "e3b0c442-98fc-4c14-9afb-f4c8996fb924",
	EventTime: time.Date(2026, 3, 2, 11, 2, 17, 0, time.UTC), SourceIP: "203.0.113.9",
	UserAgent: "aws-cli/2.22.0 md/awscrt#0.23.4 ua/2.0 os/linux#6.8.0",
	Groups:    []string{"sg-admin", "sg-web"},
}

func TestAttribution(t *testing.T) {
	refused := reconcile.PolicyRefusal{Action: reconcile.Action{Kind: reconcile.ActAuthorize, Cause: reconcile.CauseDriftDeleted,
		Key: key("sg-web", rules.Ingress, rules.ProtoTCP, 22, 22, anyV4)}, Owner: rules.Owner{Source: "rules/ssh.yaml", Rule: "r"},
		Policy: "no-world-ssh", Reason: "violates policy NO-WORLD-SSH"}
	one := reconcile.Result{Executed: true, Drift: reconcile.DriftReport{GroupsChecked: 1, Drifted: []reconcile.Action{sweep(true).Drift.Drifted[3]}}}
	tests := []struct {
		name    string
		res     reconcile.Result
		foundBy string
		by      *report.Actor
		subject string
		summary []string // lines the summary has, in this order
		byItems int      // drifted and refused items naming alice
	}{
		{
			name: "cloudtrail event by alice", res: withRefused(sweep(true), refused), foundBy: report.FoundByCloudTrail, by: alice,
			subject: "sgrules: 5 security group rules changed outside sgrules (reverted)",
			summary: []string{
				"assumed-role/Admin/alice (RevokeSecurityGroupIngress at 2026-03-02T11:02:17Z, from 203.0.113.9, aws-cli/2.22.0): 3 rules reverted, 1 write refused by the guardrail policy in sg-admin, sg-web",
				`- sg-admin ingress: deleted tcp 22 from 192.0.2.0/24 "SSH from the office"`,
				`- sg-web ingress: description of tcp 80 from 0.0.0.0/0 edited: "edited", declared "HTTP"`,
				`- sg-web ingress: modified to tcp 8443 from 0.0.0.0/0, declared tcp 443 from 0.0.0.0/0 "HTTPS"`,
				"Not attributed (not in a group RevokeSecurityGroupIngress named): 2 rules reverted in sg-db, sg-old",
				`- sg-db ingress: undeclared rule in exclusive group: tcp 1024-65535 from 192.0.2.0/24 "temporary"`,
				"- sg-web ingress: tcp 22 from 0.0.0.0/0 (restore for rules/ssh.yaml rule r) not written: violates policy NO-WORLD-SSH; changed by assumed-role/Admin/alice",
			},
			byItems: 4,
		},
		{
			name: "one rule deleted by alice", res: one, foundBy: report.FoundByCloudTrail, by: alice,
			subject: "sgrules: 1 security group rule changed outside sgrules by alice (reverted)",
			summary: []string{
				"1 rule changed outside sgrules in 1 group checked; 1 reverted.",
				"assumed-role/Admin/alice (RevokeSecurityGroupIngress at 2026-03-02T11:02:17Z, from 203.0.113.9, aws-cli/2.22.0): 1 rule reverted in sg-web",
				`- sg-web ingress: deleted tcp 443 from 0.0.0.0/0 "HTTPS"`,
			},
			byItems: 1,
		},
		{
			name: "report mode", res: sweep(false), foundBy: report.FoundByCloudTrail, by: alice,
			subject: "sgrules: 5 security group rules changed outside sgrules (found, not reverted)",
			summary: []string{"): 3 rules changed, not reverted in sg-admin, sg-web"},
			byItems: 3,
		},
		{
			name: "event naming no group", res: one, foundBy: report.FoundByCloudTrail,
			by:      &report.Actor{Principal: "user/bob", EventName: "UpdateSecurityGroupRuleDescriptionsIngress"},
			subject: "sgrules: 1 security group rule changed outside sgrules (reverted)",
			summary: []string{"Not attributed (found after user/bob (UpdateSecurityGroupRuleDescriptionsIngress), which named no group id): 1 rule reverted in sg-web"},
		},
		{
			name: "schedule", res: sweep(true), foundBy: report.FoundBySchedule,
			subject: "sgrules: 5 security group rules changed outside sgrules (reverted)",
			summary: []string{"5 rules changed outside sgrules in 5 groups checked; 5 reverted.", "Found by schedule: 5 rules reverted in sg-admin, sg-db, sg-old, sg-web"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := report.Build(tc.res).Attribute(tc.foundBy, tc.by)
			if got := r.Subject(); got != tc.subject {
				t.Errorf("Subject = %q, want %q", got, tc.subject)
			}
			sum := r.Summary()
			at := 0
			for _, line := range tc.summary {
				i := strings.Index(sum[at:], line)
				if i < 0 {
					t.Fatalf("summary lacks (after offset %d) %q:\n%s", at, line, sum)
				}
				at += i + len(line)
			}
			js, _ := json.Marshal(r)
			if n := strings.Count(string(js), `"by":{"principal":"assumed-role/Admin/alice","arn":"arn:aws:sts::123456789012:assumed-role/Admin/alice","eventName":"RevokeSecurityGroupIngress","eventId":"e3b0c442-98fc-4c14-9afb-f4c8996fb924","eventTime":"2026-03-02T11:02:17Z","sourceIp":"203.0.113.9","userAgent":"aws-cli/2.22.0 md/awscrt#0.23.4 ua/2.0 os/linux#6.8.0"`); n != tc.byItems {
				t.Errorf("%d items name alice, want %d: %s", n, tc.byItems, js)
			}
			if !strings.Contains(string(js), `"foundBy":"`+tc.foundBy+`"`) {
				t.Errorf("JSON lacks foundBy %q: %s", tc.foundBy, js)
			}
		})
	}
}

func withRefused(res reconcile.Result, r reconcile.PolicyRefusal) reconcile.Result {
	res.Policy.Refused = append(res.Policy.Refused, r)
	return res
}

func TestPrincipal(t *testing.T) {
	tests := []struct{ arn, typ, invokedBy, want string }{
		{"arn:aws:sts::123456789012:assumed-role/Admin/alice", "AssumedRole", "", "assumed-role/Admin/alice"},
		{"arn:aws:iam::123456789012:user/ops/bob", "IAMUser", "", "user/ops/bob"},
		{"arn:aws:iam::123456789012:root", "Root", "", "root"},
		{"", "AWSService", "elasticloadbalancing.amazonaws.com", "AWSService elasticloadbalancing.amazonaws.com"},
		{"", "", "", "unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := report.Principal(tc.arn, tc.typ, tc.invokedBy); got != tc.want {
				t.Errorf("Principal = %q", got)
			}
		})
	}
}

// docs/drift.md quotes ScopeEveryGroup as the report carries it.
func TestScopeDocumented(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "drift.md"))
	if err != nil {
		t.Fatal(err)
	}
	if doc := strings.Join(strings.Fields(string(b)), " "); !strings.Contains(doc, "`"+report.ScopeEveryGroup+"`") {
		t.Errorf("docs/drift.md does not quote the scope note %q", report.ScopeEveryGroup)
	}
}
