package reconcile_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/adapters/s3source"
	"github.com/sgrules/sgrules/internal/dev/apicount"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/testutil/legacyledger"
)

// TestSweepAfterLedgerUpgrade: the examples applied, the ledger table put
// back into the layout of the earlier version (legacyledger), a new
// process's sweep upgrades it and changes nothing in EC2: no rule revoked
// or re-created, every source applied as before; ownership carried over,
// so removing a file then revokes exactly its rules.
func TestSweepAfterLedgerUpgrade(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	files := loadExamples(t)
	for k, b := range files {
		w.put(k, b)
	}
	w.reconcile(reconcile.Request{All: true, Reason: "test"})
	before := w.rules()
	if n, err := legacyledger.Rewrite(ctx, dynamodb.NewFromConfig(w.cfg), "ledger"); err != nil || n == 0 {
		t.Fatalf("rewrite to the earlier layout: %d items, %v", n, err)
	}
	eng, err := reconcile.New(reconcile.Config{
		Source:   s3source.New(w.s3, w.bucket, "rules/"),
		Groups:   ec2sg.New(ec2.NewFromConfig(w.cfg)),
		Ledger:   ddbledger.New(dynamodb.NewFromConfig(w.cfg), "ledger"),
		LedgerID: "ledger",
	})
	if err != nil {
		t.Fatal(err)
	}
	w.eng = eng
	w.calls.Reset()
	res := w.reconcile(reconcile.Request{All: true, Reason: "sweep"})
	if n := w.calls.Sum("EC2", apicount.IsEC2Mutating); n != 0 || len(res.Plan.Actions) != 0 {
		t.Errorf("the sweep after the upgrade made %d mutating EC2 calls, plan %+v: %s", n, res.Plan.Actions, w.calls)
	}
	for _, s := range res.Sources {
		if s.Status != reconcile.StatusApplied {
			t.Errorf("%s: %s %s", s.Key, s.Status, s.Message)
		}
	}
	if got := w.rules(); strings.Join(got, "\n") != strings.Join(before, "\n") {
		t.Fatalf("rules after the upgrade differ:\n%s", diffLines(got, before))
	}
	w.remove("rules/vpn.yaml")
	w.reconcile(reconcile.Request{Keys: []string{"rules/vpn.yaml"}})
	want := without(before, w.expected(map[string][]byte{"rules/vpn.yaml": files["rules/vpn.yaml"]}))
	if got := w.rules(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("after removing vpn.yaml:\n%s", diffLines(got, want))
	}
}
