package policy

import (
	"testing"

	"github.com/sgrules/sgrules/pkg/rules"
)

// FuzzParse: the parser never panics, and a policy it accepts can be
// matched against any permission.
func FuzzParse(f *testing.F) {
	f.Add([]byte(issueExample), false)
	f.Add([]byte(`{"deny": [{"id": "a", "ports": ["1-2", 3], "cidrs": ["::/0"]}]}`), true)
	f.Add([]byte("tenants:\n  - {prefix: a/, groups: [{tags: {t: x}}]}\n"), false)
	f.Fuzz(func(t *testing.T, data []byte, asJSON bool) {
		name := "p.yaml"
		if asJSON {
			name = "p.json"
		}
		p, diags := Parse(name, data)
		if (p == nil) != diags.HasErrors() {
			t.Fatalf("policy %v with diagnostics %v", p, diags.Strings())
		}
		for _, d := range diags {
			if d.Line < 1 || d.Col < 1 {
				t.Fatalf("unlocated diagnostic %q", d.String())
			}
		}
		if p != nil {
			p.CheckRule(rules.Key{GroupID: "sg-00000000", Direction: rules.Ingress, Protocol: "-1", FromPort: -1, ToPort: -1,
				Peer: rules.Peer{Kind: rules.PeerCIDR4, Value: "0.0.0.0/0"}}, Facts{})
		}
	})
}
