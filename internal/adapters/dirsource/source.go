package dirsource

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/sgrules/sgrules/internal/adapters/ignorefile"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

var _ reconcile.Source = (*Source)(nil)

// Source is a directory of rule files.
type Source struct {
	dir string
}

// New returns the source of rule files under dir.
func New(dir string) *Source { return &Source{dir: dir} }

// isRuleFile reports whether a slash path names a listed rule file.
func isRuleFile(p string) bool {
	for _, part := range strings.Split(p, "/") {
		if strings.HasPrefix(part, ".") {
			return false
		}
	}
	l := strings.ToLower(p)
	return strings.HasSuffix(l, ".yaml") || strings.HasSuffix(l, ".yml") || strings.HasSuffix(l, ".json")
}

// List returns every rule file, sorted by key, with its size and the
// SHA-256 of its content.
func (s *Source) List(ctx context.Context) ([]reconcile.ObjectInfo, error) {
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", s.dir, err)
	}
	defer root.Close()
	ignore, err := ignorefile.Load(root.FS())
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", s.dir, err)
	}
	var out []reconcile.ObjectInfo
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") || ignore.Match(p, true) {
				return fs.SkipDir
			}
			return nil
		}
		if !isRuleFile(p) || ignore.Match(p, false) {
			return nil
		}
		info, etag, _, err := read(root, p, false)
		if errors.Is(err, errNotRegular) || (err != nil && d.Type()&fs.ModeSymlink != 0) {
			// Not a file, or a symlink that is dangling or leaves the
			// directory (Get refuses those too).
			return nil
		}
		if err != nil {
			return err
		}
		out = append(out, reconcile.ObjectInfo{Key: p, ETag: etag, Size: info.Size()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", s.dir, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Get reads one file by key. It returns an error wrapping
// reconcile.ErrNotFound when the file is absent (or the key is not a clean
// relative path), and Body nil when the file is larger than
// rules.MaxFileSize.
func (s *Source) Get(ctx context.Context, key string) (reconcile.Object, error) {
	if !fs.ValidPath(key) || key == "." || path.Clean(key) != key {
		return reconcile.Object{}, fmt.Errorf("get %s: invalid key: %w", key, reconcile.ErrNotFound)
	}
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return reconcile.Object{}, fmt.Errorf("get %s: %w", key, err)
	}
	defer root.Close()
	info, etag, body, err := read(root, key, true)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotRegular) {
		return reconcile.Object{}, fmt.Errorf("get %s in %s: %w: %w", key, s.dir, reconcile.ErrNotFound, err)
	}
	if err != nil {
		return reconcile.Object{}, fmt.Errorf("get %s: %w", key, err)
	}
	size := int64(len(body))
	if body == nil {
		// Too large (possibly grown since Stat).
		size = max(info.Size(), rules.MaxFileSize+1)
	}
	return reconcile.Object{ObjectInfo: reconcile.ObjectInfo{Key: key, ETag: etag, Size: size}, Body: body}, nil
}

var errNotRegular = errors.New("not a regular file")

// read hashes a file and, when keep is set and it is not larger than
// rules.MaxFileSize, returns its content.
func read(root *os.Root, name string, keep bool) (fs.FileInfo, string, []byte, error) {
	f, err := root.Open(name)
	if err != nil {
		return nil, "", nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, "", nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, "", nil, errNotRegular
	}
	h := sha256.New()
	var body []byte
	if keep && info.Size() <= rules.MaxFileSize {
		b, err := io.ReadAll(io.LimitReader(f, rules.MaxFileSize+1))
		if err != nil {
			return nil, "", nil, err
		}
		h.Write(b)
		if len(b) <= rules.MaxFileSize {
			body = b
		} else if _, err := io.Copy(h, f); err != nil { // grew since Stat
			return nil, "", nil, err
		}
	} else if _, err := io.Copy(h, f); err != nil {
		return nil, "", nil, err
	}
	return info, hex.EncodeToString(h.Sum(nil)), body, nil
}
