package fleetrt

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/lambda/handler"
	"github.com/sgrules/sgrules/internal/lambda/trigger"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/testutil/faultproxy"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Moving a file between targets: its new target must accept it before
// its old target lets it go (make before break).

// putGroup writes a rule file whose one rule is in group.
func (w *world) putGroup(key, header, group string, port int, desc string) {
	w.t.Helper()
	body := header + fmt.Sprintf("rules:\n  r:\n    securityGroup: %s\n    type: ingress\n    protocol: tcp\n    fromPort: %d\n    toPort: %d\n    cidrBlocks: [10.0.0.0/8]\n    description: %s\n",
		group, port, port, desc)
	if _, err := s3.NewFromConfig(w.hub, awsconfig.S3Options).PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String("rules"), Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
		w.t.Fatal(err)
	}
}

// source returns the outcome of key in target tg.
func source(res reconcile.FleetResult, tg rules.Target, key string) *reconcile.SourceResult {
	for _, tr := range res.Targets {
		if tr.Target != tg {
			continue
		}
		for _, s := range tr.Result.Sources {
			if s.Key == key {
				return &s
			}
		}
	}
	return nil
}

func describe(res reconcile.FleetResult) string {
	var b strings.Builder
	for _, tr := range res.Targets {
		fmt.Fprintf(&b, "[%s err=%v", tr.Target, tr.Err)
		for _, s := range tr.Result.Sources {
			fmt.Fprintf(&b, " %s:%s %q %v", s.Key, s.Status, s.Message, s.Diagnostics.Strings())
		}
		b.WriteString("]")
	}
	return b.String()
}

const mvKey = "rules/mv.yaml"

// expectPending checks the old target's outcome: pending, naming the new
// target and the reason.
func expectPending(t *testing.T, res reconcile.FleetResult, old, to rules.Target, reason string) {
	t.Helper()
	s := source(res, old, mvKey)
	if s == nil || s.Status != reconcile.StatusPending || !strings.Contains(s.Message, "pending move to "+to.String()) ||
		!strings.Contains(s.Message, reason) {
		t.Errorf("in %s: %s is %+v, want pending move to %s: …%s…\n%s", old, mvKey, s, to, reason, describe(res))
	}
}

