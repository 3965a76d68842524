package handler

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestResponseJSON pins the JSON shape of the responses (docs/cli.md): the
// handler's own camelCase documents, never the engine's Go field names.
func TestResponseJSON(t *testing.T) {
	threeSources := func(req reconcile.Request) reconcile.Result {
		return reconcile.Result{Sources: []reconcile.SourceResult{
			{Key: "rules/web.yaml", Status: reconcile.StatusApplied, RuleIDs: []string{"sgr-0123456789abcdef0", "sgr-0123456789abcdef1"}},
			{Key: "rules/db.yaml", Status: reconcile.StatusInvalid, Message: "not applied: 1 error",
				Diagnostics: rules.Diagnostics{{File: "rules/db.yaml", Line: 4, Col: 15, Rule: "pg", Field: "fromPort", Severity: rules.SeverityError, Msg: "port 70000 out of range 0-65535"}}},
			{Key: "rules/old.yaml", Status: reconcile.StatusHeld, Message: "held: the plan would revoke 60 rules, over the limit of 50",
				Guard: &reconcile.GuardHold{Losses: 60, FromSource: 60, Limit: 50}, RuleIDs: []string{"sgr-0fedcba9876543210"}},
			{Key: "cfn/stack/Rules", Status: reconcile.StatusInvalid, Recorded: []string{"cfn/stack/Rules:1:1: bad: unknown field"}},
		}}
	}
	tests := []struct {
		name, function, event string
		drift                 bool
		res                   func(reconcile.Request) reconcile.Result
	}{
		{name: "s3-put", function: "reconcile", event: "s3-put.json", res: threeSources},
		{name: "s3-test-event", function: "reconcile", event: "s3-test-event.json"},
		{name: "drift-schedule", function: "drift", event: "schedule.json", drift: true, res: drifted},
		{name: "drift-own-call", function: "drift", event: "cloudtrail-revoke-own-role.json", drift: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, eng, _ := newTest(t, tc.drift, Config{IgnoreRoles: []string{ownRole}})
			eng.res = tc.res
			out, err := h.Handle(context.Background(), sample(t, tc.function, tc.event))
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.MarshalIndent(out, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := filepath.Join("testdata", "response-"+tc.name+".json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if string(got) != string(want) {
				t.Errorf("response differs from %s (run with -update):\n%s", golden, got)
			}
		})
	}
}
