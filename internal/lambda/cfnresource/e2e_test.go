package cfnresource_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
	"github.com/sgrules/sgrules/internal/testutil/rie"
)

func TestMain(m *testing.M) { motoserver.Main(m, removeBootstrap) }

var bootstrap struct {
	once sync.Once
	dir  string
	bin  string
	err  error
	out  []byte
}

// buildBootstrap builds ./functions/reconcile as rie.Build does, plus the
// faultinject tag, which makes SGRULES_FAULT_PANIC=1 panic custom resource
// requests (see faultinject.go). Release builds never carry the tag.
func buildBootstrap(t *testing.T) string {
	t.Helper()
	bootstrap.once.Do(func() {
		root, err := rie.ModuleRoot()
		if err != nil {
			bootstrap.err = err
			return
		}
		if bootstrap.dir, err = os.MkdirTemp("", "sgrules-cfn-e2e-"); err != nil {
			bootstrap.err = err
			return
		}
		bootstrap.bin = filepath.Join(bootstrap.dir, "bootstrap")
		cmd := exec.Command("go", "build", "-tags", "lambda.norpc,faultinject", "-o", bootstrap.bin, "./functions/reconcile")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+runtime.GOARCH, "CGO_ENABLED=0")
		bootstrap.out, bootstrap.err = cmd.CombinedOutput()
	})
	if bootstrap.err != nil {
		t.Fatalf("build bootstrap: %v\n%s", bootstrap.err, bootstrap.out)
	}
	return bootstrap.bin
}

func removeBootstrap() {
	if bootstrap.dir != "" {
		os.RemoveAll(bootstrap.dir)
	}
}

// responses stands in for CloudFormation's pre-signed S3 URLs: every
// request gets its own path; the handler PUTs before its invocation ends.
type responses struct {
	*httptest.Server
	mu  sync.Mutex
	got map[string][]received
	n   int
}

type received struct {
	contentType []string
	size        int
	resp        cfn.Response
}

func newResponses(t *testing.T) *responses {
	r := &responses{got: map[string][]received{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		rec := received{contentType: req.Header.Values("Content-Type"), size: len(body)}
		if req.Method != http.MethodPut {
			t.Errorf("%s %s, want PUT", req.Method, req.URL.Path)
		}
		if err := json.Unmarshal(body, &rec.resp); err != nil {
			t.Errorf("response body: %v: %s", err, body)
		}
		r.mu.Lock()
		r.got[req.URL.Path] = append(r.got[req.URL.Path], rec)
		r.mu.Unlock()
	}))
	t.Cleanup(r.Close)
	return r
}

// url returns a fresh response URL.
func (r *responses) url() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	return fmt.Sprintf("%s/cloudformation-custom-resource-response/%d?X-Amz-Signature=example", r.URL, r.n)
}

func (r *responses) at(t *testing.T, url string) cfn.Response {
	t.Helper()
	path := strings.TrimPrefix(strings.SplitN(url, "?", 2)[0], r.URL)
	r.mu.Lock()
	defer r.mu.Unlock()
	got := r.got[path]
	if len(got) != 1 {
		t.Fatalf("%d responses at %s, want exactly 1", len(got), path)
	}
	if ct := got[0].contentType; len(ct) > 1 || (len(ct) == 1 && ct[0] != "") {
		t.Errorf("Content-Type %q, want none", ct)
	}
	if got[0].size >= 4096 {
		t.Errorf("response of %d bytes", got[0].size)
	}
	return got[0].resp
}

const e2eStack = "arn:aws:cloudformation:us-east-1:123456789012:stack/e2e-app/1f2e3d4c-5b6a-11ef-8f00-0a1b2c3d4e5f"

type e2e struct {
	t    *testing.T
	fn   *rie.Function
	resp *responses
	ec2  *ec2.Client
}

