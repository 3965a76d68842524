package flowsrc_test

import (
	"context"
	"testing"
	"time"

	"github.com/sgrules/sgrules/internal/adapters/flowsrc"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/testutil/flowcorpus"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
	"github.com/sgrules/sgrules/pkg/rules"
)

// TestEvidence: the engine's evidence from the flow logs in moto. No log
// object of the account and region in the window: unknown. With one: the
// rule a flow credits is used (its last flow and peer), the other is
// known unused; a window starting after the flow finds it unused; the
// logs are read once per MaxAge.
func TestEvidence(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	vpc := motoserver.CreateVPC(t, e.cfg)
	db := motoserver.CreateGroup(t, e.cfg, vpc, "db-sg", nil)
	eni, err := flowcorpus.Interface(ctx, e.ec2, vpc, "10.0.200.10", db)
	if err != nil {
		t.Fatal(err)
	}
	pg := rules.Key{GroupID: db, Direction: rules.Ingress, Protocol: "tcp", FromPort: 5432, ToPort: 5432, Peer: rules.Peer{Kind: rules.PeerCIDR4, Value: "10.0.1.0/24"}}
	ssh := rules.Key{GroupID: db, Direction: rules.Ingress, Protocol: "tcp", FromPort: 22, ToPort: 22, Peer: rules.Peer{Kind: rules.PeerCIDR4, Value: "10.0.1.0/24"}}
	asked := []reconcile.UsageRule{{RuleID: "sgr-pg", Key: pg}, {RuleID: "sgr-ssh", Key: ssh}}
	newEvidence := func() *flowsrc.Evidence {
		logs := flowsrc.NewLogs(e.cs3, bucket, "vpc/")
		logs.Accounts, logs.Regions = []string{flowcorpus.Account}, []string{e.cfg.Region}
		return flowsrc.NewEvidence(logs, flowsrc.NewLookup(e.cec2))
	}
	now := time.Now()

	got, err := newEvidence().RuleUsage(ctx, rules.Target{}, asked, now.Add(-48*time.Hour))
	if err != nil || got[0].Known || got[1].Known {
		t.Fatalf("no logs: %+v, %v", got, err)
	}

	at := now.Add(-3 * time.Hour).Truncate(time.Second)
	if _, err := flowcorpus.PutLog(ctx, e.s3, bucket, "vpc/", e.cfg.Region, "a",
		[]flowcorpus.Flow{{ENI: eni, Peer: "10.0.1.7", Addr: "10.0.200.10", Port: 5432, At: at}}); err != nil {
		t.Fatal(err)
	}
	ev := newEvidence()
	got, err = ev.RuleUsage(ctx, rules.Target{}, asked, now.Add(-48*time.Hour))
	want := []reconcile.RuleUse{{Known: true, Flows: 1, Bytes: 840, Last: at, Peer: "10.0.1.7"}, {Known: true}}
	if err != nil || len(got) != 2 || !got[0].Last.Equal(want[0].Last) || got[0].Flows != 1 || got[0].Peer != "10.0.1.7" || !got[0].Known || got[1] != want[1] {
		t.Fatalf("with a log: %+v, %v; want %+v", got, err, want)
	}
	reads := e.calls.Snapshot()["S3.GetObject"]
	if reads == 0 {
		t.Fatal("no GetObject counted")
	}
	if got, err = ev.RuleUsage(ctx, rules.Target{}, asked, now.Add(-48*time.Hour)); err != nil || !got[0].Used() {
		t.Fatalf("again: %+v, %v", got, err)
	}
	if n := e.calls.Snapshot()["S3.GetObject"]; n != reads {
		t.Errorf("the second question read the logs again (%d GetObject, then %d)", reads, n)
	}
	// The window after the flow holds a log object of its own (a flow no
	// rule allows): the logs were delivered, the 5432 rule carried
	// nothing. Without one the answer is unknown, as above; that object
	// also keeps the test clear of midnight UTC, when the first object's
	// day folder lies before the window.
	if _, err := flowcorpus.PutLog(ctx, e.s3, bucket, "vpc/", e.cfg.Region, "b",
		[]flowcorpus.Flow{{ENI: eni, Peer: "10.0.1.7", Addr: "10.0.200.10", Port: 9999, At: now.Truncate(time.Second)}}); err != nil {
		t.Fatal(err)
	}
	got, err = newEvidence().RuleUsage(ctx, rules.Target{}, asked, now.Add(-time.Hour))
	if err != nil || got[0].Used() || !got[0].Known {
		t.Fatalf("a window after the flow: %+v, %v", got, err)
	}
}
