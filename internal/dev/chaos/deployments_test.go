package chaos_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Two deployments that could be confused (issue 21), on top of the second
// deployment of other_test.go:
//
//   - twin tables: in a third of its scenarios (seed/3 even) the second
//     deployment's ledger is a table with the first's table's name
//     ("ledger") in another region (twinRegion); its identity is generated
//     and stored in that table, as a new deployment's is. Identity by
//     table name would make each take the other's rules for its own; the
//     checks of other_test.go (no call names the other's rules, the
//     other's rules unchanged while it is idle) catch it.
//   - shared permissions: half of the second deployment's rules are
//     rules of the first's files (description the same or its own), so
//     both declare the same permission. While it declares a permission it
//     owns in EC2, neither deployment may drop it (protectShared: a
//     permission the second declares before and after the step, and owns
//     with its rule id, must keep that id whatever the first does, its
//     file deleted included). At convergence there is one rule with the
//     description of the deployment that created it (a claimer never
//     changes it), or any description when its creator declares it no
//     more (one the first gave it when only the second declares a rule
//     the first created before a ledger loss: see mergeShared).
//   - both exclusive: in half of its scenarios (seed/5 even) the first
//     deployment declares the second's exclusive group exclusive too (the
//     same file, at bothExclusiveKey); the second's file is applied first,
//     so the group carries its mark. Neither revokes the other's rules
//     (checked as above), no flap (the idle sweeps write nothing), and
//     both report the conflict (Plan.ExclusiveConflicts naming the other).
const (
	twinRegion       = "ap-northeast-1"
	bothExclusiveKey = prefix + "exclusive.yaml"
)

// otherLedger is the second deployment's ledger table.
type otherLedger struct {
	table, region string
	// proposed is its DeploymentID ("" for a generated one); id its
	// identity.
	proposed, id string
	twin         bool
	led          *ddbledger.Ledger // direct, for the checks
}

// regional returns cfg in the ledger's region.
func (ol otherLedger) regional(cfg aws.Config) aws.Config {
	cfg = cfg.Copy()
	cfg.Region = ol.region
	return cfg
}

func newOtherLedger(s *scenario) otherLedger {
	w := s.w
	ol := otherLedger{table: otherTable, region: w.cfg.Region, proposed: otherTable, id: otherTable}
	if s.seed/3%2 == 0 {
		ol = otherLedger{table: table, region: twinRegion, twin: true}
	}
	cfg := ol.regional(w.cfg)
	motoserver.CreateTable(w.tb, cfg, ol.table)
	ol.led = ddbledger.New(dynamodb.NewFromConfig(cfg), ol.table)
	if ol.twin {
		// The identity a new deployment generates and stores on its
		// first run; its engine reads it from the table.
		id, err := ol.led.DeploymentID(context.Background(), reconcile.NewDeploymentID())
		if err != nil {
			w.tb.Fatal(err)
		}
		ol.id = id
		s.tot.ops["second deployments with a table of the first's name in another region"]++
		s.logf("other deployment: table %q in %s, identity %s", ol.table, ol.region, ol.id)
	}
	return ol
}

// noteLostDescriptions adds to lostDescs the descriptions files (the
// first deployment's, as they are at some point of a step) declare for
// the permission of each rule created before a ledger loss: a run may
// apply any of them.
func (s *scenario) noteLostDescriptions(files map[string]string) {
	if len(s.lostDescs) == 0 {
		return
	}
	d := s.w.desire(files)
	for id, descs := range s.lostDescs {
		for _, desc := range d[s.lost[id].Key] {
			descs[desc] = true
		}
	}
}