// request invokes the function with a custom resource request and returns
// what CloudFormation was told.
func (e *e2e) request(rt cfn.RequestType, logicalID, physicalID string, props, old map[string]any) cfn.Response {
	e.t.Helper()
	url := e.resp.url()
	ev := map[string]any{
		"RequestType":        rt,
		"ServiceToken":       "arn:aws:lambda:us-east-1:123456789012:function:sgrules-ReconcileFunction",
		"ResponseURL":        url,
		"StackId":            e2eStack,
		"RequestId":          fmt.Sprintf("req-%d", time.Now().UnixNano()),
		"LogicalResourceId":  logicalID,
		"ResourceType":       "Custom::SecurityGroupRule",
		"ResourceProperties": props,
	}
	if physicalID != "" {
		ev["PhysicalResourceId"] = physicalID
	}
	if old != nil {
		ev["OldResourceProperties"] = old
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		e.t.Fatal(err)
	}
	out := e.fn.Invoke(e.t, payload)
	if strings.Contains(string(out), `"errorMessage"`) {
		e.t.Logf("invocation returned an error: %s", out)
	}
	r := e.resp.at(e.t, url)
	if r.PhysicalResourceID == "" {
		e.t.Errorf("%s %s: empty PhysicalResourceId", rt, logicalID)
	}
	return r
}

