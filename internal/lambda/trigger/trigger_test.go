package trigger

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"

	"github.com/sgrules/sgrules/internal/adapters/expirysched"
)

const bucket = "sgrules-rules-123456789012-eu-west-1"

func readSample(t *testing.T, function, name string) json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "functions", function, "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeSamples(t *testing.T) {
	tests := []struct {
		name     string
		function string
		file     string
		want     Event
	}{
		{
			name: "s3 put: key URL-decoded, plus is space", function: "reconcile", file: "s3-put.json",
			want: Event{Kind: KindObjects, Objects: []Object{{
				Bucket: bucket, Key: "rules/team a/web=prod.yaml", EventName: "ObjectCreated:Put",
				VersionID: "096fKKXTRTtl3on89fVO.nfljtsv6qko", Sequencer: "0065E2F1A2B3C4D5E6",
				ETag: "d41d8cd98f00b204e9800998ecf8427e", Size: 1305,
			}}},
		},
		{
			name: "s3 delete, two records", function: "reconcile", file: "s3-delete-multi.json",
			want: Event{Kind: KindObjects, Objects: []Object{
				{Bucket: bucket, Key: "rules/db.yml", EventName: "ObjectRemoved:DeleteMarkerCreated", VersionID: "Ia7tQ9dEpl1Xx4gN4oRKeV1nqGk3Zs2Y", Sequencer: "0065E2F2B0000000A1"},
				{Bucket: bucket, Key: "rules/README.md", EventName: "ObjectRemoved:Delete", Sequencer: "0065E2F2B0000000A2"},
			}},
		},
		{
			name: "s3 test event", function: "reconcile", file: "s3-test-event.json",
			want: Event{Kind: KindS3Test},
		},
		{
			name: "eventbridge object created: key not decoded", function: "reconcile", file: "eventbridge-s3-created.json",
			want: Event{Kind: KindObjects, Objects: []Object{{
				Bucket: bucket, Key: "rules/team a/web+1.yaml", EventName: "Object Created:PutObject",
				VersionID: "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e", Sequencer: "617f08299329d189",
				ETag: "d41d8cd98f00b204e9800998ecf8427e", Size: 1305,
			}}},
		},
		{
			name: "eventbridge object deleted", function: "reconcile", file: "eventbridge-s3-deleted.json",
			want: Event{Kind: KindObjects, Objects: []Object{{
				Bucket: bucket, Key: "rules/db.yml", EventName: "Object Deleted:DeleteObject",
				VersionID: "1QW9g1Z99LUNbvaaYVpW9xDlOLU.qxgF", Sequencer: "617f0837b476e463",
				ETag: "d41d8cd98f00b204e9800998ecf8427e",
			}}},
		},
		{
			name: "schedule", function: "drift", file: "schedule.json",
			want: Event{Kind: KindSchedule, Schedule: &Schedule{
				ID:        "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
				Time:      time.Date(2026, 3, 2, 10, 25, 0, 0, time.UTC),
				Resources: []string{"arn:aws:events:eu-west-1:123456789012:rule/sgrules-DriftFunctionSchedule-1A2B3C4D5E6F"},
			}},
		},
		{
			name: "cloudtrail authorize ingress by an SSO role", function: "drift", file: "cloudtrail-authorize-ingress.json",
			want: Event{Kind: KindAPICall, APICall: &APICall{
				EventID: "e3b0c442-98fc-4c14-9afb-f4c8996fb924", EventName: "AuthorizeSecurityGroupIngress",
				Region: "eu-west-1", Account: "123456789012",
				GroupIDs:     []string{"sg-0123456789abcdef0"},
				CallerARN:    "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/alice@example.com",
				IssuerARN:    "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_Admin_0123456789abcdef",
				IdentityType: "AssumedRole", Time: time.Date(2026, 3, 2, 11, 2, 17, 0, time.UTC),
				SourceIP: "203.0.113.25", UserAgent: "aws-cli/2.22.0 md/awscrt#0.23.4 ua/2.0 os/linux#6.8.0 md/arch#x86_64 lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#ubuntu.24 md/prompt#off md/command#ec2.authorize-security-group-ingress",
			}},
		},
		{
			name: "cloudtrail modify rules by an IAM user", function: "drift", file: "cloudtrail-modify-rules.json",
			want: Event{Kind: KindAPICall, APICall: &APICall{
				EventID: "0c1d2e3f-4a5b-6c7d-8e9f-a0b1c2d3e4f5", EventName: "ModifySecurityGroupRules",
				Region: "eu-west-1", Account: "123456789012",
				GroupIDs:     []string{"sg-0fedcba9876543210"},
				CallerARN:    "arn:aws:iam::123456789012:user/ops-bot",
				IdentityType: "IAMUser", Time: time.Date(2026, 3, 2, 11, 5, 40, 0, time.UTC),
				SourceIP: "198.51.100.7", UserAgent: "Boto3/1.35.0 md/Botocore#1.35.0 ua/2.0 os/linux#6.1 md/arch#x86_64 lang/python#3.12.3",
			}},
		},
		{
			name: "cloudtrail revoke by the drift role", function: "drift", file: "cloudtrail-revoke-own-role.json",
			want: Event{Kind: KindAPICall, APICall: &APICall{
				EventID: "1d2e3f4a-5b6c-7d8e-9f0a-b1c2d3e4f5a6", EventName: "RevokeSecurityGroupIngress",
				Region: "eu-west-1", Account: "123456789012",
				GroupIDs:     []string{"sg-0fedcba9876543210"},
				CallerARN:    "arn:aws:sts::123456789012:assumed-role/sgrules-drift-eu-west-1/sgrules-DriftFunction-Q1w2E3r4T5y6",
				IssuerARN:    "arn:aws:iam::123456789012:role/sgrules-drift-eu-west-1",
				IdentityType: "AssumedRole", InvokedBy: "lambda.amazonaws.com", Time: time.Date(2026, 3, 2, 11, 6, 2, 0, time.UTC),
				SourceIP: "34.240.0.10", UserAgent: "aws-sdk-go-v2/1.48.0 ua/2.1 os/linux lang/go#1.26 md/GOOS#linux md/GOARCH#arm64 exec-env/AWS_Lambda_provided.al2023 api/ec2#1.344.3",
			}},
		},
		{
			name: "cloudtrail failed call by group name", function: "drift", file: "cloudtrail-authorize-failed-default-vpc.json",
			want: Event{Kind: KindAPICall, APICall: &APICall{
				EventID: "2e3f4a5b-6c7d-8e9f-0a1b-c2d3e4f5a6b7", EventName: "AuthorizeSecurityGroupEgress",
				Region: "eu-west-1", Account: "123456789012",
				GroupIDs:     []string{},
				CallerARN:    "arn:aws:iam::123456789012:user/ops-bot",
				ErrorCode:    "Client.InvalidPermission.Duplicate",
				IdentityType: "IAMUser", Time: time.Date(2026, 3, 2, 11, 10, 0, 0, time.UTC),
				SourceIP: "198.51.100.7", UserAgent: "Boto3/1.35.0",
			}},
		},
		{
			name: "cloudtrail update descriptions by group name", function: "drift", file: "cloudtrail-update-descriptions-by-name.json",
			want: Event{Kind: KindAPICall, APICall: &APICall{
				EventID: "3f4a5b6c-7d8e-9f0a-1b2c-d3e4f5a6b7c8", EventName: "UpdateSecurityGroupRuleDescriptionsIngress",
				Region: "eu-west-1", Account: "123456789012",
				GroupIDs:     []string{},
				CallerARN:    "arn:aws:iam::123456789012:user/ops-bot",
				IdentityType: "IAMUser", Time: time.Date(2026, 3, 2, 11, 5, 40, 0, time.UTC),
				SourceIP: "198.51.100.7", UserAgent: "Boto3/1.35.0 md/Botocore#1.35.0 ua/2.0 os/linux#6.1 md/arch#x86_64 lang/python#3.12.3",
			}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(readSample(t, tc.function, tc.file))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Decode =\n%s\nwant\n%s", dump(got), dump(tc.want))
			}
		})
	}
}

