package template

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Both templates pass cfn-lint (with the SAM translator for template.yaml),
// as make lint runs it.
func TestCfnLint(t *testing.T) {
	if _, err := exec.LookPath("cfn-lint"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("cfn-lint is not installed (pip install cfn-lint)")
		}
		t.Skip("cfn-lint is not installed")
	}
	for _, file := range []string{"template.yaml", "template-target.yaml"} {
		out, err := exec.Command("cfn-lint", filepath.Join(root, file)).CombinedOutput()
		if err != nil {
			t.Errorf("cfn-lint %s: %v\n%s", file, err, out)
		}
	}
}

// same compares two template values by their printed form (maps print
// sorted).
func same(a, b any) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func ref(name string) map[string]any { return map[string]any{"Ref": name} }

func split(name string) map[string]any {
	return map[string]any{"Fn::Split": []any{",", ref(name)}}
}

// allows returns every Allow statement of tpl whose actions include action.
func allows(tpl map[string]any, action string) []map[string]any {
	var out []map[string]any
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if v["Effect"] == "Allow" {
				for _, a := range strings1(v["Action"]) {
					if a == action {
						out = append(out, v)
					}
				}
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(tpl)
	return out
}

// The hub's functions read which accounts they may reach, the role name,
// the external id and (drift) the sweep queue from their environment
// (config.Functions lists them; TestEnvironmentCoversWhatTheCodeReads
// checks that list against the template).
func TestTargetVariablesAreSet(t *testing.T) {
	fns := functions(load(t, filepath.Join(root, "template.yaml")))
	want := map[string]any{
		"TARGET_ACCOUNTS":    ref("TargetAccounts"),
		"TARGET_ROLE":        ref("TargetRoleName"),
		"TARGET_EXTERNAL_ID": ref("TargetExternalId"),
	}
	for _, id := range []string{"ReconcileFunction", "DriftFunction"} {
		env := mapAt(fns[id], "Properties", "Environment", "Variables")
		for k, v := range want {
			if !same(env[k], v) {
				t.Errorf("%s: %s = %v, want %v", id, k, env[k], v)
			}
		}
	}
	if env := mapAt(fns["DriftFunction"], "Properties", "Environment", "Variables"); !same(env["SWEEP_QUEUE_URL"], ref("SweepQueue")) {
		t.Errorf("DriftFunction: SWEEP_QUEUE_URL = %v, want the SweepQueue's URL", env["SWEEP_QUEUE_URL"])
	}
}

// The drift function consumes the SweepQueue with partial batch responses
// and a concurrency limit; failed messages end in a dead-letter queue that
// raises an alarm.
func TestSweepQueue(t *testing.T) {
	tpl := load(t, filepath.Join(root, "template.yaml"))
	res := mapAt(tpl, "Resources")
	ev := mapAt(res, "DriftFunction", "Properties", "Events", "SweepMessages")
	props := mapAt(ev, "Properties")
	if ev["Type"] != "SQS" || !same(props["Queue"], map[string]any{"Fn::GetAtt": []any{"SweepQueue", "Arn"}}) {
		t.Errorf("DriftFunction.SweepMessages = %v, want an SQS event source on SweepQueue", ev)
	}
	if !same(props["FunctionResponseTypes"], []any{"ReportBatchItemFailures"}) {
		t.Errorf("SweepMessages.FunctionResponseTypes = %v, want [ReportBatchItemFailures]", props["FunctionResponseTypes"])
	}
	if !same(mapAt(props, "ScalingConfig")["MaximumConcurrency"], ref("SweepConcurrency")) {
		t.Errorf("SweepMessages.ScalingConfig = %v, want MaximumConcurrency from SweepConcurrency", props["ScalingConfig"])
	}
	if p := mapAt(tpl, "Parameters", "SweepConcurrency"); p["MinValue"] != "2" || p["MaxValue"] != "1000" || p["Default"] != "5" {
		t.Errorf("SweepConcurrency = %v, want 2..1000, default 5 (the limits of MaximumConcurrency)", p)
	}
	q := mapAt(res, "SweepQueue", "Properties")
	if !same(mapAt(q, "RedrivePolicy")["deadLetterTargetArn"], map[string]any{"Fn::GetAtt": []any{"SweepDeadLetterQueue", "Arn"}}) {
		t.Errorf("SweepQueue.RedrivePolicy = %v, want SweepDeadLetterQueue", q["RedrivePolicy"])
	}
	timeout, err1 := strconv.Atoi(fmt.Sprint(mapAt(res, "DriftFunction", "Properties")["Timeout"]))
	visibility, err2 := strconv.Atoi(fmt.Sprint(q["VisibilityTimeout"]))
	if err1 != nil || err2 != nil || visibility < timeout {
		t.Errorf("SweepQueue.VisibilityTimeout %v is less than the drift function's timeout %v (Lambda refuses the event source)", visibility, timeout)
	}
	alarm := mapAt(res, "SweepDeadLetterAlarm", "Properties")
	dims, _ := alarm["Dimensions"].([]any)
	if alarm["Namespace"] != "AWS/SQS" || len(dims) != 1 || !same(mapAt(dims[0])["Value"], map[string]any{"Fn::GetAtt": []any{"SweepDeadLetterQueue", "QueueName"}}) {
		t.Errorf("SweepDeadLetterAlarm = %v, want an alarm on the dead-letter queue's messages", alarm)
	}
	send := allows(tpl, "sqs:SendMessage")
	found := false
	for _, st := range send {
		if same(st["Resource"], map[string]any{"Fn::GetAtt": []any{"SweepQueue", "Arn"}}) {
			found = true
		}
	}
	if !found {
		t.Errorf("no statement allows sqs:SendMessage on SweepQueue (the planner sends the sweep messages): %v", send)
	}
}

// sts:AssumeRole is allowed on the target role name, in the target
// accounts only, for both function roles; the bus takes events from the
// target accounts only.
func TestAssumeTargetRoleOnly(t *testing.T) {
	tpl := load(t, filepath.Join(root, "template.yaml"))
	res := mapAt(tpl, "Resources")
	var assume []map[string]any
	for _, st := range allows(tpl, "sts:AssumeRole") {
		if st["Principal"] == nil { // not a trust policy
			assume = append(assume, st)
		}
	}
	if len(assume) != 1 {
		t.Fatalf("%d statements allow sts:AssumeRole, want 1: %v", len(assume), assume)
	}
	st := assume[0]
	if !same(strings1(st["Action"]), []string{"sts:AssumeRole"}) {
		t.Errorf("AssumeRole statement allows %v, want sts:AssumeRole only", st["Action"])
	}
	if !same(st["Resource"], map[string]any{"Fn::Sub": "arn:${AWS::Partition}:iam::*:role/${TargetRoleName}"}) {
		t.Errorf("AssumeRole on %v, want the TargetRoleName role", st["Resource"])
	}
	if !same(st["Condition"], map[string]any{"StringEquals": map[string]any{"aws:ResourceAccount": split("TargetAccounts")}}) {
		t.Errorf("AssumeRole condition %v, want aws:ResourceAccount in TargetAccounts", st["Condition"])
	}
	pol := mapAt(res, "AssumeTargetRolePolicy")
	if !same(pol["Condition"], "HasTargetAccounts") {
		t.Errorf("AssumeTargetRolePolicy exists without target accounts (Condition %v)", pol["Condition"])
	}
	attach := []any{map[string]any{"Fn::If": []any{"HasTargetAccounts", ref("AssumeTargetRolePolicy"), ref("AWS::NoValue")}}}
	for _, role := range []string{"ReconcileRole", "DriftRole"} {
		arns, _ := mapAt(res, role, "Properties")["ManagedPolicyArns"].([]any)
		ok := false
		for _, a := range arns {
			ok = ok || same([]any{a}, attach)
		}
		if !ok {
			t.Errorf("%s does not attach AssumeTargetRolePolicy (ManagedPolicyArns %v)", role, arns)
		}
	}
	bus := mapAt(res, "TargetEventsBusPolicy")
	bst := mapAt(bus, "Properties", "Statement")
	if bus["Type"] != "AWS::Events::EventBusPolicy" || !same(bus["Condition"], "HasTargetAccounts") ||
		!same(mapAt(bst, "Principal")["AWS"], split("TargetAccounts")) || bst["Action"] != "events:PutEvents" {
		t.Errorf("TargetEventsBusPolicy = %v, want PutEvents from TargetAccounts", bus)
	}
	if p := mapAt(tpl, "Parameters", "TargetExternalId"); p["NoEcho"] != "true" || p["Default"] != "" {
		t.Errorf("TargetExternalId = %v, want NoEcho and optional", p)
	}
}

// The target role is trusted by the hub's two function roles (as the hub
// stack outputs them) and by nothing else, with the external id when set.
func TestTargetRoleTrustsTheHubRoles(t *testing.T) {
	hub := load(t, filepath.Join(root, "template.yaml"))
	tgt := load(t, filepath.Join(root, "template-target.yaml"))
	for param, role := range map[string]string{"HubReconcileRoleArn": "ReconcileRole", "HubDriftRoleArn": "DriftRole"} {
		if mapAt(tgt, "Parameters", param) == nil {
			t.Errorf("template-target.yaml has no parameter %s", param)
		}
		out := strings.TrimPrefix(param, "Hub")
		if v := mapAt(hub, "Outputs", out)["Value"]; !same(v, map[string]any{"Fn::GetAtt": []any{role, "Arn"}}) {
			t.Errorf("hub output %s = %v, want %s's ARN (the value of %s)", out, v, role, param)
		}
	}
	if v := mapAt(hub, "Outputs", "EventBusArn")["Value"]; !same(v, map[string]any{"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"}) {
		t.Errorf("hub output EventBusArn = %v, want the default bus (where TargetEventsBusPolicy is)", v)
	}
	role := mapAt(tgt, "Resources", "TargetRole", "Properties")
	if !same(role["RoleName"], ref("RoleName")) || mapAt(tgt, "Parameters", "RoleName")["Default"] != mapAt(hub, "Parameters", "TargetRoleName")["Default"] {
		t.Errorf("TargetRole name %v (default %v), want RoleName defaulting to the hub's TargetRoleName", role["RoleName"], mapAt(tgt, "Parameters", "RoleName")["Default"])
	}
	stmts, _ := mapAt(role, "AssumeRolePolicyDocument")["Statement"].([]any)
	if len(stmts) != 1 {
		t.Fatalf("TargetRole trust has %d statements, want 1", len(stmts))
	}
	st := mapAt(stmts[0])
	want := map[string]any{
		"Sid":    "HubFunctions",
		"Effect": "Allow",
		// The flow-log function's role too, when given (docs/usage.md).
		"Principal": map[string]any{"AWS": map[string]any{"Fn::If": []any{"HasFlowlogsRole",
			[]any{ref("HubReconcileRoleArn"), ref("HubDriftRoleArn"), ref("HubFlowlogsRoleArn")},
			[]any{ref("HubReconcileRoleArn"), ref("HubDriftRoleArn")}}}},
		"Action": "sts:AssumeRole",
		"Condition": map[string]any{"Fn::If": []any{"HasExternalId",
			map[string]any{"StringEquals": map[string]any{"sts:ExternalId": ref("ExternalId")}},
			ref("AWS::NoValue")}},
	}
	if !same(st, want) {
		t.Errorf("TargetRole trust =\n%v\nwant\n%v", st, want)
	}
	if !same(mapAt(tgt, "Conditions", "HasExternalId"), map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{ref("ExternalId"), ""}}}}) {
		t.Errorf("HasExternalId = %v", mapAt(tgt, "Conditions", "HasExternalId"))
	}
}

