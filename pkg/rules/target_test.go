package rules

import (
	"reflect"
	"strings"
	"testing"
)

const peerRule = "rules:\n  r:\n    securityGroup: sg-0123456789abcdef0\n    type: ingress\n    protocol: tcp\n    fromPort: 5432\n    toPort: 5432\n"

func TestParseTarget(t *testing.T) {
	tests := []struct {
		name string
		file string
		src  string
		want Target
		pos  map[string]Pos
	}{
		{"absent is the hub's", "a.yaml", peerRule + "    cidrBlocks: [10.0.0.0/8]\n", Target{}, nil},
		{"string account and region", "a.yaml", "account: \"111122223333\"\nregion: eu-west-1\n" + peerRule + "    cidrBlocks: [10.0.0.0/8]\n",
			Target{"111122223333", "eu-west-1"}, map[string]Pos{"account": {1, 10}, "region": {2, 9}}},
		{"yaml number keeps leading zeros", "a.yaml", "account: 012345678901\n" + peerRule + "    cidrBlocks: [10.0.0.0/8]\n",
			Target{Account: "012345678901"}, map[string]Pos{"account": {1, 10}}},
		{"yaml number", "a.yaml", "account: 111122223333\n" + peerRule + "    cidrBlocks: [10.0.0.0/8]\n",
			Target{Account: "111122223333"}, map[string]Pos{"account": {1, 10}}},
		{"region only", "a.yaml", "region: us-east-2\n" + peerRule + "    cidrBlocks: [10.0.0.0/8]\n",
			Target{Region: "us-east-2"}, map[string]Pos{"region": {1, 9}}},
		{"json number", "a.json", `{"account": 012345678901, "rules": {}}`, Target{}, nil},
		{"json string", "a.json", `{"account": "012345678901", "region": "ap-southeast-7", "rules": {}}`,
			Target{"012345678901", "ap-southeast-7"}, map[string]Pos{"account": {1, 13}, "region": {1, 39}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, diags := Parse(tc.file, []byte(tc.src))
			if tc.name == "json number" {
				// JSON has no leading zeros: the parser says so, located.
				if f != nil || !diags.HasErrors() || diags[0].Line != 1 {
					t.Fatalf("want a located JSON error, got %v", diags.Strings())
				}
				return
			}
			if f == nil {
				t.Fatalf("Parse: %v", diags.Strings())
			}
			if f.Target != tc.want || !reflect.DeepEqual(f.TargetPos, tc.pos) {
				t.Errorf("target %+v at %v, want %+v at %v", f.Target, f.TargetPos, tc.want, tc.pos)
			}
		})
	}
}

func TestParseValueTarget(t *testing.T) {
	f, diags := ParseValue("cfn", map[string]any{"account": float64(111122223333), "region": "eu-west-1", "rules": map[string]any{}}, ValueOptions{})
	if f == nil {
		t.Fatalf("ParseValue: %v", diags.Strings())
	}
	if f.Target != (Target{"111122223333", "eu-west-1"}) {
		t.Errorf("target %+v", f.Target)
	}
}

func TestParseTargetErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"11 digits", "account: \"11112222333\"\n", `a.yaml:1:10: account: "11112222333" has 11 digits: an AWS account id has 12 (leading zeros included)`},
		{"13 digit number", "account: 1111222233334\n", `a.yaml:1:10: account: "1111222233334" has 13 digits`},
		{"not digits", "account: acme-prod\n", `a.yaml:1:10: account: "acme-prod" is not an AWS account id`},
		{"hex number", "account: 0x1234\n", `a.yaml:1:10: account: "0x1234" is not an AWS account id`},
		{"list", "account: [111122223333]\n", `a.yaml:1:10: account: want a 12-digit AWS account id, got a list`},
		{"null", "account:\n", `a.yaml:1:9: account: want a 12-digit AWS account id, got nothing`},
		{"region typo", "region: euwest1\n", `a.yaml:1:9: region: "euwest1" is not an AWS region name (such as eu-west-1) (did you mean "eu-west-1"?)`},
		{"region upper case", "region: US-EAST-1\n", `(did you mean "us-east-1"?)`},
		{"region nonsense", "region: moon\n", `a.yaml:1:9: region: "moon" is not an AWS region name (such as eu-west-1)`},
		{"region number", "region: 1\n", `a.yaml:1:9: region: "1" is not an AWS region name`},
		{"region no number", "region: eu-west\n", `a.yaml:1:9: region: "eu-west" is not an AWS region name`},
		{"region underscore", "region: eu_west_1\n", `(did you mean "eu-west-1"?)`},
		{"top-level typo", "acount: \"111122223333\"\n", `a.yaml:1:1: unknown field "acount" (did you mean "account"?)`},
		{"account on the rule's group", strings.Replace(peerRule, "securityGroup: sg-0123456789abcdef0", `securityGroup: {groupId: sg-0123456789abcdef0, account: "111122223333"}`, 1) + "    cidrBlocks: [10.0.0.0/8]\n",
			`a.yaml:3:52: r: securityGroup.account: the groups a file manages are in the file's target: set the top-level account`},
		{"account on an exclusive group", "exclusiveGroups: [{groupId: sg-01234567, account: \"111122223333\"}]\nrules: {}\n",
			`a.yaml:1:42: exclusiveGroups[0].account: the groups a file manages are in the file's target`},
		{"peer account without groupId", peerRule + "    sourceSecurityGroups: [{account: \"111122223333\"}]\n",
			`a.yaml:8:28: r: sourceSecurityGroups[0]: account needs groupId (a group in another account is named by its id)`},
		{"peer account short", peerRule + "    sourceSecurityGroups: [{groupId: sg-01234567, account: \"1\"}]\n",
			`a.yaml:8:60: r: sourceSecurityGroups[0].account: "1" has 1 digits`},
		{"peer groupId and tags", peerRule + "    sourceSecurityGroups: [{groupId: sg-01234567, tags: {Name: x}}]\n",
			`a.yaml:8:28: r: sourceSecurityGroups[0]: use one of {groupId}, {groupName, vpcId} or {tags}`},
		{"peer bad groupId", peerRule + "    sourceSecurityGroups: [{groupId: web, account: \"111122223333\"}]\n",
			`a.yaml:8:38: r: sourceSecurityGroups[0].groupId: "web" is not a group id`},
		{"peer typo", peerRule + "    sourceSecurityGroups: [{groupId: sg-01234567, acount: \"111122223333\"}]\n",
			`a.yaml:8:51: r: unknown field "acount" (did you mean "account"?)`},
		{"peer scalar list", peerRule + "    sourceSecurityGroups: [[sg-01234567]]\n",
			`want a group id, {groupId: sg-…, account: "…"}, {groupName: NAME, vpcId: vpc-…} or {tags: {…}}, got a list`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.src
			if !strings.Contains(src, "rules:") {
				src += "rules: {}\n"
			}
			f, diags := Parse("a.yaml", []byte(src))
			if f != nil {
				t.Fatalf("want an error, got a file")
			}
			got := strings.Join(diags.Strings(), "\n")
			if !strings.Contains(got, tc.want) {
				t.Errorf("got\n%s\nwant it to contain\n%s", got, tc.want)
			}
		})
	}
}

