package rules

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func mustParse(t *testing.T, src string) *File {
	t.Helper()
	f, diags := Parse("t.yaml", []byte(src))
	if f == nil {
		t.Fatalf("Parse: %v", diags.Strings())
	}
	return f
}

func mapResolver(m map[string][]string) Resolver {
	return func(g GroupRef) []string {
		if g.IsID() {
			return []string{g.ID}
		}
		return m[g.String()]
	}
}

func TestExpand(t *testing.T) {
	src := `rules:
  db:
    securityGroup: {tags: {Name: db}}
    type: ingress
    protocol: tcp
    fromPort: 5432
    toPort: 5432
    sourceSecurityGroups: [{tags: {Name: app}}, sg-0000000a]
    cidrBlocks: [10.0.0.0/16]
    ipv6CidrBlocks: ["2001:db8::/32"]
    prefixListIds: [pl-0123abcd]
    description: pg
  out:
    securityGroup: sg-0000000b
    type: egress
    protocol: all
    cidrBlocks: [0.0.0.0/0]
exclusiveGroups: [{tags: {Name: db}}, sg-0000000b, {groupName: db, vpcId: vpc-01234567}]
`
	f := mustParse(t, src)
	res := mapResolver(map[string][]string{
		"tags:Name=db":         {"sg-000000db"},
		"tags:Name=app":        {"sg-000000aa"},
		"name:db@vpc-01234567": {"sg-000000db"},
	})
	perms, excl, diags := Expand(f, "src/a.yaml", res)
	if len(diags) != 0 {
		t.Fatalf("diags: %v", diags.Strings())
	}
	var got []string
	for _, p := range perms {
		got = append(got, p.Key.String()+" "+p.Description+" "+p.Owner.String())
	}
	want := []string{
		"sg-0000000b|egress|-1|-1|-1|cidr4:0.0.0.0/0  src/a.yaml#out",
		"sg-000000db|ingress|tcp|5432|5432|cidr4:10.0.0.0/16 pg src/a.yaml#db",
		"sg-000000db|ingress|tcp|5432|5432|cidr6:2001:db8::/32 pg src/a.yaml#db",
		"sg-000000db|ingress|tcp|5432|5432|pl:pl-0123abcd pg src/a.yaml#db",
		"sg-000000db|ingress|tcp|5432|5432|sg:sg-0000000a pg src/a.yaml#db",
		"sg-000000db|ingress|tcp|5432|5432|sg:sg-000000aa pg src/a.yaml#db",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("perms:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !reflect.DeepEqual(excl, []string{"sg-0000000b", "sg-000000db"}) {
		t.Errorf("exclusive %v", excl)
	}
	for _, p := range perms {
		if _, err := ParseKey(p.Key.String()); err != nil {
			t.Errorf("key does not round-trip: %v", err)
		}
	}
}

func TestExpandErrors(t *testing.T) {
	src := `rules:
  a:
    securityGroup: {groupName: web, vpcId: vpc-00000001}
    type: ingress
    protocol: tcp
    fromPort: 80
    toPort: 80
    sourceSecurityGroups: [{tags: {Name: app}}, {tags: {Name: none}}]
  b:
    securityGroup: sg-000000ee
    type: ingress
    protocol: tcp
    fromPort: 22
    toPort: 22
    sourceSecurityGroups: [sg-000000aa, {tags: {Name: app}}]
  c:
    securityGroup: {tags: {Name: two}}
    type: ingress
    protocol: udp
    fromPort: 1
    toPort: 1
    cidrBlocks: [10.0.0.0/8]
exclusiveGroups: [{tags: {Name: none}}]
`
	f := mustParse(t, src)
	res := mapResolver(map[string][]string{
		"tags:Name=app": {"sg-000000aa"},
		"tags:Name=two": {"sg-b", "sg-a", "sg-a"},
	})
	perms, excl, diags := Expand(f, "src", res)
	if perms != nil || excl != nil {
		t.Errorf("want nil perms and exclusive on error, got %v %v", perms, excl)
	}
	want := []string{
		"t.yaml:3:20: a: securityGroup {groupName: web, vpcId: vpc-00000001}: no security group matches",
		"t.yaml:8:49: a: sourceSecurityGroups[1] {tags: {Name: none}}: no security group matches",
		"t.yaml:15:41: b: sourceSecurityGroups[1]: same permission as rule b sourceSecurityGroups[0] (line 15, col 28): sg-000000ee|ingress|tcp|22|22|sg:sg-000000aa",
		"t.yaml:17:20: c: securityGroup {tags: {Name: two}}: matches 2 groups: sg-a, sg-b",
		"t.yaml:23:19: exclusiveGroups[0] {tags: {Name: none}}: no security group matches",
	}
	if got := diags.Strings(); !reflect.DeepEqual(got, want) {
		t.Errorf("diags:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestExpandDuplicateAcrossRules(t *testing.T) {
	src := `rules:
  a:
    securityGroup: sg-000000db
    type: ingress
    protocol: tcp
    fromPort: 80
    toPort: 80
    cidrBlocks: [10.0.0.0/8]
  b:
    securityGroup: {tags: {Name: db}}
    type: ingress
    protocol: 6
    fromPort: 80
    toPort: 80
    cidrBlocks: [10.0.0.0/8]
`
	f := mustParse(t, src)
	_, _, diags := Expand(f, "src", mapResolver(map[string][]string{"tags:Name=db": {"sg-000000db"}}))
	if len(diags) != 1 || diags[0].Rule != "b" || diags[0].Line != 15 ||
		!strings.Contains(diags[0].Msg, "same permission as rule a cidrBlocks[0] (line 8, col 18)") {
		t.Errorf("got %v", diags.Strings())
	}
}

func TestExpandNilResolver(t *testing.T) {
	f := mustParse(t, "rules:\n  a:\n    securityGroup: sg-000000db\n    type: ingress\n    protocol: all\n    sourceSecurityGroups: [{tags: {Name: x}}]\n")
	_, _, diags := Expand(f, "src", nil)
	if len(diags) != 1 || !strings.Contains(diags[0].Msg, "no security group matches") {
		t.Errorf("got %v", diags.Strings())
	}
	if p, e, d := Expand(nil, "src", nil); p != nil || e != nil || d != nil {
		t.Error("Expand(nil) not empty")
	}
}

func TestRefs(t *testing.T) {
	f := mustParse(t, `rules:
  a:
    securityGroup: {tags: {Name: web, Env: prod}}
    type: ingress
    protocol: all
    sourceSecurityGroups: [sg-01234567, {groupName: app, vpcId: vpc-01234567}, {tags: {Env: prod, Name: web}}]
  b:
    securityGroup: sg-01234567
    type: ingress
    protocol: all
    sourceSecurityGroups: [{tags: {Name: alb}}]
exclusiveGroups: [{groupName: app, vpcId: vpc-01234567}, {tags: {Name: z}}, sg-0123456a]
`)
	var got []string
	for _, g := range f.Refs() {
		got = append(got, g.String())
	}
	want := []string{"name:app@vpc-01234567", "tags:Env=prod,Name=web", "tags:Name=alb", "tags:Name=z"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Refs = %v, want %v", got, want)
	}
}

// TestMarshalRoundTrip: for every example and a file using every form,
// Parse(MarshalYAML(f)) equals f with rules in name order, positions aside.
func TestMarshalRoundTrip(t *testing.T) {
	var files []*File
	for _, path := range ruleFiles(t, "../../examples") {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, diags := Parse(filepath.Base(path), data)
		if f == nil {
			t.Fatalf("%s: %v", path, diags.Strings())
		}
		files = append(files, f)
	}
	files = append(files, mustParse(t, `rules:
  z:
    securityGroup: {groupName: "web: the #1 group", vpcId: vpc-0a1b2c3d4e5f60718}
    type: egress
    protocol: 58
    fromPort: 128
    ipv6CidrBlocks: ["2001:db8::/32"]
    prefixListIds: [pl-0123456789abcdef0]
    description: "yes"
  a:
    securityGroup: {tags: {Name: "true", "aws:cloudformation:stack-name": "123", Empty: ""}}
    type: ingress
    protocol: 132
    sourceSecurityGroups: [sg-01234567]
    description: "[x] {y} #z: a=b & c; d!$*"
exclusiveGroups: [sg-01234567, {tags: {Name: web}}]
`), &File{Rules: []Rule{}})
	for _, f := range files {
		t.Run(f.Name, func(t *testing.T) {
			out, err := MarshalYAML(f)
			if err != nil {
				t.Fatal(err)
			}
			again, diags := Parse("again.yaml", out)
			if again == nil {
				t.Fatalf("reparse: %v\n%s", diags.Strings(), out)
			}
			want := stripPos(f)
			sortRules(want)
			if got := stripPos(again); !reflect.DeepEqual(got, want) {
				t.Errorf("round trip differs:\n%s\ngot  %+v\nwant %+v", out, got, want)
			}
			out2, err := MarshalYAML(again)
			if err != nil || string(out2) != string(out) {
				t.Errorf("output not stable:\n%s\n%s", out, out2)
			}
		})
	}
	if _, err := MarshalYAML(&File{Rules: []Rule{{Name: "bad name"}}}); err == nil {
		t.Error("MarshalYAML of an invalid rule: no error")
	}
}

func stripPos(f *File) *File {
	c := *f
	c.Name, c.ExclusivePos = "", nil
	c.Rules = make([]Rule, len(f.Rules))
	for i, r := range f.Rules {
		r.Pos, r.FieldPos = Pos{}, nil
		c.Rules[i] = r
	}
	return &c
}

func sortRules(f *File) {
	for i := 1; i < len(f.Rules); i++ {
		for j := i; j > 0 && f.Rules[j].Name < f.Rules[j-1].Name; j-- {
			f.Rules[j], f.Rules[j-1] = f.Rules[j-1], f.Rules[j]
		}
	}
}

// TestMarshalPlainStyle: MarshalYAML writes plain scalars where YAML
// allows them (as a person would), quoting only what needs it.
func TestMarshalPlainStyle(t *testing.T) {
	f := mustParse(t, "rules:\n  web:\n    securityGroup: sg-01234567\n    type: ingress\n    protocol: tcp\n    fromPort: 80\n    toPort: 80\n    cidrBlocks: [10.0.0.0/8]\n    description: HTTP\n")
	out, err := MarshalYAML(f)
	if err != nil {
		t.Fatal(err)
	}
	want := "rules:\n  web:\n    securityGroup: sg-01234567\n    type: ingress\n    protocol: tcp\n    fromPort: 80\n    toPort: 80\n    cidrBlocks:\n      - 10.0.0.0/8\n    description: HTTP\n"
	if string(out) != want {
		t.Errorf("MarshalYAML:\n%s\nwant:\n%s", out, want)
	}
}
