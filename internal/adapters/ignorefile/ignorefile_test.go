package ignorefile

import (
	"testing"
	"testing/fstest"
)

func TestMatch(t *testing.T) {
	m, err := Parse([]byte("# comment\n\nci/\ncloudformation/*.yaml\n*.tmpl.yaml\n/top.json\n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		rel   string
		isDir bool
		want  bool
	}{
		{"ci", true, true},
		{"ci", false, false}, // a file named ci is not the directory
		{"sub/ci", true, true},
		{"cloudformation/stack.yaml", false, true},
		{"cloudformation/x/stack.yaml", false, false},
		{"a/b.tmpl.yaml", false, true},
		{"top.json", false, true},
		{"web.yaml", false, false},
	}
	for _, tc := range tests {
		if got := m.Match(tc.rel, tc.isDir); got != tc.want {
			t.Errorf("Match(%q, %v) = %v, want %v", tc.rel, tc.isDir, got, tc.want)
		}
	}
	var none *Matcher
	if none.Match("x", false) {
		t.Error("nil matcher skipped a path")
	}
}

func TestLoad(t *testing.T) {
	m, err := Load(fstest.MapFS{})
	if err != nil || m.Match("x.yaml", false) {
		t.Fatalf("missing file: %v %v", m, err)
	}
	m, err = Load(fstest.MapFS{Name: {Data: []byte("x.yaml\n")}})
	if err != nil || !m.Match("x.yaml", false) {
		t.Fatalf("loaded: %v", err)
	}
	if _, err := Parse([]byte("ok\n[bad\n")); err == nil || err.Error()[:len(Name)+2] != Name+":2" {
		t.Fatalf("bad pattern error = %v, want one naming line 2", err)
	}
}
