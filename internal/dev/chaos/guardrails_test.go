package chaos_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// respond plays an incident responder in a scenario with a policy. A file
// gets a rule on a port of its own (tcp 7000+n from 10.0.0.0/8, which the
// policy accepts), applied without faults; then a deny clause on that port
// and 10.0.0.0/8 is added to the policy in the bucket (all-traffic rules
// grant the port too, but none of the generator's covers 10.0.0.0/8): the file becomes invalid, the rule
// a managed violation the sweep reports (enforce: report) and the
// responder revokes it by hand. A sweep and a run of the file, both
// without faults, must not write it again: the restore of an invalid
// file's permissions passes the admission check like any write. The
// file's owner then removes the rule (an update, its event delivered with
// the step's). From then on every EC2 sample judges the rules with the new
// clause, so a re-creation under faults is a violation too.
func (s *scenario) respond(key string) {
	if s.poison[key] {
		s.logf("responder on %s skipped (invalid upload in force)", key)
		return
	}
	n := s.nextRule()
	port := 7000 + n
	body := fmt.Sprintf("    securityGroup: {tags: {Name: g%d}}\n    type: ingress\n    protocol: tcp\n    fromPort: %d\n    toPort: %d\n    cidrBlocks: [10.0.0.0/8]\n    description: \"responder %d\"\n",
		s.rng.IntN(groupsPerWorld), port, port, n)
	g := file{rules: map[string]string{}}
	for name, b := range s.files[key].rules {
		g.rules[name] = b
	}
	g.rules[fmt.Sprintf("r%d", n)] = body
	if !s.valid(key, g) {
		s.logf("responder on %s skipped (not valid)", key)
		return
	}
	perms, _ := s.w.expand(key, fmt.Sprintf("rules:\n  r:\n%s", body))
	k := perms[0].Key
	s.tot.responded++
	// Whatever happens below, the owner fixes the file in the end.
	defer func() {
		s.w.put(key, s.files[key].render())
		s.pending = append(s.pending, key)
	}()
	s.w.put(key, g.render())
	if err := s.reconcile(s.engA, reconcile.Request{Keys: []string{key}, Reason: "before the new deny clause"}); err != nil {
		s.violate("responder: run of %s without faults: %v", key, err)
		return
	}
	id := s.ruleID(k)
	if id == "" {
		s.violate("responder: %s of %s, valid, was not created", k, key)
		return
	}
	clause := fmt.Sprintf("  - id: responder-%d\n    message: port %d is closed after an incident\n    type: ingress\n    protocol: tcp\n    ports: %d\n    cidrs: [10.0.0.0/8]\n\n", n, port, port)
	before, after, ok := strings.Cut(s.guard.body, "\ndeny:\n")
	if !ok {
		s.t.Fatalf("seed %d: the policy has no deny list", s.seed)
	}
	s.guard.upload(s.w, before+"\ndeny:\n"+clause+after)
	if v := s.guard.violations([]rules.Key{k})[0]; v == "" {
		s.t.Fatalf("seed %d: the clause responder-%d does not deny %s", s.seed, n, k)
	}
	if err := s.reconcile(s.engA, reconcile.Request{All: true, Reason: "sweep reporting the violation"}); err != nil {
		s.violate("responder: sweep without faults: %v", err)
	}
	_, err := s.w.ec2.RevokeSecurityGroupIngress(context.Background(), &ec2.RevokeSecurityGroupIngressInput{
		GroupId: aws.String(k.GroupID), SecurityGroupRuleIds: []string{id}})
	switch {
	case err != nil:
		s.t.Fatalf("seed %d: the responder's revoke of %s: %v", s.seed, id, err)
	case s.ruleID(k) != "":
		s.violate("responder: %s still there after the revoke", k)
		return
	}
	s.logf("responder: %s of %s denied by responder-%d and revoked by hand", k, key, n)
	for _, req := range []reconcile.Request{{All: true, Reason: "sweep after the responder"}, {Keys: []string{key}, Reason: "run after the responder"}} {
		err := s.reconcile(s.engA, req)
		if err != nil {
			s.violate("responder: %s without faults: %v", req.Reason, err)
		}
		if id := s.ruleID(k); id != "" {
			s.violate("responder: the %s wrote %s (rule %s) again, which the policy denies and a responder revoked", req.Reason, k, id)
		}
	}
}

// ruleID returns the id of the rule of k in the world's groups ("" when
// none).
func (s *scenario) ruleID(k rules.Key) string {
	for _, r := range s.w.rules() {
		if r.Key == k {
			return r.RuleID
		}
	}
	return ""
}

