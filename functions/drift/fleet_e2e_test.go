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

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/config"
	"github.com/sgrules/sgrules/internal/fleetrt"
	"github.com/sgrules/sgrules/internal/lambda/trigger"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
	"github.com/sgrules/sgrules/internal/testutil/motoworld"
	"github.com/sgrules/sgrules/internal/testutil/rie"
	"github.com/sgrules/sgrules/pkg/rules"
)

// The fleet end-to-end tests run the real drift bootstrap, as the template
// deploys it (SWEEP_QUEUE_URL, TARGET_ACCOUNTS), on a hub in moto's default
// account and two more targets in a second account, reached the real way:
// moto keeps accounts apart by the credentials of an assumed role.

const (
	targetAccount = "111122223333"
	targetRegion  = "eu-west-1" // the target account's second region
	sweepQueue    = "sgrules-sweeps"
)

// fleetRules is a file of two rules on the group tagged Name=web of its
// target (header: its account and region, if any).
func fleetRules(header, what string) string {
	return header + `rules:
  https:
    securityGroup: {tags: {Name: web}}
    type: ingress
    protocol: tcp
    fromPort: 443
    toPort: 443
    cidrBlocks: [0.0.0.0/0]
    description: HTTPS ` + what + `
  ssh:
    securityGroup: {tags: {Name: web}}
    type: ingress
    protocol: tcp
    fromPort: 22
    toPort: 22
    cidrBlocks: [192.0.2.0/24]
    description: SSH ` + what + `
`
}

// fleetTarget is one target's view: clients with its credentials and
// region, its group web.
type fleetTarget struct {
	t   rules.Target
	ec2 *ec2.Client
	web string
}

type fleetWorld struct {
	t        *testing.T
	srv      *motoserver.Server
	hub      aws.Config
	home     rules.Target
	targets  map[rules.Target]*fleetTarget
	b, bEU   rules.Target // the target account in the hub's region and in targetRegion
	queueURL string
	queueARN string
}

