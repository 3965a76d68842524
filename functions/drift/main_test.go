package main

import (
	"os"
	"testing"

	"github.com/sgrules/sgrules/internal/testutil/motoserver"
	"github.com/sgrules/sgrules/internal/testutil/rie"
)

func TestMain(m *testing.M) { motoserver.Main(m, rie.RemoveBuilds) }

// The real bootstrap starts under the emulator and ignores the API calls of
// sgrules' own roles without calling AWS.
func TestBootstrapIgnoresOwnCalls(t *testing.T) {
	fn := rie.Start(t, rie.Build(t, "./functions/drift"), []string{
		"STATE_TABLE=ledger", "RULES_BUCKET=b", "DRIFT_MODE=report",
		"SGRULES_ROLE_ARNS=arn:aws:iam::123456789012:role/sgrules-reconcile-eu-west-1,arn:aws:iam::123456789012:role/sgrules-drift-eu-west-1",
		"AWS_REGION=eu-west-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_EC2_METADATA_DISABLED=true",
	})
	payload, err := os.ReadFile("testdata/cloudtrail-revoke-own-role.json")
	if err != nil {
		t.Fatal(err)
	}
	out := fn.Invoke(t, payload)
	if want := `{"kind":"api-call","ignored":"own call by arn:aws:iam::123456789012:role/sgrules-drift-eu-west-1"}`; string(out) != want {
		t.Errorf("own call: %s, want %s", out, want)
	}
	init, _ := fn.InitDuration()
	t.Logf("emulator ready in %v; bootstrap init %v", fn.Ready, init)
}
