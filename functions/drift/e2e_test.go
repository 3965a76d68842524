package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/adapters/s3source"
	"github.com/sgrules/sgrules/internal/dev/motoproc"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
	"github.com/sgrules/sgrules/internal/testutil/motoworld"
	"github.com/sgrules/sgrules/internal/testutil/rie"
	"github.com/sgrules/sgrules/pkg/rules"
)

// The end-to-end tests run the real drift bootstrap under the Lambda
// Runtime Interface Emulator against one moto_server (reset for every
// test): rule files are applied in-process with the real adapters, changes
// are made by hand with the EC2 API, and the function is fed the sample
// scheduled and CloudTrail events of testdata/.

const (
	bucket    = "rules-bucket"
	table     = "ledger"
	driftRole = "arn:aws:iam::123456789012:role/sgrules-drift-eu-west-1" // in cloudtrail-revoke-own-role.json
	otherRole = "arn:aws:iam::123456789012:role/sgrules-reconcile-eu-west-1"
)

// webRules is a normal (not exclusive) group's file.
const webRules = `rules:
  https:
    securityGroup: {tags: {Name: web}}
    type: ingress
    protocol: tcp
    fromPort: 443
    toPort: 443
    cidrBlocks: [0.0.0.0/0]
    description: HTTPS
  http:
    securityGroup: {tags: {Name: web}}
    type: ingress
    protocol: tcp
    fromPort: 80
    toPort: 80
    cidrBlocks: [0.0.0.0/0]
    description: HTTP
  ssh:
    securityGroup: {tags: {Name: web}}
    type: ingress
    protocol: tcp
    fromPort: 22
    toPort: 22
    cidrBlocks: [192.0.2.0/24]
    description: SSH from the office
`

// webCommit is the commit the world's rule files carry (S3 metadata, as
// the example sync workflow sets it).
const webCommit = "c0ffee1"

type world struct {
	t      *testing.T
	srv    *motoserver.Server
	cfg    aws.Config
	ec2    *ec2.Client
	groups map[string]string // Name tag → id
	topic  string
	queue  string
}

// newWorld resets moto and builds groups (web, orders-app, orders-db and
// old, which no file names), the rules bucket with web.yaml and the
// exclusive example, the ledger, and an alert topic with a queue
// subscribed; then applies the files in-process.
func newWorld(t *testing.T) *world {
	t.Helper()
	srv := motoserver.Shared(t)
	w := &world{t: t, srv: srv, cfg: srv.Config(t)}
	mw := srv.World(t, w.cfg, motoworld.Spec{Groups: []string{"web", "orders-app", "orders-db", "old"}, Bucket: bucket, Versioned: true, Table: table})
	w.ec2, w.groups = mw.EC2, mw.Groups
	exclusive, err := os.ReadFile("../../examples/exclusive/db-exclusive.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s3c := mw.S3
	for key, body := range map[string][]byte{"rules/web.yaml": []byte(webRules), "rules/db-exclusive.yaml": exclusive} {
		if _, err := s3c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body),
			Metadata: map[string]string{s3source.CommitMetadata: webCommit}}); err != nil {
			t.Fatal(err)
		}
	}
	w.alerts()

	eng, err := reconcile.New(reconcile.Config{
		Source:   s3source.New(s3c, bucket, "rules/"),
		Groups:   ec2sg.New(w.ec2),
		Ledger:   ddbledger.New(dynamodb.NewFromConfig(w.cfg), table),
		LedgerID: table,
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := eng.Reconcile(t.Context(), reconcile.Request{All: true, Reason: "e2e apply"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Sources {
		if s.Status != reconcile.StatusApplied {
			t.Fatalf("%s: %s %v %s", s.Key, s.Status, s.Diagnostics.Strings(), s.Message)
		}
	}
	return w
}

// alerts creates the alert topic and a queue subscribed to it.
func (w *world) alerts() {
	ctx := w.t.Context()
	topic, err := sns.NewFromConfig(w.cfg).CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("sgrules-alerts")})
	if err != nil {
		w.t.Fatal(err)
	}
	q := sqs.NewFromConfig(w.cfg)
	queue, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("alerts")})
	if err != nil {
		w.t.Fatal(err)
	}
	w.topic, w.queue = aws.ToString(topic.TopicArn), aws.ToString(queue.QueueUrl)
	_, err = sns.NewFromConfig(w.cfg).Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"),
		Endpoint:   aws.String("arn:aws:sqs:" + motoproc.Region + ":123456789012:alerts"),
		Attributes: map[string]string{"RawMessageDelivery": "true"}})
	if err != nil {
		w.t.Fatal(err)
	}
}

