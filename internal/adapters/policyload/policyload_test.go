package policyload

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

type fakeGetter struct {
	obj  *reconcile.Object
	gets int
	err  error
}

func (f *fakeGetter) Get(_ context.Context, key string) (reconcile.Object, error) {
	f.gets++
	if f.err != nil {
		return reconcile.Object{}, f.err
	}
	if f.obj == nil {
		return reconcile.Object{}, reconcile.ErrNotFound
	}
	return *f.obj, nil
}

func TestStore(t *testing.T) {
	ctx := context.Background()
	g := &fakeGetter{}
	s := New(g, "policy/sgrules.yaml", "rules/")
	if p, err := s.Policy(ctx); p != nil || err != nil {
		t.Fatalf("absent object: %v, %v; want no policy", p, err)
	}
	g.obj = &reconcile.Object{ObjectInfo: reconcile.ObjectInfo{ETag: "1"}, Body: []byte("deny:\n  - id: x\n    prot: tcp\n")}
	_, err := s.Policy(ctx)
	var pe *reconcile.PolicyError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "policy/sgrules.yaml:3:5") {
		t.Fatalf("invalid policy: %v", err)
	}
	g.obj = &reconcile.Object{ObjectInfo: reconcile.ObjectInfo{ETag: "2"}, Body: []byte("deny:\n  - id: no-ssh\n    ports: 22\nenforce: revoke\n")}
	p, err := s.Policy(ctx)
	if err != nil || p == nil || p.Name() != "policy/sgrules.yaml" || !p.Revoke() {
		t.Fatalf("valid policy: %v, %v", p, err)
	}
	if again, _ := s.Policy(ctx); again != p {
		t.Error("same ETag parsed again")
	}
	g.obj = &reconcile.Object{ObjectInfo: reconcile.ObjectInfo{ETag: "3", Size: rules.MaxFileSize + 1}}
	if _, err := s.Policy(ctx); !errors.As(err, &pe) || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("oversized policy: %v", err)
	}
	g.err = errors.New("SlowDown")
	if _, err := s.Policy(ctx); err == nil || errors.As(err, &pe) {
		t.Fatalf("read error: %v; want a retryable error", err)
	}
}

func TestFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sgrules.yaml")
	if _, err := File(path, "rules/").Policy(context.Background()); err == nil {
		t.Fatal("a missing --policy file is not an error")
	}
	if err := os.WriteFile(path, []byte("tenants:\n  - prefix: team-a/\n    groups: {tags: {team: a}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := File(path, "rules/").Policy(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Tenants match keys below the rules prefix; custom resources are
	// not restricted by tenants.
	f, diags := rules.Parse("rules/team-a/db.yaml", []byte("rules:\n  pg:\n    securityGroup: sg-0000000b\n    type: ingress\n    protocol: tcp\n    fromPort: 5432\n    toPort: 5432\n    cidrBlocks: [10.0.0.0/8]\n"))
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	resolve := func(g rules.GroupRef) []string { return []string{g.ID} }
	perms, _, _ := rules.Expand(f, "rules/team-a/db.yaml", resolve)
	groups := map[string]*reconcile.GroupInfo{"sg-0000000b": {GroupID: "sg-0000000b", Tags: map[string]string{"team": "b"}}}
	src := reconcile.PolicySource{Key: "rules/team-a/db.yaml", Kind: reconcile.KindFile, File: f, Perms: perms, Resolve: resolve}
	if d := p.CheckSource(src, reconcile.PolicyFacts{Groups: groups}); !d.HasErrors() || !strings.Contains(d.Strings()[0], "rules/team-a/db.yaml:3:20: pg: violates policy tenant team-a/") {
		t.Errorf("file: %q", d.Strings())
	}
	src.Kind = reconcile.KindCFN
	if d := p.CheckSource(src, reconcile.PolicyFacts{Groups: groups}); d.HasErrors() {
		t.Errorf("custom resource restricted by a tenant: %q", d.Strings())
	}
}
