package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/sgrules/sgrules/internal/testutil/rie"
)

func TestMain(m *testing.M) { rie.Main(m) }

// env is what the template sets, with a region and dummy credentials. None
// of these invocations calls AWS.
var env = []string{
	"STATE_TABLE=ledger", "RULES_BUCKET=sgrules-rules-123456789012-eu-west-1", "RULES_PREFIX=rules/", "MAX_REVOKE=50",
	"AWS_REGION=eu-west-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_EC2_METADATA_DISABLED=true",
	"AWS_LAMBDA_LOG_FORMAT=JSON",
}

// The real bootstrap starts under the emulator and answers events that
// need no AWS call; its logs are JSON with the request id.
func TestBootstrap(t *testing.T) {
	fn := rie.Start(t, rie.Build(t, "./functions/reconcile"), env)
	payload, err := os.ReadFile("testdata/s3-test-event.json")
	if err != nil {
		t.Fatal(err)
	}
	out := fn.Invoke(t, payload)
	if string(out) != `{"kind":"s3-test","ignored":"s3:TestEvent"}` {
		t.Errorf("s3 test event: %s", out)
	}
	init, _ := fn.InitDuration()
	t.Logf("emulator ready in %v; bootstrap init %v", fn.Ready, init)

	// An object outside the prefix: decoded, filtered, nothing to do.
	out = fn.Invoke(t, []byte(`{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"sgrules-rules-123456789012-eu-west-1"},"object":{"key":"other/x.yaml"}}}]}`))
	if string(out) != `{"kind":"objects","ignored":"no rule files"}` {
		t.Errorf("object outside the prefix: %s", out)
	}
	if !strings.Contains(fn.Logs(), `"message":"not a rule file, ignored"`) || !strings.Contains(fn.Logs(), `"requestId":"`) {
		t.Errorf("logs lack the JSON line with a request id:\n%s", fn.Logs())
	}

	var fail struct{ ErrorMessage string }
	if err := json.Unmarshal(fn.Invoke(t, []byte(`{"what":"ever"}`)), &fail); err != nil || !strings.Contains(fail.ErrorMessage, `unrecognised event with fields "what"`) {
		t.Errorf("unknown event: %+v, %v", fail, err)
	}
}

// Without its required configuration the function fails at init, saying why.
func TestBootstrapMissingConfig(t *testing.T) {
	fn := rie.Start(t, rie.Build(t, "./functions/reconcile"), []string{"AWS_REGION=eu-west-1", "AWS_LAMBDA_LOG_FORMAT=JSON"})
	if status, body := fn.InvokeStatus(t, []byte(`{}`)); status != 502 {
		t.Errorf("invoke of a function that failed init: %d %s, want 502", status, body)
	}
	if msg := "STATE_TABLE and RULES_BUCKET must be set"; !strings.Contains(fn.WaitLogs(msg), msg) {
		t.Errorf("logs lack the configuration error:\n%s", fn.Logs())
	}
}
