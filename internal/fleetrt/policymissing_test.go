package fleetrt

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/sgrules/sgrules/internal/config"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// POLICY_KEY naming an object that is not there (a .yml/.yaml typo, a
// DeleteObject) is reported on every run (a log line with the embedded
// PolicyMissing metric); with REQUIRE_POLICY it holds every change, as a
// broken policy does.
func TestMissingPolicyIsReportedAndRequiredHolds(t *testing.T) {
	for _, require := range []string{"", "true"} {
		t.Run("REQUIRE_POLICY="+require, func(t *testing.T) {
			w := newWorld(t)
			ctx := context.Background()
			w.put("rules/ssh.yaml", "", w.home, 22, "ssh")
			b := w.target(acctB, "")
			w.put("rules/b.yaml", `account: "111122223333"`+"\n", b, 80, "b") // two targets: two engines read the policy
			c, err := config.Reconcile.Load(func(k string) string {
				return map[string]string{config.EnvStateTable: "ledger", config.EnvRulesBucket: "rules", config.EnvPolicyKey: "policy/sgrules.yml", config.EnvRequirePolicy: require,
					config.EnvTargetAccounts: acctB}[k]
			})
			if err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			fl, err := New(ctx, c, w.hub, EngineOptions{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			for run := 1; run <= 2; run++ {
				res, err := fl.Reconcile(ctx, reconcile.Request{All: true}, nil)
				if err != nil || res.Err() != nil {
					t.Fatal(err, res.Err())
				}
				// Once per run, however many engines and attempts read it.
				if n := strings.Count(logs.String(), `"PolicyMissing":1`); n != run || !strings.Contains(logs.String(), "policy/sgrules.yml") {
					t.Fatalf("run %d: %d PolicyMissing reports:\n%s", run, n, logs.String())
				}
				st := source(res, w.home, "rules/ssh.yaml").Status
				if require == "true" && (st != reconcile.StatusHeld && st != reconcile.StatusInvalid || res.Targets[0].Result.Policy.Invalid == nil) {
					t.Errorf("run %d: required policy missing, source %s, policy %+v; want every change held", run, st, res.Targets[0].Result.Policy)
				}
				if require == "" && st != reconcile.StatusApplied {
					t.Errorf("run %d: source %s, want applied (no policy required)", run, st)
				}
			}
			want, wantB := "22 ssh", "80 b"
			if require == "true" {
				want, wantB = "", ""
			}
			w.expect(map[rules.Target]string{w.home: want, b: wantB})
		})
	}
}
