package fleetrt

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/config"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
)

// A tenant restricted to the hub's account cannot write into another
// target account, even into a group tagged as its own there: the file is
// invalid at its account field and nothing is written in that account.
// The same file naming the hub is applied.
func TestTenantAccountsOnMoto(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	b := w.target(acctB, "")
	tagged := map[string]string{"team": "a"}
	groupB := motoserver.CreateGroup(t, w.cfgs[b], motoserver.CreateVPC(t, w.cfgs[b]), "team-a", tagged)
	groupHome := motoserver.CreateGroup(t, w.cfgs[w.home], motoserver.CreateVPC(t, w.cfgs[w.home]), "team-a", tagged)
	put := func(key, body string) {
		t.Helper()
		if _, err := s3.NewFromConfig(w.hub, awsconfig.S3Options).PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String("rules"), Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	rule := func(group string) string {
		return "rules:\n  r:\n    securityGroup: " + group + "\n    type: ingress\n    protocol: tcp\n    fromPort: 5432\n    toPort: 5432\n    cidrBlocks: [10.0.0.0/8]\n"
	}
	put(config.DefaultPolicyKey, "tenants:\n  - prefix: team-a/\n    groups: {tags: {team: a}}\n    accounts: [\""+w.home.Account+"\"]\n")
	put("rules/team-a/other.yaml", "# in account B\naccount: \""+acctB+"\"\n"+rule(groupB))
	put("rules/team-a/home.yaml", rule(groupHome))

	fl, err := New(ctx, config.Config{Table: "ledger", Bucket: "rules", Prefix: "rules/", MaxRevoke: 50, PolicyKey: config.DefaultPolicyKey,
		TargetAccounts: []string{acctB}, TargetRole: config.DefaultTargetRole}, w.hub, EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range []reconcile.Request{{Keys: []string{"rules/team-a/other.yaml", "rules/team-a/home.yaml"}}, {All: true}} {
		res, err := fl.Reconcile(ctx, req, nil)
		if err != nil {
			t.Fatal(err)
		}
		byKey := map[string]reconcile.SourceResult{}
		for _, s := range res.Sources() {
			byKey[s.Key] = s
		}
		other := byKey["rules/team-a/other.yaml"]
		want := "rules/team-a/other.yaml:2:10: violates policy tenant team-a/: account " + acctB + " is not an account of the tenant (" + w.home.Account + ")"
		if other.Status != reconcile.StatusInvalid || len(other.Diagnostics) != 1 || other.Diagnostics[0].String() != want {
			t.Errorf("all=%v: other.yaml %s %q\nwant %s", req.All, other.Status, other.Diagnostics.Strings(), want)
		}
		if home := byKey["rules/team-a/home.yaml"]; home.Status != reconcile.StatusApplied {
			t.Errorf("all=%v: home.yaml %s %q", req.All, home.Status, home.Diagnostics.Strings())
		}
		if got := w.ingressOf(b, groupB); got != "" {
			t.Fatalf("all=%v: written in account %s: %s", req.All, acctB, got)
		}
		if got := w.ingressOf(w.home, groupHome); got != "5432 " {
			t.Errorf("all=%v: home ingress %q", req.All, got)
		}
	}
}