// newFleetWorld resets moto; builds a group web in the home target, in the
// target account in the hub's region and in targetRegion (each with the
// credentials of that account); puts one rule file per target, the sweep
// queue and the ledger; and applies the files in-process through the
// fleet.
func newFleetWorld(t *testing.T) *fleetWorld {
	t.Helper()
	srv := motoserver.Shared(t)
	hub := srv.Config(t)
	mw := srv.World(t, hub, motoworld.Spec{Groups: []string{"web"}, Bucket: bucket, Versioned: true, Table: table})
	id, err := sts.NewFromConfig(hub).GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	w := &fleetWorld{t: t, srv: srv, hub: hub, targets: map[rules.Target]*fleetTarget{}}
	w.home = rules.Target{Account: aws.ToString(id.Account), Region: hub.Region}
	w.b = rules.Target{Account: targetAccount, Region: hub.Region}
	w.bEU = rules.Target{Account: targetAccount, Region: targetRegion}
	w.targets[w.home] = &fleetTarget{t: w.home, ec2: mw.EC2, web: mw.Groups["web"]}

	// The target account's credentials, as a person there would have them:
	// moto's AssumeRole into the target role.
	out, err := sts.NewFromConfig(hub).AssumeRole(t.Context(), &sts.AssumeRoleInput{
		RoleArn: aws.String("arn:aws:iam::" + targetAccount + ":role/" + config.DefaultTargetRole), RoleSessionName: aws.String("by-hand")})
	if err != nil {
		t.Fatal(err)
	}
	c := out.Credentials
	for _, tg := range []rules.Target{w.b, w.bEU} {
		cfg := hub.Copy()
		cfg.Region = tg.Region
		cfg.Credentials = credentials.NewStaticCredentialsProvider(*c.AccessKeyId, *c.SecretAccessKey, *c.SessionToken)
		ft := &fleetTarget{t: tg, ec2: ec2.NewFromConfig(cfg)}
		vpc, err := motoworld.CreateVPC(t.Context(), ft.ec2)
		if err != nil {
			t.Fatal(err)
		}
		if ft.web, err = motoworld.CreateGroup(t.Context(), ft.ec2, vpc, "web-sg", map[string]string{"Name": "web"}); err != nil {
			t.Fatal(err)
		}
		w.targets[tg] = ft
	}
	for key, body := range map[string]string{
		"rules/home.yaml": fleetRules("", "home"),
		"rules/b.yaml":    fleetRules(`account: "`+targetAccount+`"`+"\n", "b"),
		"rules/b-eu.yaml": fleetRules(`account: "`+targetAccount+`"`+"\nregion: "+targetRegion+"\n", "b-eu"),
	} {
		if _, err := mw.S3.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	q := sqs.NewFromConfig(hub)
	qo, err := q.CreateQueue(t.Context(), &sqs.CreateQueueInput{QueueName: aws.String(sweepQueue)})
	if err != nil {
		t.Fatal(err)
	}
	w.queueURL = aws.ToString(qo.QueueUrl)
	attrs, err := q.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{QueueUrl: qo.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	w.queueARN = attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]

	fl, err := fleetrt.New(t.Context(), config.Config{Table: table, Bucket: bucket, Prefix: "rules/", MaxRevoke: 50,
		TargetAccounts: []string{targetAccount}, TargetRole: config.DefaultTargetRole}, hub, fleetrt.EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := fl.Reconcile(t.Context(), reconcile.Request{All: true, Reason: "e2e apply"}, nil)
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Targets) != 3 {
		t.Fatalf("applied in %d targets, want 3: %+v", len(res.Targets), res.Targets)
	}
	for _, s := range res.Sources() {
		if s.Status != reconcile.StatusApplied {
			t.Fatalf("%s: %s %v %s", s.Key, s.Status, s.Diagnostics.Strings(), s.Message)
		}
	}
	return w
}

// function starts the real bootstrap with the template's environment of a
// hub with one target account and a sweep queue.
func (w *fleetWorld) function() *rie.Function {
	w.t.Helper()
	env := append(w.srv.Env(),
		"STATE_TABLE="+table, "RULES_BUCKET="+bucket, "RULES_PREFIX=rules/", "DRIFT_MODE=revert",
		"SGRULES_ROLE_ARNS="+otherRole+","+driftRole,
		"TARGET_ACCOUNTS="+targetAccount, "TARGET_ROLE="+config.DefaultTargetRole, "SWEEP_QUEUE_URL="+w.queueURL,
		"AWS_LAMBDA_LOG_FORMAT=JSON",
	)
	return rie.Start(w.t, rie.Build(w.t, "./functions/drift"), env)
}

// rules returns the rules of a target's group web as sorted "key
// description" lines.
func (w *fleetWorld) rules(tg rules.Target) []string {
	w.t.Helper()
	ft := w.targets[tg]
	actual, err := ec2sg.New(ft.ec2, ec2sg.WithAccount(tg.Account)).DescribeRules(w.t.Context(), []string{ft.web})
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

func (w *fleetWorld) all() map[rules.Target][]string {
	m := map[rules.Target][]string{}
	for tg := range w.targets {
		m[tg] = w.rules(tg)
	}
	return m
}

func (w *fleetWorld) ruleID(tg rules.Target, port int32) string {
	w.t.Helper()
	ft := w.targets[tg]
	actual, err := ec2sg.New(ft.ec2).DescribeRules(w.t.Context(), []string{ft.web})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, a := range actual {
		if a.Key.Direction == rules.Ingress && a.Key.FromPort == port {
			return a.RuleID
		}
	}
	w.t.Fatalf("%s: no ingress rule on port %d", tg, port)
	return ""
}

// revokeByHand deletes a target's ingress rule on port, with that
// account's credentials.
func (w *fleetWorld) revokeByHand(tg rules.Target, port int32) {
	w.t.Helper()
	ft := w.targets[tg]
	if _, err := ft.ec2.RevokeSecurityGroupIngress(w.t.Context(), &ec2.RevokeSecurityGroupIngressInput{
		GroupId: aws.String(ft.web), SecurityGroupRuleIds: []string{w.ruleID(tg, port)}}); err != nil {
		w.t.Fatal(err)
	}
}

// describeByHand edits the description of a target's ingress rule on port
// in place.
func (w *fleetWorld) describeByHand(tg rules.Target, port int32, cidr, description string) {
	w.t.Helper()
	ft := w.targets[tg]
	_, err := ft.ec2.ModifySecurityGroupRules(w.t.Context(), &ec2.ModifySecurityGroupRulesInput{
		GroupId: aws.String(ft.web),
		SecurityGroupRules: []ec2types.SecurityGroupRuleUpdate{{
			SecurityGroupRuleId: aws.String(w.ruleID(tg, port)),
			SecurityGroupRule: &ec2types.SecurityGroupRuleRequest{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(port), ToPort: aws.Int32(port),
				CidrIpv4: aws.String(cidr), Description: aws.String(description)},
		}},
	})
	if err != nil {
		w.t.Fatal(err)
	}
}

// driftTarget deletes the SSH rule and edits the HTTPS rule's description
// of the target account's group in the hub's region.
func (w *fleetWorld) driftTarget() {
	w.t.Helper()
	w.revokeByHand(w.b, 22)
	w.describeByHand(w.b, 443, "0.0.0.0/0", "edited by hand")
}

// fleetInvocation is the raw outcome of one invocation: the response and
// the drift report and EMF lines logged during it, by target.
type fleetInvocation struct {
	out     []byte
	reports map[rules.Target]map[string]any // the "report" of each "drift report" line
	emf     map[rules.Target]map[string]any
	logs    string
}

func (w *fleetWorld) invoke(fn *rie.Function, payload []byte) fleetInvocation {
	w.t.Helper()
	before := len(fn.Logs())
	out := fn.Invoke(w.t, payload)
	inv := fleetInvocation{out: out, reports: map[rules.Target]map[string]any{}, emf: map[rules.Target]map[string]any{}, logs: fn.Logs()[before:]}
	if strings.Contains(string(out), "errorMessage") {
		w.t.Fatalf("function error: %s\n%s", out, inv.logs)
	}
	for _, line := range strings.Split(inv.logs, "\n") {
		var m map[string]any
		if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		switch {
		case m["message"] == "drift report":
			tg := rules.Target{Account: fmt.Sprint(m["account"]), Region: fmt.Sprint(m["region"])}
			if inv.reports[tg] != nil {
				w.t.Errorf("more than one drift report line of %s:\n%s", tg, inv.logs)
			}
			inv.reports[tg], _ = m["report"].(map[string]any)
		case m["_aws"] != nil && m["DriftDetected"] != nil: // the report's metrics (not PolicyMissing and the like)
			tg := rules.Target{Account: fmt.Sprint(m["Account"]), Region: fmt.Sprint(m["Region"])}
			if inv.emf[tg] != nil {
				w.t.Errorf("more than one EMF line of %s:\n%s", tg, inv.logs)
			}
			inv.emf[tg] = m
		}
	}
	return inv
}

// receiveSweeps receives the sweep queue's messages (all of them: it
// receives until the queue answers none).
func (w *fleetWorld) receiveSweeps() []sqstypes.Message {
	w.t.Helper()
	var msgs []sqstypes.Message
	for {
		out, err := sqs.NewFromConfig(w.hub).ReceiveMessage(w.t.Context(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(w.queueURL), MaxNumberOfMessages: 10, VisibilityTimeout: 300,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll}})
		if err != nil {
			w.t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return msgs
		}
		msgs = append(msgs, out.Messages...)
	}
}

// deliver does what the drift function's SQS event source mapping does:
// it invokes fn with one SQS event of msgs, and deletes the messages the
// function did not report as batch item failures.
func (w *fleetWorld) deliver(fn *rie.Function, msgs []sqstypes.Message) (fleetInvocation, events.SQSEventResponse) {
	w.t.Helper()
	ev := events.SQSEvent{}
	for _, m := range msgs {
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
			Md5OfBody: aws.ToString(m.MD5OfBody), Attributes: m.Attributes, MessageAttributes: map[string]events.SQSMessageAttribute{},
			EventSourceARN: w.queueARN, EventSource: "aws:sqs", AWSRegion: w.hub.Region,
		})
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		w.t.Fatal(err)
	}
	inv := w.invoke(fn, payload)
	var resp events.SQSEventResponse
	if err := json.Unmarshal(inv.out, &resp); err != nil {
		w.t.Fatalf("response %s: %v", inv.out, err)
	}
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	for _, m := range msgs {
		if failed[aws.ToString(m.MessageId)] {
			continue
		}
		if _, err := sqs.NewFromConfig(w.hub).DeleteMessage(w.t.Context(), &sqs.DeleteMessageInput{
			QueueUrl: aws.String(w.queueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
			w.t.Fatal(err)
		}
	}
	return inv, resp
}

// sweepTarget decodes a sweep message's body into the target it names.
func sweepTarget(t *testing.T, body string) (rules.Target, trigger.Sweep) {
	t.Helper()
	var m struct {
		Sweep *trigger.Sweep `json:"sweep"`
	}
	if err := json.Unmarshal([]byte(body), &m); err != nil || m.Sweep == nil {
		t.Fatalf("sweep message body %s: not a sweep (%v)", body, err)
	}
	return rules.Target{Account: m.Sweep.Account, Region: m.Sweep.Region}, *m.Sweep
}

// checkReport checks a target's drift report line and EMF line.
func checkReport(t *testing.T, inv fleetInvocation, tg rules.Target, detected int) {
	t.Helper()
	rep := inv.reports[tg]
	if rep == nil {
		t.Fatalf("no drift report line of %s:\n%s", tg, inv.logs)
	}
	if rep["account"] != tg.Account || rep["region"] != tg.Region || rep["driftDetected"] != float64(detected) ||
		rep["driftReverted"] != float64(detected) || rep["groupsChecked"] != 1.0 {
		t.Errorf("%s: report %v, want %d detected and reverted in 1 group", tg, rep, detected)
	}
	emf := inv.emf[tg]
	if emf == nil {
		t.Fatalf("no EMF line of %s:\n%s", tg, inv.logs)
	}
	dims := fmt.Sprint(emf["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)["Dimensions"])
	if emf["DriftDetected"] != float64(detected) || emf["DriftReverted"] != float64(detected) || dims != "[[] [Account Region]]" {
		t.Errorf("%s: EMF line %v (dimensions %s)", tg, emf, dims)
	}
}

func TestDriftE2EFleet(t *testing.T) {
	t.Run("scheduled sweep through the queue reverts drift in a target account", func(t *testing.T) {
		w := newFleetWorld(t)
		applied := w.all()
		fn := w.function()
		w.driftTarget()
		w.revokeByHand(w.bEU, 22) // drift in another target of the same account
		drifted := w.all()

		// The schedule plans: one message per target, nothing swept yet.
		schedule, err := os.ReadFile("testdata/schedule.json")
		if err != nil {
			t.Fatal(err)
		}
		inv := w.invoke(fn, schedule)
		var resp report.Response
		if err := json.Unmarshal(inv.out, &resp); err != nil {
			t.Fatalf("response %s: %v", inv.out, err)
		}
		if resp.Kind != string(trigger.KindSchedule) || len(resp.Sweeps) != 3 || resp.Request != nil || len(inv.reports) != 0 {
			t.Errorf("planner response %s, %d drift reports", inv.out, len(inv.reports))
		}
		for tg, want := range drifted {
			sameLines(t, tg.String()+" after planning", w.rules(tg), want)
		}

		msgs := w.receiveSweeps()
		byTarget := map[rules.Target]sqstypes.Message{}
		for _, m := range msgs {
			tg, sw := sweepTarget(t, aws.ToString(m.Body))
			if len(sw.Groups) != 0 {
				t.Errorf("sweep %s names groups (a target of one group is one sweep)", aws.ToString(m.Body))
			}
			tg = tg.Resolve(w.home)
			if _, dup := byTarget[tg]; dup {
				t.Errorf("two sweep messages of %s", tg)
			}
			byTarget[tg] = m
		}
		if len(msgs) != 3 || len(byTarget) != 3 {
			t.Fatalf("%d sweep messages for %d targets, want one per target (%s, %s, %s)", len(msgs), len(byTarget), w.home, w.b, w.bEU)
		}
		for tg := range w.targets {
			if _, ok := byTarget[tg]; !ok {
				t.Fatalf("no sweep message of %s", tg)
			}
		}

		// The target's message alone: it is put back; the other targets,
		// the same account's other region included, are untouched.
		inv, batch := w.deliver(fn, []sqstypes.Message{byTarget[w.b]})
		if len(batch.BatchItemFailures) != 0 {
			t.Errorf("batch item failures %+v\n%s", batch.BatchItemFailures, inv.logs)
		}
		if len(inv.reports) != 1 {
			t.Errorf("%d drift reports, want 1 (%s):\n%s", len(inv.reports), w.b, inv.logs)
		}
		checkReport(t, inv, w.b, 2)
		sameLines(t, w.b.String()+" after its sweep", w.rules(w.b), applied[w.b])
		sameLines(t, w.bEU.String()+" after another target's sweep", w.rules(w.bEU), drifted[w.bEU])
		sameLines(t, w.home.String()+" after another target's sweep", w.rules(w.home), drifted[w.home])

		// The other two messages in one batch, each reported on its own.
		inv, batch = w.deliver(fn, []sqstypes.Message{byTarget[w.home], byTarget[w.bEU]})
		if len(batch.BatchItemFailures) != 0 {
			t.Errorf("batch item failures %+v\n%s", batch.BatchItemFailures, inv.logs)
		}
		if len(inv.reports) != 2 {
			t.Errorf("%d drift reports, want 2:\n%s", len(inv.reports), inv.logs)
		}
		checkReport(t, inv, w.bEU, 1)
		checkReport(t, inv, w.home, 0)
		for tg, want := range applied {
			sameLines(t, tg.String()+" after every sweep", w.rules(tg), want)
		}
		if left := w.receiveSweeps(); len(left) != 0 {
			t.Errorf("%d messages left in the queue", len(left))
		}
	})

	t.Run("CloudTrail event from a target account sweeps only that target", func(t *testing.T) {
		w := newFleetWorld(t)
		applied := w.all()
		fn := w.function()
		w.driftTarget()
		w.revokeByHand(w.bEU, 22)
		w.revokeByHand(w.home, 22)
		drifted := w.all()

		// The event as the target account's EventBridge rule forwards it to
		// the hub's bus: that account, the hub's region, its group.
		sample, err := os.ReadFile("testdata/cloudtrail-authorize-ingress.json")
		if err != nil {
			t.Fatal(err)
		}
		event := func(callerARN, issuerARN string) []byte {
			p := bytes.ReplaceAll(sample, []byte("sg-0123456789abcdef0"), []byte(w.targets[w.b].web))
			p = bytes.ReplaceAll(p, []byte(`"eu-west-1"`), []byte(`"`+w.b.Region+`"`))
			p = bytes.ReplaceAll(p, []byte("123456789012"), []byte(targetAccount))
			if callerARN != "" {
				p = bytes.ReplaceAll(p, []byte("arn:aws:sts::"+targetAccount+":assumed-role/AWSReservedSSO_Admin_0123456789abcdef/alice@example.com"), []byte(callerARN))
				p = bytes.ReplaceAll(p, []byte("arn:aws:iam::"+targetAccount+":role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_Admin_0123456789abcdef"), []byte(issuerARN))
			}
			return p
		}

		// The target role's own session (the hub's sweep) is ignored: its
		// issuer is the target role's exact ARN in a target account.
		own := "arn:aws:iam::" + targetAccount + ":role/" + config.DefaultTargetRole
		inv := w.invoke(fn, event("arn:aws:sts::"+targetAccount+":assumed-role/"+config.DefaultTargetRole+"/sgrules-drift", own))
		var resp report.Response
		if err := json.Unmarshal(inv.out, &resp); err != nil {
			t.Fatalf("response %s: %v", inv.out, err)
		}
		if resp.Ignored != "own call by "+own || len(inv.reports) != 0 {
			t.Errorf("own target-role call: response %s, %d reports", inv.out, len(inv.reports))
		}
		sameLines(t, w.b.String()+" after an own call", w.rules(w.b), drifted[w.b])

		inv = w.invoke(fn, event("", ""))
		resp = report.Response{}
		if err := json.Unmarshal(inv.out, &resp); err != nil {
			t.Fatalf("response %s: %v", inv.out, err)
		}
		if resp.Kind != string(trigger.KindAPICall) || resp.Request == nil || !slices.Equal(resp.Request.Groups, []string{w.targets[w.b].web}) {
			t.Errorf("response %s", inv.out)
		}
		if len(resp.Targets) != 1 || resp.Targets[0].Account != w.b.Account || resp.Targets[0].Region != w.b.Region || resp.Targets[0].Error != "" {
			t.Errorf("response targets %+v, want %s only", resp.Targets, w.b)
		}
		if rep := resp.Drift; rep == nil || rep.Account != w.b.Account || rep.Region != w.b.Region || rep.Detected != 2 || rep.Reverted != 2 {
			t.Errorf("drift report %+v, want 2 reverted in %s", resp.Drift, w.b)
		}
		if len(inv.reports) != 1 {
			t.Errorf("%d drift reports, want 1:\n%s", len(inv.reports), inv.logs)
		}
		checkReport(t, inv, w.b, 2)
		sameLines(t, w.b.String()+" after its event", w.rules(w.b), applied[w.b])
		sameLines(t, w.bEU.String()+" after another target's event", w.rules(w.bEU), drifted[w.bEU])
		sameLines(t, w.home.String()+" after another target's event", w.rules(w.home), drifted[w.home])
	})
}
