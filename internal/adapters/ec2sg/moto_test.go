package ec2sg_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/dev/apicount"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
	"github.com/sgrules/sgrules/pkg/rules"
)

func TestMain(m *testing.M) { motoserver.Main(m) }

type env struct {
	cfg    aws.Config
	ec2    *ec2.Client // uncounted, for fixtures
	calls  *apicount.Counter
	client *ec2sg.Client // its calls are counted
	vpc    string
}

// count returns how many calls of the EC2 operations the client made.
func (e *env) count(ops ...string) int64 {
	return int64(e.calls.Sum("EC2", func(op string) bool { return slices.Contains(ops, op) }))
}

func setup(t *testing.T) *env {
	t.Helper()
	srv := motoserver.Shared(t)
	srv.Reset(t)
	cfg := srv.Config(t)
	counted, calls := cfg, &apicount.Counter{}
	calls.Attach(&counted)
	return &env{cfg: cfg, ec2: ec2.NewFromConfig(cfg), calls: calls, client: ec2sg.New(ec2.NewFromConfig(counted)), vpc: motoserver.CreateVPC(t, cfg)}
}

func (e *env) group(t *testing.T, name string, tags map[string]string) string {
	t.Helper()
	return motoserver.CreateGroup(t, e.cfg, e.vpc, name, tags)
}