func dump(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

func TestDecodeCloudFormation(t *testing.T) {
	for _, tc := range []struct {
		file    string
		reqType cfn.RequestType
		physID  string
	}{
		{"cfn-create.json", cfn.RequestCreate, ""},
		{"cfn-delete.json", cfn.RequestDelete, "cfn/app/WebIngress"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got, err := Decode(readSample(t, "reconcile", tc.file))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got.Kind != KindCloudFormation || got.CloudFormation == nil {
				t.Fatalf("Decode = %s, want a CloudFormation event", dump(got))
			}
			ev := got.CloudFormation
			if ev.RequestType != tc.reqType || ev.PhysicalResourceID != tc.physID ||
				ev.LogicalResourceID != "WebIngress" || ev.ResourceType != "Custom::SecurityGroupRule" ||
				ev.StackID != "arn:aws:cloudformation:eu-west-1:123456789012:stack/app/5b3c5d70-d8f5-11ee-9b5a-0a1b2c3d4e5f" ||
				!strings.HasPrefix(ev.ResponseURL, "https://cloudformation-custom-resource-response-euwest1.") {
				t.Errorf("CloudFormation event = %s", dump(ev))
			}
			if ev.ResourceProperties["securityGroup"] != "sg-0123456789abcdef0" {
				t.Errorf("ResourceProperties = %v", ev.ResourceProperties)
			}
		})
	}
}

