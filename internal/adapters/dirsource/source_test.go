package dirsource_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sgrules/sgrules/internal/adapters/dirsource"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

func write(t *testing.T, dir, rel, content string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestSource(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"web.yaml":             "rules: []\n",
		"team a/ünïcode ☃.YML": "rules: [1]\n",
		"deep/er/x.json":       "{}",
		"readme.md":            "#",
		".git/config.yaml":     "hidden dir",
		"deep/.hidden/y.yaml":  "hidden dir",
		"deep/.swap.yaml":      "hidden file",
		"big.yaml":             strings.Repeat("#", rules.MaxFileSize+1),
		"max.yaml":             strings.Repeat("#", rules.MaxFileSize),
	}
	for k, v := range files {
		write(t, dir, k, v)
	}
	if err := os.MkdirAll(filepath.Join(dir, "dir.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := dirsource.New(dir)
	ctx := context.Background()
	list, err := src.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []reconcile.ObjectInfo
	got = append(got, list...)
	var want []reconcile.ObjectInfo
	for _, k := range []string{"big.yaml", "deep/er/x.json", "max.yaml", "team a/ünïcode ☃.YML", "web.yaml"} {
		want = append(want, reconcile.ObjectInfo{Key: k, ETag: sha(files[k]), Size: int64(len(files[k]))})
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("List:\n got %+v\nwant %+v", got, want)
	}

	for _, k := range []string{"web.yaml", "team a/ünïcode ☃.YML", "max.yaml"} {
		obj, err := src.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if string(obj.Body) != files[k] || obj.ETag != sha(files[k]) || obj.Size != int64(len(files[k])) || obj.Key != k {
			t.Errorf("Get(%q) = key %q etag %q size %d", k, obj.Key, obj.ETag, obj.Size)
		}
	}
	big, err := src.Get(ctx, "big.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if big.Body != nil || big.Size != rules.MaxFileSize+1 || big.ETag != sha(files["big.yaml"]) {
		t.Errorf("big: body %d bytes size %d", len(big.Body), big.Size)
	}
	for _, k := range []string{"missing.yaml", "../escape.yaml", "/etc/passwd", "a/../web.yaml", "dir.yaml", ""} {
		if _, err := src.Get(ctx, k); !errors.Is(err, reconcile.ErrNotFound) {
			t.Errorf("Get(%q): err = %v, want ErrNotFound", k, err)
		}
	}
	// Content change changes the etag.
	write(t, dir, "web.yaml", "rules: [2]\n")
	obj, err := src.Get(ctx, "web.yaml")
	if err != nil || obj.ETag != sha("rules: [2]\n") {
		t.Errorf("after change: %q, %v", obj.ETag, err)
	}
}

func TestSymlinkOutsideIsRefused(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	write(t, outside, "secret.yaml", "x")
	if err := os.Symlink(filepath.Join(outside, "secret.yaml"), filepath.Join(dir, "link.yaml")); err != nil {
		t.Skip(err)
	}
	write(t, dir, "in.yaml", "y")
	if err := os.Symlink("in.yaml", filepath.Join(dir, "alias.yaml")); err != nil {
		t.Fatal(err)
	}
	src := dirsource.New(dir)
	if _, err := src.Get(context.Background(), "link.yaml"); err == nil {
		t.Error("Get followed a symlink out of the directory")
	}
	list, err := src.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Key != "alias.yaml" || list[1].Key != "in.yaml" || list[0].ETag != list[1].ETag {
		t.Errorf("List = %+v, want alias.yaml and in.yaml only", list)
	}
}

func TestMissingDir(t *testing.T) {
	if _, err := dirsource.New(filepath.Join(t.TempDir(), "nope")).List(context.Background()); err == nil {
		t.Error("List of a missing directory succeeded")
	}
}
