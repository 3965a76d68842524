package ignorefile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// Name is the file name looked for at the root of a walk.
const Name = ".sgrulesignore"

// Matcher tells which paths to skip. The zero value skips nothing.
type Matcher struct {
	patterns []pattern
}

type pattern struct {
	glob    string
	dirOnly bool
	anyBase bool
}

// Load reads Name at the root of fsys; a missing file skips nothing.
func Load(fsys fs.FS) (*Matcher, error) {
	data, err := fs.ReadFile(fsys, Name)
	if errors.Is(err, fs.ErrNotExist) {
		return &Matcher{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", Name, err)
	}
	return Parse(data)
}

// Parse reads patterns; a malformed one is an error naming its line.
func Parse(data []byte) (*Matcher, error) {
	m := &Matcher{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		p := pattern{}
		if strings.HasSuffix(t, "/") {
			p.dirOnly = true
			t = strings.TrimSuffix(t, "/")
		}
		t = strings.TrimPrefix(t, "/")
		p.anyBase = !strings.Contains(t, "/")
		if _, err := path.Match(t, ""); err != nil {
			return nil, fmt.Errorf("%s:%d: bad pattern %q: %w", Name, line, t, err)
		}
		p.glob = t
		m.patterns = append(m.patterns, p)
	}
	return m, sc.Err()
}

// Match reports whether the slash-separated relative path rel (a directory
// when isDir) is to be skipped.
func (m *Matcher) Match(rel string, isDir bool) bool {
	if m == nil {
		return false
	}
	for _, p := range m.patterns {
		if p.dirOnly && !isDir {
			continue
		}
		if ok, _ := path.Match(p.glob, rel); ok {
			return true
		}
		if p.anyBase {
			if ok, _ := path.Match(p.glob, path.Base(rel)); ok {
				return true
			}
		}
	}
	return false
}