func TestMoveToATargetWhereTheGroupDoesNotExistKeepsTheRule(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	home, b := w.home, w.target(acctB, "")
	fl := w.fleet()
	run := func(req reconcile.Request, only ...rules.Target) reconcile.FleetResult {
		t.Helper()
		res, err := fl.Reconcile(ctx, req, only)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	keys := reconcile.Request{Keys: []string{mvKey}}

	w.putGroup(mvKey, "", w.web[home], 22, "mv")
	if res := run(keys); res.Err() != nil {
		t.Fatal(res.Err())
	}
	w.expect(map[rules.Target]string{home: "22 mv", b: ""})

	// Moved to B, still naming the hub's group: it does not exist there.
	w.putGroup(mvKey, `account: "111122223333"`+"\n", w.web[home], 22, "mv")
	res := run(keys)
	w.expect(map[rules.Target]string{home: "22 mv", b: ""})
	expectPending(t, res, home, b, "does not exist")
	if s := source(res, b, mvKey); s == nil || s.Status != reconcile.StatusInvalid {
		t.Errorf("in B: %+v, want invalid\n%s", s, describe(res))
	}
	// A sweep of every target, then one of the old target alone, agree.
	res = run(reconcile.Request{All: true})
	w.expect(map[rules.Target]string{home: "22 mv", b: ""})
	expectPending(t, res, home, b, "does not exist")
	res = run(reconcile.Request{All: true}, home)
	w.expect(map[rules.Target]string{home: "22 mv", b: ""})
	expectPending(t, res, home, b, "does not exist")

	// Fixed: B's group. Created in B first, then revoked in the hub.
	w.putGroup(mvKey, `account: "111122223333"`+"\n", w.web[b], 22, "mv")
	var order []string
	w.proxy.Before(func(call faultproxy.Call) {
		if call.Service == faultproxy.EC2 && call.Mutating && strings.Contains(call.Action, "SecurityGroup") {
			order = append(order, call.Action)
		}
	})
	res = run(keys)
	w.proxy.Before(nil)
	if res.Err() != nil {
		t.Fatal(res.Err())
	}
	w.expect(map[rules.Target]string{home: "", b: "22 mv"})
	if len(order) < 2 || !strings.HasPrefix(order[0], "Authorize") || !strings.HasPrefix(order[len(order)-1], "Revoke") {
		t.Errorf("EC2 writes %v, want the authorize in B before the revoke in the hub", order)
	}
	if s := source(res, home, mvKey); s == nil || s.Status != reconcile.StatusDeleted {
		t.Errorf("in the hub: %+v, want deleted\n%s", s, describe(res))
	}
	if s := source(res, b, mvKey); s == nil || s.Status != reconcile.StatusApplied {
		t.Errorf("in B: %+v, want applied\n%s", s, describe(res))
	}
	// Settled: a sweep changes nothing.
	res = run(reconcile.Request{All: true})
	for _, tr := range res.Targets {
		if tr.Err != nil || len(tr.Result.Plan.Actions) != 0 {
			t.Errorf("sweep after the move: %s", describe(res))
		}
	}
}

func TestMoveToAnAccountWhoseRoleIsDeniedKeepsTheRule(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	home, c := w.home, w.target(acctC, "")
	w.putGroup(mvKey, "", w.web[home], 22, "mv")
	if res, err := w.fleet().Reconcile(ctx, reconcile.Request{Keys: []string{mvKey}}, nil); err != nil || res.Err() != nil {
		t.Fatal(err, res.Err())
	}
	w.proxy.Set(faultproxy.Faults{Deny: func(call faultproxy.Call) bool {
		return call.Service == faultproxy.STS && call.Action == "AssumeRole" && strings.Contains(call.Params.Get("RoleArn"), acctC)
	}})
	w.putGroup(mvKey, `account: "444455556666"`+"\n", w.web[c], 22, "mv")
	fl := w.fleet()
	res, err := fl.Reconcile(ctx, reconcile.Request{Keys: []string{mvKey}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ferr := res.Err(); ferr == nil || !strings.Contains(ferr.Error(), "AccessDenied") {
		t.Errorf("fleet error %v, want C's AccessDenied", ferr)
	}
	w.expect(map[rules.Target]string{home: "22 mv"})
	expectPending(t, res, home, c, "AccessDenied")
	// The old target's own sweep keeps it too.
	res, err = fl.Reconcile(ctx, reconcile.Request{All: true}, []rules.Target{home})
	if err != nil || res.Err() != nil {
		t.Fatal(err, res.Err())
	}
	w.expect(map[rules.Target]string{home: "22 mv"})
	expectPending(t, res, home, c, "AccessDenied")

	// The role trusts the hub again: the next run moves the file.
	w.proxy.Set(faultproxy.Faults{})
	if res, err := fl.Reconcile(ctx, reconcile.Request{All: true}, nil); err != nil || res.Err() != nil {
		t.Fatal(err, res.Err())
	}
	w.expect(map[rules.Target]string{home: "", c: "22 mv"})
}

// The drift function sweeps each target on its own (one SQS message per
// target, or per shard of groups): the old target's sweep, which never
// runs the new target, keeps the rule of a pending move.
func TestDriftSweepOfTheOldTargetKeepsAPendingMove(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	home, b := w.home, w.target(acctB, "")
	fl := w.fleet()
	w.putGroup(mvKey, "", w.web[home], 22, "mv")
	if res, err := fl.Reconcile(ctx, reconcile.Request{Keys: []string{mvKey}}, nil); err != nil || res.Err() != nil {
		t.Fatal(err, res.Err())
	}
	// Moved to B with the hub's group (invalid there); no event has run
	// B yet when the hub's sweep comes.
	w.putGroup(mvKey, `account: "111122223333"`+"\n", w.web[home], 22, "mv")
	h, err := handler.NewDrift(handler.Config{Fleet: fl,
		ShardGroups: fl.ShardGroups, Metrics: &strings.Builder{}})
	if err != nil {
		t.Fatal(err)
	}
	sweep := func(sw trigger.Sweep) {
		t.Helper()
		ev := `{"Records":[{"messageId":"m1","eventSource":"aws:sqs","body":` + strconv.Quote(sw.Body()) + `}]}`
		out, err := h.Handle(ctx, json.RawMessage(ev))
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := json.Marshal(out); strings.Contains(string(b), `"itemIdentifier"`) {
			t.Fatalf("sweep %s failed: %s", sw.Body(), b)
		}
	}
	for _, sw := range []trigger.Sweep{
		{Account: home.Account, Region: home.Region},
		{Account: home.Account, Region: home.Region, Groups: []string{w.web[home]}},
	} {
		sweep(sw)
		w.expect(map[rules.Target]string{home: "22 mv", b: ""})
	}
	// B's sweep judges the file there (invalid), the hub's keeps it again.
	sweep(trigger.Sweep{Account: acctB, Region: b.Region})
	sweep(trigger.Sweep{Account: home.Account, Region: home.Region})
	w.expect(map[rules.Target]string{home: "22 mv", b: ""})

	// Fixed: B's sweep applies it there, then the hub's releases it.
	w.putGroup(mvKey, `account: "111122223333"`+"\n", w.web[b], 22, "mv")
	sweep(trigger.Sweep{Account: home.Account, Region: home.Region})
	w.expect(map[rules.Target]string{home: "22 mv", b: ""})
	sweep(trigger.Sweep{Account: acctB, Region: b.Region})
	w.expect(map[rules.Target]string{home: "22 mv", b: "22 mv"})
	sweep(trigger.Sweep{Account: home.Account, Region: home.Region})
	w.expect(map[rules.Target]string{home: "", b: "22 mv"})
}
