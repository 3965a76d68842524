package ddbledger_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/pkg/rules"
)

// The identity is stored once: a read-only call before finds none, the
// first proposal wins, concurrent first runs agree on one, and every
// target's scope of the table has the same.
func TestDeploymentID(t *testing.T) {
	l, _, _ := setup(t, ddbledger.WithHome(rules.Target{Account: "123456789012", Region: "us-east-1"}))
	ctx := context.Background()
	if id, err := l.DeploymentID(ctx, ""); err != nil || id != "" {
		t.Fatalf("before any: %q %v", id, err)
	}
	ids := make([]string, 8)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			id, err := l.DeploymentID(ctx, fmt.Sprintf("proposal-%d", i))
			if err != nil {
				t.Error(err)
			}
			ids[i] = id
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] || id == "" {
			t.Fatalf("concurrent first runs disagree: %v", ids)
		}
	}
	if id, err := l.DeploymentID(ctx, "late"); err != nil || id != ids[0] {
		t.Fatalf("a later proposal: %q %v, want %q", id, err, ids[0])
	}
	other := l.For(rules.Target{Account: "111122223333", Region: "eu-west-1"})
	if id, err := other.DeploymentID(ctx, "other"); err != nil || id != ids[0] {
		t.Fatalf("another target's scope: %q %v, want %q", id, err, ids[0])
	}
}
