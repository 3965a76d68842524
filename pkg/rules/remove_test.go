package rules

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRemoveRules rewrites rule files without some rules: golden files
// under testdata/remove (go test -update rewrites them). A block-style
// YAML file keeps every other byte: comments (the removed rule's go with
// it), order, blank lines, quoting.
func TestRemoveRules(t *testing.T) {
	for _, tc := range []struct {
		in, out string
		drop    []string
		removed string
	}{
		{"web.in.yaml", "web.http.yaml", []string{"web-http-in", "not-there"}, "web-http-in"},
		{"web.in.yaml", "web.last.yaml", []string{"web-ping", "web-https-in"}, "web-https-in web-ping"},
		{"web.in.yaml", "web.all.yaml", []string{"web-ping", "web-https-in", "web-http-in"}, "web-https-in web-http-in web-ping"},
		{"all.in.yaml", "all.yaml", []string{"batch-out"}, "batch-out"},
		{"flow.in.yaml", "flow.yaml", []string{"a"}, "a"},
		{"db.in.json", "db.json", []string{"old"}, "old"},
		{"db.in.json", "db.all.json", []string{"old", "pg"}, "old pg"},
	} {
		t.Run(tc.out, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata/remove", tc.in))
			if err != nil {
				t.Fatal(err)
			}
			out, removed, err := RemoveRules(tc.in, data, tc.drop)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(removed, " "); got != tc.removed {
				t.Errorf("removed %q, want %q", got, tc.removed)
			}
			f, diags := Parse(tc.in, out)
			if diags.HasErrors() {
				t.Fatalf("%v\n%s", diags, out)
			}
			for _, d := range tc.drop {
				for _, r := range f.Rules {
					if r.Name == d {
						t.Errorf("%s still declared", d)
					}
				}
			}
			golden(t, filepath.Join("testdata/remove", tc.out), string(out))
		})
	}
	data, _ := os.ReadFile("testdata/remove/web.in.yaml")
	if out, removed, err := RemoveRules("web.yaml", data, []string{"nope"}); err != nil || removed != nil || string(out) != string(data) {
		t.Errorf("nothing to remove: %v %v, file changed: %v", removed, err, string(out) != string(data))
	}
}

// FuzzRemoveRules: on any valid file, removing every other rule never
// panics, and a rewrite keeps exactly the other rules.
func FuzzRemoveRules(f *testing.F) {
	for _, n := range []string{"web.in.yaml", "all.in.yaml", "flow.in.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata/remove", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		before, diags := Parse("f.yaml", data)
		if diags.HasErrors() {
			return
		}
		var drop, keep []string
		for i, r := range before.Rules {
			if i%2 == 0 {
				drop = append(drop, r.Name)
			} else {
				keep = append(keep, r.Name)
			}
		}
		out, removed, err := RemoveRules("f.yaml", data, drop)
		if err != nil {
			return // refused (the rewrite would not parse): the file is left alone
		}
		after, diags := Parse("f.yaml", out)
		if diags.HasErrors() {
			t.Fatalf("rewrite does not parse: %v\n%s", diags, out)
		}
		var got []string
		for _, r := range after.Rules {
			got = append(got, r.Name)
		}
		if strings.Join(got, " ") != strings.Join(keep, " ") || len(removed) != len(drop) {
			t.Fatalf("kept %q, want %q; removed %q of %q\n--- in\n%s--- out\n%s", got, keep, removed, drop, data, out)
		}
	})
}
