package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sgrules/sgrules/internal/dev/lambdaemu"
	"github.com/sgrules/sgrules/internal/dev/motoproc"
)

// needTools skips the test when moto_server or the emulator is missing,
// unless CI is set, in which case it fails.
func needTools(t *testing.T) {
	t.Helper()
	var missing []string
	if _, err := exec.LookPath(motoproc.Binary); err != nil {
		missing = append(missing, motoproc.ErrNotInstalled.Error())
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lambdaemu.Find("", root); err != nil {
		missing = append(missing, err.Error())
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal(strings.Join(missing, "; "))
	}
	t.Skip(strings.Join(missing, "; "))
}

// TestRun runs the whole demo and checks that it tells every step, ends
// converged, and stops moto.
func TestRun(t *testing.T) {
	needTools(t)
	var out bytes.Buffer
	start := time.Now()
	err := Run(t.Context(), Options{Out: &out})
	t.Logf("demo took %v", time.Since(start).Round(100*time.Millisecond))
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := out.String()
	for _, want := range []string{
		"==> Building the reconcile and drift functions",
		"==> Starting moto_server",
		"==> Creating a VPC and 15 security groups",
		"==> Creating versioned bucket s3://" + Bucket + ", notifying SQS queue " + Queue,
		"==> Creating the ownership ledger, DynamoDB table " + Table,
		"==> Uploading 7 example rule files to s3://sgrules-demo/rules/",
		"skipped raw-group-id.yaml",
		"==> Starting the reconcile function (built in ",
		") under the Lambda Runtime Interface Emulator",
		"==> Delivering the S3 events from SQS queue",
		"(9 ObjectCreated:Put",
		"==> The policy refused open-ssh.yaml",
		"rules/open-ssh.yaml:8:18: ssh-from-anywhere: violates policy NO-WORLD-SSH",
		"→ 0 failed",
		"==> Security group rules after the reconcile function ran",
		"all 32 declared rules are in place",
		"==> Creating a second target: account 111122223333 in region eu-west-1, with the credentials of its role sgrules-target",
		"and partner-account.yaml, which names account: \"111122223333\" and region: eu-west-1",
		"==> Security group rules after the reconcile function ran in account 111122223333, region eu-west-1 (6 rules in 3 groups)",
		"all 3 rules of partner-account.yaml are in place there",
		"in account 111122223333, region eu-west-1:\n    deleting a managed rule:   web ingress tcp 443 from 0.0.0.0/0",
		"account 123456789012, us-east-1: 2 rules drifted, 2 reverted",
		"account 111122223333, eu-west-1: 2 rules drifted, 2 reverted, 3 groups checked",
		"==> What the drift function did in account 111122223333, region eu-west-1",
		"description reverted  cache",
		"converged in account 111122223333, region eu-west-1 too: 3 declared rules in place",
		"==> Simulating drift",
		"==> Starting the drift function",
		"==> What the drift function did",
		"restored ",
		"description reverted ",
		"left alone ",
		"==> Uploading the guardrail policy",
		"policy violation reported: admin ingress tcp 22 from 0.0.0.0/0",
		"converged: 32 declared rules in place, 2 unmanaged rules left alone (1 reported as a policy violation)",
		"==> Uploading incident-4711.yaml: SSH to admin from 198.51.100.7/32 for an incident, expiresAt: ",
		"tagged sgrules:expires-at=",
		"the function set EventBridge Scheduler schedule sgrules-demo-expiry/sgrules-expiry-123456789012-us-east-1: at(",
		`with {"sweep":{"account":"123456789012","region":"us-east-1"}}`,
		"==> Attribution: alice (assumed-role/Admin/alice) deletes web ingress tcp 443 from 0.0.0.0/0",
		"reverted; by assumed-role/Admin/alice (RevokeSecurityGroupIngress at ",
		"SNS sgrules-demo-alerts: assumed-role/Admin/alice (RevokeSecurityGroupIngress at ",
		"==> sgrules usage --flow-logs s3://sgrules-demo-flow-logs/ --since 1d DIR",
		" rules: 1 used, ",
		"==> sgrules history --table sgrules-demo-ledger rules/web.yaml#web-https-rule",
		"==> sgrules history --table sgrules-demo-ledger rules/incident-4711.yaml#ssh-alice",
		"the drift function swept account 123456789012, us-east-1 alone and revoked admin ingress tcp 22 from 198.51.100.7/32",
		"==> Stopping moto_server",
		"Demo finished successfully in ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if !strings.HasSuffix(strings.TrimSpace(got), "s.") || !strings.Contains(lastLine(got), "Demo finished successfully") {
		t.Errorf("output does not end with success: %q", lastLine(got))
	}
	assertStopped(t, got)
}

// TestRunCancelled cancels the demo midway, as Ctrl-C does, and checks that
// it stops what it started.
func TestRunCancelled(t *testing.T) {
	needTools(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	w := &cancelAt{w: &bytes.Buffer{}, at: "==> Uploading", cancel: cancel, start: time.Now()}
	start := time.Now()
	err := Run(ctx, Options{Out: w})
	t.Logf("cancelled demo took %v", time.Since(start).Round(100*time.Millisecond))
	out := w.String()
	t.Logf("output:\n%s", out)
	if err == nil || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("Run = %v, want an interruption\n%s", err, out)
	}
	if !strings.Contains(out, "==> Stopping moto_server") || strings.Contains(out, "Demo finished successfully") {
		t.Errorf("output:\n%s", out)
	}
	assertStopped(t, out)
}

// TestRunWithoutMoto checks that the demo stops before starting anything,
// naming the fix, when moto_server is not installed.
func TestRunWithoutMoto(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	var out bytes.Buffer
	err := Run(t.Context(), Options{Out: &out})
	if !errors.Is(err, ErrMotoNotInstalled) || !strings.Contains(err.Error(), `pip install "moto[server]"`) {
		t.Fatalf("Run = %v, want ErrMotoNotInstalled naming pip install", err)
	}
	if out.Len() != 0 {
		t.Errorf("output before failing: %q", out.String())
	}
}

var motoURL = regexp.MustCompile(`moto_server is listening on (http://\S+)`)

// assertStopped checks that the moto_server the output names no longer
// answers.
func assertStopped(t *testing.T, out string) {
	t.Helper()
	m := motoURL.FindStringSubmatch(out)
	if m == nil {
		t.Fatal("output names no moto_server URL")
	}
	c := &http.Client{Timeout: 2 * time.Second}
	if resp, err := c.Get(m[1] + "/moto-api/data.json"); err == nil {
		resp.Body.Close()
		t.Errorf("moto_server at %s still answers after Run", m[1])
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// cancelAt cancels when the output reaches a line containing at.
type cancelAt struct {
	mu     sync.Mutex
	w      *bytes.Buffer
	at     string
	cancel context.CancelFunc
	start  time.Time
}

func (c *cancelAt) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.w, "[%v] ", time.Since(c.start).Round(10*time.Millisecond))
	if bytes.Contains(p, []byte(c.at)) {
		c.cancel()
	}
	return c.w.Write(p)
}

func (c *cancelAt) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.w.String()
}