// alertMessages returns the alert messages delivered to the queue so far.
func (w *world) alertMessages() []string {
	w.t.Helper()
	out, err := sqs.NewFromConfig(w.cfg).ReceiveMessage(w.t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(w.queue), MaxNumberOfMessages: 10})
	if err != nil {
		w.t.Fatal(err)
	}
	var msgs []string
	for _, m := range out.Messages {
		msgs = append(msgs, aws.ToString(m.Body))
	}
	return msgs
}

// function starts the real bootstrap under the emulator with the
// template's environment.
func (w *world) function(mode string) *rie.Function {
	w.t.Helper()
	env := append(w.srv.Env(),
		"STATE_TABLE="+table, "RULES_BUCKET="+bucket, "RULES_PREFIX=rules/", "DRIFT_MODE="+mode,
		"SGRULES_ROLE_ARNS="+otherRole+","+driftRole, "ALERT_TOPIC_ARN="+w.topic,
		"AWS_LAMBDA_LOG_FORMAT=JSON", // LoggingConfig LogFormat: JSON in template.yaml
	)
	return rie.Start(w.t, rie.Build(w.t, "./functions/drift"), env)
}

// invocation is the outcome of one invocation: the response and what the
// function logged during it.
type invocation struct {
	resp   report.Response
	doc    map[string]any // the response as JSON: its field names
	report map[string]any // the "drift report" log line
	emf    map[string]any // the embedded metric format line
}

// invoke sends a testdata event, with the sample group id replaced by the
// world's group, and finds the drift report and EMF lines in the logs.
func (w *world) invoke(fn *rie.Function, file, sampleGroup, group string) invocation {
	w.t.Helper()
	payload, err := os.ReadFile("testdata/" + file)
	if err != nil {
		w.t.Fatal(err)
	}
	if sampleGroup != "" {
		payload = bytes.ReplaceAll(payload, []byte(sampleGroup), []byte(group))
	}
	return w.invokePayload(fn, payload)
}

// invokePayload invokes fn with an event.
func (w *world) invokePayload(fn *rie.Function, payload []byte) invocation {
	w.t.Helper()
	// The samples' events come from eu-west-1; the world is in moto's
	// region, and an event sweeps the region it comes from.
	payload = bytes.ReplaceAll(payload, []byte(`"eu-west-1"`), []byte(`"`+w.cfg.Region+`"`))
	before := len(fn.Logs())
	out := fn.Invoke(w.t, payload)
	var inv invocation
	if err := json.Unmarshal(out, &inv.resp); err != nil {
		w.t.Fatalf("response %s: %v", out, err)
	}
	if err := json.Unmarshal(out, &inv.doc); err != nil {
		w.t.Fatalf("response %s: %v", out, err)
	}
	if strings.Contains(string(out), "errorMessage") {
		w.t.Fatalf("function error: %s\n%s", out, fn.Logs()[before:])
	}
	for _, line := range strings.Split(fn.Logs()[before:], "\n") {
		var m map[string]any
		if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		switch {
		case m["message"] == "drift report":
			if inv.report != nil {
				w.t.Errorf("more than one drift report line:\n%s", fn.Logs()[before:])
			}
			inv.report = m
		case m["_aws"] != nil && m["message"] == nil: // the report's EMF line, not a log record carrying a metric (PolicyMissing)
			if inv.emf != nil {
				w.t.Errorf("more than one EMF line:\n%s", fn.Logs()[before:])
			}
			inv.emf = m
		}
	}
	return inv
}

// rules returns every rule of the world's groups as sorted "key
// description" lines (rule ids left out).
func (w *world) rules() []string {
	w.t.Helper()
	ids := make([]string, 0, len(w.groups))
	for _, id := range w.groups {
		ids = append(ids, id)
	}
	actual, err := ec2sg.New(w.ec2).DescribeRules(w.t.Context(), ids)
	if err != nil {
		w.t.Fatal(err)
	}
	out := make([]string, len(actual))
	for i, a := range actual {
		out[i] = a.Key.String() + " " + a.Description
	}
	sort.Strings(out)
	return out
}

// ledger returns every ledger record (sources and owned rules, with their
// versions), rendered, sorted.
func (w *world) ledger() []string {
	w.t.Helper()
	led := ddbledger.New(dynamodb.NewFromConfig(w.cfg), table)
	srcs, err := led.ListSources(w.t.Context())
	if err != nil {
		w.t.Fatal(err)
	}
	perms, err := led.AllPermissions(w.t.Context())
	if err != nil {
		w.t.Fatal(err)
	}
	var items []string
	for _, s := range srcs {
		items = append(items, fmt.Sprintf("%+v", s))
	}
	for _, p := range perms {
		items = append(items, fmt.Sprintf("%+v", p))
	}
	sort.Strings(items)
	return items
}