// ingress returns the ingress rules of a group ("" ports for all-traffic).
func (e *e2e) ingress(groupID string) []ec2types.SecurityGroupRule {
	e.t.Helper()
	out, err := e.ec2.DescribeSecurityGroupRules(context.Background(), &ec2.DescribeSecurityGroupRulesInput{
		Filters: []ec2types.Filter{{Name: aws.String("group-id"), Values: []string{groupID}}},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return slices.DeleteFunc(out.SecurityGroupRules, func(r ec2types.SecurityGroupRule) bool { return aws.ToBool(r.IsEgress) })
}

func ruleProps(groupID, port string) map[string]any {
	return map[string]any{
		"ServiceToken":  "arn:aws:lambda:us-east-1:123456789012:function:sgrules-ReconcileFunction",
		"securityGroup": groupID,
		"type":          "ingress",
		"protocol":      "tcp",
		"fromPort":      port,
		"toPort":        port,
		"cidrBlocks":    []any{"10.1.0.0/16"},
		"description":   "web from the peered VPC",
	}
}

func setupE2E(t *testing.T, extraEnv ...string) (*e2e, string, string) {
	srv := motoserver.Shared(t)
	if _, err := rie.Path(); err != nil && os.Getenv("CI") == "" {
		t.Skip(err) // before the (slow) build; rie.Start fails under CI
	}
	srv.Reset(t)
	cfg := srv.Config(t)
	bin := buildBootstrap(t)
	vpc := motoserver.CreateVPC(t, cfg)
	web := motoserver.CreateGroup(t, cfg, vpc, "web", map[string]string{"Name": "web"})
	doomed := motoserver.CreateGroup(t, cfg, vpc, "doomed", nil)
	motoserver.CreateTable(t, cfg, "sgrules-state")
	motoserver.CreateBucket(t, cfg, "sgrules-rules", false)
	env := append([]string{"STATE_TABLE=sgrules-state", "RULES_BUCKET=sgrules-rules", "RULES_PREFIX=rules/"}, srv.Env()...)
	fn := rie.Start(t, bin, append(env, extraEnv...))
	return &e2e{t: t, fn: fn, resp: newResponses(t), ec2: ec2.NewFromConfig(cfg)}, web, doomed
}

// TestEndToEnd runs custom resource requests through the real reconcile
// bootstrap under the Lambda Runtime Interface Emulator, against moto.
func TestEndToEnd(t *testing.T) {
	e, web, doomed := setupE2E(t)
	const physical = "cfn/e2e-app/WebIngress"

	// Create.
	r := e.request(cfn.RequestCreate, "WebIngress", "", ruleProps(web, "80"), nil)
	if r.Status != cfn.StatusSuccess || r.PhysicalResourceID != physical {
		t.Fatalf("create: %s %q %q", r.Status, r.PhysicalResourceID, r.Reason)
	}
	first, _ := r.Data["RuleId"].(string)
	if !strings.HasPrefix(first, "sgr-") || r.Data["SecurityGroupId"] != web || r.Data["FromPort"] != "80" {
		t.Errorf("create data %v", r.Data)
	}
	rules := e.ingress(web)
	if len(rules) != 1 || aws.ToString(rules[0].SecurityGroupRuleId) != first || aws.ToInt32(rules[0].FromPort) != 80 {
		t.Fatalf("after create: EC2 has %+v, want the one rule %s on port 80", rules, first)
	}

	// Update of the port: same physical id, the rule modified in place,
	// so RuleId stays the same.
	r = e.request(cfn.RequestUpdate, "WebIngress", physical, ruleProps(web, "8080"), ruleProps(web, "80"))
	if r.Status != cfn.StatusSuccess || r.PhysicalResourceID != physical {
		t.Fatalf("update: %s %q %q", r.Status, r.PhysicalResourceID, r.Reason)
	}
	second, _ := r.Data["RuleId"].(string)
	rules = e.ingress(web)
	if len(rules) != 1 || aws.ToString(rules[0].SecurityGroupRuleId) != second || aws.ToInt32(rules[0].FromPort) != 8080 {
		t.Fatalf("after update: EC2 has %+v, want only %s on port 8080", rules, second)
	}
	if second != first {
		t.Errorf("update of the port changed RuleId %q to %q", first, second)
	}
	// Update of the CIDR: the same, in place.
	props := ruleProps(web, "8080")
	props["cidrBlocks"] = []any{"10.2.0.0/16"}
	r = e.request(cfn.RequestUpdate, "WebIngress", physical, props, ruleProps(web, "8080"))
	third, _ := r.Data["RuleId"].(string)
	rules = e.ingress(web)
	if r.Status != cfn.StatusSuccess || third != first || len(rules) != 1 || aws.ToString(rules[0].CidrIpv4) != "10.2.0.0/16" {
		t.Fatalf("update of the CIDR: %s %q, RuleId %q (was %q), EC2 has %+v", r.Status, r.Reason, third, first, rules)
	}
	e.request(cfn.RequestUpdate, "WebIngress", physical, ruleProps(web, "8080"), props)

	// Delete, and Delete again.
	for i := range 2 {
		r = e.request(cfn.RequestDelete, "WebIngress", physical, ruleProps(web, "8080"), nil)
		if r.Status != cfn.StatusSuccess || r.PhysicalResourceID != physical {
			t.Fatalf("delete %d: %s %q %q", i+1, r.Status, r.PhysicalResourceID, r.Reason)
		}
		if rules := e.ingress(web); len(rules) != 0 {
			t.Fatalf("delete %d: EC2 still has %+v", i+1, rules)
		}
	}

	// Invalid Create: FAILED naming the property, nothing created; its
	// rollback Delete succeeds.
	r = e.request(cfn.RequestCreate, "BadRule", "", ruleProps(web, "70000"), nil)
	if r.Status != cfn.StatusFailed || !strings.Contains(r.Reason, "fromPort") {
		t.Fatalf("invalid create: %s %q, want FAILED naming fromPort", r.Status, r.Reason)
	}
	if rules := e.ingress(web); len(rules) != 0 {
		t.Fatalf("invalid create created %+v", rules)
	}
	r = e.request(cfn.RequestDelete, "BadRule", r.PhysicalResourceID, ruleProps(web, "70000"), nil)
	if r.Status != cfn.StatusSuccess {
		t.Fatalf("rollback delete of the invalid create: %s %q", r.Status, r.Reason)
	}

	// Delete after the group was deleted.
	r = e.request(cfn.RequestCreate, "DoomedIngress", "", ruleProps(doomed, "443"), nil)
	if r.Status != cfn.StatusSuccess {
		t.Fatalf("create in doomed group: %s %q", r.Status, r.Reason)
	}
	if _, err := e.ec2.DeleteSecurityGroup(context.Background(), &ec2.DeleteSecurityGroupInput{GroupId: aws.String(doomed)}); err != nil {
		t.Fatal(err)
	}
	r = e.request(cfn.RequestDelete, "DoomedIngress", r.PhysicalResourceID, ruleProps(doomed, "443"), nil)
	if r.Status != cfn.StatusSuccess {
		t.Fatalf("delete after the group was deleted: %s %q", r.Status, r.Reason)
	}
}

// TestEndToEndPanic proves a panicking handler still answers CloudFormation.
func TestEndToEndPanic(t *testing.T) {
	e, web, _ := setupE2E(t, "SGRULES_FAULT_PANIC=1")
	r := e.request(cfn.RequestCreate, "WebIngress", "", ruleProps(web, "80"), nil)
	if r.Status != cfn.StatusFailed || !strings.Contains(r.Reason, "panic") || r.PhysicalResourceID != "cfn/e2e-app/WebIngress" {
		t.Fatalf("got %s %q %q, want FAILED for the panic", r.Status, r.PhysicalResourceID, r.Reason)
	}
	if rules := e.ingress(web); len(rules) != 0 {
		t.Fatalf("panicked create left %+v", rules)
	}
}

// The real bootstrap reads the guardrail policy from the rules bucket at
// the default POLICY_KEY: a resource violating a deny clause is FAILED
// with the clause id in the reason and creates nothing; a compliant one
// succeeds.
func TestEndToEndPolicyRefusesResource(t *testing.T) {
	e, web, _ := setupE2E(t)
	cfg := motoserver.Shared(t).Config(t)
	policy := "deny:\n  - id: no-world-ssh\n    message: SSH must not be open to the internet\n    type: ingress\n    ports: 22\n    cidrs: [0.0.0.0/0]\n"
	if _, err := s3.NewFromConfig(cfg, awsconfig.S3Options).PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String("sgrules-rules"), Key: aws.String("policy/sgrules.yaml"), Body: strings.NewReader(policy)}); err != nil {
		t.Fatal(err)
	}
	props := ruleProps(web, "22")
	props["cidrBlocks"] = []any{"0.0.0.0/0"}
	r := e.request(cfn.RequestCreate, "OpenSSH", "", props, nil)
	if r.Status != cfn.StatusFailed || !strings.Contains(r.Reason, "violates policy NO-WORLD-SSH: SSH must not be open to the internet") {
		t.Fatalf("create of a violating resource: %s %q", r.Status, r.Reason)
	}
	if got := e.ingress(web); len(got) != 0 {
		t.Fatalf("a refused resource created %d rules", len(got))
	}
	if r := e.request(cfn.RequestCreate, "WebIngress", "", ruleProps(web, "443"), nil); r.Status != cfn.StatusSuccess {
		t.Fatalf("compliant resource: %s %q", r.Status, r.Reason)
	}
	// The rollback of the failed Create deletes nothing and succeeds.
	if r := e.request(cfn.RequestDelete, "OpenSSH", "cfn/e2e-app/OpenSSH", props, nil); r.Status != cfn.StatusSuccess {
		t.Fatalf("delete after a refused create: %s %q", r.Status, r.Reason)
	}
}

