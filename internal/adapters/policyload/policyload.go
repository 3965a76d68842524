package policyload

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

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

	mu     sync.Mutex
	etag   string
	pol    reconcile.Policy
	polErr error
}

// New returns the store of the policy at key in get (the rules bucket):
// an absent object is no policy. Rule file keys are matched against
// tenant prefixes relative to rulesPrefix.
func New(get Getter, key, rulesPrefix string) *Store {
	return &Store{get: get, key: key, prefix: rulesPrefix, missingIsNone: true}
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
func (c Checker) CheckSource(src reconcile.PolicySource, groups map[string]*reconcile.GroupInfo) rules.Diagnostics {
	facts := policy.Facts{Groups: map[string]policy.Group{}}
	add := func(id string) {
		if g := groups[id]; g != nil {
			facts.Groups[id] = Group(*g)
		}
	}
	for _, p := range src.Perms {
		add(p.Key.GroupID)
		if p.Key.Peer.Kind == rules.PeerGroup {
			add(p.Key.Peer.Value)
		}
	}
	for _, g := range src.Exclusive {
		add(g)
	}
	path := ""
	if rel, ok := strings.CutPrefix(src.Key, c.Prefix); ok && src.Kind == reconcile.KindFile {
		path = rel
	}
	res := c.Policy.Check(policy.Source{File: src.File, Perms: src.Perms, Resolve: src.Resolve, Path: path, Account: src.Target.Account}, facts)
	out := res.Diagnostics()
	for _, s := range res.Skipped {
		out = append(out, s.Diagnostic)
	}
	return out
}

// CheckRule implements reconcile.Policy: the clauses a live rule violates
// (clauses it cannot decide, for prefix list peers, are left out).
func (c Checker) CheckRule(k rules.Key, groups map[string]*reconcile.GroupInfo) []reconcile.PolicyClause {
	facts := policy.Facts{Groups: map[string]policy.Group{}}
	for _, id := range []string{k.GroupID, k.Peer.Value} {
		if g := groups[id]; g != nil {
			facts.Groups[id] = Group(*g)
		}
	}
	var out []reconcile.PolicyClause
	for _, m := range c.Policy.CheckRule(k, facts) {
		if !m.Skipped {
			out = append(out, reconcile.PolicyClause{ID: m.Clause.ID, Message: m.Clause.Message})
		}
	}
	return out
}

// Admit implements reconcile.Policy: pkg/policy's admission check of one
// write, with the groups' EC2 facts. An owner's path is its key below the
// prefix for a file, "" (no tenant) for a CloudFormation resource.
func (c Checker) Admit(w reconcile.PolicyWrite, groups map[string]*reconcile.GroupInfo) []reconcile.PolicyDenial {
	facts := policy.Facts{Groups: map[string]policy.Group{}}
	for _, id := range []string{w.Key.GroupID, w.Key.Peer.Value} {
		if g := groups[id]; g != nil {
			facts.Groups[id] = Group(*g)
		}
	}
	pw := policy.Write{Key: w.Key, Account: w.Target.Account, Paths: make([]string, len(w.Owners))}
	for i, o := range w.Owners {
		if rel, ok := strings.CutPrefix(o.Source, c.Prefix); ok && o.Kind == reconcile.KindFile {
			pw.Paths[i] = rel
		}
	}
	var out []reconcile.PolicyDenial
	for _, r := range c.Policy.Admit(pw, facts) {
		out = append(out, reconcile.PolicyDenial{Owner: r.Owner, Policy: r.Policy, Reason: r.Msg, Undecided: r.Skipped, Need: r.Need})
	}
	return out
}

// Group converts the engine's facts of a group, as EC2 reports them.
func Group(g reconcile.GroupInfo) policy.Group {
	return policy.Group{ID: g.GroupID, Name: g.Name, VPCID: g.VPCID, Tags: g.Tags, Complete: true}
}
