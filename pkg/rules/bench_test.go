package rules_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/sgrules/sgrules/pkg/rules"
)

// benchFile is a 1000-rule file over 20 groups referenced by Name tag:
// one CIDR per rule, every tenth rule with two CIDRs and a group peer.
func benchFile(tb testing.TB) *rules.File {
	tb.Helper()
	f := &rules.File{Name: "rules/bench.yaml"}
	for i := range 1000 {
		r := rules.Rule{
			Name:          fmt.Sprintf("rule-%04d", i),
			SecurityGroup: rules.GroupRef{Tags: map[string]string{"Name": fmt.Sprintf("g%02d", i%20)}},
			Direction:     rules.Ingress, Protocol: rules.ProtoTCP, FromPort: int32(1000 + i), ToPort: int32(1000 + i),
			CIDRBlocks:  []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.0/24", i/256, i%256))},
			Description: fmt.Sprintf("bench rule %d", i),
		}
		if i%10 == 0 {
			r.CIDRBlocks = append(r.CIDRBlocks, netip.MustParsePrefix(fmt.Sprintf("172.16.%d.0/24", i%256)))
			r.SourceSecurityGroups = []rules.GroupRef{{Tags: map[string]string{"Name": fmt.Sprintf("g%02d", (i+1)%20)}}}
		}
		f.Rules = append(f.Rules, r)
	}
	return f
}

func benchYAML(tb testing.TB) []byte {
	tb.Helper()
	b, err := rules.MarshalYAML(benchFile(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func benchJSON(tb testing.TB) []byte {
	tb.Helper()
	var b strings.Builder
	b.WriteString(`{"rules": {`)
	for i, r := range benchFile(tb).Rules {
		if i > 0 {
			b.WriteString(",")
		}
		var cidrs []string
		for _, c := range r.CIDRBlocks {
			cidrs = append(cidrs, `"`+c.String()+`"`)
		}
		fmt.Fprintf(&b, "\n  %q: {\"securityGroup\": {\"tags\": {\"Name\": %q}}, \"type\": \"ingress\", \"protocol\": \"tcp\", \"fromPort\": %d, \"toPort\": %d, \"cidrBlocks\": [%s], \"description\": %q}",
			r.Name, r.SecurityGroup.Tags["Name"], r.FromPort, r.ToPort, strings.Join(cidrs, ", "), r.Description)
	}
	b.WriteString("\n}}\n")
	return []byte(b.String())
}

func BenchmarkParse1000(b *testing.B) {
	for _, tc := range []struct {
		name, file string
		data       []byte
	}{
		{"yaml", "rules/bench.yaml", benchYAML(b)},
		{"json", "rules/bench.json", benchJSON(b)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.data)))
			for b.Loop() {
				f, diags := rules.Parse(tc.file, tc.data)
				if diags.HasErrors() || len(f.Rules) != 1000 {
					b.Fatalf("parse: %v", diags.Err())
				}
			}
		})
	}
}

func BenchmarkExpand1000(b *testing.B) {
	f, diags := rules.Parse("rules/bench.yaml", benchYAML(b))
	if diags.HasErrors() {
		b.Fatal(diags.Err())
	}
	ids := map[string][]string{}
	for g := range 20 {
		ref := rules.GroupRef{Tags: map[string]string{"Name": fmt.Sprintf("g%02d", g)}}
		ids[ref.String()] = []string{fmt.Sprintf("sg-%017d", g)}
	}
	resolve := func(g rules.GroupRef) []string { return ids[g.String()] }
	b.ReportAllocs()
	for b.Loop() {
		perms, _, diags := rules.Expand(f, "rules/bench.yaml", resolve)
		if diags.HasErrors() || len(perms) != 1200 {
			b.Fatalf("expand: %d permissions, %v", len(perms), diags.Err())
		}
	}
}