func TestPeerAccount(t *testing.T) {
	src := "account: \"111122223333\"\n" + peerRule +
		"    sourceSecurityGroups: [sg-0aaaaaaaaaaaaaaaa, {groupId: sg-0bbbbbbbbbbbbbbbb, account: 444455556666}, {groupId: sg-0cccccccccccccccc, account: \"111122223333\"}, {groupId: sg-0dddddddddddddddd}]\n"
	f, diags := Parse("a.yaml", []byte(src))
	if f == nil {
		t.Fatalf("Parse: %v", diags.Strings())
	}
	want := []GroupRef{{ID: "sg-0aaaaaaaaaaaaaaaa"}, {ID: "sg-0bbbbbbbbbbbbbbbb", Account: "444455556666"},
		{ID: "sg-0cccccccccccccccc"}, {ID: "sg-0dddddddddddddddd"}}
	if got := f.Rules[0].SourceSecurityGroups; !reflect.DeepEqual(got, want) {
		t.Fatalf("groups %+v, want %+v (the file's own account is local)", got, want)
	}
	perms, _, ediags := Expand(f, "a.yaml", nil)
	if ediags.HasErrors() {
		t.Fatal(ediags.Strings())
	}
	var keys []string
	for _, p := range perms {
		keys = append(keys, p.Key.String())
		back, err := ParseKey(p.Key.String())
		if err != nil || back != p.Key {
			t.Errorf("ParseKey(%s) = %+v, %v", p.Key, back, err)
		}
	}
	wantKeys := []string{
		"sg-0123456789abcdef0|ingress|tcp|5432|5432|sg:sg-0aaaaaaaaaaaaaaaa",
		"sg-0123456789abcdef0|ingress|tcp|5432|5432|sg:sg-0cccccccccccccccc",
		"sg-0123456789abcdef0|ingress|tcp|5432|5432|sg:sg-0dddddddddddddddd",
		"sg-0123456789abcdef0|ingress|tcp|5432|5432|sg:444455556666/sg-0bbbbbbbbbbbbbbbb",
	}
	if !reflect.DeepEqual(keys, wantKeys) {
		t.Errorf("keys\n%s\nwant\n%s", strings.Join(keys, "\n"), strings.Join(wantKeys, "\n"))
	}
	out, err := MarshalYAML(f)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `{groupId: sg-0bbbbbbbbbbbbbbbb, account: "444455556666"}`) || !strings.HasPrefix(string(out), "account: \"111122223333\"\n") {
		t.Errorf("marshal:\n%s", out)
	}
	g, diags := Parse("b.yaml", out)
	if g == nil {
		t.Fatalf("re-parse: %v", diags.Strings())
	}
	if g.Target != f.Target || !reflect.DeepEqual(g.Rules[0].SourceSecurityGroups, want) {
		t.Errorf("round trip: %+v %+v", g.Target, g.Rules[0].SourceSecurityGroups)
	}
}

func TestPeerAccountDuplicate(t *testing.T) {
	// The same group in the file's account written two ways is one permission;
	// the same id in another account is another group.
	src := "account: \"111122223333\"\n" + peerRule +
		"    sourceSecurityGroups: [sg-01234567, {groupId: sg-01234567, account: \"444455556666\"}, {groupId: sg-01234567, account: \"111122223333\"}]\n"
	_, diags := Parse("a.yaml", []byte(src))
	got := strings.Join(diags.Strings(), "\n")
	want := "a.yaml:9:90: r: sourceSecurityGroups[2]: same permission as rule r sourceSecurityGroups[0] (line 9, col 28): ingress tcp 5432 sg-01234567"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestParseKeyForms(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Peer
		err  bool
	}{
		{"sg-1|ingress|tcp|1|1|sg:sg-2", Peer{Kind: PeerGroup, Value: "sg-2"}, false},
		{"sg-1|ingress|tcp|1|1|sg:111122223333/sg-2", Peer{Kind: PeerGroup, Value: "sg-2", Account: "111122223333"}, false},
		{"sg-1|ingress|tcp|1|1|cidr4:10.0.0.0/8", Peer{Kind: PeerCIDR4, Value: "10.0.0.0/8"}, false},
		{"sg-1|ingress|tcp|1|1|cidr6:2001:db8::/32", Peer{Kind: PeerCIDR6, Value: "2001:db8::/32"}, false},
		{"sg-1|ingress|tcp|1|1|sg:1111/sg-2", Peer{}, true},
	} {
		k, err := ParseKey(tc.in)
		if (err != nil) != tc.err || (!tc.err && (k.Peer != tc.want || k.String() != tc.in)) {
			t.Errorf("ParseKey(%s) = %+v, %v", tc.in, k.Peer, err)
		}
	}
	if got := (Peer{Kind: PeerGroup, Value: "sg-2", Account: "1"}).InAccount("1"); got.Account != "" {
		t.Errorf("InAccount kept %+v", got)
	}
	if got := (Peer{Kind: PeerGroup, Value: "sg-2", Account: "1"}).InAccount("2"); got.Account != "1" {
		t.Errorf("InAccount dropped %+v", got)
	}
}