// sharedBody returns, for half of the rules, a rule of the first
// deployment's files, but for ingress from 10/8 (the second's policy
// denies it): the same permission, with the same description or another.
func (o *other) sharedBody() (string, bool) {
	s := o.s
	if o.rng.IntN(2) != 0 {
		return "", false
	}
	var bodies []string
	for _, k := range sortedFileKeys(s.files) {
		if s.poison[k] {
			continue
		}
		f := s.files[k]
		for _, n := range sortedFileKeys(f.rules) {
			if b := f.rules[n]; !strings.Contains(b, "type: ingress") || !strings.Contains(b, "10.") {
				bodies = append(bodies, b)
			}
		}
	}
	if len(bodies) == 0 {
		return "", false
	}
	body := pick(o.rng, bodies...)
	if o.rng.IntN(2) == 0 {
		if i := strings.Index(body, "    description:"); i >= 0 {
			body = body[:i]
		}
		if d := pick(o.rng, descs...); d != "" {
			body += fmt.Sprintf("    description: %q\n", "other "+d)
		}
	}
	s.tot.ops["rules of the second deployment declaring a rule of the first"]++
	return body, true
}

// mergeShared adds what the second deployment declares (od) to all. A
// permission both declare is expected with the description of the
// deployment whose identity its rule carries (its creator), or with any
// when its creator declares it no more.
//
// One only the second declares is expected with its description, unless
// its rule still carries the first's identity and was created before a
// ledger loss of the first: nothing proves it the first's since, so the
// first, declaring it no more, reports it unproven and never lets it go
// (docs/reliability.md, "Ledger loss is recoverable"), and the claimer
// keeps its creator's description ("Other deployments"), one the first
// gave it (lostDescs).
func (s *scenario) mergeShared(all, od declared) {
	var byKey map[rules.Key]reconcile.ActualRule
	for k, v := range od {
		if byKey == nil {
			byKey = map[rules.Key]reconcile.ActualRule{}
			for _, r := range s.w.rules() {
				byKey[r.Key] = r
			}
		}
		act, ok := byKey[k]
		if _, dup := all[k]; !dup {
			all[k] = v
			if lost := s.lost[act.RuleID]; ok && act.Tags[reconcile.TagLedger] == deployment && lost.RuleID != "" {
				s.tot.ops["permissions only the second declares, created by the first before its ledger loss"]++
				desc := lost.Description
				if s.lostDescs[act.RuleID][act.Description] {
					desc = act.Description
				}
				all[k] = map[string]string{"(creator, unproven)": desc}
			}
			continue
		}
		s.tot.ops["permissions both deployments declare at convergence"]++
		switch creator := act.Tags[reconcile.TagLedger]; {
		case !ok, creator == deployment:
		case creator == s.other.id:
			all[k] = v
		default:
			all[k] = map[string]string{"(shared)": act.Description}
		}
	}
}

// protectShared adds to prot the permissions the first deployment's
// files declare before or after the step that the second deployment
// declares before and after it, owns with the rule id in EC2, and whose
// every owner there still declares it: the second keeps declaring them
// whatever subset of its events runs, so nobody may revoke or replace
// them.
func (s *scenario) protectShared(prot map[rules.Key]string) {
	o := s.other
	if o == nil {
		return
	}
	before := o.before
	if before == nil {
		before = o.content()
	}
	o.before = nil
	db, da := s.w.desire(before), s.w.desire(o.content())
	first := s.w.desire(s.content())
	owned, err := o.led.AllPermissions(context.Background())
	if err != nil {
		s.t.Fatalf("seed %d: read the other ledger: %v", s.seed, err)
	}
	ownedByKey := map[rules.Key]reconcile.OwnedPermission{}
	for _, p := range owned {
		ownedByKey[p.Key] = p
	}
	firstOwned := s.w.owners()
	for _, r := range s.w.rules() {
		rec, ok := ownedByKey[r.Key]
		if !ok || rec.RuleID != r.RuleID || db[r.Key] == nil || da[r.Key] == nil {
			continue
		}
		if _, declares := first[r.Key]; !declares && firstOwned[r.Key] == nil {
			continue // not the first deployment's: the second's own make-before-break
		}
		srcs := da.sourcesOf(r.Key)
		keeps := true
		for owner := range rec.Owners {
			if !srcs[owner.Source] {
				keeps = false
			}
		}
		if keeps {
			prot[r.Key] = r.RuleID
			s.tot.ops["shared permissions protected in a step"]++
		}
	}
}

