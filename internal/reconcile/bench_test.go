package reconcile

import (
	"fmt"
	"testing"

	"github.com/sgrules/sgrules/pkg/rules"
)

// benchDiffInput is 10,000 permissions in 200 groups declared by 10
// sources. converged: the ledger and EC2 already hold them all; scratch:
// nothing exists yet; changed: 10% have another port in the sources.
func benchDiffInput(state string) diffInput {
	const n, groups, sources = 10000, 200, 10
	in := diffInput{
		scope: map[string][]rules.Permission{}, scopeRules: map[string]map[string]bool{},
		groups: map[string]bool{}, exclusive: map[string]bool{},
	}
	for g := range groups {
		in.groups[fmt.Sprintf("sg-%017d", g)] = true
	}
	for i := range n {
		src := fmt.Sprintf("rules/file-%02d.yaml", i*sources/n)
		rule := fmt.Sprintf("r%05d", i)
		k := rules.Key{GroupID: fmt.Sprintf("sg-%017d", i%groups), Direction: rules.Ingress, Protocol: rules.ProtoTCP,
			FromPort: int32(10000 + i), ToPort: int32(10000 + i),
			Peer: rules.Peer{Kind: rules.PeerCIDR4, Value: fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)}}
		desc := "rule " + rule
		declared := k
		if state == "changed" && i%10 == 3 {
			declared.FromPort += 20000
			declared.ToPort += 20000
		}
		p := rules.Permission{Key: declared, Description: desc, Owner: rules.Owner{Source: src, Rule: rule}}
		in.scope[src] = append(in.scope[src], p)
		if in.scopeRules[src] == nil {
			in.scopeRules[src] = map[string]bool{}
		}
		in.scopeRules[src][rule] = true
		if state != "scratch" {
			id := fmt.Sprintf("sgr-%017d", i)
			in.owned = append(in.owned, OwnedPermission{Key: k, RuleID: id, Owners: map[rules.Owner]string{p.Owner: desc}, Description: desc, Version: 1})
			in.actual = append(in.actual, ActualRule{Key: k, RuleID: id, Description: desc, Tags: map[string]string{TagManaged: "true"}})
		}
	}
	return in
}

func BenchmarkDiff10000(b *testing.B) {
	for _, tc := range []struct {
		state     string
		wantPlan  int
		wantWrite int
	}{
		{"converged", 0, 0},
		{"scratch", 10000, 10000},
		{"changed", 2000, 2000},
	} {
		in := benchDiffInput(tc.state)
		b.Run(tc.state, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				out := diff(in)
				if len(out.plan.Actions) != tc.wantPlan || len(out.put)+len(out.del) != tc.wantWrite {
					b.Fatalf("%d actions, %d writes", len(out.plan.Actions), len(out.put)+len(out.del))
				}
			}
		})
	}
}
