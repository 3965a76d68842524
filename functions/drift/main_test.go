package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/sgrules/sgrules/internal/report"
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

// Only the exact role ARNs of sgrules make a CloudTrail call its own: the
// functions' roles and the target role in each target account. A session
// of a role that merely has the target role's name (in the hub, in an
// account that is not a target, under another path), or a caller whose
// session name looks like one, is swept like anyone's call.
func TestBootstrapOwnCallsByExactARN(t *testing.T) {
	srv := motoserver.Shared(t)
	srv.Reset(t)
	const hub, target, stranger = "123456789012", "111122223333", "444455556666"
	driftRole := "arn:aws:iam::" + hub + ":role/sgrules-drift-eu-west-1"
	fn := rie.Start(t, rie.Build(t, "./functions/drift"), append(srv.Env(),
		"STATE_TABLE=ledger", "RULES_BUCKET=b", "DRIFT_MODE=report",
		"SGRULES_ROLE_ARNS=arn:aws:iam::"+hub+":role/sgrules-reconcile-eu-west-1,"+driftRole,
		"TARGET_ACCOUNTS="+target, "TARGET_ROLE=sgrules-target"))
	sample, err := os.ReadFile("testdata/cloudtrail-revoke-own-role.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, account, caller, issuer string
		own                           bool
	}{
		{"drift role", hub, "arn:aws:sts::" + hub + ":assumed-role/sgrules-drift-eu-west-1/s", driftRole, true},
		{"target role in a target account", target, "arn:aws:sts::" + target + ":assumed-role/sgrules-target/sgrules-drift",
			"arn:aws:iam::" + target + ":role/sgrules-target", true},
		{"a role named sgrules-target in the hub", hub, "arn:aws:sts::" + hub + ":assumed-role/sgrules-target/mallory",
			"arn:aws:iam::" + hub + ":role/sgrules-target", false},
		{"a role named sgrules-target in another account", stranger, "arn:aws:sts::" + stranger + ":assumed-role/sgrules-target/mallory",
			"arn:aws:iam::" + stranger + ":role/sgrules-target", false},
		{"the name under another path", target, "arn:aws:sts::" + target + ":assumed-role/sgrules-target/mallory",
			"arn:aws:iam::" + target + ":role/evil/sgrules-target", false},
		{"a caller that looks like the target role", target, "arn:aws:sts::" + target + ":assumed-role/sgrules-target/mallory",
			"arn:aws:iam::" + target + ":role/admin", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := strings.ReplaceAll(string(sample), "arn:aws:sts::123456789012:assumed-role/sgrules-drift-eu-west-1/sgrules-DriftFunction-Q1w2E3r4T5y6", tc.caller)
			p = strings.ReplaceAll(p, "arn:aws:iam::123456789012:role/sgrules-drift-eu-west-1", tc.issuer)
			p = strings.ReplaceAll(p, "123456789012", tc.account)
			out := string(fn.Invoke(t, []byte(p)))
			ignored := `{"kind":"api-call","ignored":"own call by ` + tc.issuer + `"}`
			if tc.own && out != ignored {
				t.Errorf("own call: %s, want %s", out, ignored)
			}
			if !tc.own && strings.Contains(out, "own call") {
				t.Errorf("someone else's call ignored as sgrules' own: %s", out)
			}
		})
	}
}

// With no MANAGED_GROUP_TAG the functions may change every security group
// of the account and region: the drift report says so (scope); with the
// tag it does not.
func TestBootstrapReportSaysScopeWithoutManagedGroupTag(t *testing.T) {
	srv := motoserver.Shared(t)
	srv.Reset(t)
	cfg := srv.Config(t)
	motoserver.CreateBucket(t, cfg, "rules-scope", true)
	motoserver.CreateTable(t, cfg, "ledger")
	payload, err := os.ReadFile("testdata/cloudtrail-revoke-ingress-alice.json")
	if err != nil {
		t.Fatal(err)
	}
	bin := rie.Build(t, "./functions/drift")
	for _, tag := range []string{"", "sgrules"} {
		t.Run("tag="+tag, func(t *testing.T) {
			fn := rie.Start(t, bin, append(srv.Env(), "STATE_TABLE=ledger", "RULES_BUCKET=rules-scope", "DRIFT_MODE=report",
				"MANAGED_GROUP_TAG="+tag))
			var resp struct {
				Error string
				Drift *struct{ Scope, Account, Region string }
			}
			out := fn.Invoke(t, payload)
			if err := json.Unmarshal(out, &resp); err != nil || resp.Drift == nil || resp.Error != "" {
				t.Fatalf("response %s (%v)", out, err)
			}
			if tag == "" && resp.Drift.Scope != report.ScopeEveryGroup {
				t.Errorf("scope %q, want %q", resp.Drift.Scope, report.ScopeEveryGroup)
			}
			if tag != "" && resp.Drift.Scope != "" {
				t.Errorf("scope %q with MANAGED_GROUP_TAG set, want none", resp.Drift.Scope)
			}
		})
	}
}
