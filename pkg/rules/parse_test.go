package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// ruleYAML builds a one-rule file from field lines (each "key: value").
func ruleYAML(fields ...string) string {
	var b strings.Builder
	b.WriteString("rules:\n  r:\n")
	for _, f := range fields {
		b.WriteString("    " + f + "\n")
	}
	return b.String()
}

var base = []string{"securityGroup: sg-0123456789abcdef0", "type: ingress"}

func withBase(fields ...string) string {
	return ruleYAML(append(append([]string{}, base...), fields...)...)
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		proto string
		from  int32
		to    int32
		check func(t *testing.T, r Rule)
	}{
		{"tcp single port", withBase("protocol: tcp", "fromPort: 80", "toPort: 80", "cidrBlocks: [0.0.0.0/0]"), "tcp", 80, 80, nil},
		{"tcp range", withBase("protocol: tcp", "fromPort: 1024", "toPort: 65535", "cidrBlocks: [10.0.0.0/16]"), "tcp", 1024, 65535, nil},
		{"tcp port zero", withBase("protocol: tcp", "fromPort: 0", "toPort: 0", "cidrBlocks: [10.0.0.0/16]"), "tcp", 0, 0, nil},
		{"protocol 6 is tcp", withBase("protocol: 6", "fromPort: 22", "toPort: 22", "cidrBlocks: [10.0.0.0/16]"), "tcp", 22, 22, nil},
		{"protocol \"17\" is udp", withBase(`protocol: "17"`, "fromPort: 53", "toPort: 53", "cidrBlocks: [10.0.0.0/16]"), "udp", 53, 53, nil},
		{"protocol 1 is icmp", withBase("protocol: 1", "cidrBlocks: [10.0.0.0/16]"), "icmp", -1, -1, nil},
		{"protocol 58 is icmpv6", withBase("protocol: 58", `ipv6CidrBlocks: ["2001:db8::/32"]`), "icmpv6", -1, -1, nil},
		{"all without ports", withBase("protocol: all", "sourceSecurityGroups: [sg-01234567]"), "-1", -1, -1, nil},
		{"-1 int with -1 ports", withBase("protocol: -1", "fromPort: -1", "toPort: -1", "sourceSecurityGroups: [sg-01234567]"), "-1", -1, -1, nil},
		{"-1 string", withBase(`protocol: "-1"`, "sourceSecurityGroups: [sg-01234567]"), "-1", -1, -1, nil},
		{"gre number", withBase("protocol: 47", "fromPort: -1", "toPort: -1", "cidrBlocks: [203.0.113.0/24]"), "47", -1, -1, nil},
		{"esp string no ports", withBase(`protocol: "50"`, "cidrBlocks: [203.0.113.0/24]"), "50", -1, -1, nil},
		{"protocol 0", withBase("protocol: 0", "cidrBlocks: [203.0.113.0/24]"), "0", -1, -1, nil},
		{"icmp all explicit", withBase("protocol: icmp", "fromPort: -1", "toPort: -1", "cidrBlocks: [10.0.0.0/16]"), "icmp", -1, -1, nil},
		{"icmp echo all codes", withBase("protocol: icmp", "fromPort: 8", "toPort: -1", "cidrBlocks: [0.0.0.0/0]"), "icmp", 8, -1, nil},
		{"icmp type only means all codes", withBase("protocol: icmp", "fromPort: 3", "cidrBlocks: [10.0.0.0/8]"), "icmp", 3, -1, nil},
		{"icmp type and code", withBase("protocol: icmp", "fromPort: 3", "toPort: 4", "cidrBlocks: [10.0.0.0/8]"), "icmp", 3, 4, nil},
		{"icmp 255/255", withBase("protocol: icmp", "fromPort: 255", "toPort: 255", "cidrBlocks: [10.0.0.0/8]"), "icmp", 255, 255, nil},
		{"icmpv6 with prefix list", withBase("protocol: icmpv6", "prefixListIds: [pl-0123abcd]"), "icmpv6", -1, -1, nil},
		{"ipv6 canonical", withBase("protocol: tcp", "fromPort: 443", "toPort: 443", `ipv6CidrBlocks: ["2001:DB8:0::/32"]`), "tcp", 443, 443,
			func(t *testing.T, r Rule) {
				if r.IPv6CIDRBlocks[0] != netip.MustParsePrefix("2001:db8::/32") {
					t.Errorf("prefix %v", r.IPv6CIDRBlocks[0])
				}
			}},
		{"group forms", ruleYAML("securityGroup: {groupName: web-server-sg, vpcId: vpc-0a1b2c3d4e5f60718}", "type: egress", "protocol: tcp", "fromPort: 443", "toPort: 443",
			"sourceSecurityGroups: [sg-01234567, {tags: {Name: app, Env: prod}}, {groupName: db, vpcId: vpc-01234567}]"), "tcp", 443, 443,
			func(t *testing.T, r Rule) {
				want := []GroupRef{{ID: "sg-01234567"}, {Tags: map[string]string{"Name": "app", "Env": "prod"}}, {Name: "db", VPCID: "vpc-01234567"}}
				if !reflect.DeepEqual(r.SourceSecurityGroups, want) {
					t.Errorf("groups %+v", r.SourceSecurityGroups)
				}
				if !reflect.DeepEqual(r.SecurityGroup, GroupRef{Name: "web-server-sg", VPCID: "vpc-0a1b2c3d4e5f60718"}) || r.Direction != Egress {
					t.Errorf("group %+v %s", r.SecurityGroup, r.Direction)
				}
			}},
		{"description every allowed char", withBase("protocol: tcp", "fromPort: 1", "toPort: 2", "cidrBlocks: [10.0.0.0/8]", `description: "`+descAllowed+`"`), "tcp", 1, 2,
			func(t *testing.T, r Rule) {
				if r.Description != descAllowed {
					t.Errorf("description %q", r.Description)
				}
			}},
		{"description 255", withBase("protocol: tcp", "fromPort: 1", "toPort: 2", "cidrBlocks: [10.0.0.0/8]", "description: "+strings.Repeat("d", 255)), "tcp", 1, 2, nil},
		{"rule name 128", strings.Replace(withBase("protocol: tcp", "fromPort: 1", "toPort: 2", "cidrBlocks: [10.0.0.0/8]"), "  r:", "  "+strings.Repeat("n", 128)+":", 1), "tcp", 1, 2, nil},
		{"positions", withBase("protocol: tcp", "fromPort: 1", "toPort: 2", "cidrBlocks: [10.0.0.0/8, 10.1.0.0/16]"), "tcp", 1, 2,
			func(t *testing.T, r Rule) {
				want := map[string]Pos{"securityGroup": {3, 20}, "type": {4, 11}, "protocol": {5, 15}, "fromPort": {6, 15}, "toPort": {7, 13},
					"cidrBlocks": {8, 17}, "cidrBlocks[0]": {8, 18}, "cidrBlocks[1]": {8, 30}}
				if !reflect.DeepEqual(r.FieldPos, want) || r.Pos != (Pos{2, 3}) {
					t.Errorf("positions %v %v", r.Pos, r.FieldPos)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, diags := Parse("t.yaml", []byte(tc.yaml))
			if f == nil || diags.HasErrors() {
				t.Fatalf("Parse: %v", diags.Strings())
			}
			r := f.Rules[0]
			if r.Protocol != tc.proto || r.FromPort != tc.from || r.ToPort != tc.to {
				t.Errorf("got %s %d/%d, want %s %d/%d", r.Protocol, r.FromPort, r.ToPort, tc.proto, tc.from, tc.to)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

// TestParseErrors checks each validation with a message fragment and the
// position; the golden files in testdata/bad hold the full messages.
func TestParseErrors(t *testing.T) {
	ok := []string{"protocol: tcp", "fromPort: 80", "toPort: 80", "cidrBlocks: [10.0.0.0/8]"}
	repl := func(key, line string) string {
		var fs []string
		for _, f := range ok {
			if strings.HasPrefix(f, key+":") {
				if line != "" {
					fs = append(fs, line)
				}
				continue
			}
			fs = append(fs, f)
		}
		return withBase(fs...)
	}
	tests := []struct {
		name, yaml, want string
		line, col        int
	}{
		{"unknown field", withBase(append(ok, "cidr_blocks: []")...), `unknown field "cidr_blocks" (did you mean "cidrBlocks"?)`, 9, 5},
		{"unknown field far", withBase(append(ok, "zzz: 1")...), `unknown field "zzz" (known fields: securityGroup`, 9, 5},
		{"string port", repl("fromPort", "fromPort: eighty"), `fromPort: want a whole number, got "eighty"`, 6, 15},
		{"quoted port", repl("fromPort", `fromPort: "80"`), `got the string "80" (write 80 without quotes)`, 6, 15},
		{"bool port", repl("fromPort", `fromPort: true`), `got the boolean true`, 6, 15},
		{"null port", repl("fromPort", `fromPort:`), `got nothing`, 6, 14},
		{"list port", repl("fromPort", `fromPort: [80]`), `got a list`, 6, 15},
		{"huge port", repl("fromPort", `fromPort: 99999999999999999999999`), `out of range`, 6, 15},
		{"octal-looking port", repl("fromPort", "fromPort: 022"), "fromPort: 022 is not decimal: ports are decimal; write 22", 6, 15},
		{"hex port", repl("toPort", "toPort: 0x50"), "toPort: 0x50 is not decimal: ports are decimal; write 80", 7, 13},
		{"leading zero not octal", repl("fromPort", "fromPort: 080"), "fromPort: 080 is not decimal: ports are decimal; write 80", 6, 15},
		{"underscore port", repl("fromPort", "fromPort: 8_0"), "write 80", 6, 15},
		{"negative octal", withBase("protocol: icmp", "fromPort: -01", "cidrBlocks: [10.0.0.0/8]"), "fromPort: -01 is not decimal: ports are decimal; write -1", 6, 15},
		{"huge hex", repl("fromPort", "fromPort: 0xffffffffffffffffffff"), "fromPort: 0xffffffffffffffffffff is not decimal: ports are decimal", 6, 15},
		{"quoted leading zero", repl("fromPort", `fromPort: "022"`), `got the string "022" (write 22 without quotes)`, 6, 15},
		{"port 65536", repl("toPort", "toPort: 65536"), "toPort: 65536 is out of range 0-65535", 7, 13},
		{"negative port", repl("fromPort", "fromPort: -5"), "fromPort: -5 is out of range 0-65535", 6, 15},
		{"from > to", repl("toPort", "toPort: 79"), "toPort: 79 is less than fromPort 80", 7, 13},
		{"tcp missing toPort", repl("toPort", ""), `missing required field "toPort"`, 2, 3},
		{"unknown protocol", repl("protocol", "protocol: sctp"), `unknown protocol "sctp"`, 5, 15},
		{"protocol upper case", repl("protocol", "protocol: TCP"), `protocol: write "tcp", not "TCP" (lower case, no spaces)`, 5, 15},
		{"protocol trailing space", repl("protocol", `protocol: "tcp "`), `protocol: write "tcp", not "tcp " (lower case, no spaces)`, 5, 15},
		{"protocol number space", repl("protocol", `protocol: " 6"`), `protocol: write "6", not " 6"`, 5, 15},
		{"protocol octal", repl("protocol", "protocol: 06"), "protocol: 06 is not decimal: protocol numbers are decimal; write 6", 5, 15},
		{"protocol typo", repl("protocol", "protocol: tpc"), `unknown protocol "tpc": want tcp, udp, icmp, icmpv6, all, -1 or a number 0-255 (did you mean "tcp"?)`, 5, 15},
		{"protocol sctp", repl("protocol", "protocol: sctp"), `(did you mean "132"?)`, 5, 15},
		{"protocol icmp6", repl("protocol", "protocol: icmp6"), `(did you mean "icmpv6"?)`, 5, 15},
		{"protocol 256", repl("protocol", "protocol: 256"), `unknown protocol "256"`, 5, 15},
		{"protocol list", repl("protocol", "protocol: [tcp]"), `protocol: want tcp, udp`, 5, 15},
		{"missing protocol", repl("protocol", ""), `missing required field "protocol"`, 2, 3},
		{"port on -1", withBase("protocol: -1", "fromPort: 0", "toPort: 65535", "cidrBlocks: [10.0.0.0/8]"), "would silently open every port", 6, 15},
		{"port on 47", withBase("protocol: 47", "toPort: 5", "cidrBlocks: [10.0.0.0/8]"), "toPort: protocol 47 has no ports", 6, 13},
		{"icmp type -1 code 0", withBase("protocol: icmp", "fromPort: -1", "toPort: 0", "cidrBlocks: [10.0.0.0/8]"), "fromPort -1 (all types) requires toPort -1", 7, 13},
		{"icmp code without type", withBase("protocol: icmp", "toPort: 0", "cidrBlocks: [10.0.0.0/8]"), "an ICMP code needs an ICMP type", 6, 13},
		{"icmp type 256", withBase("protocol: icmp", "fromPort: 256", "cidrBlocks: [10.0.0.0/8]"), "ICMP type 256 is out of range", 6, 15},
		{"icmp type -2", withBase("protocol: icmp", "fromPort: -2", "cidrBlocks: [10.0.0.0/8]"), "ICMP type -2 is out of range", 6, 15},
		{"icmp code 256", withBase("protocol: icmp", "fromPort: 3", "toPort: 256", "cidrBlocks: [10.0.0.0/8]"), "ICMP code 256 is out of range", 7, 13},
		{"icmpv6 with ipv4", withBase("protocol: icmpv6", "cidrBlocks: [10.0.0.0/8]"), "icmpv6 applies to IPv6 only", 6, 17},
		{"ipv6 in cidrBlocks", repl("cidrBlocks", `cidrBlocks: ["::/0"]`), "::/0 is an IPv6 range: put it in ipv6CidrBlocks", 8, 18},
		{"ipv4 in ipv6CidrBlocks", repl("cidrBlocks", `ipv6CidrBlocks: [0.0.0.0/0]`), "0.0.0.0/0 is an IPv4 range: put it in cidrBlocks", 8, 22},
		{"mapped ipv4", repl("cidrBlocks", `ipv6CidrBlocks: ["::ffff:10.0.0.0/104"]`), "IPv4-mapped", 8, 22},
		{"host bits", repl("cidrBlocks", `cidrBlocks: [10.0.0.1/16]`), "host bits set: did you mean 10.0.0.0/16?", 8, 18},
		{"host bits v6", repl("cidrBlocks", `ipv6CidrBlocks: ["2001:db8::1/32"]`), "host bits set: did you mean 2001:db8::/32?", 8, 22},
		{"bare address", repl("cidrBlocks", `cidrBlocks: [192.0.2.7]`), "did you mean 192.0.2.7/32?", 8, 18},
		{"bad prefix length", repl("cidrBlocks", `cidrBlocks: [10.0.0.0/33]`), `"10.0.0.0/33" is not a CIDR`, 8, 18},
		{"leading zero", repl("cidrBlocks", `cidrBlocks: [010.0.0.0/8]`), `"010.0.0.0/8" is not a CIDR`, 8, 18},
		{"cidr not list", repl("cidrBlocks", `cidrBlocks: 10.0.0.0/8`), "want a list", 8, 17},
		{"cidr element not string", repl("cidrBlocks", `cidrBlocks: [{a: b}]`), "cidrBlocks[0]: want a string, got a map", 8, 18},
		{"no source", repl("cidrBlocks", ""), "no source: set at least one of", 2, 3},
		{"no destination", ruleYAML("securityGroup: sg-01234567", "type: egress", "protocol: tcp", "fromPort: 1", "toPort: 1", "cidrBlocks: []"), "no destination", 2, 3},
		{"description too long", withBase(append(ok, "description: "+strings.Repeat("x", 256))...), "256 characters, over the limit of 255", 9, 18},
		{"description bad char", withBase(append(ok, `description: "caf\u00e9"`)...), `character "é" at position 4`, 9, 18},
		{"description quote", withBase(append(ok, `description: 'say "hi"'`)...), `character "\"" at position 5`, 9, 18},
		{"group id upper", ruleYAML("securityGroup: sg-0123ABCD", "type: ingress", "protocol: all", "cidrBlocks: [10.0.0.0/8]"), "is not a group id", 3, 20},
		{"group id 9 digits", ruleYAML("securityGroup: sg-012345678", "type: ingress", "protocol: all", "cidrBlocks: [10.0.0.0/8]"), "is not a group id", 3, 20},
		{"group name string", ruleYAML("securityGroup: web", "type: ingress", "protocol: all", "cidrBlocks: [10.0.0.0/8]"), "to reference a group by name write", 3, 20},
		{"group null", ruleYAML("securityGroup:", "type: ingress", "protocol: all", "cidrBlocks: [10.0.0.0/8]"), "securityGroup: want a string, got nothing", 3, 19},
		{"group list", ruleYAML("securityGroup: [sg-01234567]", "type: ingress", "protocol: all", "cidrBlocks: [10.0.0.0/8]"), "want a group id, {groupName", 3, 20},
		{"group unknown key", ruleYAML("securityGroup: {name: web}", "type: ingress", "protocol: all", "cidrBlocks: [10.0.0.0/8]"), `unknown field "name" (did you mean "groupName"?)`, 3, 21},
		{"group empty map", ruleYAML("securityGroup: {}", "type: ingress", "protocol: all", "cidrBlocks: [10.0.0.0/8]"), "got an empty map", 3, 20},
		{"vpc without name", ruleYAML("securityGroup: {vpcId: vpc-01234567}", "type: ingress", "protocol: all", "cidrBlocks: [10.0.0.0/8]"), "vpcId needs groupName", 3, 20},
		{"name without vpc", ruleYAML("securityGroup: {groupName: web}", "type: ingress", "protocol: all", "cidrBlocks: [10.0.0.0/8]"), "groupName needs vpcId", 3, 20},
		{"bad vpc", ruleYAML("securityGroup: {groupName: web, vpcId: vpc-1}", "type: ingress", "protocol: all", "cidrBlocks: [10.0.0.0/8]"), "is not a VPC id", 3, 44},
		{"tags and name", ruleYAML("securityGroup: {groupName: web, vpcId: vpc-01234567, tags: {Name: web}}", "type: ingress", "protocol: all", "cidrBlocks: [10.0.0.0/8]"), "not both", 3, 20},
		{"tags not map", ruleYAML("securityGroup: {tags: web}", "type: ingress", "protocol: all", "cidrBlocks: [10.0.0.0/8]"), "want a non-empty map", 3, 27},
		{"tag value null", ruleYAML("securityGroup: {tags: {Name: }}", "type: ingress", "protocol: all", "cidrBlocks: [10.0.0.0/8]"), "securityGroup.tags.Name: want a string", 3, 34},
		{"duplicate tag", ruleYAML("securityGroup: {tags: {Name: a, Name: b}}", "type: ingress", "protocol: all", "cidrBlocks: [10.0.0.0/8]"), `duplicate tag "Name"`, 3, 37},
		{"source group bad", repl("cidrBlocks", "sourceSecurityGroups: [sg-xyz]"), "sourceSecurityGroups[0]: \"sg-xyz\" is not a group id", 8, 28},
		{"prefix list bad", repl("cidrBlocks", "prefixListIds: [pl-123]"), "is not a prefix list id", 8, 21},
		{"prefix list upper", repl("cidrBlocks", "prefixListIds: [pl-0123ABCD]"), "is not a prefix list id", 8, 21},
		{"bad type", strings.Replace(withBase(ok...), "type: ingress", "type: Ingress", 1), `type: want ingress or egress, got "Ingress"`, 4, 11},
		{"type typo", strings.Replace(withBase(ok...), "type: ingress", "type: ingres", 1), `type: want ingress or egress, got "ingres" (did you mean "ingress"?)`, 4, 11},
		{"type outbound", strings.Replace(withBase(ok...), "type: ingress", "type: outbound", 1), `got "outbound" (did you mean "egress"?)`, 4, 11},
		{"type number", strings.Replace(withBase(ok...), "type: ingress", "type: 1", 1), `type: want ingress or egress, got "1"`, 4, 11},
		{"missing type", strings.Replace(withBase(ok...), "    type: ingress\n", "", 1), `missing required field "type"`, 2, 3},
		{"missing group", strings.Replace(withBase(ok...), "    securityGroup: sg-0123456789abcdef0\n", "", 1), `missing required field "securityGroup"`, 2, 3},
		{"bad rule name", strings.Replace(withBase(ok...), "  r:", "  my rule:", 1), `rule name "my rule": only letters`, 2, 3},
		{"rule name too long", strings.Replace(withBase(ok...), "  r:", "  "+strings.Repeat("n", 129)+":", 1), "rule name is 129 characters, over the limit of 128", 2, 3},
		{"empty rule name", strings.Replace(withBase(ok...), "  r:", `  "":`, 1), "rule name is empty", 2, 3},
		{"rule key not scalar", "rules:\n  [a]: {}\n", "a key must be a plain string", 2, 3},
		{"rule null", "rules:\n  r:\n", "a rule must be a map of fields, got nothing", 2, 5},
		{"duplicate rule", withBase(ok...) + "  r:\n    type: egress\n", `duplicate rule name "r" (first at line 2)`, 9, 3},
		{"duplicate field", withBase(append(ok, "toPort: 81")...), `duplicate field "toPort" (first at line 7)`, 9, 5},
		{"duplicate permission in rule", repl("cidrBlocks", "cidrBlocks: [10.0.0.0/8, 10.0.0.0/8]"), "cidrBlocks[1]: same permission as rule r cidrBlocks[0] (line 8, col 18)", 8, 30},
		{"duplicate group source", repl("cidrBlocks", "sourceSecurityGroups: [{tags: {Name: a}}, {tags: {Name: a}}]"), "sourceSecurityGroups[1]: same permission as rule r sourceSecurityGroups[0] (line 8, col 28)", 8, 47},
		{"empty", "", "empty file", 1, 1},
		{"comments only", "# x\n\n", "empty file", 1, 1},
		{"null document", "~\n", `the top level must be a map with "rules", got nothing`, 1, 1},
		{"scalar document", "hello\n", `the top level must be a map with "rules", got "hello"`, 1, 1},
		{"rules list", "rules: []\n", `"rules" must be a map`, 1, 8},
		{"rules string", "rules: x\n", `"rules" must be a map`, 1, 8},
		{"missing rules", "exclusiveGroups: []\n", `missing "rules"`, 1, 1},
		{"unknown top level", "rules: {}\nexclusive: []\n", `unknown field "exclusive"`, 2, 1},
		{"exclusive bad", "rules: {}\nexclusiveGroups: [{tags: {}}]\n", "exclusiveGroups[0].tags: want a non-empty map", 2, 26},
		{"alias", "x: &x 1\nrules:\n  r: *x\n", "YAML alias *x is not supported", 3, 6},
		{"merge key", "rules:\n  a: &a {type: ingress}\n  b:\n    <<: *a\n", "YAML alias *a is not supported", 4, 9},
		{"two documents", "rules: {}\n---\nrules: {}\n", "more than one YAML document", 2, 1},
		{"tab after spaces", "rules:\n  r1:\n  \ttype: x\n", "invalid YAML: a tab in the indentation: YAML indents with spaces", 3, 3},
		{"tab before list item", "rules:\n  r1:\n    cidrBlocks:\n\t- 10.0.0.0/8\n", "YAML indents with spaces", 4, 1},
		{"syntax error", "rules:\n  r: [\n", "invalid YAML: did not find expected node content", 2, 1},
		{"invalid utf8", "rules:\n  r\xff: {}\n", "invalid UTF-8 (byte 0xff at offset 10)", 2, 4},
		{"control char", "rules: {}\n\x01", "control character U+0001", 2, 1},
		{"bom ok but then error", "\ufeffrules: x\n", `"rules" must be a map`, 1, 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, diags := Parse("t.yaml", []byte(tc.yaml))
			if f != nil {
				t.Errorf("got a File for invalid input")
			}
			for _, d := range diags {
				if d.Severity == SeverityError && strings.Contains(d.Msg, tc.want) {
					if d.Line != tc.line || d.Col != tc.col {
						t.Errorf("%q at %d:%d, want %d:%d", d.Msg, d.Line, d.Col, tc.line, tc.col)
					}
					return
				}
			}
			t.Errorf("no error containing %q in:\n%s", tc.want, strings.Join(diags.Strings(), "\n"))
		})
	}
}

func TestParseAllProblemsAtOnce(t *testing.T) {
	src := "rules:\n" +
		"  a:\n    securityGroup: sg-1\n    type: in\n    protocol: tcp\n    fromPort: x\n    toPort: 80\n    cidrBlocks: [10.0.0.1/8]\n" +
		"  b:\n    securityGroup: {tags: {Name: web}}\n    type: egress\n    protocol: udp\n    fromPort: 53\n    toPort: 53\n    cidrBlok: []\n" +
		"exclusiveGroups: [web]\n"
	_, diags := Parse("t.yaml", []byte(src))
	want := []string{
		"t.yaml:3:20: a: securityGroup:",
		"t.yaml:4:11: a: type:",
		"t.yaml:6:15: a: fromPort:",
		"t.yaml:8:18: a: cidrBlocks[0]:",
		"t.yaml:15:5: b: unknown field \"cidrBlok\" (did you mean \"cidrBlocks\"?)",
		"t.yaml:16:19: exclusiveGroups[0]:",
	}
	got := diags.Strings()
	if len(got) != len(want) {
		t.Fatalf("got %d diagnostics, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("diagnostic %d = %q, want prefix %q", i, got[i], want[i])
		}
	}
}

func TestParseWarnings(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // "" = no warning
	}{
		{"http world ok", withBase("protocol: tcp", "fromPort: 80", "toPort: 80", "cidrBlocks: [0.0.0.0/0]"), ""},
		{"https world v6 ok", withBase("protocol: tcp", "fromPort: 443", "toPort: 443", `ipv6CidrBlocks: ["::/0"]`), ""},
		{"icmp world ok", withBase("protocol: icmp", "cidrBlocks: [0.0.0.0/0]"), ""},
		{"icmpv6 world ok", withBase("protocol: icmpv6", `ipv6CidrBlocks: ["::/0"]`), ""},
		{"egress all world ok", ruleYAML("securityGroup: sg-01234567", "type: egress", "protocol: -1", "cidrBlocks: [0.0.0.0/0]"), ""},
		{"ssh private ok", withBase("protocol: tcp", "fromPort: 22", "toPort: 22", "cidrBlocks: [10.0.0.0/8]"), ""},
		{"ssh world", withBase("protocol: tcp", "fromPort: 22", "toPort: 22", "cidrBlocks: [0.0.0.0/0]"), "tcp 22 is open to the world (0.0.0.0/0)"},
		{"range 80-443 world", withBase("protocol: tcp", "fromPort: 80", "toPort: 443", "cidrBlocks: [0.0.0.0/0]"), "tcp 80-443 is open to the world"},
		{"udp 443 world", withBase("protocol: udp", "fromPort: 443", "toPort: 443", `ipv6CidrBlocks: ["::/0"]`), "udp 443 is open to the world (::/0)"},
		{"gre world", withBase("protocol: 47", "cidrBlocks: [0.0.0.0/0]"), "protocol 47 is open to the world"},
		{"all world", withBase("protocol: all", "cidrBlocks: [0.0.0.0/0]"), "all traffic (protocol -1) is open to the world"},
		{"icmp with ipv6", withBase("protocol: icmp", `ipv6CidrBlocks: ["2001:db8::/32"]`), "icmp is IPv4 only"},
		{"ssh halves", withBase("protocol: tcp", "fromPort: 22", "toPort: 22", "cidrBlocks: [0.0.0.0/1, 128.0.0.0/1]"), "cidrBlocks[0]: tcp 22 is open to the world (0.0.0.0/1, 128.0.0.0/1)"},
		{"ssh global unicast", withBase("protocol: tcp", "fromPort: 22", "toPort: 22", `ipv6CidrBlocks: ["2000::/3"]`), "ipv6CidrBlocks[0]: tcp 22 is open to the world (2000::/3)"},
		{"ssh all but private", withBase("protocol: tcp", "fromPort: 22", "toPort: 22",
			"cidrBlocks: [10.0.0.0/8, 0.0.0.0/5, 8.0.0.0/7, 11.0.0.0/8, 12.0.0.0/6, 16.0.0.0/4, 32.0.0.0/3, 64.0.0.0/2, 128.0.0.0/1]"), "cidrBlocks[8]: tcp 22 is open to the world (128.0.0.0/1, 64.0.0.0/2,"},
		{"ssh three quarters ok", withBase("protocol: tcp", "fromPort: 22", "toPort: 22", "cidrBlocks: [0.0.0.0/2, 64.0.0.0/2, 128.0.0.0/2]"), ""},
		{"ssh half of global unicast ok", withBase("protocol: tcp", "fromPort: 22", "toPort: 22", `ipv6CidrBlocks: ["2000::/4"]`), ""},
		{"http halves ok", withBase("protocol: tcp", "fromPort: 80", "toPort: 80", "cidrBlocks: [0.0.0.0/1, 128.0.0.0/1]"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, diags := Parse("t.yaml", []byte(tc.yaml))
			if f == nil {
				t.Fatalf("Parse: %v", diags.Strings())
			}
			if tc.want == "" {
				if len(diags) != 0 {
					t.Errorf("unexpected diagnostics: %v", diags.Strings())
				}
				return
			}
			if len(diags) != 1 || diags[0].Severity != SeverityWarning || !strings.Contains(diags[0].Msg, tc.want) {
				t.Errorf("want one warning containing %q, got %v", tc.want, diags.Strings())
			}
		})
	}
}

// The world-open warning counts the CIDRs of the file's rules for the same
// group whose protocol and ports include a rule's, and warns at each rule
// whose own CIDRs are among the fewest responsible.
func TestWorldOpenAcrossRules(t *testing.T) {
	rule := func(name, group, proto string, from, to int, cidrs string) string {
		return fmt.Sprintf("  %s:\n    securityGroup: %s\n    type: ingress\n    protocol: %s\n    fromPort: %d\n    toPort: %d\n    cidrBlocks: [%s]\n", name, group, proto, from, to, cidrs)
	}
	all := func(name, group, cidrs string) string {
		return fmt.Sprintf("  %s:\n    securityGroup: %s\n    type: ingress\n    protocol: -1\n    cidrBlocks: [%s]\n", name, group, cidrs)
	}
	const g1, g2 = "sg-01234567", "sg-89abcdef"
	tests := []struct {
		name  string
		rules string
		want  []string
	}{
		{"halves in two rules", rule("a", g1, "tcp", 22, 22, "0.0.0.0/1") + rule("b", g1, "tcp", 22, 22, "128.0.0.0/1"), []string{
			"t.yaml:8:18: warning: a: cidrBlocks[0]: tcp 22 is open to the world (0.0.0.0/1, 128.0.0.0/1 with rule b); only tcp 80 and 443 are expected to be",
			"t.yaml:15:18: warning: b: cidrBlocks[0]: tcp 22 is open to the world (0.0.0.0/1, 128.0.0.0/1 with rule a); only tcp 80 and 443 are expected to be"}},
		{"a range includes the port", rule("a", g1, "tcp", 22, 22, "0.0.0.0/1") + rule("b", g1, "tcp", 0, 1024, "128.0.0.0/1"), []string{
			"t.yaml:8:18: warning: a: cidrBlocks[0]: tcp 22 is open to the world (0.0.0.0/1, 128.0.0.0/1 with rule b); only tcp 80 and 443 are expected to be"}},
		{"all traffic includes tcp", rule("a", g1, "tcp", 22, 22, "0.0.0.0/1") + all("b", g1, "128.0.0.0/1"), []string{
			"t.yaml:8:18: warning: a: cidrBlocks[0]: tcp 22 is open to the world (0.0.0.0/1, 128.0.0.0/1 with rule b); only tcp 80 and 443 are expected to be"}},
		{"another group", rule("a", g1, "tcp", 22, 22, "0.0.0.0/1") + rule("b", g2, "tcp", 22, 22, "128.0.0.0/1"), nil},
		{"another protocol", rule("a", g1, "tcp", 22, 22, "0.0.0.0/1") + rule("b", g1, "udp", 22, 22, "128.0.0.0/1"), nil},
		{"another port", rule("a", g1, "tcp", 22, 22, "0.0.0.0/1") + rule("b", g1, "tcp", 23, 23, "128.0.0.0/1"), nil},
		{"only the broad rule is responsible", all("a", g1, "0.0.0.0/0") + rule("b", g1, "tcp", 22, 22, "203.0.113.0/24"), []string{
			"t.yaml:6:18: warning: a: cidrBlocks[0]: all traffic (protocol -1) is open to the world (0.0.0.0/0)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := Parse("t.yaml", []byte("rules:\n"+tc.rules))
			if got := diags.Strings(); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestQuotaWarning(t *testing.T) {
	cidrs := func(n int, v6 bool) string {
		var parts []string
		for i := range n {
			if v6 {
				parts = append(parts, fmt.Sprintf(`"2001:db8:%x::/48"`, i))
			} else {
				parts = append(parts, "10."+itoa(i)+".0.0/16")
			}
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	tests := []struct {
		name  string
		yaml  string
		warns int
	}{
		{"60 ipv4 ok", withBase("protocol: tcp", "fromPort: 22", "toPort: 22", "cidrBlocks: "+cidrs(60, false)), 0},
		{"61 ipv4", withBase("protocol: tcp", "fromPort: 22", "toPort: 22", "cidrBlocks: "+cidrs(61, false)), 1},
		{"40 v4 + 40 v6 ok", withBase("protocol: tcp", "fromPort: 22", "toPort: 22", "cidrBlocks: "+cidrs(40, false), "ipv6CidrBlocks: "+cidrs(40, true)), 0},
		{"split directions ok", withBase("protocol: tcp", "fromPort: 22", "toPort: 22", "cidrBlocks: "+cidrs(40, false)) +
			"  e:\n    securityGroup: sg-0123456789abcdef0\n    type: egress\n    protocol: tcp\n    fromPort: 22\n    toPort: 22\n    cidrBlocks: " + cidrs(40, false) + "\n", 0},
		{"split rules same direction", withBase("protocol: tcp", "fromPort: 22", "toPort: 22", "cidrBlocks: "+cidrs(40, false)) +
			"  e:\n    securityGroup: sg-0123456789abcdef0\n    type: ingress\n    protocol: tcp\n    fromPort: 23\n    toPort: 23\n    cidrBlocks: " + cidrs(40, false) + "\n", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, diags := Parse("t.yaml", []byte(tc.yaml))
			if f == nil {
				t.Fatalf("Parse: %v", diags.Strings())
			}
			n := 0
			for _, d := range diags {
				if strings.Contains(d.Msg, "default EC2 quota of 60") {
					n++
				}
			}
			if n != tc.warns || len(diags) != n {
				t.Errorf("got %d quota warnings, want %d: %v", n, tc.warns, diags.Strings())
			}
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestParseLimits(t *testing.T) {
	t.Run("too large refused before parsing", func(t *testing.T) {
		data := []byte("rules: {}\n" + strings.Repeat("#", MaxFileSize))
		f, diags := Parse("big.yaml", data)
		if f != nil || len(diags) != 1 || !strings.Contains(diags[0].Msg, "over the limit of 1048576 bytes") {
			t.Errorf("got %v", diags.Strings())
		}
	})
	t.Run("at the limit accepted", func(t *testing.T) {
		data := []byte("rules: {}\n")
		data = append(data, []byte("#"+strings.Repeat("x", MaxFileSize-len(data)-1))...)
		if len(data) != MaxFileSize {
			t.Fatal(len(data))
		}
		if f, diags := Parse("big.yaml", data); f == nil {
			t.Errorf("got %v", diags.Strings())
		}
	})
	t.Run("billion laughs refused without expanding", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
		for i := 1; i < 30; i++ {
			b.WriteString("a" + itoa(i) + ": &a" + itoa(i) + " [")
			for j := range 10 {
				if j > 0 {
					b.WriteString(", ")
				}
				b.WriteString("*a" + itoa(i-1))
			}
			b.WriteString("]\n")
		}
		b.WriteString("rules: {}\n")
		// Refused without expanding: the bytes allocated are bounded by
		// the input's size (an expansion would be 10^30 lols), measured
		// rather than timed.
		var f *File
		var diags Diagnostics
		allocated := allocatedBy(func() { f, diags = Parse("bomb.yaml", []byte(b.String())) })
		if limit := uint64(1000 * b.Len()); allocated > limit {
			t.Errorf("Parse allocated %d bytes for a %d-byte file (limit %d)", allocated, b.Len(), limit)
		}
		if f != nil || !strings.Contains(diags[0].Msg, "YAML alias *a0 is not supported") || !strings.Contains(diags[0].Msg, "(and 289 more)") {
			t.Errorf("got %v", diags.Strings())
		}
	})
	t.Run("deep nesting yaml", func(t *testing.T) {
		data := []byte("rules: " + strings.Repeat("[", 20000) + strings.Repeat("]", 20000))
		if f, diags := Parse("deep.yaml", data); f != nil || !diags.HasErrors() {
			t.Errorf("got %v", diags.Strings())
		}
	})
	t.Run("deep nesting json", func(t *testing.T) {
		data := []byte(`{"rules": ` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + "}")
		f, diags := Parse("deep.json", data)
		if f != nil || len(diags) != 1 || !strings.Contains(diags[0].Msg, "nested more than 64 levels deep") {
			t.Errorf("got %v", diags.Strings())
		}
	})
}

func TestParseJSON(t *testing.T) {
	src := "{\n  \"rules\": {\n    \"web\": {\n      \"securityGroup\": \"sg-01234567\",\n      \"type\": \"ingress\",\n" +
		"      \"protocol\": \"tcp\",\n      \"fromPort\": 443,\n      \"toPort\": 443,\n      \"cidrBlocks\": [\"0.0.0.0/0\"],\n" +
		"      \"description\": \"caf\\u00e9 \\ud83d\\ude00\"\n    }\n  }\n}\n"
	f, diags := Parse("x.json", []byte(src))
	if f != nil {
		t.Fatalf("want the description refused, got a file")
	}
	if len(diags) != 1 || diags[0].Line != 10 || diags[0].Col != 22 || !strings.Contains(diags[0].Msg, `character "é" at position 4`) {
		t.Errorf("got %v", diags.Strings())
	}
	tests := []struct{ name, src, want string }{
		{"float port", `{"rules": {"r": {"securityGroup": "sg-01234567", "type": "ingress", "protocol": "tcp", "fromPort": 8e1, "toPort": 80, "cidrBlocks": ["10.0.0.0/8"]}}}`, "1:100: r: fromPort: want a whole number, got the number 8e1"},
		{"leading zero", `{"rules": {"r": {"fromPort": 022}}}`, "1:30: invalid JSON: number 022: JSON numbers are decimal, without leading zeros; write 22"},
		{"negative leading zero", `{"rules": {"r": {"fromPort": -01}}}`, "1:30: invalid JSON: number -01: JSON numbers are decimal, without leading zeros; write -1"},
		{"hex", `{"rules": {"r": {"fromPort": 0x50}}}`, "1:30: invalid JSON: number 0x50: JSON numbers are decimal, without leading zeros; write 80"},
		{"zero then garbage", `{"rules": {"r": {"fromPort": 0z}}}`, "1:31: invalid JSON: invalid character 'z'"},
		{"trailing comma", "{\"rules\": {},}", "1:13: invalid JSON: trailing comma before '}'"},
		{"trailing comma lines before", "{\"rules\": {\"a\": [1, 2,\n\n  ]}}", "1:22: invalid JSON: trailing comma before ']'"},
		{"syntax", "{\"rules\": {,}}", "1:12: invalid JSON: invalid character ','"},
		{"truncated", "{\"rules\": {", "1:12: invalid JSON: unexpected end of file"},
		{"array top", "[]", `1:1: the top level must be a map with "rules", got a list`},
		{"empty", " \n", "1:1: empty file"},
		{"yaml in json file", "rules: {}\n", "1:1: invalid JSON: invalid character 'r'"},
		{"duplicate key", `{"rules": {}, "rules": {}}`, `1:15: duplicate field "rules" (first at line 1)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, diags := Parse("x.json", []byte(tc.src))
			if f != nil || len(diags) == 0 || !strings.HasPrefix(diags[0].String(), "x.json:"+tc.want) {
				t.Errorf("got %v, want prefix x.json:%s", diags.Strings(), tc.want)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	tests := []struct{ in, want string }{
		{"cidrblocks", "cidrBlocks"},
		{"CidrBlocks", "cidrBlocks"},
		{"cidr_blocks", "cidrBlocks"},
		{"from_port", "fromPort"},
		{"FromPort", "fromPort"},
		{"tpye", "type"},
		{"descripton", "description"},
		{"IpProtocol", "protocol"},
		{"CidrIp", "cidrBlocks"},
		{"CidrIpv6", "ipv6CidrBlocks"},
		{"GroupId", "securityGroup"},
		{"sourceSecurityGroup", "sourceSecurityGroups"},
		{"prefixListId", "prefixListIds"},
		{"securitygroups", "securityGroup"},
		{"ports", ""},
		{"x", ""},
		{"somethingelseentirely", ""},
	}
	for _, tc := range tests {
		if got := suggest(tc.in, ruleFields); got != tc.want {
			t.Errorf("suggest(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	values := []struct {
		in    string
		known []string
		want  string
	}{
		{"ingres", directions, "ingress"},
		{"Egress", directions, "egress"},
		{"inbound", directions, "ingress"},
		{"both", directions, ""},
		{"in", directions, ""},
		{"tcpp", protocolNames, "tcp"},
		{"UPD", protocolNames, "udp"},
		{"icmp_v6", protocolNames, "icmpv6"},
		{"gre", protocolNames, "47"},
		{"any", protocolNames, "all"},
		{"sctp", protocolNames, "132"},
		{"http", protocolNames, ""},
		{"inbound", protocolNames, ""},
	}
	for _, tc := range values {
		if got := suggest(tc.in, tc.known); got != tc.want {
			t.Errorf("suggest(%q, %v) = %q, want %q", tc.in, tc.known, got, tc.want)
		}
	}
}

func TestIsRuleFile(t *testing.T) {
	for name, want := range map[string]bool{"a.yaml": true, "a.YML": true, "dir/a.json": true, "a.txt": false, "yaml": false, "a.yaml.bak": false} {
		if got := IsRuleFile(name); got != want {
			t.Errorf("IsRuleFile(%q) = %v", name, got)
		}
	}
}

// TestParseLargeFast: a file near the size limit with many nodes on one
// line parses in linear time.
func TestParseLargeFast(t *testing.T) {
	for _, name := range []string{"big.json", "big.yaml"} {
		var b strings.Builder
		b.WriteString(`{"rules": {"r": {"securityGroup": "sg-01234567", "type": "ingress", "protocol": "tcp", "fromPort": 1, "toPort": 1, "cidrBlocks": [`)
		for i := 0; b.Len() < MaxFileSize-100; i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, `"10.%d.%d.0/24"`, (i/256)%256, i%256)
		}
		b.WriteString("]}}}")
		_, diags := Parse(name, []byte(b.String()))
		if diags.HasErrors() || len(diags) != 1 || !strings.Contains(diags[0].Msg, "over the default EC2 quota") {
			t.Errorf("%s: want one quota warning, got %d diagnostics", name, len(diags))
		}
	}
}

// JSON positions are found in linear time: the position cursor steps over
// each rune of a file near the size limit with many nodes on one line once,
// counted rather than timed (it was quadratic).
func TestJSONPositionsLinear(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"rules": {"r": {"securityGroup": "sg-01234567", "type": "ingress", "protocol": "tcp", "fromPort": 1, "toPort": 1, "cidrBlocks": [`)
	n := 0
	for ; b.Len() < MaxFileSize-100; n++ {
		if n > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, `"10.%d.%d.0/24"`, (n/256)%256, n%256)
	}
	b.WriteString("]}}}")
	data := []byte(b.String())
	j := &jsonReader{data: data, dec: json.NewDecoder(bytes.NewReader(data))}
	j.dec.UseNumber()
	if _, err := j.value(0); err != nil {
		t.Fatal(err)
	}
	if j.scanned > len(data) {
		t.Errorf("positions of %d nodes scanned %d runes of a %d-byte file: not linear", n, j.scanned, len(data))
	}
	if j.scanned < len(data)/2 {
		t.Errorf("scanned %d runes of %d bytes: the counter does not count", j.scanned, len(data))
	}
}

// allocatedBy returns the bytes allocated while fn runs (the package's
// tests do not run in parallel).
func allocatedBy(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