// A resource the policy cannot decide fails closed, through the real
// bootstrap: SSH from a customer prefix list whose entries cannot be read
// (it does not exist), with a deny clause on SSH from the internet, is
// FAILED naming the clause, and nothing is written.
func TestEndToEndUndecidablePrefixListFailsTheResource(t *testing.T) {
	e, web, _ := setupE2E(t)
	cfg := motoserver.Shared(t).Config(t)
	policy := "deny:\n  - id: no-world-ssh\n    message: SSH must not be open to the internet\n    type: ingress\n    ports: 22\n    cidrs: [0.0.0.0/0]\n"
	if _, err := s3.NewFromConfig(cfg, awsconfig.S3Options).PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String("sgrules-rules"), Key: aws.String("policy/sgrules.yaml"), Body: strings.NewReader(policy)}); err != nil {
		t.Fatal(err)
	}
	props := ruleProps(web, "22")
	delete(props, "cidrBlocks")
	props["prefixListIds"] = []any{"pl-0123456789abcdef0"}
	r := e.request(cfn.RequestCreate, "ListSSH", "", props, nil)
	if r.Status != cfn.StatusFailed || !strings.Contains(r.Reason, "NO-WORLD-SSH") {
		t.Fatalf("create refused at admission: %s %q, want FAILED naming the clause", r.Status, r.Reason)
	}
	if got := e.ingress(web); len(got) != 0 {
		t.Fatalf("%d ingress rules, want none", len(got))
	}
	if r := e.request(cfn.RequestDelete, "ListSSH", "cfn/e2e-app/ListSSH", props, nil); r.Status != cfn.StatusSuccess {
		t.Fatalf("rollback delete: %s %q", r.Status, r.Reason)
	}
}
