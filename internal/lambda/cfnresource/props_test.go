package cfnresource

import (
	"strings"
	"testing"

	"github.com/sgrules/sgrules/pkg/rules"
)

func TestParseProperties(t *testing.T) {
	props := map[string]any{
		"ServiceToken":         "arn:aws:lambda:...",
		"securityGroup":        "sg-0123456789abcdef0",
		"type":                 "ingress",
		"protocol":             "6",
		"fromPort":             "80",
		"toPort":               float64(80),
		"cidrBlocks":           []any{"0.0.0.0/0"},
		"sourceSecurityGroups": []any{map[string]any{"tags": map[string]any{"Name": "alb"}}},
		"description":          "HTTP",
	}
	f, diags := ParseProperties("cfn/stack/Web", "Web", props)
	if f == nil || len(diags) != 0 {
		t.Fatalf("ParseProperties: %v", diags.Strings())
	}
	r := f.Rules[0]
	if f.Name != "cfn/stack/Web" || r.Name != "Web" || r.Protocol != rules.ProtoTCP || r.FromPort != 80 || r.ToPort != 80 ||
		len(r.CIDRBlocks) != 1 || r.SourceSecurityGroups[0].Tags["Name"] != "alb" || r.Description != "HTTP" {
		t.Errorf("rule %+v", r)
	}

	decimal, diags := ParseProperties("s", "R", map[string]any{
		"securityGroup": "sg-0123456789abcdef0", "type": "ingress", "protocol": "tcp",
		"fromPort": "022", "toPort": "0443", "cidrBlocks": []any{"10.0.0.0/8"},
	})
	if decimal == nil || decimal.Rules[0].FromPort != 22 || decimal.Rules[0].ToPort != 443 {
		t.Errorf("numeric strings with leading zeros must read as decimal: %v %v", decimal, diags.Strings())
	}

	allFromProps, diags := ParseProperties("s", "R", map[string]any{
		"securityGroup": map[string]any{"groupName": "web", "vpcId": "vpc-01234567"},
		"type":          "egress", "protocol": "-1", "fromPort": "-1", "toPort": "-1",
		"ipv6CidrBlocks": []string{"::/0"},
	})
	if allFromProps == nil || allFromProps.Rules[0].FromPort != -1 {
		t.Errorf("protocol -1 from strings: %v", diags.Strings())
	}

	tests := []struct {
		name  string
		props map[string]any
		field string
		msg   string
	}{
		{"bad port", map[string]any{"fromPort": "eighty"}, "fromPort", `fromPort: want a whole number, got "eighty"`},
		{"fractional port", map[string]any{"fromPort": 80.5}, "fromPort", "fromPort: want a whole number, got the number 80.5"},
		{"unknown property", map[string]any{"CidrIp": "10.0.0.0/8"}, "CidrIp", `unknown field "CidrIp" (did you mean "cidrBlocks"?)`},
		{"bad cidr", map[string]any{"cidrBlocks": []any{"10.0.0.1/8"}}, "cidrBlocks[0]", "cidrBlocks[0]: 10.0.0.1/8 has host bits set: did you mean 10.0.0.0/8?"},
		{"cidr string not list", map[string]any{"cidrBlocks": "10.0.0.0/8"}, "cidrBlocks", "cidrBlocks: want a list"},
		{"missing type", map[string]any{"type": nil}, "type", "type: want a string, got nothing"},
		{"port on all", map[string]any{"protocol": "-1"}, "fromPort", "fromPort: protocol -1 (all traffic) has no ports"},
		{"bad group", map[string]any{"securityGroup": "web"}, "securityGroup", `securityGroup: "web" is not a group id`},
		{"bad description", map[string]any{"description": "naïve"}, "description", `description: character "ï"`},
		{"unsupported value", map[string]any{"fromPort": []int{1}}, "fromPort", "fromPort: want a whole number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := map[string]any{}
			for k, v := range props {
				p[k] = v
			}
			for k, v := range tc.props {
				p[k] = v
			}
			f, diags := ParseProperties("cfn/s/R", "R", p)
			if f != nil {
				t.Fatal("want nil file")
			}
			for _, d := range diags {
				if d.Field == tc.field && strings.HasPrefix(d.Msg, tc.msg) {
					if d.Line != 0 || d.Col != 0 || d.File != "cfn/s/R" || d.Rule != "R" {
						t.Errorf("diagnostic %+v", d)
					}
					return
				}
			}
			t.Errorf("no diagnostic with field %q and message %q in %+v", tc.field, tc.msg, diags)
		})
	}
}