// The target role may do exactly what the hub's functions may do to
// security groups in their own account (both ManagedGroupTag variants):
// both allow any region of their account (TestHubWritesInEveryRegionOfItsAccount).
func TestTargetEC2PolicyMatchesTheHub(t *testing.T) {
	hub := mapAt(load(t, filepath.Join(root, "template.yaml")), "Resources")
	tgt := mapAt(load(t, filepath.Join(root, "template-target.yaml")), "Resources")
	hubDoc := mapAt(hub, "SecurityGroupWritePolicy", "Properties")["PolicyDocument"]
	tgtPol := mapAt(tgt, "SecurityGroupWritePolicy", "Properties")
	if !same(hubDoc, tgtPol["PolicyDocument"]) {
		t.Errorf("target SecurityGroupWritePolicy =\n%v\nwant the hub's\n%v", tgtPol["PolicyDocument"], hubDoc)
	}
	if !same(tgtPol["Roles"], []any{ref("TargetRole")}) {
		t.Errorf("target SecurityGroupWritePolicy attached to %v, want [TargetRole]", tgtPol["Roles"])
	}
	var hubDescribe, tgtDescribe any
	for _, s := range mapAt(hub, "SgrulesAccessPolicy", "Properties", "PolicyDocument")["Statement"].([]any) {
		if mapAt(s)["Sid"] == "DescribeSecurityGroups" {
			hubDescribe = s
		}
	}
	var ec2Actions []string
	for _, p := range mapAt(tgt, "TargetRole", "Properties")["Policies"].([]any) {
		for _, s := range mapAt(p, "PolicyDocument")["Statement"].([]any) {
			ec2Actions = append(ec2Actions, strings1(mapAt(s)["Action"])...)
			if mapAt(s)["Sid"] == "DescribeSecurityGroups" {
				tgtDescribe = s
			}
		}
	}
	if hubDescribe == nil || !same(hubDescribe, tgtDescribe) {
		t.Errorf("target describe statement %v, want the hub's %v", tgtDescribe, hubDescribe)
	}
	// Plus the flow-log function's DescribeNetworkInterfaces (docs/usage.md).
	if !same(ec2Actions, []string{"ec2:DescribeSecurityGroups", "ec2:DescribeSecurityGroupRules", "ec2:DescribeManagedPrefixLists", "ec2:GetManagedPrefixListEntries",
		"ec2:DescribeNetworkInterfaces"}) {
		t.Errorf("TargetRole inline policies allow %v, want the describe calls only", ec2Actions)
	}
	if !same(mapAt(load(t, filepath.Join(root, "template-target.yaml")), "Parameters", "ManagedGroupTag")["AllowedPattern"],
		mapAt(load(t, filepath.Join(root, "template.yaml")), "Parameters", "ManagedGroupTag")["AllowedPattern"]) {
		t.Error("ManagedGroupTag is constrained differently in the two templates")
	}
}

