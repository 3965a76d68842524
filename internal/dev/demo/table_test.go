package demo

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sgrules/sgrules/pkg/rules"
)

func key(group string, dir rules.Direction, proto string, from, to int32, kind rules.PeerKind, peer string) rules.Key {
	return rules.Key{GroupID: group, Direction: dir, Protocol: proto, FromPort: from, ToPort: to,
		Peer: rules.Peer{Kind: kind, Value: peer}}
}

func TestText(t *testing.T) {
	names := map[string]string{"sg-1": "web"}
	tests := []struct {
		name        string
		k           rules.Key
		proto, port string
		peer        string
	}{
		{"tcp port", key("sg-1", rules.Ingress, "tcp", 443, 443, rules.PeerCIDR4, "0.0.0.0/0"), "tcp", "443", "0.0.0.0/0"},
		{"udp range", key("sg-1", rules.Ingress, "udp", 1024, 65535, rules.PeerCIDR6, "::/0"), "udp", "1024-65535", "::/0"},
		{"icmp all", key("sg-1", rules.Ingress, "icmp", -1, -1, rules.PeerCIDR4, "10.0.0.0/16"), "icmp", "all types", "10.0.0.0/16"},
		{"icmp type", key("sg-1", rules.Ingress, "icmp", 8, -1, rules.PeerCIDR4, "10.0.0.0/16"), "icmp", "type 8", "10.0.0.0/16"},
		{"icmpv6 type code", key("sg-1", rules.Ingress, "icmpv6", 1, 4, rules.PeerCIDR6, "::/0"), "icmpv6", "type 1 code 4", "::/0"},
		{"all traffic from a named group", key("sg-1", rules.Ingress, "-1", -1, -1, rules.PeerGroup, "sg-1"), "all", "all", "sg web"},
		{"gre from an unknown group", key("sg-1", rules.Ingress, "47", -1, -1, rules.PeerGroup, "sg-9"), "47 (GRE)", "all", "sg-9"},
		{"prefix list", key("sg-1", rules.Egress, "tcp", 80, 80, rules.PeerPrefixList, "pl-1"), "tcp", "80", "pl-1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := protocolText(tc.k.Protocol); got != tc.proto {
				t.Errorf("protocol %q, want %q", got, tc.proto)
			}
			if got := portsText(tc.k); got != tc.port {
				t.Errorf("ports %q, want %q", got, tc.port)
			}
			if got := peerText(tc.k.Peer, names); got != tc.peer {
				t.Errorf("peer %q, want %q", got, tc.peer)
			}
		})
	}
}