func TestTargetMethods(t *testing.T) {
	home := Target{"999988887777", "eu-west-1"}
	if got := (Target{Region: "us-east-1"}).Resolve(home); got != (Target{"999988887777", "us-east-1"}) {
		t.Errorf("Resolve %+v", got)
	}
	if got := (Target{}).Resolve(home); got != home {
		t.Errorf("Resolve zero %+v", got)
	}
	if s := (Target{}).String(); s != "home/home" {
		t.Errorf("String %q", s)
	}
	if s := (Target{Account: "111122223333"}).String(); s != "111122223333/home" {
		t.Errorf("String %q", s)
	}
	if s := home.String(); s != "999988887777/eu-west-1" {
		t.Errorf("String %q", s)
	}
	if !(Target{}).IsZero() || home.IsZero() || (Target{Region: "x"}).IsZero() {
		t.Error("IsZero")
	}
	if !(Target{"1", "b"}).Less(Target{"2", "a"}) || !(Target{"1", "a"}).Less(Target{"1", "b"}) || home.Less(home) {
		t.Error("Less")
	}
}

func TestCheckAccounts(t *testing.T) {
	src := "# comment\naccount: \"111122223333\"\nrules: {}\n"
	f, diags := Parse("team/a.yaml", []byte(src))
	if f == nil {
		t.Fatal(diags.Strings())
	}
	allow := func(ids ...string) func(string) bool {
		return func(a string) bool {
			for _, id := range ids {
				if a == id {
					return true
				}
			}
			return false
		}
	}
	if d := CheckAccounts(f, allow("111122223333")); d != nil {
		t.Errorf("allowed account refused: %v", d.Strings())
	}
	d := CheckAccounts(f, allow("444455556666"))
	want := "team/a.yaml:2:10: account: 111122223333 is not a target account of this deployment (TARGET_ACCOUNTS): a file may name only the accounts the operator listed"
	if len(d) != 1 || d[0].String() != want || d[0].Field != "account" || !d.HasErrors() {
		t.Errorf("got %v, want %s", d.Strings(), want)
	}
	if d := CheckAccounts(f, nil); len(d) != 1 {
		t.Errorf("nil allows none: %v", d.Strings())
	}
	home, _ := Parse("h.yaml", []byte("region: eu-west-2\nrules: {}\n"))
	if d := CheckAccounts(home, nil); d != nil {
		t.Errorf("a file without account is the hub's: %v", d.Strings())
	}
	if d := CheckAccounts(nil, nil); d != nil {
		t.Errorf("nil file: %v", d)
	}
}

func TestRegionsSorted(t *testing.T) {
	seen := map[string]bool{}
	for i, r := range Regions {
		if seen[r] || (i > 0 && Regions[i-1] > r) {
			t.Errorf("Regions not sorted and unique at %s", r)
		}
		seen[r] = true
	}
}

