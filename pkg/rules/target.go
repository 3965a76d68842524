package rules

import (
	"fmt"
	"regexp"
	"slices"

	"gopkg.in/yaml.v3"
)

// Target is where a rule file's groups live: an AWS account and region.
// The zero value, and an empty field, mean the hub's own account and
// region (Resolve fills them in). Target is comparable and usable as a map
// key.
type Target struct {
	Account string // 12 digits, or "" for the hub's account
	Region  string // a known region name, or "" for the hub's region
}

// Resolve returns t with its empty fields taken from home.
func (t Target) Resolve(home Target) Target {
	if t.Account == "" {
		t.Account = home.Account
	}
	if t.Region == "" {
		t.Region = home.Region
	}
	return t
}

// String renders "111122223333/eu-west-1"; an empty field prints as
// "home" ("home/home" for the zero target).
func (t Target) String() string {
	a, r := t.Account, t.Region
	if a == "" {
		a = "home"
	}
	if r == "" {
		r = "home"
	}
	return a + "/" + r
}

// IsZero reports whether t names neither an account nor a region.
func (t Target) IsZero() bool { return t == Target{} }

// Less orders targets by account, then region.
func (t Target) Less(o Target) bool {
	if t.Account != o.Account {
		return t.Account < o.Account
	}
	return t.Region < o.Region
}

var reAccount = regexp.MustCompile(`^[0-9]{12}$`)

// IsAccountID reports whether s is an AWS account id: exactly 12 digits.
func IsAccountID(s string) bool { return reAccount.MatchString(s) }

// Regions lists the AWS region names a rule file may name (commercial,
// China and GovCloud partitions). Keep it in step with
// schema/rules.schema.json (TestSchemaTargets checks).
var Regions = []string{
	"af-south-1",
	"ap-east-1", "ap-east-2",
	"ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
	"ap-south-1", "ap-south-2",
	"ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7",
	"ca-central-1", "ca-west-1",
	"cn-north-1", "cn-northwest-1",
	"eu-central-1", "eu-central-2",
	"eu-north-1",
	"eu-south-1", "eu-south-2",
	"eu-west-1", "eu-west-2", "eu-west-3",
	"il-central-1",
	"me-central-1", "me-south-1",
	"mx-central-1",
	"sa-east-1",
	"us-east-1", "us-east-2",
	"us-gov-east-1", "us-gov-west-1",
	"us-west-1", "us-west-2",
}

// IsRegion reports whether s is a region name in Regions.
func IsRegion(s string) bool { return slices.Contains(Regions, s) }

// accountID reads an account id: a string of 12 digits, or a YAML/JSON
// number written with 12 digits (its literal text is kept, leading zeros
// included: account: 012345678901 is "012345678901").
func (p *parser) accountID(n *yaml.Node, rule, field string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" || n.ShortTag() == "!!bool" {
		p.errf(n, rule, field, "%s: want a 12-digit AWS account id, got %s", field, kindName(n))
		return "", false
	}
	s := n.Value
	if IsAccountID(s) {
		return s, true
	}
	digits := 0
	for _, r := range s {
		if r >= '0' && r <= '9' {
			digits++
		}
	}
	if digits == len(s) && s != "" {
		p.errf(n, rule, field, "%s: %q has %d digits: an AWS account id has 12 (leading zeros included)", field, s, digits)
		return "", false
	}
	p.errf(n, rule, field, "%s: %q is not an AWS account id (12 digits, such as \"111122223333\")", field, s)
	return "", false
}

// region reads a region name.
func (p *parser) region(n *yaml.Node) (string, bool) {
	s, ok := p.text(n, "", "region")
	if !ok {
		return "", false
	}
	if IsRegion(s) {
		return s, true
	}
	p.errf(n, "", "region", "region: %q is not a known AWS region%s", s, didYouMean(s, Regions))
	return "", false
}

// target reads the top-level account or region field into f.
func (p *parser) target(f *File, key string, v *yaml.Node) {
	var ok bool
	switch key {
	case "account":
		f.Target.Account, ok = p.accountID(v, "", "account")
	case "region":
		f.Target.Region, ok = p.region(v)
	}
	if ok {
		if f.TargetPos == nil {
			f.TargetPos = map[string]Pos{}
		}
		f.TargetPos[key] = posOf(v)
	}
}

// localPeers clears the account of group peers in the file's own account:
// {groupId: sg-1, account: A} in a file for account A is sg-1.
func localPeers(f *File) {
	if f.Target.Account == "" {
		return
	}
	for i := range f.Rules {
		for j, g := range f.Rules[i].SourceSecurityGroups {
			if g.Account == f.Target.Account {
				f.Rules[i].SourceSecurityGroups[j].Account = ""
			}
		}
	}
}

// CheckAccounts reports, at the file's account field, a file whose target
// account is not allowed (allowed nil allows none). A file without an
// account (the hub's own) is always allowed. Group peers in other accounts
// are references, not targets, and are not checked.
func CheckAccounts(f *File, allowed func(account string) bool) Diagnostics {
	if f == nil || f.Target.Account == "" {
		return nil
	}
	if allowed != nil && allowed(f.Target.Account) {
		return nil
	}
	pos := f.TargetPos["account"]
	return Diagnostics{{File: f.Name, Line: pos.Line, Col: pos.Col, Field: "account", Severity: SeverityError,
		Msg: fmt.Sprintf("account: %s is not a target account of this deployment (TARGET_ACCOUNTS): a file may name only the accounts the operator listed", f.Target.Account)}}
}
