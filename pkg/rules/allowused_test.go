package rules

import (
	"slices"
	"testing"
)

// TestAllowUsedRemoval: the file-level acknowledgement of removing used
// rules is a list of distinct rule names; every problem is located.
func TestAllowUsedRemoval(t *testing.T) {
	const rule = "rules:\n  web:\n    securityGroup: sg-0123456789abcdef0\n    type: ingress\n    protocol: tcp\n    fromPort: 443\n    toPort: 443\n    cidrBlocks: [10.0.0.0/8]\n"
	tests := []struct {
		name string
		src  string
		want []string
		err  string // the rendered first error, "" for none
	}{
		{name: "absent", src: rule},
		{name: "names", src: rule + "allowUsedRemoval: [ssh, web]\n", want: []string{"ssh", "web"}},
		{name: "json", src: `{"rules": {}, "allowUsedRemoval": ["old-ssh"]}`, want: []string{"old-ssh"}},
		{name: "not a list", src: rule + "allowUsedRemoval: true\n",
			err: `t.yaml:9:19: "allowUsedRemoval" must be a list of rule names (the rules whose used permissions this change may revoke or narrow), got the boolean true`},
		{name: "bad name", src: rule + "allowUsedRemoval: [ok, 'no spaces']\n",
			err: `t.yaml:9:24: "no spaces" is not a rule name: 1-128 letters, digits, '-', '_' or '.'`},
		{name: "map entry", src: rule + "allowUsedRemoval:\n  - {rule: web}\n",
			err: "t.yaml:10:5: want a rule name, got a map"},
		{name: "twice", src: rule + "allowUsedRemoval: [web, ssh, web]\n",
			err: `t.yaml:9:30: rule "web" is listed twice (first at allowUsedRemoval[0])`},
		{name: "misspelt", src: rule + "allowUsedRemovals: [web]\n",
			err: `t.yaml:9:1: unknown field "allowUsedRemovals" (did you mean "allowUsedRemoval"?)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := "t.yaml"
			if tc.src[0] == '{' {
				name = "t.json"
			}
			f, diags := Parse(name, []byte(tc.src))
			if tc.err != "" {
				if !diags.HasErrors() || diags[0].String() != tc.err {
					t.Fatalf("diagnostics %q, want first %q", diags.Strings(), tc.err)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatalf("unexpected errors: %q", diags.Strings())
			}
			if !slices.Equal(f.AllowUsedRemoval, tc.want) || len(f.AllowUsedPos) != len(tc.want) {
				t.Fatalf("AllowUsedRemoval = %q (%d positions), want %q", f.AllowUsedRemoval, len(f.AllowUsedPos), tc.want)
			}
			for _, n := range tc.want {
				if !f.AllowsUsedRemoval(n) {
					t.Errorf("AllowsUsedRemoval(%q) = false", n)
				}
			}
			if f.AllowsUsedRemoval("other") {
				t.Error(`AllowsUsedRemoval("other") = true`)
			}
			if len(tc.want) > 0 {
				out, err := MarshalYAML(f)
				if err != nil {
					t.Fatal(err)
				}
				g, d := Parse("again.yaml", out)
				if d.HasErrors() || !slices.Equal(g.AllowUsedRemoval, tc.want) {
					t.Fatalf("round trip: %q %q from\n%s", g.AllowUsedRemoval, d.Strings(), out)
				}
			}
		})
	}
}