// history is the history of a group as sgrules history prints it (the
// ledger's, through the report package), one line per event, newest
// first.
func (w *world) history(group string) []string {
	w.t.Helper()
	evs, err := ddbledger.New(dynamodb.NewFromConfig(w.cfg), table).GroupHistory(w.t.Context(), group)
	if err != nil {
		w.t.Fatal(err)
	}
	var b strings.Builder
	if err := report.WriteHistory(&b, group, report.History(evs)); err != nil {
		w.t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(b.String()), "\n")
}

// ruleID finds the id of the rule of group name with port from (ingress).
func (w *world) ruleID(name string, port int32) string {
	w.t.Helper()
	actual, err := ec2sg.New(w.ec2).DescribeRules(w.t.Context(), []string{w.groups[name]})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, a := range actual {
		if a.Key.Direction == rules.Ingress && a.Key.FromPort == port {
			return a.RuleID
		}
	}
	w.t.Fatalf("no ingress rule on port %d in %s", port, name)
	return ""
}

func (w *world) revokeByHand(name string, port int32) {
	w.t.Helper()
	_, err := w.ec2.RevokeSecurityGroupIngress(w.t.Context(), &ec2.RevokeSecurityGroupIngressInput{
		GroupId: aws.String(w.groups[name]), SecurityGroupRuleIds: []string{w.ruleID(name, port)}})
	if err != nil {
		w.t.Fatal(err)
	}
}

// modifyByHand changes a rule in place (it keeps its id), as the console's
// "Edit inbound rules" does.
func (w *world) modifyByHand(name string, port, newPort int32, cidr, description string) {
	w.t.Helper()
	_, err := w.ec2.ModifySecurityGroupRules(w.t.Context(), &ec2.ModifySecurityGroupRulesInput{
		GroupId: aws.String(w.groups[name]),
		SecurityGroupRules: []ec2types.SecurityGroupRuleUpdate{{
			SecurityGroupRuleId: aws.String(w.ruleID(name, port)),
			SecurityGroupRule: &ec2types.SecurityGroupRuleRequest{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(newPort), ToPort: aws.Int32(newPort),
				CidrIpv4: aws.String(cidr), Description: aws.String(description)},
		}},
	})
	if err != nil {
		w.t.Fatal(err)
	}
}

// authorizeByHand adds an ingress rule, tagged when tags are given. It
// returns the rule's "key description" line.
func (w *world) authorizeByHand(name string, port int32, cidr, description string, tags map[string]string) string {
	w.t.Helper()
	in := &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(w.groups[name]),
		IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(port), ToPort: aws.Int32(port),
			IpRanges: []ec2types.IpRange{{CidrIp: aws.String(cidr), Description: aws.String(description)}}}},
	}
	if len(tags) > 0 {
		spec := ec2types.TagSpecification{ResourceType: ec2types.ResourceTypeSecurityGroupRule}
		for k, v := range tags {
			spec.Tags = append(spec.Tags, ec2types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		in.TagSpecifications = []ec2types.TagSpecification{spec}
	}
	if _, err := w.ec2.AuthorizeSecurityGroupIngress(w.t.Context(), in); err != nil {
		w.t.Fatal(err)
	}
	k := rules.Key{GroupID: w.groups[name], Direction: rules.Ingress, Protocol: rules.ProtoTCP, FromPort: port, ToPort: port,
		Peer: rules.Peer{Kind: rules.PeerCIDR4, Value: cidr}}
	return k.String() + " " + description
}

func (w *world) tagGroup(name, key, value string) {
	w.t.Helper()
	_, err := w.ec2.CreateTags(w.t.Context(), &ec2.CreateTagsInput{Resources: []string{w.groups[name]},
		Tags: []ec2types.Tag{{Key: aws.String(key), Value: aws.String(value)}}})
	if err != nil {
		w.t.Fatal(err)
	}
}

// driftEverything makes one change of every kind by hand and returns the
// unmanaged rule added to the normal group web (which must survive).
func (w *world) driftEverything() string {
	w.t.Helper()
	w.revokeByHand("web", 22)                              // managed rule deleted
	w.modifyByHand("web", 80, 80, "0.0.0.0/0", "edited")   // description edited
	w.modifyByHand("web", 443, 8443, "0.0.0.0/0", "HTTPS") // ports modified
	led := ddbledger.New(dynamodb.NewFromConfig(w.cfg), table)
	id, err := led.DeploymentID(w.t.Context(), "")
	if err != nil || id == "" {
		w.t.Fatalf("deployment identity %q: %v", id, err)
	}
	w.authorizeByHand("old", 9000, "10.9.0.0/16", "left over", // orphan: tagged, with the intent of a run that crashed before its commit
		map[string]string{reconcile.TagManaged: "true", reconcile.TagLedger: id, reconcile.TagOwner: "rules/gone.yaml"})
	orphan := rules.Key{GroupID: w.groups["old"], Direction: rules.Ingress, Protocol: rules.ProtoTCP, FromPort: 9000, ToPort: 9000,
		Peer: rules.Peer{Kind: rules.PeerCIDR4, Value: "10.9.0.0/16"}}
	if err := led.RecordIntents(w.t.Context(), []reconcile.Intent{{Key: orphan, At: time.Now()}}); err != nil {
		w.t.Fatal(err)
	}
	w.authorizeByHand("orders-db", 22, "10.0.0.0/8", "debugging", nil) // unmanaged, exclusive group
	return w.authorizeByHand("web", 2222, "198.51.100.0/24", "added by hand", nil)
}

func sameLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		var b strings.Builder
		for _, x := range got {
			if !slices.Contains(want, x) {
				b.WriteString("+ " + x + "\n")
			}
		}
		for _, x := range want {
			if !slices.Contains(got, x) {
				b.WriteString("- " + x + "\n")
			}
		}
		t.Fatalf("%s differ:\n%s", what, b.String())
	}
}

