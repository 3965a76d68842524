package policy

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/sgrules/sgrules/pkg/rules"
)

const issueExample = `deny:
  - id: no-world-ssh
    message: SSH must not be open to the internet
    type: ingress
    protocol: tcp
    ports: 22
    cidrs: [0.0.0.0/0, "::/0"]
    broaderThan: {ipv4: 16, ipv6: 48}
    groups: {tags: {tier: db}}
    exempt: [{tags: {sgrules: break-glass}}, sg-0123456789abcdef0]
  - id: no-web-to-db
    peerGroups: [{tags: {tier: web}}, {groupName: legacy, vpcId: vpc-0a1b2c3d}]
    ports: ["1024-65535", 3389]
tenants:
  - prefix: team-a/
    groups: {tags: {team: a}}
    accounts: ["111122223333"]
enforce: revoke
`

func TestParseIssueExample(t *testing.T) {
	p, diags := Parse("policy/sgrules.yaml", []byte(issueExample))
	if p == nil || len(diags) != 0 {
		t.Fatalf("Parse: %v", diags.Strings())
	}
	want := &Policy{
		Name: "policy/sgrules.yaml",
		Deny: []Clause{{
			ID: "no-world-ssh", Message: "SSH must not be open to the internet", Pos: rules.Pos{Line: 2, Col: 9},
			Direction: rules.Ingress, Protocol: "tcp", Ports: []PortRange{{22, 22}},
			CIDRs:       []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")},
			BroaderThan: &Broader{IPv4: 16, IPv6: 48},
			Groups:      []rules.GroupRef{{Tags: map[string]string{"tier": "db"}}},
			Exempt:      []rules.GroupRef{{Tags: map[string]string{"sgrules": "break-glass"}}, {ID: "sg-0123456789abcdef0"}},
		}, {
			ID: "no-web-to-db", Pos: rules.Pos{Line: 11, Col: 9},
			PeerGroups: []rules.GroupRef{{Tags: map[string]string{"tier": "web"}}, {Name: "legacy", VPCID: "vpc-0a1b2c3d"}},
			Ports:      []PortRange{{1024, 65535}, {3389, 3389}},
		}},
		Tenants: []Tenant{{Prefix: "team-a/", Pos: rules.Pos{Line: 15, Col: 13}, Groups: []rules.GroupRef{{Tags: map[string]string{"team": "a"}}},
			Accounts: []string{"111122223333"}}},
		Enforce: EnforceRevoke,
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("Parse:\n got %+v\nwant %+v", p, want)
	}
}

func TestParseDefaultsAndJSON(t *testing.T) {
	p, diags := Parse("p.json", []byte(`{"deny": [{"id": "x", "protocol": 6, "ports": "8000 - 8999"}]}`))
	if p == nil {
		t.Fatalf("Parse: %v", diags.Strings())
	}
	if p.Enforce != EnforceReport || p.Deny[0].Protocol != "tcp" || p.Deny[0].Ports[0] != (PortRange{8000, 8999}) {
		t.Errorf("got %+v", p)
	}
	if p, diags := Parse("p.yaml", []byte("{}\n")); p == nil || len(diags) != 0 {
		t.Errorf("an empty map is an empty policy: %v", diags.Strings())
	}
}

