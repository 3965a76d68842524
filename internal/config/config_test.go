package config

import (
	"slices"
	"strings"
	"testing"

	"github.com/sgrules/sgrules/internal/reconcile"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestLoad(t *testing.T) {
	full := map[string]string{"STATE_TABLE": "t", "RULES_BUCKET": "b", "RULES_PREFIX": "r", "MAX_REVOKE": "-1",
		"DRIFT_MODE": "Report", "SGRULES_ROLE_ARNS": "arn:a, arn:b", "ALERT_TOPIC_ARN": "arn:sns", "SGRULES_BUCKET": "cli-b"}
	c, err := Drift.Load(env(full))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Table: "t", Bucket: "b", Prefix: "r/", MaxRevoke: -1, PolicyKey: DefaultPolicyKey, DriftMode: DriftReport,
		RoleARNs: []string{"arn:a", "arn:b"}, AlertTopicARN: "arn:sns"}
	if !equal(c, want) {
		t.Errorf("Drift.Load = %+v, want %+v", c, want)
	}
	if c, err := Reconcile.Load(env(full)); err != nil || c.DriftMode != "" || c.RoleARNs != nil || c.Prefix != "r/" {
		t.Errorf("Reconcile.Load = %+v, %v: reads only its own variables", c, err)
	}
	if c, err := CLI.Load(env(full)); err != nil || c.Bucket != "cli-b" || c.Prefix != "r/" || c.MaxRevoke != -1 {
		t.Errorf("CLI.Load = %+v, %v", c, err)
	}
	if c, err := CLI.Load(env(nil)); err != nil || c.Prefix != "rules/" || c.MaxRevoke != reconcile.DefaultMaxRevoke {
		t.Errorf("CLI.Load of nothing = %+v, %v: want the defaults", c, err)
	}

	for _, tc := range []struct {
		name string
		f    Function
		env  map[string]string
		want string
	}{
		{"missing", Reconcile, map[string]string{"STATE_TABLE": "t"}, "STATE_TABLE and RULES_BUCKET must be set"},
		{"zero", Reconcile, map[string]string{"STATE_TABLE": "t", "RULES_BUCKET": "b", "MAX_REVOKE": "0"}, `MAX_REVOKE "0": must not be 0`},
		{"zero in the CLI too", CLI, map[string]string{"MAX_REVOKE": "0"}, `MAX_REVOKE "0": must not be 0`},
		{"policy under the rules", Reconcile, map[string]string{"STATE_TABLE": "t", "RULES_BUCKET": "b", "POLICY_KEY": "rules/policy.yaml"},
			`POLICY_KEY "rules/policy.yaml": want an object key outside RULES_PREFIX "rules/"`},
		{"pause cap", Drift, map[string]string{"STATE_TABLE": "t", "RULES_BUCKET": "b", "PAUSE_UNTIL_MAX": "forever"},
			`PAUSE_UNTIL_MAX "forever": want a positive duration`},
		{"both wrong", Drift, map[string]string{"STATE_TABLE": "t", "RULES_BUCKET": "b", "MAX_REVOKE": "x", "DRIFT_MODE": "fix"},
			`MAX_REVOKE "x": not an integer` + "\n" + `DRIFT_MODE "fix": want report or revert`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.f.Load(env(tc.env)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load: %v, want %q", err, tc.want)
			}
		})
	}
}

func equal(a, b Config) bool {
	return a.Table == b.Table && a.Bucket == b.Bucket && a.Prefix == b.Prefix && a.MaxRevoke == b.MaxRevoke && a.PolicyKey == b.PolicyKey &&
		a.DriftMode == b.DriftMode && slices.Equal(a.RoleARNs, b.RoleARNs) && a.AlertTopicARN == b.AlertTopicARN
}

// Load reads exactly the variables its Function lists: what the template
// test checks against template.yaml is what the code reads.
func TestLoadReadsItsVars(t *testing.T) {
	for _, f := range append(slices.Clone(Functions), CLI) {
		var read []string
		_, _ = f.Load(func(k string) string { read = append(read, k); return "" })
		if !slices.Equal(read, f.Vars) {
			t.Errorf("%s: Load reads %v, Vars lists %v", f.Name, read, f.Vars)
		}
	}
}