// Any name of the region syntax is accepted offline (the SDK and AWS add
// regions faster than a list is kept); one edit away from a known region
// is a warning with a did-you-mean. Whether it exists is checked online
// (CheckRegion).
func TestParseRegionNames(t *testing.T) {
	tests := []struct{ region, warning string }{
		{"eu-west-1", ""},
		{"me-west-1", ""},
		{"sa-west-1", ""},
		{"eusc-de-east-1", ""},
		{"us-gov-west-1", ""},
		{"us-isob-east-1", ""},
		{"ap-southeast-7", ""},
		{"xx-future-1", ""},
		{"ca-south-7", ""},
		{"eu-west-9", `a.yaml:1:9: warning: region: "eu-west-9" is not a region sgrules knows (did you mean "eu-west-1"?); plan, apply and validate --online check that it exists`},
		{"us-esat-1", `(did you mean "us-east-1"?)`},
	}
	for _, tc := range tests {
		t.Run(tc.region, func(t *testing.T) {
			f, diags := Parse("a.yaml", []byte("region: "+tc.region+"\nrules: {}\n"))
			if f == nil || diags.HasErrors() {
				t.Fatalf("refused: %v", diags.Strings())
			}
			if f.Target.Region != tc.region {
				t.Errorf("region %q, want %q", f.Target.Region, tc.region)
			}
			got := strings.Join(diags.Strings(), "\n")
			if tc.warning == "" && got != "" {
				t.Errorf("want no diagnostic, got %s", got)
			}
			if tc.warning != "" && (len(diags) != 1 || diags[0].Severity != SeverityWarning || !strings.Contains(got, tc.warning)) {
				t.Errorf("got\n%s\nwant one warning containing\n%s", got, tc.warning)
			}
		})
	}
}

func TestRegionPartition(t *testing.T) {
	for region, want := range map[string]string{
		"eu-west-1": "aws", "me-west-1": "aws", "xx-future-1": "aws",
		"cn-north-1": "aws-cn", "us-gov-east-1": "aws-us-gov", "eusc-de-east-1": "aws-eusc",
		"us-iso-east-1": "aws-iso", "us-isob-east-1": "aws-iso-b", "eu-isoe-west-1": "aws-iso-e", "us-isof-south-1": "aws-iso-f",
	} {
		if got := RegionPartition(region); got != want {
			t.Errorf("RegionPartition(%q) = %q, want %q", region, got, want)
		}
	}
	for _, r := range Regions {
		if !IsRegionName(r) {
			t.Errorf("known region %q is not of the region syntax", r)
		}
	}
}

func TestCheckRegion(t *testing.T) {
	f, _ := Parse("team/a.yaml", []byte("account: \"111122223333\"\nregion: eu-west-9\nrules: {}\n"))
	exists := func(r string) bool { return r == "eu-west-1" }
	d := CheckRegion(f, exists, "aws")
	want := `team/a.yaml:2:9: region: "eu-west-9" does not exist: EC2 DescribeRegions does not list it (did you mean "eu-west-1"?)`
	if len(d) != 1 || d[0].String() != want || d[0].Field != "region" || !d.HasErrors() {
		t.Errorf("got %v, want %s", d.Strings(), want)
	}
	if d := CheckRegion(f, func(string) bool { return true }, "aws"); d != nil {
		t.Errorf("existing region refused: %v", d.Strings())
	}
	cn, _ := Parse("b.yaml", []byte("region: cn-north-1\nrules: {}\n"))
	want = `b.yaml:1:9: region: "cn-north-1" is in partition aws-cn, not in this deployment's (aws): a hub reaches only its own partition`
	if d := CheckRegion(cn, func(string) bool { return true }, "aws"); len(d) != 1 || d[0].String() != want {
		t.Errorf("got %v, want %s", d.Strings(), want)
	}
	home, _ := Parse("h.yaml", []byte("rules: {}\n"))
	if d := CheckRegion(home, func(string) bool { return false }, "aws"); d != nil {
		t.Errorf("a file without region is the hub's: %v", d.Strings())
	}
	if d := CheckRegion(nil, nil, ""); d != nil {
		t.Errorf("nil file: %v", d)
	}
}