// Every error is located and names the clause and the field.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"empty", "", []string{`p.yaml:1:1: empty file: want a map with "deny", "tenants" or "enforce"`}},
		{"not a map", "[1]\n", []string{`p.yaml:1:1: the top level must be a map`}},
		{"unknown top", "deny: []\ntenant: []\n", []string{`p.yaml:2:1: unknown field "tenant" (did you mean "tenants"?)`}},
		{"alias", "deny: &a []\ntenants: *a\n", []string{`p.yaml:2:10: YAML alias *a is not supported in policy files`}},
		{"two docs", "deny: []\n---\ndeny: []\n", []string{`put each policy file in its own file`}},
		{"deny not list", "deny: {id: x}\n", []string{`p.yaml:1:7: "deny" must be a list of clauses, got a map`}},
		{"missing id", "deny:\n  - type: ingress\n", []string{`p.yaml:2:5: deny[0]: deny[0]: missing required field "id"`}},
		{"bad id", "deny:\n  - id: 'no world'\n    type: ingress\n", []string{`p.yaml:2:9: deny[0]: id "no world": want 1-128 letters`}},
		{"duplicate id", "deny:\n  - {id: a, type: ingress}\n  - {id: A, type: egress}\n", []string{`p.yaml:3:10: A: duplicate clause id "A" (first at line 2`}},
		{"unknown field", "deny:\n  - id: a\n    cidr: [0.0.0.0/0]\n", []string{`p.yaml:3:5: a: unknown field "cidr" (did you mean "cidrs"?)`}},
		{"unknown field far", "deny:\n  - id: a\n    prot: tcp\n    type: ingress\n", []string{`p.yaml:3:5: a: unknown field "prot" (known fields: id, message`}},
		{"no condition", "deny:\n  - id: a\n    message: m\n", []string{`p.yaml:2:5: a: the clause sets no condition and would deny every rule`}},
		{"bad type", "deny:\n  - {id: a, type: inbound}\n", []string{`p.yaml:2:19: a: type: want ingress or egress, got "inbound"`}},
		{"bad protocol", "deny:\n  - {id: a, protocol: tcpp}\n", []string{`p.yaml:2:23: a: protocol: unknown protocol "tcpp"`}},
		{"port out of range", "deny:\n  - {id: a, ports: 70000}\n", []string{`p.yaml:2:20: a: ports: 70000 is out of range 0-65535`}},
		{"icmp type out of range", "deny:\n  - {id: a, protocol: icmp, ports: 300}\n", []string{`a: ports: 300 is out of range 0-255`}},
		{"port reversed", "deny:\n  - {id: a, ports: [22, '90-80']}\n", []string{`p.yaml:2:25: a: ports[1]: 90-80: the range ends before it starts`}},
		{"port garbage", "deny:\n  - {id: a, ports: ssh}\n", []string{`a: ports: want a port 0-65535 or a range "FROM-TO", got "ssh"`}},
		{"negative port", "deny:\n  - {id: a, ports: -1}\n", []string{`a: ports: want a port 0-65535`}},
		{"ports on all traffic", "deny:\n  - {id: a, protocol: -1, ports: 22}\n", []string{`a: ports: protocol -1 (all traffic) has no ports`}},
		{"ports on gre", "deny:\n  - {id: a, protocol: 47, ports: 22}\n", []string{`a: ports: protocol 47 has no ports`}},
		{"empty ports", "deny:\n  - {id: a, ports: []}\n", []string{`a: ports: an empty list matches nothing`}},
		{"address not cidr", "deny:\n  - {id: a, cidrs: [10.0.0.1]}\n", []string{`p.yaml:2:21: a: cidrs[0]: "10.0.0.1" is an address, not a CIDR: did you mean 10.0.0.1/32?`}},
		{"host bits", "deny:\n  - {id: a, cidrs: [10.1.0.0/8]}\n", []string{`a: cidrs[0]: 10.1.0.0/8 has host bits set: did you mean 10.0.0.0/8?`}},
		{"cidrs not list", "deny:\n  - {id: a, cidrs: 0.0.0.0/0}\n", []string{`a: cidrs: want a list, got "0.0.0.0/0" (write [0.0.0.0/0])`}},
		{"empty cidrs", "deny:\n  - {id: a, cidrs: []}\n", []string{`a: cidrs: an empty list matches nothing`}},
		{"broader unknown", "deny:\n  - {id: a, broaderThan: {ip4: 8}}\n", []string{`a: unknown field "ip4" (did you mean "ipv4"?)`}},
		{"broader range", "deny:\n  - {id: a, broaderThan: {ipv4: 33}}\n", []string{`a: broaderThan.ipv4: 33 is out of range 1-32`}},
		{"broader string", "deny:\n  - {id: a, broaderThan: {ipv6: '/48'}}\n", []string{`a: broaderThan.ipv6: want a prefix length 1-128, got "/48"`}},
		{"broader not map", "deny:\n  - {id: a, broaderThan: 8}\n", []string{`a: broaderThan: want a map {ipv4: PREFIX-LENGTH, ipv6: PREFIX-LENGTH}`}},
		{"bad selector", "deny:\n  - {id: a, groups: {tags: {}}}\n", []string{`a: groups.tags: want a non-empty map`}},
		{"selector unknown", "deny:\n  - {id: a, groups: {tag: {tier: db}}}\n", []string{`a: unknown field "tag" (did you mean "tags"?)`}},
		{"selector bad id", "deny:\n  - {id: a, exempt: [sg-1]}\n", []string{`a: exempt[0]: "sg-1" is not a group id`}},
		{"empty exempt", "deny:\n  - {id: a, type: ingress, exempt: []}\n", []string{`a: exempt: an empty list matches no group`}},
		{"peer and cidrs", "deny:\n  - {id: a, cidrs: [0.0.0.0/0], peerGroups: sg-0123456789abcdef0}\n", []string{`a: peerGroups and cidrs never match the same rule`}},
		{"peer and broader", "deny:\n  - {id: a, broaderThan: {ipv4: 8}, peerGroups: sg-0123456789abcdef0}\n", []string{`a: peerGroups and broaderThan never match the same rule`}},
		{"icmpv6 ipv4", "deny:\n  - {id: a, protocol: icmpv6, cidrs: [0.0.0.0/0]}\n", []string{`a: cidrs: icmpv6 applies to IPv6 only`}},
		{"multi-line message", "deny:\n  - id: a\n    type: ingress\n    message: \"one\\ntwo\"\n", []string{`p.yaml:4:14: a: message: must be one line`}},
		{"enforce", "enforce: block\n", []string{`p.yaml:1:10: enforce: want report or revoke, got "block"`}},
		{"tenant missing", "tenants:\n  - {accounts: ['111122223333']}\n", []string{`tenants[0]: missing required field "prefix"`, `tenants[0]: missing required field "groups"`}},
		{"tenant no slash", "tenants:\n  - {prefix: team-a, groups: sg-0123456789abcdef0}\n", []string{`p.yaml:2:14: tenants[0]: prefix "team-a": end it with a slash (team-a/)`}},
		{"tenant absolute", "tenants:\n  - {prefix: /team-a/, groups: sg-0123456789abcdef0}\n", []string{`prefix "/team-a/": want a path relative to the rules root`}},
		{"tenant dotdot", "tenants:\n  - {prefix: a/../b/, groups: sg-0123456789abcdef0}\n", []string{`want a clean slash-separated path`}},
		{"tenant dup", "tenants:\n  - {prefix: a/, groups: sg-0123456789abcdef0}\n  - {prefix: a/, groups: sg-0123456789abcdef0}\n", []string{`p.yaml:3:14: tenants[1]: duplicate tenant prefix "a/" (first at line 2)`}},
		{"tenant account", "tenants:\n  - {prefix: a/, groups: sg-0123456789abcdef0, accounts: [1234]}\n", []string{`tenants[0]: accounts[0]: "1234" is not an AWS account id`}},
		{"tenant unknown", "tenants:\n  - {prefix: a/, group: sg-0123456789abcdef0}\n", []string{`unknown field "group" (did you mean "groups"?)`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, diags := Parse("p.yaml", []byte(tc.src))
			if p != nil {
				t.Fatalf("Parse accepted the policy: %+v", p)
			}
			got := strings.Join(diags.Strings(), "\n")
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("diagnostics do not contain %q:\n%s", w, got)
				}
			}
		})
	}
}

func TestParseJSONErrors(t *testing.T) {
	for src, want := range map[string]string{
		" ":                                      `p.json:1:1: empty file: want a JSON object with "deny", "tenants" or "enforce"`,
		`{"deny": [{"id": "a",}]}`:               `p.json:1:21: invalid JSON: trailing comma`,
		`{"deny": [{"id": "a", "ports": 22.5}]}`: `p.json:1:32: a: ports: want a port 0-65535 or a range "FROM-TO", got the number 22.5`,
	} {
		p, diags := Parse("p.json", []byte(src))
		if got := strings.Join(diags.Strings(), "\n"); p != nil || !strings.Contains(got, want) {
			t.Errorf("Parse(%q) = %v\nwant %q", src, got, want)
		}
	}
}