func TestDecodeSQSBatch(t *testing.T) {
	got, err := Decode(readSample(t, "reconcile", "sqs-batch.json"))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if got.Kind != KindSQS {
		t.Fatalf("Kind = %q, want %q", got.Kind, KindSQS)
	}
	type summary struct {
		ID   string
		Keys []string
		Test bool
		Err  string // a substring of the error, "" for none
	}
	want := []summary{
		{ID: "059f36b4-87a3-44ab-83d2-661975830a7d", Keys: []string{"rules/team a/web=prod.yaml"}},
		{ID: "2e1424d4-f796-459a-8184-9c92662be6da", Test: true},
		{ID: "c80e8021-a70a-42c7-a470-796e1186f753", Keys: []string{"rules/db.yml", "rules/README.md"}},
		{ID: "f4a1d3a5-9b3e-4c8e-8f0a-0b5c7d9e1f23", Keys: []string{"rules/team a/web+1.yaml"}},
		{ID: "6d1b7e2c-4a5f-4e3b-9c8d-7f6e5d4c3b2a", Err: "not a JSON object"},
		{ID: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", Err: `unsupported detail-type "Object Restore Completed"`},
	}
	if len(got.Messages) != len(want) {
		t.Fatalf("got %d messages, want %d", len(got.Messages), len(want))
	}
	for i, w := range want {
		m := got.Messages[i]
		var keys []string
		for _, o := range m.Objects {
			keys = append(keys, o.Key)
			if o.Bucket != bucket {
				t.Errorf("message %d: bucket %q", i, o.Bucket)
			}
		}
		if m.ID != w.ID || !reflect.DeepEqual(keys, w.Keys) || m.Test != w.Test {
			t.Errorf("message %d = {%s %v test=%v}, want {%s %v test=%v}", i, m.ID, keys, m.Test, w.ID, w.Keys, w.Test)
		}
		switch {
		case w.Err == "" && m.Err != nil:
			t.Errorf("message %d: unexpected error %v", i, m.Err)
		case w.Err != "" && (m.Err == nil || !strings.Contains(m.Err.Error(), w.Err) || !strings.Contains(m.Err.Error(), w.ID)):
			t.Errorf("message %d: error %v, want one naming the message and containing %q", i, m.Err, w.Err)
		}
	}
}

func TestDecodeSQSOversizedBody(t *testing.T) {
	body := `{"Records":[],"pad":"` + strings.Repeat("x", MaxSQSBodySize) + `"}`
	raw, err := json.Marshal(map[string]any{"Records": []map[string]string{
		{"messageId": "big", "eventSource": "aws:sqs", "body": body},
		{"messageId": "ok", "eventSource": "aws:sqs", "body": `{"Event":"s3:TestEvent","Service":"Amazon S3"}`},
	}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(raw)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if m := got.Messages[0]; m.Err == nil || !strings.Contains(m.Err.Error(), "larger than") {
		t.Errorf("oversized message error = %v", m.Err)
	}
	if m := got.Messages[1]; m.Err != nil || !m.Test {
		t.Errorf("test message = %+v", m)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, raw, want string
	}{
		{"not an object", `[1,2]`, "not a JSON object"},
		{"not JSON", `hello`, "not a JSON object"},
		{"empty object", `{}`, "empty object"},
		{"unknown shape names fields", `{"foo":1,"bar":{}}`, `fields "bar", "foo"`},
		{"dynamodb stream", `{"Records":[{"eventSource":"aws:dynamodb"}]}`, `eventSource "aws:dynamodb"`},
		{"mixed records", `{"Records":[{"eventSource":"aws:s3"},{"eventSource":"aws:sqs"}]}`, `record 1 has eventSource "aws:sqs"`},
		{"bad s3 key escape", `{"Records":[{"eventSource":"aws:s3","s3":{"object":{"key":"rules/%zz.yaml"}}}]}`, "decode S3 notification"},
		{"other eventbridge event", `{"source":"aws.ec2","detail-type":"EC2 Instance State-change Notification","detail":{}}`, `detail-type "EC2 Instance State-change Notification"`},
		{"s3 restore via eventbridge", `{"source":"aws.s3","detail-type":"Object Restore Completed","detail":{}}`, `unsupported detail-type "Object Restore Completed"`},
		{"eventbridge s3 without key", `{"source":"aws.s3","detail-type":"Object Created","detail":{"bucket":{"name":"b"},"object":{}}}`, "no bucket name or object key"},
		{"cloudtrail other API", `{"source":"aws.ec2","detail-type":"AWS API Call via CloudTrail","detail":{"eventName":"RunInstances"}}`, "unsupported API call RunInstances from aws.ec2"},
		{"cloudtrail other service", `{"source":"aws.s3","detail-type":"AWS API Call via CloudTrail","detail":{"eventName":"PutObject"}}`, `unsupported detail-type "AWS API Call via CloudTrail"`},
		{"cfn unknown request type", `{"RequestType":"Rollback","ResponseURL":"https://x","StackId":"arn:s","RequestId":"r1"}`, `unknown RequestType "Rollback"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := Decode(json.RawMessage(tc.raw))
			if err == nil {
				t.Fatalf("Decode = %s, want an error", dump(ev))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// An eventTime without a zone (moto writes them so) does not make the
// notification undecodable: nothing reads it.
func TestDecodeS3EventTimeWithoutZone(t *testing.T) {
	raw := `{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventTime":"2026-11-25T19:48:50.018451","eventName":"ObjectCreated:Put",` +
		`"s3":{"bucket":{"name":"b"},"object":{"key":"rules/a+b.yaml","sequencer":"01"}}}]}`
	ev, err := Decode(json.RawMessage(raw))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if len(ev.Objects) != 1 || ev.Objects[0].Key != "rules/a b.yaml" || ev.Objects[0].Bucket != "b" {
		t.Fatalf("objects = %+v", ev.Objects)
	}
	sqs := `{"Records":[{"messageId":"m1","eventSource":"aws:sqs","body":` + strconv.Quote(raw) + `}]}`
	ev, err = Decode(json.RawMessage(sqs))
	if err != nil || len(ev.Messages) != 1 || ev.Messages[0].Err != nil || len(ev.Messages[0].Objects) != 1 {
		t.Fatalf("SQS: %+v %v", ev, err)
	}
}

func TestDecodeSweepBatch(t *testing.T) {
	got, err := Decode(readSample(t, "drift", "sqs-sweep.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Kind != KindSweep || len(got.Messages) != 3 {
		t.Fatalf("Kind %q with %d messages, want %q with 3", got.Kind, len(got.Messages), KindSweep)
	}
	if s := got.Messages[0].Sweep; s == nil || s.Account != "111122223333" || s.Region != "eu-west-1" || s.Groups != nil {
		t.Errorf("message 0: %+v", s)
	}
	if s := got.Messages[1].Sweep; s == nil || !reflect.DeepEqual(s.Groups, []string{"sg-0123456789abcdef0"}) {
		t.Errorf("message 1: %+v", s)
	}
	if err := got.Messages[2].Err; err == nil || !strings.Contains(err.Error(), `account "1234" is not a 12-digit account id`) {
		t.Errorf("message 2: error %v", err)
	}
	// Body round-trips.
	sw := Sweep{Account: "111122223333", Region: "eu-west-1", Groups: []string{"sg-1"}}
	if b := sw.Body(); b != `{"sweep":{"account":"111122223333","region":"eu-west-1","groups":["sg-1"]}}` {
		t.Errorf("Body = %s", b)
	}
}

// The expiry schedule's payload (expirysched.Input) is one sweep message
// as the whole event.
func TestDecodeExpirySweep(t *testing.T) {
	got, err := Decode(json.RawMessage(expirysched.Input("111122223333", "eu-west-1")))
	if err != nil {
		t.Fatal(err)
	}
	if got.Kind != KindExpiry || got.Sweep == nil || !reflect.DeepEqual(*got.Sweep, Sweep{Account: "111122223333", Region: "eu-west-1"}) {
		t.Fatalf("Decode = %s", dump(got))
	}
	for raw, want := range map[string]string{
		`{"sweep":{"account":"1234","region":"eu-west-1"}}`: `account "1234" is not a 12-digit account id`,
		`{"sweep":{"acount":"111122223333"}}`:               `unknown field "acount"`,
		`{"sweep":{},"other":1}`:                            `fields "other", "sweep"`,
	} {
		if _, err := Decode(json.RawMessage(raw)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Decode(%s): error %v, want %q", raw, err, want)
		}
	}
}

// An unreadable detail.eventTime does not make the event undecodable: the
// envelope's time stands in.
func TestDecodeAPICallEventTimeFallback(t *testing.T) {
	raw := strings.Replace(string(readSample(t, "drift", "cloudtrail-revoke-ingress-alice.json")),
		`"eventTime": "2026-03-02T11:20:44Z"`, `"eventTime": "yesterday"`, 1)
	got, err := Decode(json.RawMessage(raw))
	if err != nil {
		t.Fatal(err)
	}
	if c := got.APICall; c == nil || !c.Time.Equal(time.Date(2026, 3, 2, 11, 20, 45, 0, time.UTC)) ||
		c.CallerARN != "arn:aws:sts::123456789012:assumed-role/Admin/alice" || c.SourceIP != "203.0.113.9" {
		t.Errorf("APICall = %s", dump(got.APICall))
	}
}