// spoof adds a hand-made rule carrying this deployment's tags
// (sgrules:managed, sgrules:ledger with its identity, sgrules:owner naming
// a file), in one of the groups the files name or in the spare group no
// file names. Nothing in the ledger makes it sgrules': like every
// hand-made rule it must never be revoked nor changed, nor named by a call.
func (s *scenario) spoof() {
	g := pick(s.rng, s.w.ids...)
	if s.rng.IntN(2) == 0 {
		g = s.w.byName["spare"]
	}
	for s.other != nil && g == s.other.excl { // exclusive for the first deployment too (deployments_test.go)
		g = pick(s.rng, s.w.ids...)
	}
	tags := map[string]string{reconcile.TagManaged: "true", reconcile.TagLedger: deployment}
	if keys := sortedFileKeys(s.files); len(keys) > 0 {
		tags[reconcile.TagOwner] = pick(s.rng, keys...)
	}
	r := s.w.handRule(g, int32(9000+len(s.hand)), fmt.Sprintf("spoofed %d", len(s.hand)), tags)
	s.hand[r.RuleID] = r
	s.tot.spoofed++
	s.logf("hand rule %s with this deployment's tags %v", r.Key, tags)
}

// tenants are added to the example policy: files under team-a/ may manage
// only groups tagged team=a, those under team-b/ only team=b. The
// generator's files are under no tenant prefix, which tenants do not
// restrict.
const tenants = "  - prefix: team-a/\n    groups:\n      - {tags: {team: a}}\n  - prefix: team-b/\n    groups:\n      - {tags: {team: b}}\n"

// handoff hands a group from team a to team b. The group is tagged
// team=a and a file of team a (under team-a/) applies a rule there (tcp
// 6000+n from 10.1.0.0/16), without faults; then the group is re-tagged
// team=b: team a's file is invalid there and team b's responder revokes
// its rule by hand. A sweep and a run of the file, without faults, must
// not write it again: the tenant check passes at every write, restores
// included. Team a then deletes its file (its event delivered with the
// step's) and the group loses its team tag.
func (s *scenario) handoff() {
	n := s.nextRule()
	port := 6000 + n
	gi := s.rng.IntN(groupsPerWorld)
	group := s.w.byName[fmt.Sprintf("g%d", gi)]
	key := fmt.Sprintf("%steam-a/f%d.yaml", prefix, n)
	body := fmt.Sprintf("rules:\n  a%d:\n    securityGroup: {tags: {Name: g%d}}\n    type: ingress\n    protocol: tcp\n    fromPort: %d\n    toPort: %d\n    cidrBlocks: [10.1.0.0/16]\n    description: \"team a\"\n", n, gi, port, port)
	perms, err := s.w.expand(key, body)
	if err != nil {
		s.t.Fatalf("seed %d: team a's file: %v", s.seed, err)
	}
	k := perms[0].Key
	s.tot.handoffs++
	s.tagGroup(group, "a")
	defer func() {
		s.w.remove(key)
		s.pending = append(s.pending, key)
		s.tagGroup(group, "")
	}()
	s.w.put(key, body)
	if err := s.reconcile(s.engA, reconcile.Request{Keys: []string{key}, Reason: "team a's file"}); err != nil {
		s.violate("handoff: run of %s without faults: %v", key, err)
		return
	}
	id := s.ruleID(k)
	if id == "" {
		s.violate("handoff: %s of %s, valid for team a, was not created", k, key)
		return
	}
	s.tagGroup(group, "b")
	if err := s.reconcile(s.engA, reconcile.Request{All: true, Reason: "sweep after the handoff"}); err != nil {
		s.violate("handoff: sweep without faults: %v", err)
	}
	_, err = s.w.ec2.RevokeSecurityGroupIngress(context.Background(), &ec2.RevokeSecurityGroupIngressInput{
		GroupId: aws.String(group), SecurityGroupRuleIds: []string{id}})
	if err != nil {
		s.t.Fatalf("seed %d: team b's revoke of %s: %v", s.seed, id, err)
	}
	s.logf("handoff: g%d from team a to team b, which revoked %s of %s by hand", gi, k, key)
	for _, req := range []reconcile.Request{{All: true, Reason: "sweep after team b's revoke"}, {Keys: []string{key}, Reason: "run of team a's file after team b's revoke"}} {
		if err := s.reconcile(s.engA, req); err != nil {
			s.violate("handoff: %s without faults: %v", req.Reason, err)
		}
		if id := s.ruleID(k); id != "" {
			s.violate("handoff: the %s wrote team a's %s (rule %s) again into team b's group", req.Reason, k, id)
		}
	}
}

// tagGroup sets the group's team tag ("" removes it).
func (s *scenario) tagGroup(group, team string) {
	tag := []ec2types.Tag{{Key: aws.String("team"), Value: aws.String(team)}}
	var err error
	if team == "" {
		_, err = s.w.ec2.DeleteTags(context.Background(), &ec2.DeleteTagsInput{Resources: []string{group}, Tags: []ec2types.Tag{{Key: aws.String("team")}}})
	} else {
		_, err = s.w.ec2.CreateTags(context.Background(), &ec2.CreateTagsInput{Resources: []string{group}, Tags: tag})
	}
	if err != nil {
		s.t.Fatalf("seed %d: tag %s team=%q: %v", s.seed, group, team, err)
	}
}
