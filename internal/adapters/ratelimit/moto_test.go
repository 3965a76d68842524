package ratelimit_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/adapters/ratelimit"
	"github.com/sgrules/sgrules/internal/dev/apicount"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
	"github.com/sgrules/sgrules/pkg/rules"
)

func TestMain(m *testing.M) { motoserver.Main(m) }

// TestEveryEC2CallTakesOneToken runs the EC2 adapter on the limiter on a
// real SDK client against moto: the tokens each bucket gave are exactly the
// calls the SDK made of that bucket's actions.
func TestEveryEC2CallTakesOneToken(t *testing.T) {
	srv := motoserver.Shared(t)
	srv.Reset(t)
	cfg := srv.Config(t)
	vpc := motoserver.CreateVPC(t, cfg)
	web := motoserver.CreateGroup(t, cfg, vpc, "web", nil)
	db := motoserver.CreateGroup(t, cfg, vpc, "db", nil)

	counted, calls := cfg, &apicount.Counter{}
	calls.Attach(&counted)
	lim := ratelimit.Defaults()
	lim.Clock = newClock()
	c := ratelimit.New(ec2.NewFromConfig(counted), lim)
	groups := ec2sg.New(c)

	ctx := context.Background()
	perm := func(dir rules.Direction, port int32, cidr string) rules.Permission {
		return rules.Permission{
			Key:         rules.Key{GroupID: web, Direction: dir, Protocol: "tcp", FromPort: port, ToPort: port, Peer: rules.Peer{Kind: rules.PeerCIDR4, Value: cidr}},
			Description: "d",
			Owner:       rules.Owner{Source: "f.yaml", Rule: "r"},
		}
	}
	tags := map[string]string{reconcile.TagLedger: "ledger"}
	if err := groups.Authorize(ctx, web, rules.Ingress, []rules.Permission{perm(rules.Ingress, 443, "10.0.0.0/8"), perm(rules.Ingress, 80, "10.0.0.0/8")}, tags); err != nil {
		t.Fatal(err)
	}
	if err := groups.Authorize(ctx, web, rules.Egress, []rules.Permission{perm(rules.Egress, 5432, "10.1.0.0/16")}, tags); err != nil {
		t.Fatal(err)
	}
	if _, err := groups.ResolveGroups(ctx, []rules.GroupRef{{Name: "db", VPCID: vpc}, {ID: web}}); err != nil {
		t.Fatal(err)
	}
	if _, err := groups.DescribeGroups(ctx, []string{web, db}); err != nil {
		t.Fatal(err)
	}
	managed, err := groups.DescribeManagedRules(ctx, "ledger")
	if err != nil {
		t.Fatal(err)
	}
	all, err := groups.DescribeRules(ctx, []string{web, db})
	if err != nil {
		t.Fatal(err)
	}
	if len(managed) != 3 || len(all) < 3 {
		t.Fatalf("%d managed rules, %d in all, want 3 and at least 3", len(managed), len(all))
	}
	var in, out []string
	var updates []reconcile.RuleUpdate
	for _, r := range managed {
		updates = append(updates, reconcile.RuleUpdate{RuleID: r.RuleID, Key: r.Key, Description: "new"})
		if r.Key.Direction == rules.Ingress {
			in = append(in, r.RuleID)
		} else {
			out = append(out, r.RuleID)
		}
	}
	if err := groups.ModifyRules(ctx, web, updates); err != nil {
		t.Fatal(err)
	}
	if err := groups.Revoke(ctx, web, rules.Ingress, in); err != nil {
		t.Fatal(err)
	}
	if err := groups.Revoke(ctx, web, rules.Egress, out); err != nil {
		t.Fatal(err)
	}

	ops := map[string]int{}
	for k, n := range calls.Snapshot() {
		if op, ok := strings.CutPrefix(k, "EC2."); ok {
			ops[op] = n
		}
	}
	want := callsByFamily(ops)
	if want[0] == 0 || want[1] == 0 || want[2] == 0 {
		t.Fatalf("calls %v: every bucket should have been used", ops)
	}
	if got := tokensTaken(c); got != want {
		t.Errorf("tokens taken (mutating, ingress, describe) %v, SDK calls %v (%v)", got, want, ops)
	}
}