// kinds returns the report's changes as "kind group-name" strings, sorted.
func (w *world) kinds(rep *report.Report) []string {
	names := map[string]string{}
	for n, id := range w.groups {
		names[id] = n
	}
	var out []string
	for _, c := range rep.Drifted {
		out = append(out, string(c.Kind)+" "+names[c.Group])
	}
	sort.Strings(out)
	return out
}

func TestDriftE2E(t *testing.T) {
	t.Run("schedule reverts every kind of drift", func(t *testing.T) {
		w := newWorld(t)
		applied := w.rules()
		fn := w.function("revert")
		handAdded := w.driftEverything()

		inv := w.invoke(fn, "schedule.json", "", "")
		sameLines(t, "rules after the sweep", w.rules(), slices.Sorted(slices.Values(append(slices.Clone(applied), handAdded))))
		rep := inv.resp.Drift
		if rep == nil {
			t.Fatalf("no drift report in the response: %+v", inv.resp)
		}
		want := []string{"deleted web", "description web", "exclusive orders-db", "modified web", "orphan old"}
		if got := w.kinds(rep); !slices.Equal(got, want) {
			t.Errorf("drifted %v, want %v", got, want)
		}
		if rep.Detected != 5 || rep.Reverted != 5 || rep.ReportOnly || rep.Unmanaged < 1 || rep.GroupsChecked != 3 { // web, orders-db (files) and old (tagged orphan)
			t.Errorf("report = %+v", rep)
		}
		for _, c := range rep.Drifted {
			switch c.Kind {
			case report.KindDescription:
				if c.Before != "edited" || c.After != "HTTP" {
					t.Errorf("description change %+v", c)
				}
			case report.KindModified:
				if c.Before != "tcp 8443 from 0.0.0.0/0" || c.After != `tcp 443 from 0.0.0.0/0 "HTTPS"` {
					t.Errorf("modified change %+v", c)
				}
			case report.KindDeleted:
				if c.Before != report.Missing || c.After != `tcp 22 from 192.0.2.0/24 "SSH from the office"` {
					t.Errorf("deleted change %+v", c)
				}
			}
		}

		// The function logged one JSON report line and one EMF line.
		if inv.report == nil || inv.report["level"] != "WARN" || inv.report["requestId"] == nil {
			t.Fatalf("drift report line = %v\n%s", inv.report, fn.Logs())
		}
		logged, _ := inv.report["report"].(map[string]any)
		if logged["driftDetected"] != 5.0 || logged["driftReverted"] != 5.0 || len(logged["drifted"].([]any)) != 5 {
			t.Errorf("logged report = %v", logged)
		}
		if inv.emf == nil {
			t.Fatalf("no EMF line:\n%s", fn.Logs())
		}
		cw := inv.emf["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)
		if cw["Namespace"] != "sgrules" || inv.emf["DriftDetected"] != 5.0 || inv.emf["DriftReverted"] != 5.0 ||
			inv.emf["ReconcileErrors"] != 0.0 || inv.emf["UnmanagedRules"] != float64(rep.Unmanaged) {
			t.Errorf("EMF line = %v", inv.emf)
		}

		// The alert topic got the summary.
		msgs := w.alertMessages()
		if len(msgs) != 1 || !strings.Contains(msgs[0], "5 rules changed outside sgrules") || !strings.Contains(msgs[0], "5 reverted") {
			t.Errorf("alerts = %q", msgs)
		}

		// Converged: the next sweep finds nothing and alerts nobody.
		inv = w.invoke(fn, "schedule.json", "", "")
		if inv.resp.Drift == nil || inv.resp.Drift.Detected != 0 || inv.emf["DriftDetected"] != 0.0 || inv.report["level"] != "INFO" {
			t.Errorf("second sweep: %+v %v", inv.resp.Drift, inv.emf)
		}
		if msgs := w.alertMessages(); len(msgs) != 0 {
			t.Errorf("alert without drift: %q", msgs)
		}
	})

	t.Run("report mode changes nothing and reports", func(t *testing.T) {
		w := newWorld(t)
		fn := w.function("report")
		w.driftEverything()
		rulesBefore, ledgerBefore := w.rules(), w.ledger()

		inv := w.invoke(fn, "schedule.json", "", "")
		sameLines(t, "rules", w.rules(), rulesBefore)
		sameLines(t, "ledger", w.ledger(), ledgerBefore)
		rep := inv.resp.Drift
		if rep == nil || rep.Detected != 5 || rep.Reverted != 0 || !rep.ReportOnly || !inv.resp.Request.DryRun {
			t.Fatalf("report = %+v, request %+v", rep, inv.resp.Request)
		}
		if req, _ := inv.doc["request"].(map[string]any); req["dryRun"] != true || req["all"] != true {
			t.Errorf("response request = %v, want camelCase dryRun and all true", inv.doc["request"])
		}
		if inv.emf["DriftDetected"] != 5.0 || inv.emf["DriftReverted"] != 0.0 {
			t.Errorf("EMF line = %v", inv.emf)
		}
		// A scheduled report-mode sweep leaves alerting to the
		// DriftDetected alarm (no alert every five minutes).
		if msgs := w.alertMessages(); len(msgs) != 0 {
			t.Errorf("alerts = %q", msgs)
		}
	})

	t.Run("paused group is left alone until the pause ends", func(t *testing.T) {
		w := newWorld(t)
		applied := w.rules()
		fn := w.function("revert")
		w.tagGroup("web", reconcile.TagPause, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
		w.revokeByHand("web", 22)
		w.revokeByHand("orders-db", 5432) // not paused: reverted
		pausedState := w.rules()

		inv := w.invoke(fn, "schedule.json", "", "")
		rep := inv.resp.Drift
		if rep == nil || !slices.Equal(rep.Paused, []string{w.groups["web"]}) {
			t.Fatalf("report = %+v", rep)
		}
		if got := w.kinds(rep); !slices.Contains(got, "deleted orders-db") {
			t.Errorf("drifted %v, want the orders-db rule", got)
		}
		for _, c := range rep.Drifted {
			if c.Group == w.groups["web"] && c.Reverted {
				t.Errorf("paused group's rule reverted: %+v", c)
			}
		}
		got := w.rules()
		if len(got) != len(pausedState)+1 {
			t.Errorf("after the sweep %d rules, want %d (the orders-db rule back, web untouched)", len(got), len(pausedState)+1)
		}
		if slices.Equal(got, applied) {
			t.Errorf("the paused group was reverted")
		}

		// The pause ended: the next sweep reverts the group.
		w.tagGroup("web", reconcile.TagPause, time.Now().Add(-time.Minute).UTC().Format(time.RFC3339))
		inv = w.invoke(fn, "schedule.json", "", "")
		sameLines(t, "rules after the pause", w.rules(), applied)
		if inv.resp.Drift == nil || len(inv.resp.Drift.Paused) != 0 || inv.resp.Drift.Detected != 1 {
			t.Errorf("report = %+v", inv.resp.Drift)
		}
	})

	t.Run("CloudTrail event sweeps the group it names", func(t *testing.T) {
		w := newWorld(t)
		applied := w.rules()
		fn := w.function("revert")
		w.revokeByHand("web", 22)
		w.revokeByHand("orders-db", 5432) // another group: not this event's business
		inv := w.invoke(fn, "cloudtrail-authorize-ingress.json", "sg-0123456789abcdef0", w.groups["web"])
		if inv.resp.Request == nil || !slices.Equal(inv.resp.Request.Groups, []string{w.groups["web"]}) {
			t.Fatalf("request = %+v", inv.resp.Request)
		}
		if req, _ := inv.doc["request"].(map[string]any); fmt.Sprint(req["groups"]) != "["+w.groups["web"]+"]" || req["reason"] != "cloudtrail:AuthorizeSecurityGroupIngress" {
			t.Errorf("response request = %v", inv.doc["request"])
		}
		if rep := inv.resp.Drift; rep == nil || rep.Detected != 1 || rep.Reverted != 1 || rep.GroupsChecked != 1 {
			t.Errorf("report = %+v", rep)
		}
		got := w.rules()
		if len(got) != len(applied)-1 {
			t.Errorf("%d rules, want %d (web reverted, orders-db left for the sweep)", len(got), len(applied)-1)
		}
		// The scheduled sweep is the backstop.
		w.invoke(fn, "schedule.json", "", "")
		sameLines(t, "rules after the sweep", w.rules(), applied)
	})

	t.Run("CloudTrail event names who deleted the rule", func(t *testing.T) {
		w := newWorld(t)
		applied := w.rules()
		fn := w.function("revert")
		w.revokeByHand("web", 22)
		inv := w.invoke(fn, "cloudtrail-revoke-ingress-alice.json", "sg-0123456789abcdef0", w.groups["web"])
		sameLines(t, "rules after the revert", w.rules(), applied)
		rep := inv.resp.Drift
		if rep == nil || rep.Reverted != 1 || len(rep.Drifted) != 1 || rep.FoundBy != report.FoundByCloudTrail {
			t.Fatalf("report = %+v", rep)
		}
		by := rep.Drifted[0].By
		if by == nil || by.Principal != "assumed-role/Admin/alice" || by.EventName != "RevokeSecurityGroupIngress" ||
			by.EventTime.Format(time.RFC3339) != "2026-03-02T11:20:44Z" || by.SourceIP != "203.0.113.9" || !strings.HasPrefix(by.UserAgent, "aws-cli/2.22.0") {
			t.Errorf("by = %+v", by)
		}
		if inv.report == nil || inv.report["principal"] != "assumed-role/Admin/alice" || inv.report["foundBy"] != "cloudtrail" {
			t.Errorf("report line = %v", inv.report)
		}
		msgs := strings.Join(w.alertMessages(), "\n")
		if !strings.Contains(msgs, "assumed-role/Admin/alice (RevokeSecurityGroupIngress at 2026-03-02T11:20:44Z, from 203.0.113.9, aws-cli/2.22.0): 1 rule reverted in "+w.groups["web"]) {
			t.Errorf("alerts: %s", msgs)
		}

		// A scheduled sweep names nobody.
		w.revokeByHand("web", 22)
		inv = w.invoke(fn, "schedule.json", "", "")
		if rep := inv.resp.Drift; rep == nil || rep.FoundBy != report.FoundBySchedule || len(rep.Drifted) != 1 || rep.Drifted[0].By != nil {
			t.Errorf("schedule report = %+v", rep)
		}
		if msgs := strings.Join(w.alertMessages(), "\n"); !strings.Contains(msgs, "Found by schedule: 1 rule reverted in "+w.groups["web"]) {
			t.Errorf("schedule alerts: %s", msgs)
		}

		// The rule's history names alice, with the file and its commit.
		hist := w.history(w.groups["web"])
		created := slices.IndexFunc(hist, func(l string) bool { return strings.Contains(l, " created  ") && strings.Contains(l, "tcp 22 ") })
		if len(hist) != 7 || !strings.Contains(hist[3], " drifted  "+w.groups["web"]+` ingress tcp 22 from 192.0.2.0/24 "SSH from the office"`) ||
			!strings.Contains(hist[3], ": deleted by assumed-role/Admin/alice (RevokeSecurityGroupIngress at 2026-03-02T11:20:44Z, from 203.0.113.9, aws-cli/2.22.0)") ||
			!strings.Contains(hist[1], ": deleted, found by schedule") || created < 4 ||
			!strings.Contains(hist[created], "; rule ssh of rules/web.yaml, version ") || !strings.Contains(hist[created], ", commit "+webCommit) {
			t.Errorf("history:\n%s", strings.Join(hist, "\n"))
		}

		// Alice's event of that second deletion arrives after the sweep
		// reverted it: nothing is left to revert, and the history, the
		// response, the log and a follow-up alert name her.
		payload, err := os.ReadFile("testdata/cloudtrail-revoke-ingress-alice.json")
		if err != nil {
			t.Fatal(err)
		}
		called := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
		for from, to := range map[string]string{"sg-0123456789abcdef0": w.groups["web"], `"eu-west-1"`: `"` + w.cfg.Region + `"`,
			"2026-03-02T11:20:44Z": called.Format(time.RFC3339), "4a5b6c7d-8e9f-0a1b-2c3d-e4f5a6b7c8d9": "4a5b6c7d-late"} {
			payload = bytes.ReplaceAll(payload, []byte(from), []byte(to))
		}
		inv = w.invokePayload(fn, payload)
		rep = inv.resp.Drift
		if rep == nil || len(rep.Drifted) != 0 || len(rep.AttributedLate) != 1 || rep.AttributedLate[0].By == nil ||
			rep.AttributedLate[0].By.Principal != "assumed-role/Admin/alice" || rep.AttributedLate[0].Change != "deleted" {
			t.Fatalf("late report = %+v", rep)
		}
		if !strings.Contains(fn.Logs(), `"message":"drift attributed late"`) {
			t.Errorf("no drift attributed late log line")
		}
		if msgs := strings.Join(w.alertMessages(), "\n"); !strings.Contains(msgs, "assumed-role/Admin/alice (RevokeSecurityGroupIngress at "+called.Format(time.RFC3339)+
			", from 203.0.113.9, aws-cli/2.22.0) made 1 change reverted earlier:\n- "+w.groups["web"]+` ingress: deleted tcp 22 from 192.0.2.0/24 "SSH from the office"`) {
			t.Errorf("late alert: %s", msgs)
		}
		hist = w.history(w.groups["web"])
		if len(hist) != 7 || !strings.Contains(hist[1], ": deleted by assumed-role/Admin/alice (RevokeSecurityGroupIngress at "+called.Format(time.RFC3339)) ||
			!strings.Contains(hist[1], "named by its CloudTrail event after the revert") {
			t.Errorf("history after the late event:\n%s", strings.Join(hist, "\n"))
		}
	})

	t.Run("CloudTrail event of sgrules' own role is ignored", func(t *testing.T) {
		w := newWorld(t)
		fn := w.function("revert")
		w.revokeByHand("web", 22)
		drifted := w.rules()
		inv := w.invoke(fn, "cloudtrail-revoke-own-role.json", "sg-0fedcba9876543210", w.groups["web"])
		if inv.resp.Ignored != "own call by "+driftRole || inv.resp.Drift != nil || inv.report != nil || inv.emf != nil {
			t.Errorf("response %+v, report %v, emf %v", inv.resp, inv.report, inv.emf)
		}
		sameLines(t, "rules", w.rules(), drifted)
	})
}

// With the guardrail policy in the bucket (POLICY_KEY, default), the drift
// function reports a world-open SSH rule added by hand (report line, EMF
// PolicyViolations); with enforce: revoke it revokes it, alerts, and keeps
// a compliant hand-made rule.
func TestDriftE2EPolicyViolation(t *testing.T) {
	w := newWorld(t)
	put := func(body string) {
		s3c := s3.NewFromConfig(w.cfg, func(o *s3.Options) { o.UsePathStyle = true })
		if _, err := s3c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("policy/sgrules.yaml"),
			Body: strings.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	const noWorldSSH = "deny:\n  - id: no-world-ssh\n    message: SSH must not be open to the internet\n    type: ingress\n    protocol: tcp\n    ports: 22\n    cidrs: [0.0.0.0/0]\n"
	put(noWorldSSH)
	open := w.authorizeByHand("web", 22, "0.0.0.0/0", "temporary", nil)
	office := w.authorizeByHand("web", 22, "198.51.100.0/24", "partner", nil)

	check := func(inv invocation, action string) {
		t.Helper()
		rep := inv.resp.Drift
		if rep == nil || len(rep.Violations) != 1 || rep.Violations[0].Action != action || rep.Violations[0].Policies[0] != "NO-WORLD-SSH" {
			t.Fatalf("report: %+v", rep)
		}
		if inv.emf["PolicyViolations"] != 1.0 || inv.emf["PolicyInvalid"] != 0.0 {
			t.Errorf("EMF line = %v", inv.emf)
		}
		if inv.report == nil || !strings.Contains(fmt.Sprint(inv.report), "NO-WORLD-SSH") {
			t.Errorf("report line = %v", inv.report)
		}
	}
	check(w.invoke(w.function("revert"), "schedule.json", "", ""), report.ViolationReported)
	if got := strings.Join(w.rules(), "\n"); !strings.Contains(got, open) {
		t.Fatalf("enforce: report revoked the rule:\n%s", got)
	}

	put(noWorldSSH + "enforce: revoke\n")
	check(w.invoke(w.function("revert"), "schedule.json", "", ""), report.ViolationRevoked)
	got := strings.Join(w.rules(), "\n")
	if strings.Contains(got, open) || !strings.Contains(got, office) {
		t.Fatalf("want the world-open SSH rule revoked and the partner rule kept:\n%s", got)
	}
	msgs := strings.Join(w.alertMessages(), "\n")
	if !strings.Contains(msgs, "violates policy NO-WORLD-SSH") || !strings.Contains(msgs, "revoked") {
		t.Errorf("alerts: %s", msgs)
	}
}

// A rule applied from a file, denied by a policy uploaded later, then
// revoked by an incident responder: the scheduled sweep of the real
// bootstrap does not put it back; the report, its log line and the alert
// list the refused restore.
func TestDriftE2EPolicyRefusesRestore(t *testing.T) {
	w := newWorld(t)
	s3c := s3.NewFromConfig(w.cfg, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := s3c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("policy/sgrules.yaml"),
		Body: strings.NewReader("deny:\n  - id: no-world-https\n    message: HTTPS goes through the load balancer\n    type: ingress\n    ports: 443\n    cidrs: [0.0.0.0/0]\nenforce: revoke\n")}); err != nil {
		t.Fatal(err)
	}
	fn := w.function("revert")
	inv := w.invoke(fn, "schedule.json", "", "")
	if rep := inv.resp.Drift; rep == nil || len(rep.Violations) != 1 || rep.Violations[0].Action != report.ViolationManaged {
		t.Fatalf("after the policy: %+v", rep)
	}
	open := w.groups["web"] + "|ingress|tcp|443|443|cidr4:0.0.0.0/0"
	w.revokeByHand("web", 443)
	for run := 0; run < 2; run++ {
		inv = w.invoke(fn, "schedule.json", "", "")
		if got := strings.Join(w.rules(), "\n"); strings.Contains(got, open) {
			t.Fatalf("run %d: the sweep wrote the denied rule again:\n%s", run, got)
		}
		rep := inv.resp.Drift
		if rep == nil || len(rep.Refused) != 1 || rep.Refused[0].Source != "rules/web.yaml" || rep.Refused[0].RuleName != "https" ||
			rep.Refused[0].Cause != string(reconcile.CauseDriftDeleted) || rep.Refused[0].Policy != "no-world-https" || rep.Reverted != 0 {
			t.Fatalf("run %d: report %+v", run, rep)
		}
		if _, ok := inv.doc["drift"].(map[string]any)["policyRefused"]; !ok {
			t.Errorf("run %d: response has no drift.policyRefused: %v", run, inv.doc)
		}
		if inv.report == nil || !strings.Contains(fmt.Sprint(inv.report), "no-world-https") {
			t.Errorf("run %d: report line = %v", run, inv.report)
		}
	}
	if msgs := strings.Join(w.alertMessages(), "\n"); !strings.Contains(msgs, "Refused by the guardrail policy, not written") ||
		!strings.Contains(msgs, "restore for rules/web.yaml rule https") {
		t.Errorf("alerts: %s", msgs)
	}
}

// A group handed from team a to team b (re-tagged): team a's rule, which
// team b revoked, is not put back by the scheduled sweep of the real
// bootstrap; the report names the tenant.
func TestDriftE2ETenantRefusesRestoreIntoAnotherTenantsGroup(t *testing.T) {
	w := newWorld(t)
	s3c := s3.NewFromConfig(w.cfg, func(o *s3.Options) { o.UsePathStyle = true })
	put := func(key, body string) {
		t.Helper()
		if _, err := s3c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	w.tagGroup("orders-app", "team", "a")
	put("policy/sgrules.yaml", "tenants:\n  - prefix: team-a/\n    groups: {tags: {team: a}}\n  - prefix: team-b/\n    groups: {tags: {team: b}}\n")
	put("rules/team-a/app.yaml", "rules:\n  metrics:\n    securityGroup: {tags: {Name: orders-app}}\n    type: ingress\n    protocol: tcp\n    fromPort: 9100\n    toPort: 9100\n    cidrBlocks: [10.0.0.0/8]\n")
	fn := w.function("revert")
	w.invoke(fn, "schedule.json", "", "")
	rule := w.groups["orders-app"] + "|ingress|tcp|9100|9100|cidr4:10.0.0.0/8"
	if got := strings.Join(w.rules(), "\n"); !strings.Contains(got, rule) {
		t.Fatalf("team a's file not applied:\n%s", got)
	}
	w.tagGroup("orders-app", "team", "b")
	w.revokeByHand("orders-app", 9100)
	inv := w.invoke(fn, "schedule.json", "", "")
	if got := strings.Join(w.rules(), "\n"); strings.Contains(got, rule) {
		t.Fatalf("team a's rule written back into team b's group:\n%s", got)
	}
	rep := inv.resp.Drift
	if rep == nil || len(rep.Refused) != 1 || rep.Refused[0].Source != "rules/team-a/app.yaml" || rep.Refused[0].Policy != "tenant team-a/" ||
		rep.Refused[0].Reason != "violates policy tenant team-a/: group "+w.groups["orders-app"]+" is not a group of the tenant ({tags: {team: a}})" {
		b, _ := json.Marshal(rep)
		t.Fatalf("report %s", b)
	}
}
