package fleetrt

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/sgrules/sgrules/internal/lambda/handler"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/report"
	"github.com/sgrules/sgrules/pkg/rules"
)

type sentQueue struct{ bodies []string }

func (q *sentQueue) Send(_ context.Context, bodies []string) error {
	q.bodies = append(q.bodies, bodies...)
	return nil
}

// After an account leaves TARGET_ACCOUNTS, the scheduled drift function
// goes on (with and without a sweep queue): the account's targets are
// reported once per schedule (a warning each, the OffboardedTargets
// metric), their records are kept and never swept, the rest is swept.
func TestDriftScheduleWithAnOffboardedAccount(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	home, c := w.home, w.target(acctC, "")
	w.put("rules/home.yaml", "", home, 22, "home")
	w.put("rules/c.yaml", `account: "444455556666"`+"\n", c, 5432, "c")
	if res, err := w.fleet().Reconcile(ctx, reconcile.Request{All: true}, nil); err != nil || res.Err() != nil {
		t.Fatal(err, res.Err())
	}
	w.remove("rules/c.yaml")
	fl := w.fleetOf(acctB) // C is gone from TARGET_ACCOUNTS
	recordsOfC := func() int {
		all, err := fl.ledger.ListAllSources(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(all[c])
	}

	for _, queued := range []bool{false, true} {
		var logs, metrics strings.Builder
		q := &sentQueue{}
		cfg := handler.Config{Fleet: fl, Metrics: &metrics,
			Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
		if queued {
			cfg.Queue, cfg.ShardGroups = q, fl.ShardGroups
		}
		h, err := handler.NewDrift(cfg)
		if err != nil {
			t.Fatal(err)
		}
		out, err := h.Handle(ctx, json.RawMessage(`{"version":"0","id":"s1","detail-type":"Scheduled Event","source":"aws.events","account":"123456789012","region":"us-east-1","detail":{}}`))
		if err != nil {
			t.Fatalf("queued=%v: the schedule failed with an offboarded account: %v", queued, err)
		}
		resp := out.(report.Response)
		if len(resp.Offboarded) != 1 || resp.Offboarded[0].Account != acctC {
			t.Errorf("queued=%v: response offboarded = %+v, want account C", queued, resp.Offboarded)
		}
		if n := strings.Count(logs.String(), "target offboarded"); n != 1 || !strings.Contains(logs.String(), acctC) {
			t.Errorf("queued=%v: %d offboarded warnings, want 1 naming %s:\n%s", queued, n, acctC, logs.String())
		}
		if !strings.Contains(metrics.String(), `"OffboardedTargets":1`) {
			t.Errorf("queued=%v: no OffboardedTargets metric:\n%s", queued, metrics.String())
		}
		for _, b := range q.bodies {
			if strings.Contains(b, acctC) {
				t.Errorf("sweep message for the offboarded account: %s", b)
			}
		}
		if queued && len(q.bodies) == 0 {
			t.Error("no sweep planned")
		}
		for _, tg := range resp.Targets {
			if tg.Account == acctC || tg.Error != "" {
				t.Errorf("queued=%v: target run %+v", queued, tg)
			}
		}
	}
	// A sweep message naming C (sent before it left) is not run there.
	if res, err := fl.Reconcile(ctx, reconcile.Request{All: true}, []rules.Target{c}); err != nil || res.Err() != nil || len(res.Targets) != 0 {
		t.Errorf("sweep of the offboarded target = %+v, %v", res, err)
	}
	w.expect(map[rules.Target]string{home: "22 home", c: "5432 c"})
	if n := recordsOfC(); n != 1 {
		t.Errorf("%d records of C left, want 1 (kept)", n)
	}
}
