package policy

import (
	"fmt"
	"os"
	"testing"

	"github.com/sgrules/sgrules/pkg/rules"
)

// BenchmarkCheckRulesSweep: the live rules of a sweep judged together
// with the example policy: 200 groups of 50 rules (tcp ports, /24s, a few
// all-traffic rules and prefix lists).
func BenchmarkCheckRulesSweep(b *testing.B) {
	body, err := os.ReadFile("../../examples/policy/sgrules.yaml")
	if err != nil {
		b.Fatal(err)
	}
	p, diags := Parse("sgrules.yaml", body)
	if p == nil {
		b.Fatal(diags.Strings())
	}
	var keys []rules.Key
	facts := Facts{Groups: map[string]Group{}}
	for g := range 200 {
		id := fmt.Sprintf("sg-%017x", g)
		facts.Groups[id] = Group{ID: id, Tags: map[string]string{"Name": "web"}, Complete: true}
		for r := range 50 {
			k := rules.Key{GroupID: id, Direction: rules.Ingress, Protocol: rules.ProtoTCP, FromPort: int32(1000 + r*7), ToPort: int32(1000 + r*7 + r%3),
				Peer: rules.Peer{Kind: rules.PeerCIDR4, Value: fmt.Sprintf("%d.%d.0.0/16", 1+r, g%250)}}
			if r%10 == 0 {
				k.Protocol, k.FromPort, k.ToPort = rules.ProtoAll, -1, -1
			}
			keys = append(keys, k)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		p.CheckRules(keys, facts)
	}
}
