package report_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/pkg/rules"
)

// A plan's exclusive conflicts and unverified claims are in the drift
// report, its EMF line, and the plan and drift JSON documents (before:
// only in the log, the conflicts as an error line).
func TestExclusiveConflictsAndUnverifiedClaimsAreReported(t *testing.T) {
	k := key("sg-1", rules.Ingress, "tcp", 5432, 5432, rules.Peer{Kind: rules.PeerCIDR4, Value: "10.2.0.0/16"})
	res := reconcile.Result{Plan: reconcile.Plan{
		ExclusiveConflicts: []reconcile.ExclusiveConflict{{GroupID: "sg-1", Deployments: []string{"dep-b"}}},
		UnverifiedClaims:   []reconcile.ClaimedRule{{Rule: reconcile.ActualRule{Key: k, RuleID: "sgr-1"}, Deployments: []string{"dep-x"}, Honoured: true}},
	}}
	r := report.Build(res)
	if len(r.ExclusiveConflicts) != 1 || r.ExclusiveConflicts[0].GroupID != "sg-1" || r.ExclusiveConflicts[0].Deployments[0] != "dep-b" {
		t.Errorf("report's exclusive conflicts: %+v", r.ExclusiveConflicts)
	}
	if len(r.UnverifiedClaims) != 1 || r.UnverifiedClaims[0].RuleID != "sgr-1" || !r.UnverifiedClaims[0].Honoured ||
		r.UnverifiedClaims[0].Rule != "tcp 5432 from 10.2.0.0/16" {
		t.Errorf("report's unverified claims: %+v", r.UnverifiedClaims)
	}
	var values map[string]any
	if err := json.Unmarshal(r.EMF(time.Unix(0, 0)), &values); err != nil {
		t.Fatal(err)
	}
	if values["ExclusiveConflicts"] != 1.0 || values["UnverifiedClaims"] != 1.0 {
		t.Errorf("EMF: %v", values)
	}
	for name, doc := range map[string]any{"plan": report.NewPlanDoc(res, nil), "drift": report.NewDriftDoc(res, nil, false, nil)} {
		var b bytes.Buffer
		if err := report.JSON(&b, doc); err != nil {
			t.Fatal(err)
		}
		var got struct {
			ExclusiveConflicts []struct {
				GroupID     string   `json:"groupId"`
				Deployments []string `json:"deployments"`
			} `json:"exclusiveConflicts"`
			UnverifiedClaims []struct {
				RuleID   string `json:"ruleId"`
				Honoured bool   `json:"honoured"`
			} `json:"unverifiedClaims"`
		}
		if err := json.Unmarshal(b.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if len(got.ExclusiveConflicts) != 1 || got.ExclusiveConflicts[0].GroupID != "sg-1" ||
			len(got.UnverifiedClaims) != 1 || got.UnverifiedClaims[0].RuleID != "sgr-1" || !got.UnverifiedClaims[0].Honoured {
			t.Errorf("%s JSON: %s", name, b.String())
		}
	}
}
