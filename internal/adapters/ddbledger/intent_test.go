package ddbledger_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Intents are written, read per group and in full, kept apart per target
// and from permissions, and cleared; clearing an absent one is no error.
func TestIntents(t *testing.T) {
	l, _, _ := setup(t, ddbledger.WithHome(rules.Target{Account: "123456789012", Region: "us-east-1"}))
	ctx := context.Background()
	at := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	a, b, c := key("sg-a", 22, "10.0.0.0/8"), key("sg-a", 443, "0.0.0.0/0"), key("sg-b", 5432, "10.1.0.0/16")
	if err := l.RecordIntents(ctx, []reconcile.Intent{{Key: b, At: at}, {Key: a, At: at}, {Key: c, At: at}, {Key: a, At: at}}); err != nil {
		t.Fatal(err)
	}
	other := l.For(rules.Target{Account: "111122223333", Region: "us-east-1"})
	if err := other.RecordIntents(ctx, []reconcile.Intent{{Key: a, At: at}}); err != nil {
		t.Fatal(err)
	}
	all, err := l.Intents(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []reconcile.Intent{{Key: a, At: at}, {Key: b, At: at}, {Key: c, At: at}}; !reflect.DeepEqual(all, want) {
		t.Fatalf("all intents: %+v, want %+v", all, want)
	}
	ofB, err := l.Intents(ctx, []string{"sg-b"})
	if err != nil || len(ofB) != 1 || ofB[0].Key != c {
		t.Fatalf("intents of sg-b: %+v %v", ofB, err)
	}
	if perms, err := l.AllPermissions(ctx); err != nil || len(perms) != 0 {
		t.Fatalf("intents read as permissions: %+v %v", perms, err)
	}
	if err := l.ClearIntents(ctx, []rules.Key{a, c, key("sg-c", 1, "10.0.0.0/8")}); err != nil {
		t.Fatal(err)
	}
	all, err = l.Intents(ctx, nil)
	if err != nil || len(all) != 1 || all[0].Key != b {
		t.Fatalf("after clearing: %+v %v", all, err)
	}
	theirs, err := other.Intents(ctx, nil)
	if err != nil || len(theirs) != 1 || theirs[0].Key != a {
		t.Fatalf("the other target's intents: %+v %v", theirs, err)
	}
}
