package policyload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/policy"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Getter reads one object; *s3source.Source satisfies it (reconcile.Source
// does).
type Getter interface {
	Get(ctx context.Context, key string) (reconcile.Object, error)
}

var (
	_ reconcile.PolicyStore = (*Store)(nil)
	_ reconcile.Policy      = Checker{}
)

// Store reads the policy on every run and parses it again only when its
// ETag changed.
type Store struct {
	get    Getter
	key    string
	prefix string
	// missingIsNone: an absent object means no policy (the bucket), not an
	// error (a file named on the command line).
	missingIsNone bool
	// required: an absent object holds every change (REQUIRE_POLICY).
	required bool
	log      *slog.Logger

	mu     sync.Mutex
	etag   string
	pol    reconcile.Policy
	polErr error
}

// New returns the store of the policy at key in get (the rules bucket):
// an absent object is no policy, reported on every read (a warning with
// the embedded metric PolicyMissing), unless Required: then it is a
// *reconcile.PolicyError, which holds every change as a broken policy
// does. Rule file keys are matched against tenant prefixes relative to
// rulesPrefix.
func New(get Getter, key, rulesPrefix string, opts ...Option) *Store {
	s := &Store{get: get, key: key, prefix: rulesPrefix, missingIsNone: true, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Option configures a Store of New.
type Option func(*Store)

// Required makes an absent policy object hold every change
// (REQUIRE_POLICY).
func Required(on bool) Option { return func(s *Store) { s.required = on } }

// WithLogger sets where an absent policy object is reported.
func WithLogger(l *slog.Logger) Option { return func(s *Store) { s.log = l } }

// MetricPolicyMissing is the embedded metric of a read that found no
// policy object at the configured key (namespace sgrules).
const MetricPolicyMissing = "PolicyMissing"

// reportMissing logs the absent object with the PolicyMissing metric,
// once per run (reconcile.FirstInRun): every engine and attempt of a run
// reads the policy.
func (s *Store) reportMissing(ctx context.Context) {
	if !reconcile.FirstInRun(ctx, "policy missing: "+s.key) {
		return
	}
	msg := "policy missing: POLICY_KEY names no object; no guardrail policy is checked"
	if s.required {
		msg = "policy missing: POLICY_KEY names no object and REQUIRE_POLICY is set; every change is held until it is restored"
	}
	s.log.WarnContext(ctx, msg, "policyKey", s.key, "required", s.required,
		slog.Group("_aws", "Timestamp", time.Now().UnixMilli(), "CloudWatchMetrics", []map[string]any{{"Namespace": "sgrules", "Dimensions": [][]string{{}},
			"Metrics": []map[string]string{{"Name": MetricPolicyMissing, "Unit": "Count"}}}}), MetricPolicyMissing, 1)
}

// File returns the store of a local policy file (the CLI's --policy): a
// missing file is an error. Rule file keys (rulesPrefix + the path below
// the directory) are matched against tenant prefixes relative to
// rulesPrefix.
func File(path, rulesPrefix string) *Store {
	return &Store{get: fileGetter{}, key: path, prefix: rulesPrefix}
}

// Policy implements reconcile.PolicyStore.
func (s *Store) Policy(ctx context.Context) (reconcile.Policy, error) {
	obj, err := s.get.Get(ctx, s.key)
	if errors.Is(err, reconcile.ErrNotFound) && s.missingIsNone {
		s.reportMissing(ctx)
		if s.required {
			return nil, &reconcile.PolicyError{Key: s.key, Diagnostics: rules.Diagnostics{{File: s.key, Line: 1, Col: 1, Severity: rules.SeverityError,
				Msg: "the policy object does not exist and a policy is required (REQUIRE_POLICY): every change is held until it is restored"}}}
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", s.key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if obj.ETag != "" && obj.ETag == s.etag {
		return s.pol, s.polErr
	}
	s.pol, s.polErr = Parse(s.key, obj, s.prefix)
	s.etag = obj.ETag
	return s.pol, s.polErr
}

// Parse parses a policy object: a *reconcile.PolicyError when it is
// invalid (or too large).
func Parse(name string, obj reconcile.Object, rulesPrefix string) (reconcile.Policy, error) {
	if obj.Body == nil && obj.Size > rules.MaxFileSize {
		return nil, &reconcile.PolicyError{Key: name, Diagnostics: rules.Diagnostics{{File: name, Line: 1, Col: 1, Severity: rules.SeverityError,
			Msg: fmt.Sprintf("file is %d bytes; the limit is %d (1 MiB)", obj.Size, rules.MaxFileSize)}}}
	}
	pol, diags := policy.Parse(name, obj.Body)
	if pol == nil || diags.HasErrors() {
		return nil, &reconcile.PolicyError{Key: name, Diagnostics: diags}
	}
	return Checker{Policy: pol, Prefix: rulesPrefix}, nil
}

type fileGetter struct{}

func (fileGetter) Get(_ context.Context, path string) (reconcile.Object, error) {
	st, err := os.Stat(path)
	if err != nil {
		return reconcile.Object{}, err
	}
	obj := reconcile.Object{ObjectInfo: reconcile.ObjectInfo{Key: path, Size: st.Size()}}
	if st.Size() > rules.MaxFileSize {
		return obj, nil
	}
	obj.Body, err = os.ReadFile(path)
	return obj, err
}

// Checker adapts a parsed policy to reconcile.Policy.
type Checker struct {
	Policy *policy.Policy
	// Prefix is RULES_PREFIX: tenant prefixes are relative to it.
	Prefix string
}

// Name implements reconcile.Policy.
func (c Checker) Name() string { return c.Policy.Name }

// Revoke implements reconcile.Policy: enforce: revoke.
func (c Checker) Revoke() bool { return c.Policy.Enforce == policy.EnforceRevoke }

// CheckSource implements reconcile.Policy: the deny clauses for every
// permission, and for files the tenants of their path below the prefix.
// CloudFormation resources are checked against the deny clauses only.
// A check the facts cannot decide (a prefix list that could not be read,
// a peer group in another account whose tags a clause needs) is an error
// located like a violation, naming what was missing: at apply every check
// is decided or refuses the file (fail closed).
func (c Checker) CheckSource(src reconcile.PolicySource, facts reconcile.PolicyFacts) rules.Diagnostics {
	pf := Facts(facts)
	path := ""
	if rel, ok := strings.CutPrefix(src.Key, c.Prefix); ok && src.Kind == reconcile.KindFile {
		path = rel
	}
	res := c.Policy.Check(policy.Source{File: src.File, Perms: src.Perms, Resolve: src.Resolve, Path: path, Account: src.Target.Account}, pf)
	out := res.Diagnostics()
	for _, s := range res.Skipped {
		d := s.Diagnostic
		d.Severity = rules.SeverityError
		d.Msg = fmt.Sprintf("cannot decide policy %s: needs %s; a check that cannot be decided refuses the file", policyName(s.Policy), needText(s.Need, facts.Unreadable))
		out = append(out, d)
	}
	return out
}

// policyName is a clause id as messages show it (upper-cased), or a
// tenant's label.
func policyName(p string) string {
	if strings.HasPrefix(p, "tenant ") {
		return p
	}
	return strings.ToUpper(p)
}

// needText joins what checks needed, with why a prefix list could not be
// read.
func needText(need []string, unreadable map[string]string) string {
	parts := make([]string, len(need))
	for i, n := range need {
		parts[i] = n
		if id, ok := strings.CutPrefix(n, "the entries of prefix list "); ok && unreadable[id] != "" {
			parts[i] += " (" + unreadable[id] + ")"
		}
	}
	return strings.Join(parts, " and ")
}

// CheckRules implements reconcile.Policy: the clauses each live rule
// violates, a group's rules judged together (clauses it cannot decide are
// left out).
func (c Checker) CheckRules(keys []rules.Key, facts reconcile.PolicyFacts) [][]reconcile.PolicyClause {
	out := make([][]reconcile.PolicyClause, len(keys))
	for i, ms := range c.Policy.CheckRules(keys, Facts(facts)) {
		for _, m := range ms {
			if !m.Skipped {
				out[i] = append(out[i], reconcile.PolicyClause{ID: m.Clause.ID, Message: m.Clause.Message})
			}
		}
	}
	return out
}

// Facts converts what the engine read from EC2 into pkg/policy's facts.
// The facts of a group are its own (Complete); a peer group in another
// account has none here (the engine reads the groups of its target
// account only), so a clause that needs its tags cannot be decided.
func Facts(f reconcile.PolicyFacts) policy.Facts {
	out := policy.Facts{Groups: map[string]policy.Group{}, PrefixLists: f.PrefixLists, Held: f.Held, Now: f.Now, Deadlines: f.Deadlines}
	for id, g := range f.Groups {
		if g != nil {
			out.Groups[id] = Group(*g)
		}
	}
	return out
}

// Admit implements reconcile.Policy: pkg/policy's admission check of one
// write, with the groups' EC2 facts. An owner's path is its key below the
// prefix for a file, "" (no tenant) for a CloudFormation resource.
func (c Checker) Admit(w reconcile.PolicyWrite, f reconcile.PolicyFacts) []reconcile.PolicyDenial {
	facts := Facts(f)
	pw := policy.Write{Key: w.Key, Account: w.Target.Account, Paths: make([]string, len(w.Owners))}
	for i, o := range w.Owners {
		if rel, ok := strings.CutPrefix(o.Source, c.Prefix); ok && o.Kind == reconcile.KindFile {
			pw.Paths[i] = rel
		}
	}
	var out []reconcile.PolicyDenial
	for _, r := range c.Policy.Admit(pw, facts) {
		d := reconcile.PolicyDenial{Owner: r.Owner, Policy: r.Policy, Reason: r.Msg, Undecided: r.Skipped, Need: r.Need}
		if r.Skipped {
			d.Reason = fmt.Sprintf("cannot decide policy %s: needs %s", policyName(r.Policy), needText(r.Need, f.Unreadable))
		}
		out = append(out, d)
	}
	return out
}

// Group converts the engine's facts of a group, as EC2 reports them.
func Group(g reconcile.GroupInfo) policy.Group {
	return policy.Group{ID: g.GroupID, Name: g.Name, VPCID: g.VPCID, Tags: g.Tags, Complete: true}
}
