package rules

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Target is where a rule file's groups live: an AWS account and region.
// The zero value, and an empty field, mean the hub's own account and
// region (Resolve fills them in). Target is comparable and usable as a map
// key.
type Target struct {
	Account string // 12 digits, or "" for the hub's account
	Region  string // a region name (IsRegionName), or "" for the hub's region
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

// Regions lists the AWS regions sgrules knows, of every partition (the
// partition data of the AWS SDK pinned in go.mod; a test of
// internal/adapters/ec2sg checks that none is missing). A rule file may
// name any region of the region syntax (IsRegionName): a name not listed
// here only gets a did-you-mean warning when it is one edit away from one
// listed, and plan, apply and validate --online check that it exists.
var Regions = []string{
	"af-south-1",
	"ap-east-1", "ap-east-2",
	"ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
	"ap-south-1", "ap-south-2",
	"ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7",
	"ca-central-1", "ca-west-1",
	"cn-north-1", "cn-northwest-1",
	"eu-central-1", "eu-central-2",
	"eu-isoe-west-1",
	"eu-north-1",
	"eu-south-1", "eu-south-2",
	"eu-west-1", "eu-west-2", "eu-west-3",
	"eusc-de-east-1",
	"il-central-1",
	"me-central-1", "me-south-1", "me-west-1",
	"mx-central-1",
	"sa-east-1", "sa-west-1",
	"us-east-1", "us-east-2",
	"us-gov-east-1", "us-gov-west-1",
	"us-iso-east-1", "us-iso-west-1",
	"us-isob-east-1", "us-isob-west-1",
	"us-isof-east-1", "us-isof-south-1",
	"us-west-1", "us-west-2",
}

// IsRegion reports whether s is a region name in Regions.
func IsRegion(s string) bool { return slices.Contains(Regions, s) }

// RegionPattern is the syntax of an AWS region name: a 2-4 letter area,
// one to three lower-case words and a number ("eu-west-1",
// "us-gov-east-1", "eusc-de-east-1"). Keep it in step with
// schema/rules.schema.json (TestSchemaTargets checks).
const RegionPattern = `^[a-z]{2,4}(-[a-z]{2,10}){1,3}-[0-9]{1,2}$`

var reRegion = regexp.MustCompile(RegionPattern)

// IsRegionName reports whether s has the syntax of a region name; whether
// that region exists is for AWS to say (CheckRegion).
func IsRegionName(s string) bool { return reRegion.MatchString(s) }

// RegionPartition returns the AWS partition of a region name, by the
// partitions' region patterns (as the SDK's partition data matches them):
// "aws-cn", "aws-us-gov", "aws-eusc", "aws-iso", "aws-iso-b",
// "aws-iso-e", "aws-iso-f", else "aws".
func RegionPartition(region string) string {
	for _, p := range []struct{ prefix, partition string }{
		{"cn-", "aws-cn"},
		{"us-gov-", "aws-us-gov"},
		{"eusc-", "aws-eusc"},
		{"us-iso-", "aws-iso"},
		{"us-isob-", "aws-iso-b"},
		{"eu-isoe-", "aws-iso-e"},
		{"us-isof-", "aws-iso-f"},
	} {
		if strings.HasPrefix(region, p.prefix) {
			return p.partition
		}
	}
	return "aws"
}

// nearRegion returns the known region one edit away from s, or "".
func nearRegion(s string) string {
	if m := suggest(s, Regions); m != "" && editDistance(s, m) == 1 {
		return m
	}
	return ""
}

func nearRegionHint(s string) string {
	if m := nearRegion(s); m != "" {
		return fmt.Sprintf(" (did you mean %q?)", m)
	}
	return ""
}

// CheckRegion reports, at the file's region field, a region that is not in
// partition (the hub's; "" skips this check) or that exists says does not
// exist (nil skips this check). A file without a region (the hub's own) is
// always fine.
func CheckRegion(f *File, exists func(region string) bool, partition string) Diagnostics {
	if f == nil || f.Target.Region == "" {
		return nil
	}
	r := f.Target.Region
	var msg string
	switch {
	case partition != "" && RegionPartition(r) != partition:
		msg = fmt.Sprintf("region: %q is in partition %s, not in this deployment's (%s): a hub reaches only its own partition", r, RegionPartition(r), partition)
	case exists != nil && !exists(r):
		msg = fmt.Sprintf("region: %q does not exist: EC2 DescribeRegions does not list it%s", r, nearRegionHint(r))
	default:
		return nil
	}
	pos := f.TargetPos["region"]
	return Diagnostics{{File: f.Name, Line: pos.Line, Col: pos.Col, Field: "region", Severity: SeverityError, Msg: msg}}
}

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
	if IsRegionName(s) {
		// One edit away from a known region: most likely a typo, but AWS
		// opens regions faster than this list follows.
		if m := nearRegion(s); m != "" {
			p.warnf(posOf(n), "", "region", "region: %q is not a region sgrules knows (did you mean %q?); plan, apply and validate --online check that it exists", s, m)
		}
		return s, true
	}
	p.errf(n, "", "region", "region: %q is not an AWS region name (such as eu-west-1)%s", s, didYouMean(s, Regions))
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