func TestPrintRules(t *testing.T) {
	names := map[string]string{"sg-1": "admin", "sg-2": "web"}
	rows := []row{
		{Group: "web", Key: key("sg-2", rules.Ingress, "tcp", 80, 80, rules.PeerCIDR4, "0.0.0.0/0"), Owner: "web.yaml"},
		{Group: "admin", Key: key("sg-1", rules.Egress, "-1", -1, -1, rules.PeerCIDR4, "0.0.0.0/0")},
		{Group: "admin", Key: key("sg-1", rules.Ingress, "tcp", 22, 22, rules.PeerGroup, "sg-2"), Owner: "admin.yaml", Description: "SSH from web"},
		{Group: "web", Key: key("sg-2", rules.Egress, "-1", -1, -1, rules.PeerCIDR4, "0.0.0.0/0")},
		{Group: "admin", Key: key("sg-1", rules.Ingress, "tcp", 3389, 3389, rules.PeerCIDR4, "198.51.100.7/32"), Description: "by hand"},
	}
	sortRows(rows, names)
	var b bytes.Buffer
	printRules(&b, rows, names, "  ")
	want := `  GROUP  DIRECTION  PROTOCOL  PORTS  PEER             MANAGED BY       DESCRIPTION
  admin  ingress    tcp       22     sg web           admin.yaml       SSH from web
         ingress    tcp       3389   198.51.100.7/32  - (not managed)  by hand
  web    ingress    tcp       80     0.0.0.0/0        web.yaml         -
  (not shown: 2 default egress rules "all traffic to 0.0.0.0/0" that EC2 creates with every group; sgrules leaves them alone)
`
	if got := b.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestDiffRows(t *testing.T) {
	kept := row{Group: "admin", RuleID: "sgr-3", Key: key("sg-1", rules.Ingress, "tcp", 3389, 3389, rules.PeerCIDR4, "198.51.100.7/32"), Description: "by hand"}
	edited := row{Group: "web", RuleID: "sgr-2", Key: key("sg-2", rules.Ingress, "tcp", 80, 80, rules.PeerCIDR4, "0.0.0.0/0"), Owner: "web.yaml", Description: "changed"}
	before := []row{kept, edited}
	fixed := edited
	fixed.Description = "HTTP"
	restored := row{Group: "web", RuleID: "sgr-9", Key: key("sg-2", rules.Ingress, "tcp", 443, 443, rules.PeerCIDR4, "0.0.0.0/0"), Owner: "web.yaml", Description: "HTTPS"}
	after := []row{kept, fixed, restored}

	changes := diffRows(before, after)
	if len(changes) != 2 || changes[0].Before == nil || changes[0].After.Description != "HTTP" || changes[1].Before != nil || changes[1].After.RuleID != "sgr-9" {
		t.Fatalf("changes = %+v", changes)
	}
	var b bytes.Buffer
	printChanges(&b, changes, []row{kept}, map[string]string{"sg-1": "admin", "sg-2": "web"}, "")
	for _, want := range []string{
		`description reverted  web    ingress    tcp       80     0.0.0.0/0        web.yaml         "changed" → "HTTP"`,
		"restored              web    ingress    tcp       443    0.0.0.0/0        web.yaml         HTTPS",
		"left alone            admin  ingress    tcp       3389   198.51.100.7/32  - (not managed)  by hand",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
	if gone := diffRows(after, before); len(gone) != 2 || gone[1].After != nil || gone[1].Before.RuleID != "sgr-9" {
		t.Errorf("reverse diff = %+v", gone)
	}
}

func TestVerify(t *testing.T) {
	k1 := key("sg-1", rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "10.0.0.0/8")
	k2 := key("sg-1", rules.Ingress, "tcp", 80, 80, rules.PeerCIDR4, "0.0.0.0/0")
	extra := key("sg-1", rules.Ingress, "tcp", 3389, 3389, rules.PeerCIDR4, "198.51.100.7/32")
	want := []rules.Permission{{Key: k1, Description: "SSH"}, {Key: k2}}
	tests := []struct {
		name    string
		rows    []row
		problem string
	}{
		{"converged", []row{{Key: k1, Description: "SSH", Owner: "a.yaml"}, {Key: k2, Owner: "a.yaml"}, {Key: extra}}, ""},
		{"missing", []row{{Key: k1, Description: "SSH", Owner: "a.yaml"}, {Key: extra}}, "missing " + k2.String()},
		{"description", []row{{Key: k1, Description: "ssh", Owner: "a.yaml"}, {Key: k2, Owner: "a.yaml"}, {Key: extra}}, `description "ssh", declared "SSH"`},
		{"unowned", []row{{Key: k1, Description: "SSH"}, {Key: k2, Owner: "a.yaml"}, {Key: extra}}, "not in the ledger"},
		{"unmanaged removed", []row{{Key: k1, Description: "SSH", Owner: "a.yaml"}, {Key: k2, Owner: "a.yaml"}}, "unmanaged rule " + extra.String() + " was removed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := verify(tc.rows, want, []rules.Key{extra})
			switch {
			case tc.problem == "" && err != nil:
				t.Fatalf("verify: %v", err)
			case tc.problem != "" && (err == nil || !strings.Contains(err.Error(), tc.problem)):
				t.Fatalf("verify = %v, want %q", err, tc.problem)
			}
		})
	}
}

func TestSQSEvent(t *testing.T) {
	body := `{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventTime": "2026-11-25T19:48:50.018451","eventName":"ObjectCreated:Put"}]}`
	msgs := []sqstypes.Message{{MessageId: aws.String("m1"), ReceiptHandle: aws.String("r1"), Body: aws.String(body),
		MD5OfBody: aws.String("x"), Attributes: map[string]string{"ApproximateReceiveCount": "1"}}}
	b, err := json.Marshal(sqsEvent(msgs, "arn:aws:sqs:us-east-1:123456789012:q"))
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Records []map[string]any
	}
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	if len(ev.Records) != 1 {
		t.Fatalf("records = %s", b)
	}
	r := ev.Records[0]
	for k, want := range map[string]string{"messageId": "m1", "receiptHandle": "r1", "eventSource": "aws:sqs",
		"eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": Region} {
		if r[k] != want {
			t.Errorf("%s = %v, want %q", k, r[k], want)
		}
	}
	if got := r["body"].(string); got != body {
		t.Errorf("body not delivered as received: %s", got)
	}
	if names, test := s3EventNames(body); !slices.Equal(names, []string{"ObjectCreated:Put"}) || test {
		t.Errorf("s3EventNames = %v, %v", names, test)
	}
	if _, test := s3EventNames(`{"Service":"Amazon S3","Event":"s3:TestEvent"}`); !test {
		t.Error("s3:TestEvent not recognised")
	}
}

func TestDescribeBatch(t *testing.T) {
	got := describeBatch(2, batchResult{Messages: 8, Events: []string{"ObjectCreated:Put", "ObjectRemoved:Delete", "ObjectCreated:Put"},
		Tests: 1, Failed: []string{"m1"}, Deleted: 7})
	want := "batch 2: 8 messages (2 ObjectCreated:Put, 1 ObjectRemoved:Delete, 1 s3:TestEvent) → 1 failed, 7 deleted from the queue"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestPlanSummary(t *testing.T) {
	lines := []string{
		"START RequestId: x",
		`{"time":"t","level":"INFO","msg":"plan","authorize":3,"update":0,"revoke":0,"adopt":1,"unmanaged":4}`,
		`{"time":"t","level":"INFO","message":"plan","authorize":2,"update":1,"drifted":1}`,
		`{"time":"t","level":"INFO","message":"ec2 batch","rules":3}`,
	}
	if got, want := planSummary(lines), "2 plans: authorize 5, update 1, adopt 1, drifted 1"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := planSummary([]string{`{"message":"plan","authorize":0}`}); got != "1 plan: nothing to do" {
		t.Errorf("got %q", got)
	}
	if got := planSummary(nil); got != "" {
		t.Errorf("got %q", got)
	}
}

// TestExamplesGroups checks that the demo creates exactly the groups
// examples/README.md lists, and skips only raw-group-id.yaml.
func TestExamplesGroups(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "examples")
	files, skipped, err := loadExamples(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(skipped, []string{"raw-group-id.yaml"}) {
		t.Errorf("skipped %v, want [raw-group-id.yaml]", skipped)
	}
	names, err := groupNames(files)
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, list, ok := strings.Cut(string(readme), "Every group named above:")
	if !ok {
		t.Fatal(`examples/README.md has no "Every group named above:" list`)
	}
	list, _, _ = strings.Cut(list, "\n\n")
	var listed []string
	for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(list, -1) {
		listed = append(listed, m[1])
	}
	if !slices.Equal(names, listed) {
		t.Errorf("groups of the examples %v\nlisted in examples/README.md %v", names, listed)
	}
}