// othersRules returns the ids of the second deployment's rules: those its
// ledger holds, those it created (its identity tag) and those it claims,
// except those the first created (nil without a second deployment). When
// the first's ledger holds no owner of such a rule, the first has not
// applied a file declaring it (its event dropped or not run yet, or its
// record lost since): the rule is the second's alone, which revokes it when
// it stops declaring it (nobody claims it, docs/reliability.md), and the
// first creates the permission again when its file runs. So it is
// protected only while the second keeps declaring it (protectShared), not
// because the first's bucket declares it.
func (s *scenario) othersRules() map[string]bool {
	o := s.other
	if o == nil {
		return nil
	}
	owned, err := o.led.AllPermissions(context.Background())
	if err != nil {
		s.t.Fatalf("seed %d: read the other ledger: %v", s.seed, err)
	}
	held := map[string]bool{}
	for _, p := range owned {
		held[p.RuleID] = true
	}
	out := map[string]bool{}
	for _, r := range s.w.rules() {
		_, claimed := r.Tags[reconcile.TagClaimPrefix+o.id]
		switch creator := r.Tags[reconcile.TagLedger]; {
		case creator == deployment: // the first's (its ledger lost): protect's
		case creator == o.id, claimed, held[r.RuleID]:
			out[r.RuleID] = true
		}
	}
	return out
}

// bothExclusive makes the first deployment declare the second's exclusive
// group exclusive too, in half of the scenarios with a second deployment
// (when the first's policy accepts the file).
func (s *scenario) bothExclusive() {
	o := s.other
	if o == nil || s.seed/5%2 != 0 {
		return
	}
	perms, err := s.w.expand(bothExclusiveKey, o.exclusive)
	if err != nil || (s.guard != nil && !s.guard.accepts(perms)) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := o.eng.Reconcile(ctx, reconcile.Request{Keys: []string{otherExclusiveKey}, Reason: "mark the exclusive group"})
	if err != nil || len(res.Sources) != 1 || res.Sources[0].Status != reconcile.StatusApplied {
		s.t.Fatalf("seed %d: the other deployment's exclusive file: %v %+v", s.seed, err, res.Sources)
	}
	o.snap()
	s.fixed = map[string]string{bothExclusiveKey: o.exclusive}
	s.w.put(bothExclusiveKey, o.exclusive)
	s.pending = append(s.pending, bothExclusiveKey)
	s.tot.ops["groups both deployments declare exclusive"]++
	s.logf("both deployments declare %s exclusive", o.excl)
}

// checkReports checks, after convergence, what the runs report: both
// deployments report a group both declare exclusive, naming each other;
// an offboarded account is reported (offboard_test.go).
func (s *scenario) checkReports() {
	if s.fleet != nil {
		s.fleet.checkReported()
	}
	if s.fixed[bothExclusiveKey] == "" {
		return
	}
	for _, d := range []struct {
		name  string
		eng   *reconcile.Engine
		other string
	}{{"the first deployment", s.engA, s.other.id}, {"the second deployment", s.other.eng, deployment}} {
		res, err := s.reconcileResult(d.eng, reconcile.Request{All: true, DryRun: true, Reason: "report"})
		if err != nil {
			s.violate("%s: dry run: %v", d.name, err)
			continue
		}
		found := slices.ContainsFunc(res.Plan.ExclusiveConflicts, func(c reconcile.ExclusiveConflict) bool {
			return c.GroupID == s.other.excl && slices.Contains(c.Deployments, d.other)
		})
		if !found {
			s.violate("%s does not report group %s exclusive for deployment %s too: %+v", d.name, s.other.excl, d.other, res.Plan.ExclusiveConflicts)
		}
	}
}

// opsSummary writes the counts of ops, sorted by name.
func opsSummary(ops map[string]int) string {
	names := make([]string, 0, len(ops))
	for n := range ops {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%d %s", ops[n], n)
	}
	return strings.Join(parts, ", ")
}