func (e *env) prefixList(t *testing.T) string {
	t.Helper()
	out, err := e.ec2.CreateManagedPrefixList(context.Background(), &ec2.CreateManagedPrefixListInput{
		PrefixListName: aws.String("offices"),
		AddressFamily:  aws.String("IPv4"),
		MaxEntries:     aws.Int32(5),
		Entries:        []types.AddPrefixListEntry{{Cidr: aws.String("192.0.2.0/24")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.PrefixList.PrefixListId)
}

func perm(group string, dir rules.Direction, proto string, from, to int32, kind rules.PeerKind, peer, desc string) rules.Permission {
	return rules.Permission{
		Key:         rules.Key{GroupID: group, Direction: dir, Protocol: proto, FromPort: from, ToPort: to, Peer: rules.Peer{Kind: kind, Value: peer}},
		Description: desc,
		Owner:       rules.Owner{Source: "f.yaml", Rule: "r"},
	}
}

// rulesOf returns the rules of dir in group, keyed by Key.
func (e *env) rulesOf(t *testing.T, group string, dir rules.Direction) map[rules.Key]reconcile.ActualRule {
	t.Helper()
	all, err := e.client.DescribeRules(context.Background(), []string{group})
	if err != nil {
		t.Fatal(err)
	}
	out := map[rules.Key]reconcile.ActualRule{}
	for _, r := range all {
		if r.Key.GroupID != group {
			t.Errorf("DescribeRules(%s) returned a rule of %s", group, r.Key.GroupID)
		}
		if r.Key.Direction == dir {
			out[r.Key] = r
		}
	}
	return out
}

var managed = map[string]string{reconcile.TagManaged: "true", reconcile.TagOwner: "f.yaml#r"}

func mixedBatch(web, db, pl string, dir rules.Direction) []rules.Permission {
	return []rules.Permission{
		perm(web, dir, "tcp", 443, 443, rules.PeerCIDR4, "10.1.2.0/24", "https v4"),
		perm(web, dir, "tcp", 443, 443, rules.PeerCIDR6, "2001:db8::/32", "https v6"),
		perm(web, dir, "tcp", 5432, 5432, rules.PeerGroup, db, "from db"),
		perm(web, dir, "tcp", 443, 443, rules.PeerPrefixList, pl, "offices"),
		perm(web, dir, "icmp", 8, -1, rules.PeerCIDR4, "10.0.0.0/8", "ping"),
		perm(web, dir, "-1", -1, -1, rules.PeerCIDR4, "10.9.0.0/16", "everything"),
		perm(web, dir, "47", -1, -1, rules.PeerCIDR4, "10.8.0.0/16", "gre"),
		perm(web, dir, "udp", 1000, 2000, rules.PeerCIDR4, "10.7.0.0/16", ""),
	}
}

func TestAuthorizeMixedBatch(t *testing.T) {
	for _, dir := range []rules.Direction{rules.Ingress, rules.Egress} {
		t.Run(string(dir), func(t *testing.T) {
			e := setup(t)
			ctx := context.Background()
			web, db, pl := e.group(t, "web", nil), e.group(t, "db", nil), e.prefixList(t)
			perms := mixedBatch(web, db, pl, dir)
			e.calls.Reset()
			if err := e.client.Authorize(ctx, web, dir, perms, managed); err != nil {
				t.Fatal(err)
			}
			if n := e.count("AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress"); n != 1 {
				t.Errorf("authorize calls = %d, want 1", n)
			}
			got := e.rulesOf(t, web, dir)
			if dir == rules.Egress {
				// The default egress rule of a new group.
				delete(got, rules.Key{GroupID: web, Direction: rules.Egress, Protocol: "-1", FromPort: -1, ToPort: -1, Peer: rules.Peer{Kind: rules.PeerCIDR4, Value: "0.0.0.0/0"}})
			}
			if len(got) != len(perms) {
				t.Errorf("got %d rules, want %d: %v", len(got), len(perms), got)
			}
			for _, p := range perms {
				r, ok := got[p.Key]
				if !ok {
					t.Errorf("missing %s", p.Key)
					continue
				}
				switch {
				case r.Description == p.Description:
				case r.Description == "" && (p.Key.Peer.Kind == rules.PeerGroup || p.Key.Peer.Kind == rules.PeerPrefixList):
					// moto 5.2.1 quirk: DescribeSecurityGroupRules reads the
					// description of group and prefix-list rules from a copy
					// that only ModifySecurityGroupRules sets (see
					// TestModifyRules); real EC2 returns it.
					t.Logf("%s: moto dropped the description (known quirk)", p.Key)
				default:
					t.Errorf("%s: description %q, want %q", p.Key, r.Description, p.Description)
				}
				if !reflect.DeepEqual(r.Tags, managed) {
					t.Errorf("%s: tags %v, want %v", p.Key, r.Tags, managed)
				}
				if r.RuleID == "" {
					t.Errorf("%s: no rule id", p.Key)
				}
			}
		})
	}
}

func TestAuthorizeErrors(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	web := e.group(t, "web", nil)
	p := perm(web, rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "10.0.0.0/8", "ssh")
	if err := e.client.Authorize(ctx, web, rules.Ingress, []rules.Permission{p}, nil); err != nil {
		t.Fatal(err)
	}
	q := perm(web, rules.Ingress, "tcp", 23, 23, rules.PeerCIDR4, "10.0.0.0/8", "")
	err := e.client.Authorize(ctx, web, rules.Ingress, []rules.Permission{q, p}, nil)
	if !errors.Is(err, reconcile.ErrDuplicate) {
		t.Fatalf("duplicate: err = %v, want ErrDuplicate", err)
	}
	t.Logf("duplicate error: %v", err)
	if _, ok := e.rulesOf(t, web, rules.Ingress)[q.Key]; ok {
		t.Error("a failed authorize created part of its batch")
	}

	missing := "sg-0123456789abcdef0"
	m := perm(missing, rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "10.0.0.0/8", "")
	if err := e.client.Authorize(ctx, missing, rules.Ingress, []rules.Permission{m}, nil); !errors.Is(err, reconcile.ErrGroupNotFound) {
		t.Fatalf("missing group: err = %v, want ErrGroupNotFound", err)
	}

	var many []rules.Permission
	for i := range 61 {
		many = append(many, perm(web, rules.Egress, "tcp", int32(1000+i), int32(1000+i), rules.PeerCIDR4, "10.0.0.0/8", ""))
	}
	err = e.client.Authorize(ctx, web, rules.Egress, many, nil)
	if !errors.Is(err, reconcile.ErrRulesLimit) {
		t.Fatalf("61 rules: err = %v, want ErrRulesLimit", err)
	}
	t.Logf("limit error: %v", err)

	if err := e.client.Authorize(ctx, web, rules.Egress, []rules.Permission{p}, nil); err == nil {
		t.Error("authorize of an ingress permission as egress succeeded")
	}
}

func TestRevoke(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	web, db, pl := e.group(t, "web", nil), e.group(t, "db", nil), e.prefixList(t)
	for _, dir := range []rules.Direction{rules.Ingress, rules.Egress} {
		if err := e.client.Authorize(ctx, web, dir, mixedBatch(web, db, pl, dir), nil); err != nil {
			t.Fatal(err)
		}
		got := e.rulesOf(t, web, dir)
		var ids []string
		var keep []rules.Key
		for k, r := range got {
			if k.Peer.Kind == rules.PeerGroup || k.Protocol == "47" || k.Peer.Kind == rules.PeerCIDR6 {
				ids = append(ids, r.RuleID)
			} else {
				keep = append(keep, k)
			}
		}
		e.calls.Reset()
		if err := e.client.Revoke(ctx, web, dir, ids); err != nil {
			t.Fatal(err)
		}
		if n := e.count("RevokeSecurityGroupIngress", "RevokeSecurityGroupEgress"); n != 1 {
			t.Errorf("revoke calls = %d, want 1", n)
		}
		after := e.rulesOf(t, web, dir)
		if len(after) != len(keep) {
			t.Errorf("%s: %d rules left, want %d", dir, len(after), len(keep))
		}
		for _, k := range keep {
			if _, ok := after[k]; !ok {
				t.Errorf("%s: revoke removed %s", dir, k)
			}
		}
		// Revoking an id that is gone (alongside one that exists).
		err := e.client.Revoke(ctx, web, dir, []string{ids[0], after[keep[0]].RuleID})
		if !errors.Is(err, reconcile.ErrNotFound) {
			t.Fatalf("%s: revoke of a gone id: err = %v, want ErrNotFound", dir, err)
		}
		t.Logf("revoke of a gone id: %v", err)
		if _, ok := e.rulesOf(t, web, dir)[keep[0]]; !ok {
			t.Errorf("%s: a failed revoke removed part of its batch", dir)
		}
	}
	if err := e.client.Revoke(ctx, "sg-0123456789abcdef0", rules.Ingress, []string{"sgr-0123456789abcdef0"}); err != nil {
		t.Errorf("revoke in a missing group: %v, want nil", err)
	}
}

func TestModifyRules(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	web, db, pl := e.group(t, "web", nil), e.group(t, "db", nil), e.prefixList(t)
	for _, dir := range []rules.Direction{rules.Ingress, rules.Egress} {
		if err := e.client.Authorize(ctx, web, dir, mixedBatch(web, db, pl, dir), managed); err != nil {
			t.Fatal(err)
		}
	}
	var updates []reconcile.RuleUpdate
	want := map[rules.Key]string{}
	for _, dir := range []rules.Direction{rules.Ingress, rules.Egress} {
		for k, r := range e.rulesOf(t, web, dir) {
			d := "new " + k.String()
			updates = append(updates, reconcile.RuleUpdate{RuleID: r.RuleID, Key: k, Description: d})
			want[k] = d
		}
	}
	e.calls.Reset()
	if err := e.client.ModifyRules(ctx, web, updates); err != nil {
		t.Fatal(err)
	}
	if n := e.count("ModifySecurityGroupRules"); n != 1 {
		t.Errorf("modify calls = %d, want 1", n)
	}
	for _, dir := range []rules.Direction{rules.Ingress, rules.Egress} {
		for k, r := range e.rulesOf(t, web, dir) {
			if r.Description != want[k] {
				t.Errorf("%s: description %q, want %q", k, r.Description, want[k])
			}
			if dir == rules.Ingress && !reflect.DeepEqual(r.Tags, managed) {
				t.Errorf("%s: tags %v after update", k, r.Tags)
			}
		}
	}
	// An empty description clears it.
	u := updates[0]
	u.Description = ""
	if err := e.client.ModifyRules(ctx, web, []reconcile.RuleUpdate{u}); err != nil {
		t.Fatal(err)
	}
	if d := e.rulesOf(t, web, u.Key.Direction)[u.Key].Description; d != "" {
		t.Errorf("cleared description = %q", d)
	}
	bad := updates[1]
	bad.RuleID = "sgr-0123456789abcdef0"
	if err := e.client.ModifyRules(ctx, web, []reconcile.RuleUpdate{bad}); !errors.Is(err, reconcile.ErrNotFound) {
		t.Errorf("update of a missing rule: err = %v, want ErrNotFound", err)
	}
}

func TestResolveGroups(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	web := e.group(t, "web", map[string]string{"app": "shop", "tier": "web"})
	api1 := e.group(t, "api-1", map[string]string{"app": "shop", "tier": "api"})
	api2 := e.group(t, "api-2", map[string]string{"app": "shop", "tier": "api"})
	otherVPC := motoserver.CreateVPC(t, e.cfg)
	motoserver.CreateGroup(t, e.cfg, otherVPC, "web", map[string]string{"app": "other", "tier": "web"})

	refs := []rules.GroupRef{
		{ID: "sg-literal"},
		{Name: "web", VPCID: e.vpc},
		{Name: "api-1", VPCID: e.vpc},
		{Name: "nope", VPCID: e.vpc},
		{Tags: map[string]string{"app": "shop", "tier": "web"}},
		{Tags: map[string]string{"tier": "api", "app": "shop"}},
		{Tags: map[string]string{"app": "shop", "tier": "db"}},
		{Tags: map[string]string{"app": "shop", "tier": "api"}}, // same set twice
	}
	e.calls.Reset()
	got, err := e.client.ResolveGroups(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"sg-literal":             {"sg-literal"},
		"name:web@" + e.vpc:      {web},
		"name:api-1@" + e.vpc:    {api1},
		"name:nope@" + e.vpc:     {},
		"tags:app=shop,tier=web": {web},
		"tags:app=shop,tier=api": sorted(api1, api2),
		"tags:app=shop,tier=db":  {},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ResolveGroups:\n got %v\nwant %v", got, want)
	}
	// One call for the names of the VPC, one for every tag reference with
	// the keys {app, tier}.
	if n := e.count("DescribeSecurityGroups"); n != 2 {
		t.Errorf("describe calls = %d, want 2", n)
	}
	e.calls.Reset()
	if _, err := e.client.ResolveGroups(ctx, []rules.GroupRef{{ID: "sg-1"}, {ID: "sg-2"}}); err != nil || e.count("DescribeSecurityGroups") != 0 {
		t.Errorf("id refs: err %v, %d calls; want no call", err, e.count("DescribeSecurityGroups"))
	}
}

func TestDescribeManagedRules(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	a := e.group(t, "a", nil)
	b := e.group(t, "b", nil)
	tags := map[string]string{reconcile.TagManaged: "true", reconcile.TagLedger: "stack-a"}
	if err := e.client.Authorize(ctx, a, rules.Ingress, []rules.Permission{perm(a, rules.Ingress, "tcp", 80, 80, rules.PeerCIDR4, "10.0.0.0/8", "")}, tags); err != nil {
		t.Fatal(err)
	}
	// Another deployment's rule, and a rule nobody tagged.
	other := map[string]string{reconcile.TagManaged: "true", reconcile.TagLedger: "stack-b"}
	if err := e.client.Authorize(ctx, b, rules.Ingress, []rules.Permission{perm(b, rules.Ingress, "tcp", 82, 82, rules.PeerCIDR4, "10.0.0.0/8", "")}, other); err != nil {
		t.Fatal(err)
	}
	if err := e.client.Authorize(ctx, b, rules.Ingress, []rules.Permission{perm(b, rules.Ingress, "tcp", 81, 81, rules.PeerCIDR4, "10.0.0.0/8", "")}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := e.client.DescribeManagedRules(ctx, "stack-a")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Key.GroupID != a || got[0].Tags[reconcile.TagLedger] != "stack-a" {
		t.Fatalf("managed rules = %+v, want only the rule of %s tagged by stack-a", got, a)
	}
}

func sorted(a, b string) []string {
	if a > b {
		a, b = b, a
	}
	return []string{a, b}
}

func TestDescribeManyGroups(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	var ids []string
	for i := range 205 {
		ids = append(ids, e.group(t, fmt.Sprintf("g%03d", i), map[string]string{"n": fmt.Sprint(i)}))
	}
	for _, id := range ids[:3] {
		p := perm(id, rules.Ingress, "tcp", 80, 80, rules.PeerCIDR4, "0.0.0.0/0", "")
		if err := e.client.Authorize(ctx, id, rules.Ingress, []rules.Permission{p}, nil); err != nil {
			t.Fatal(err)
		}
	}
	missing := "sg-0123456789abcdef0"
	e.calls.Reset()
	groups, err := e.client.DescribeGroups(ctx, append(ids, missing))
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != len(ids) {
		t.Errorf("DescribeGroups returned %d, want %d", len(groups), len(ids))
	}
	if g := groups[0]; g.VPCID != e.vpc || g.Name == "" || g.Tags["n"] == "" {
		t.Errorf("group info = %+v", g)
	}
	if n := e.count("DescribeSecurityGroups"); n != 2 {
		t.Errorf("describe groups calls = %d, want 2 (200 ids per call)", n)
	}
	all, err := e.client.DescribeRules(ctx, append(ids, missing))
	if err != nil {
		t.Fatal(err)
	}
	// Each group has its default egress rule; three have an ingress rule.
	if len(all) != len(ids)+3 {
		t.Errorf("DescribeRules returned %d, want %d", len(all), len(ids)+3)
	}
	if n := e.count("DescribeSecurityGroupRules"); n != 2 {
		t.Errorf("describe rules calls = %d, want 2", n)
	}
}

// ModifyRules changes protocol, ports and a peer of the same kind in
// place: the rule keeps its id and tags, in one call for both directions.
func TestModifyRulesInPlace(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	web, db, app := e.group(t, "web", nil), e.group(t, "db", nil), e.group(t, "app", nil)
	created := []rules.Permission{
		perm(web, rules.Ingress, "tcp", 80, 80, rules.PeerCIDR4, "10.0.0.0/8", "http"),
		perm(web, rules.Ingress, "tcp", 22, 22, rules.PeerCIDR6, "2001:db8::/32", "ssh"),
		perm(web, rules.Ingress, "tcp", 5432, 5432, rules.PeerGroup, db, "pg"),
	}
	if err := e.client.Authorize(ctx, web, rules.Ingress, created, managed); err != nil {
		t.Fatal(err)
	}
	if err := e.client.Authorize(ctx, web, rules.Egress, []rules.Permission{perm(web, rules.Egress, "tcp", 443, 443, rules.PeerCIDR4, "0.0.0.0/0", "out")}, managed); err != nil {
		t.Fatal(err)
	}
	changes := map[rules.Key]rules.Key{
		created[0].Key: perm(web, rules.Ingress, "tcp", 8080, 8081, rules.PeerCIDR4, "10.1.0.0/16", "").Key, // ports and CIDR
		created[1].Key: perm(web, rules.Ingress, "udp", 22, 22, rules.PeerCIDR6, "2001:db8:1::/48", "").Key, // protocol and IPv6 CIDR
		created[2].Key: perm(web, rules.Ingress, "tcp", 5432, 5432, rules.PeerGroup, app, "").Key,           // referenced group
		perm(web, rules.Egress, "tcp", 443, 443, rules.PeerCIDR4, "0.0.0.0/0", "").Key: perm(web, rules.Egress, "tcp", 8443, 8443, rules.PeerCIDR4, "0.0.0.0/0", "").Key,
	}
	ids := map[string]rules.Key{}
	var updates []reconcile.RuleUpdate
	for _, dir := range []rules.Direction{rules.Ingress, rules.Egress} {
		for k, r := range e.rulesOf(t, web, dir) {
			if to, ok := changes[k]; ok {
				updates = append(updates, reconcile.RuleUpdate{RuleID: r.RuleID, Key: to, Description: "moved"})
				ids[r.RuleID] = to
			}
		}
	}
	if len(updates) != 4 {
		t.Fatalf("found %d of the 4 rules", len(updates))
	}
	e.calls.Reset()
	if err := e.client.ModifyRules(ctx, web, updates); err != nil {
		t.Fatal(err)
	}
	if n := e.count("ModifySecurityGroupRules"); n != 1 {
		t.Errorf("modify calls = %d, want 1 for both directions", n)
	}
	got, err := e.client.DescribeRules(ctx, []string{web})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range got {
		want, ok := ids[r.RuleID]
		if !ok {
			continue // the group's default egress rule
		}
		if r.Key != want || r.Tags[reconcile.TagManaged] != "true" {
			t.Errorf("rule %s is %s %v, want %s with its tags", r.RuleID, r.Key, r.Tags, want)
		}
		delete(ids, r.RuleID)
	}
	if len(ids) != 0 {
		t.Errorf("rules lost their ids: %v", ids)
	}
}

func TestDescribePrefixLists(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	own := e.prefixList(t)
	awsLists, err := e.ec2.DescribeManagedPrefixLists(ctx, &ec2.DescribeManagedPrefixListsInput{
		Filters: []types.Filter{{Name: aws.String("owner-id"), Values: []string{"AWS"}}}})
	if err != nil || len(awsLists.PrefixLists) == 0 {
		t.Fatalf("moto has no AWS-managed prefix list: %v", err)
	}
	managed := aws.ToString(awsLists.PrefixLists[0].PrefixListId)
	e.calls.Reset()
	got, err := e.client.DescribePrefixLists(ctx, []string{own, managed, "pl-0000000000000dead"})
	if err != nil {
		t.Fatal(err)
	}
	if n := e.count("DescribeManagedPrefixLists"); n != 1 {
		t.Errorf("%d calls, want 1", n)
	}
	byID := map[string]reconcile.PrefixListInfo{}
	for _, pl := range got {
		byID[pl.ID] = pl
	}
	if len(got) != 2 || byID[own] != (reconcile.PrefixListInfo{ID: own, MaxEntries: 5, AddressFamily: "IPv4"}) || !byID[managed].AWSManaged {
		t.Fatalf("prefix lists = %+v", got)
	}
}

// PrefixListEntries reads the entries of a list's current version, after
// a change, in one call.
func TestPrefixListEntries(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	out, err := e.ec2.CreateManagedPrefixList(ctx, &ec2.CreateManagedPrefixListInput{
		PrefixListName: aws.String("world"), AddressFamily: aws.String("IPv4"), MaxEntries: aws.Int32(5),
		Entries: []types.AddPrefixListEntry{{Cidr: aws.String("198.51.100.0/24")}, {Cidr: aws.String("0.0.0.0/0"), Description: aws.String("everyone")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	pl := out.PrefixList
	e.calls.Reset()
	got, err := e.client.PrefixListEntries(ctx, aws.ToString(pl.PrefixListId))
	if err != nil {
		t.Fatal(err)
	}
	if rules.PrefixesText(got) != "0.0.0.0/0, 198.51.100.0/24" || e.count("GetManagedPrefixListEntries") != 1 {
		t.Fatalf("entries %v in %d calls", got, e.count("GetManagedPrefixListEntries"))
	}
	if _, err := e.ec2.ModifyManagedPrefixList(ctx, &ec2.ModifyManagedPrefixListInput{PrefixListId: pl.PrefixListId, CurrentVersion: pl.Version,
		RemoveEntries: []types.RemovePrefixListEntry{{Cidr: aws.String("0.0.0.0/0")}},
		AddEntries:    []types.AddPrefixListEntry{{Cidr: aws.String("203.0.113.0/24")}}}); err != nil {
		t.Fatal(err)
	}
	got, err = e.client.PrefixListEntries(ctx, aws.ToString(pl.PrefixListId))
	if err != nil || rules.PrefixesText(got) != "198.51.100.0/24, 203.0.113.0/24" {
		t.Fatalf("after the change: %v, %v", got, err)
	}
}

// motoAccount is the account moto puts static credentials in.
const motoAccount = "123456789012"

// TestPeerInAnotherAccount: a group peer with an account is authorized as
// a UserIdGroupPair with UserId, read back with Peer.Account (and one in the
// client's own account without), and revoked by rule id. moto looks the
// referenced group up in the caller's account whatever the UserId, so the
// peer here is a group of the home account that moto records under another
// UserId; what is checked is what the adapter sends and how it reads
// ReferencedGroupInfo.UserId back.
func TestPeerInAnotherAccount(t *testing.T) {
	for _, dir := range []rules.Direction{rules.Ingress, rules.Egress} {
		t.Run(string(dir), func(t *testing.T) {
			e := setup(t)
			ctx := context.Background()
			web, peer := e.group(t, "web", nil), e.group(t, "peer", nil)
			client := ec2sg.New(e.ec2, ec2sg.WithAccount(motoAccount))
			remote := perm(web, dir, "tcp", 5432, 5432, rules.PeerGroup, peer, "from the peered account")
			remote.Key.Peer.Account = "111122223333"
			local := perm(web, dir, "tcp", 5433, 5433, rules.PeerGroup, peer, "")
			named := perm(web, dir, "tcp", 5434, 5434, rules.PeerGroup, peer, "")
			named.Key.Peer.Account = motoAccount // the client's own account: written without UserId
			if err := client.Authorize(ctx, web, dir, []rules.Permission{remote, local, named}, managed); err != nil {
				t.Fatal(err)
			}
			all, err := client.DescribeRules(ctx, []string{web})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, r := range all {
				if r.Key.Direction == dir && r.Key.Peer.Kind == rules.PeerGroup {
					got[r.Key.String()] = r.RuleID
				}
			}
			namedLocal := named.Key
			namedLocal.Peer = namedLocal.Peer.InAccount(motoAccount) // a peer named in the client's account reads back as local
			want := []string{remote.Key.String(), local.Key.String(), namedLocal.String()}
			if len(got) != len(want) {
				t.Fatalf("group rules %v, want %v", got, want)
			}
			for _, k := range want {
				if _, ok := got[k]; !ok {
					t.Errorf("missing %s in %v", k, got)
				}
			}
			if _, err := rules.ParseKey(remote.Key.String()); err != nil || !strings.Contains(remote.Key.String(), "sg:111122223333/"+peer) {
				t.Errorf("key %s: %v", remote.Key, err)
			}
			if err := client.Revoke(ctx, web, dir, []string{got[remote.Key.String()]}); err != nil {
				t.Fatal(err)
			}
			after, err := client.DescribeRules(ctx, []string{web})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range after {
				if r.Key == remote.Key {
					t.Errorf("revoked rule still there: %s", r.Key)
				}
			}
		})
	}
}

// DescribeGroups lists each group's rules as DescribeRules does, without
// ids or tags: every peer kind, both directions, descriptions.
func TestDescribeGroupsListsTheRules(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	id := e.group(t, "listed", nil)
	peer := e.group(t, "listed-peer", nil)
	pl := e.prefixList(t)
	perms := []rules.Permission{
		perm(id, rules.Ingress, "tcp", 443, 443, rules.PeerCIDR4, "10.1.0.0/16", "web"),
		perm(id, rules.Ingress, "tcp", 443, 443, rules.PeerCIDR6, "2001:db8::/32", "web v6"),
		perm(id, rules.Ingress, "udp", 53, 53, rules.PeerGroup, peer, "dns"),
		perm(id, rules.Ingress, "icmp", 8, -1, rules.PeerPrefixList, pl, ""),
	}
	if err := e.client.Authorize(ctx, id, rules.Ingress, perms, map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	if err := e.client.Authorize(ctx, id, rules.Egress, []rules.Permission{perm(id, rules.Egress, "-1", 0, 0, rules.PeerCIDR4, "10.2.0.0/16", "out")}, nil); err != nil {
		t.Fatal(err)
	}
	groups, err := e.client.DescribeGroups(ctx, []string{id})
	if err != nil || len(groups) != 1 {
		t.Fatalf("DescribeGroups = %v, %v", groups, err)
	}
	actual, err := e.client.DescribeRules(ctx, []string{id})
	if err != nil {
		t.Fatal(err)
	}
	// moto's DescribeSecurityGroupRules drops the description of a group
	// peer (DescribeSecurityGroups keeps it, as EC2 does both): compared
	// for the other peers.
	line := func(r reconcile.ActualRule) string {
		if r.Key.Peer.Kind == rules.PeerGroup {
			return r.Key.String()
		}
		return r.Key.String() + " " + r.Description
	}
	var want, got []string
	for _, a := range actual {
		want = append(want, line(a))
	}
	for _, r := range groups[0].Rules {
		if r.RuleID != "" || r.Tags != nil {
			t.Errorf("listed rule %s has id %q, tags %v", r.Key, r.RuleID, r.Tags)
		}
		got = append(got, line(r))
	}
	if !groups[0].RulesKnown || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("listed rules (known %v):\n%s\nwant (DescribeRules):\n%s", groups[0].RulesKnown, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
