package reconcile

import (
	"context"
	"testing"

	"github.com/sgrules/sgrules/pkg/rules"
)

// cancelAwareLedger refuses ClearIntents under a done context, as the
// SDK does.
type cancelAwareLedger struct {
	*fakeLedger
}

func (l cancelAwareLedger) ClearIntents(ctx context.Context, keys []rules.Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return l.fakeLedger.ClearIntents(ctx, keys)
}

// TestClearIntentsOutlivesTheRunsDeadline: intents are cleared after the
// commit even when the run's context ended meanwhile (chaos seed 20263366:
// a sweep at its deadline cleared one chunk of its 108 intents and left 8,
// which the next, idle sweep deleted).
func TestClearIntentsOutlivesTheRunsDeadline(t *testing.T) {
	led := cancelAwareLedger{newFakeLedger()}
	k := rules.Key{GroupID: "sg-1", Direction: rules.Ingress, Protocol: "tcp", FromPort: 22, ToPort: 22,
		Peer: rules.Peer{Kind: rules.PeerCIDR4, Value: "10.0.0.0/8"}}
	if err := led.RecordIntents(context.Background(), []Intent{{Key: k}}); err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{Groups: newFakeEC2(), Ledger: led, LedgerID: testLedgerID})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e.clearIntents(ctx, []rules.Key{k})
	left, err := led.Intents(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("intents left after the run's context ended: %+v", left)
	}
}