// The target forwards the events the hub's drift function listens to, to
// the hub's bus.
func TestTargetForwardsTheHubsPattern(t *testing.T) {
	hub := mapAt(load(t, filepath.Join(root, "template.yaml")), "Resources")
	tgt := mapAt(load(t, filepath.Join(root, "template-target.yaml")), "Resources")
	want := mapAt(hub, "DriftFunction", "Properties", "Events", "SecurityGroupChanged", "Properties", "Pattern")
	rule := mapAt(tgt, "SecurityGroupChanged", "Properties")
	if want == nil || !same(rule["EventPattern"], want) {
		t.Errorf("target rule pattern =\n%v\nwant the hub's\n%v", rule["EventPattern"], want)
	}
	targets, _ := rule["Targets"].([]any)
	if len(targets) != 1 || !same(mapAt(targets[0])["Arn"], ref("HubEventBusArn")) {
		t.Errorf("target rule targets %v, want the hub's bus only", targets)
	}
	if mapAt(tgt, "SecurityGroupChanged")["Condition"] != nil {
		t.Error("the forwarding rule must exist in every region")
	}
	for _, id := range []string{"TargetRole", "SecurityGroupWritePolicy", "ForwardEventsRole"} {
		if !same(mapAt(tgt, id)["Condition"], "IsRoleRegion") {
			t.Errorf("%s is created in every region: IAM is global (Condition IsRoleRegion)", id)
		}
	}
}
