package reconcile_test

import (
	"context"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/dirsource"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/reconcile"
)

// withPeers gives d an engine that reads the other deployments' tables
// (PEER_LEDGERS) to prove their claims.
func (w *twoDeployments) withPeers(d *deployment, table string, peers ...string) {
	w.t.Helper()
	cfg := reconcile.Config{Source: dirsource.New(d.dir), Groups: ec2sg.New(ec2.NewFromConfig(w.cfg)),
		Ledger: d.led, LedgerID: table, MaxRevoke: -1}
	for _, p := range peers {
		cfg.Peers = append(cfg.Peers, reconcile.Peer{Table: p, Ledger: ddbledger.New(dynamodb.NewFromConfig(w.cfg), p)})
	}
	eng, err := reconcile.New(cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	d.eng = eng
}

// forgeClaim tags rule with sgrules:claim:<id>, as anyone allowed to tag
// rules can.
func (w *twoDeployments) forgeClaim(ruleID, id string) {
	w.t.Helper()
	_, err := ec2.NewFromConfig(w.cfg).CreateTags(context.Background(), &ec2.CreateTagsInput{Resources: []string{ruleID},
		Tags: []ec2types.Tag{{Key: aws.String(reconcile.TagClaimPrefix + id), Value: aws.String("true")}}})
	if err != nil {
		w.t.Fatal(err)
	}
}

// TestForgedClaimDoesNotKeepARule: A created a rule; a claim of B's
// identity is tagged on it by hand (B declares nothing). When A's file is
// deleted:
//   - with B's table among A's peer ledgers, B's ledger does not hold the
//     rule: the claim is ignored, A revokes the rule and reports the claim
//     unverified, not honoured (before: A released the rule, which stayed
//     for good with nobody's record: a forged tag kept it open);
//   - without peer ledgers the claim cannot be checked: A lets it go as
//     before, but reports it, honoured, in Plan.UnverifiedClaims (and
//     the log), the run that releases it and every run before.
func TestForgedClaimDoesNotKeepARule(t *testing.T) {
	for _, peers := range []bool{true, false} {
		t.Run(map[bool]string{true: "with peer ledgers", false: "without peer ledgers"}[peers], func(t *testing.T) {
			w := newTwoDeployments(t)
			w.b.sweep() // B exists: its identity is stored
			if peers {
				w.withPeers(w.a, "ledger-a", "ledger-b")
			}
			w.a.put("a.yaml", tcpFile(w.g, 5432, "10.2.0.0/16"))
			w.a.sweep()
			r := w.ingress()[5432]
			w.forgeClaim(r.RuleID, w.b.id())

			res := w.a.sweep() // still declared: reported before anything depends on it
			want := []reconcile.ClaimedRule{{Rule: r, Deployments: []string{w.b.id()}, Honoured: !peers}}
			if got := res.Plan.UnverifiedClaims; len(got) != 1 || got[0].Rule.RuleID != r.RuleID ||
				!slices.Equal(got[0].Deployments, want[0].Deployments) || got[0].Honoured != want[0].Honoured {
				t.Fatalf("unverified claims while declared: %+v, want %+v", got, want)
			}

			w.a.remove("a.yaml")
			res = w.a.sweep()
			_, stays := w.ingress()[5432]
			if peers {
				if res.Plan.Count(reconcile.ActRevoke) != 1 || res.Plan.Count(reconcile.ActRelease) != 0 || stays {
					t.Fatalf("a forged claim kept the rule: %+v (rule stays %v)", res.Plan.Actions, stays)
				}
			} else if res.Plan.Count(reconcile.ActRelease) != 1 || !stays {
				t.Fatalf("without peer ledgers: %+v (rule stays %v)", res.Plan.Actions, stays)
			}
			if got := res.Plan.UnverifiedClaims; len(got) != 1 || got[0].Honoured != !peers {
				t.Fatalf("unverified claims when the file went: %+v", got)
			}
		})
	}
}

// TestProvenClaimIsHonouredWithPeerLedgers: with peer ledgers configured,
// a permission both deployments declare stays while either declares it,
// as without (B's ledger holds the rule: the claim is proven), and no
// claim is reported unverified.
func TestProvenClaimIsHonouredWithPeerLedgers(t *testing.T) {
	w := newTwoDeployments(t)
	w.withPeers(w.a, "ledger-a", "ledger-b")
	w.withPeers(w.b, "ledger-b", "ledger-a")
	w.a.put("a.yaml", tcpFile(w.g, 5432, "10.2.0.0/16"))
	w.a.sweep()
	w.b.put("b.yaml", tcpFile(w.g, 5432, "10.2.0.0/16"))
	if res := w.b.sweep(); res.Plan.Count(reconcile.ActAdopt) != 1 || len(res.Plan.UnverifiedClaims) != 0 {
		t.Fatalf("B: %+v, unverified %+v", res.Plan.Actions, res.Plan.UnverifiedClaims)
	}
	r := w.ingress()[5432]
	w.a.remove("a.yaml")
	res := w.a.sweep()
	if res.Plan.Count(reconcile.ActRevoke) != 0 || res.Plan.Count(reconcile.ActRelease) != 1 || len(res.Plan.UnverifiedClaims) != 0 {
		t.Fatalf("A letting go: %+v, unverified %+v", res.Plan.Actions, res.Plan.UnverifiedClaims)
	}
	if got, ok := w.ingress()[5432]; !ok || got.RuleID != r.RuleID {
		t.Fatalf("the shared rule after A let go: %+v %v", got, ok)
	}
	if res := w.b.sweep(); len(res.Plan.Actions) != 0 {
		t.Fatalf("B keeping it: %+v", res.Plan.Actions)
	}
}

// TestClaimerKeepsTheCreatorsDescription: A and B declare one permission
// with different descriptions. B, which adopted A's rule, never changes
// its description (before: each run of either set its own: a flap, and B
// modified A's rule); A, its creator, keeps setting its own. When A lets
// go, B sets its description.
func TestClaimerKeepsTheCreatorsDescription(t *testing.T) {
	w := newTwoDeployments(t)
	w.a.put("a.yaml", tcpFile(w.g, 5432, "10.2.0.0/16"))
	w.a.sweep()
	bBody := "rules:\n  r:\n    securityGroup: " + w.g + "\n    type: ingress\n    protocol: tcp\n    fromPort: 5432\n    toPort: 5432\n    cidrBlocks: [10.2.0.0/16]\n    description: says B\n"
	w.b.put("b.yaml", bBody)
	for round := range 2 {
		if res := w.b.sweep(); res.Plan.Count(reconcile.ActUpdate) != 0 {
			t.Fatalf("round %d: B changes A's rule: %+v", round, res.Plan.Actions)
		}
		if res := w.a.sweep(); len(res.Plan.Actions) != 0 {
			t.Fatalf("round %d: A: %+v", round, res.Plan.Actions)
		}
		if d := w.ingress()[5432].Description; d != "port 5432" {
			t.Fatalf("round %d: description %q, want A's", round, d)
		}
	}
	w.a.remove("a.yaml")
	w.a.sweep()
	if res := w.b.sweep(); res.Plan.Count(reconcile.ActUpdate) != 1 {
		t.Fatalf("B alone: %+v", res.Plan.Actions)
	}
	if d := w.ingress()[5432].Description; d != "says B" {
		t.Fatalf("description %q after A let go, want B's", d)
	}
}

// TestClaimerKeepsTheDescriptionOfARuleUnprovenAfterItsCreatorsLedgerLoss:
// A creates a rule B claims with a description of its own; A's ledger is
// emptied (its identity kept) and A's file deleted meanwhile. Nothing
// proves the rule A's any more: A reports it unproven and neither
// revokes it nor lets it go (its tag stays), so B, a claimer of a rule A
// created, keeps A's description, sweep after sweep (chaos seed
// 20263327).
func TestClaimerKeepsTheDescriptionOfARuleUnprovenAfterItsCreatorsLedgerLoss(t *testing.T) {
	w := newTwoDeployments(t)
	w.a.put("a.yaml", tcpFile(w.g, 5432, "10.2.0.0/16"))
	w.a.sweep()
	w.b.put("b.yaml", "rules:\n  r:\n    securityGroup: "+w.g+"\n    type: ingress\n    protocol: tcp\n    fromPort: 5432\n    toPort: 5432\n    cidrBlocks: [10.2.0.0/16]\n    description: says B\n")
	w.b.sweep()
	idA, idB := w.a.id(), w.b.id()
	if r := w.ingress()[5432]; r.Tags[reconcile.TagLedger] != idA || r.Tags[reconcile.TagClaimPrefix+idB] == "" || r.Description != "port 5432" {
		t.Fatalf("before the loss: %+v", r)
	}
	wipeLedgerKeepingIdentity(t, w.cfg, "ledger-a")
	w.a.remove("a.yaml")
	for round := range 2 {
		res := w.a.sweep()
		if len(res.Plan.Actions) != 0 || len(res.Plan.Unproven) != 1 {
			t.Fatalf("round %d: A: %+v, unproven %+v", round, res.Plan.Actions, res.Plan.Unproven)
		}
		if res := w.b.sweep(); len(res.Plan.Actions) != 0 {
			t.Fatalf("round %d: B: %+v", round, res.Plan.Actions)
		}
		if r := w.ingress()[5432]; r.Tags[reconcile.TagLedger] != idA || r.Description != "port 5432" {
			t.Fatalf("round %d: %+v, want A's tag and description", round, r)
		}
	}
}

// wipeLedgerKeepingIdentity deletes every item of table but the
// deployment's identity: a ledger loss of a deployment whose identity
// survives it (as one given in its configuration would).
func wipeLedgerKeepingIdentity(t *testing.T, cfg aws.Config, table string) {
	t.Helper()
	ctx := context.Background()
	ddb := dynamodb.NewFromConfig(cfg)
	p := dynamodb.NewScanPaginator(ddb, &dynamodb.ScanInput{TableName: aws.String(table), ProjectionExpression: aws.String("pk, sk")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			if pk, _ := it["pk"].(*ddbtypes.AttributeValueMemberS); pk != nil && pk.Value == "meta#deployment" {
				continue
			}
			if _, err := ddb.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table),
				Key: map[string]ddbtypes.AttributeValue{"pk": it["pk"], "sk": it["sk"]}}); err != nil {
				t.Fatal(err)
			}
		}
	}
}
