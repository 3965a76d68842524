package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sgrules/sgrules/internal/adapters/dirsource"
	"github.com/sgrules/sgrules/internal/reconcile"
)

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		t.Run(shell, func(t *testing.T) {
			code, out, errs := runCmd(t, "completion", shell)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			for _, want := range []string{"plan", "apply", "drift", "import", "validate", "completion",
				"detailed-exitcode", "allow-mass-revoke", "max-revoke", "endpoint-url", "exclusive", "revert"} {
				if !strings.Contains(out, want) {
					t.Errorf("%s script lacks %q", shell, want)
				}
			}
			if _, err := exec.LookPath(shell); err != nil {
				return
			}
			path := filepath.Join(t.TempDir(), "completion")
			if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
				t.Fatal(err)
			}
			if msg, err := exec.Command(shell, "-n", path).CombinedOutput(); err != nil {
				t.Errorf("%s -n: %v\n%s", shell, err, msg)
			}
		})
	}
}

func TestCommandFlags(t *testing.T) {
	flags := map[string]flagInfo{}
	for _, f := range commandFlags(context.Background(), commands["plan"]) {
		flags[f.name] = f
	}
	if f := flags["bucket"]; !f.takes || !strings.Contains(f.summary, "S3 bucket") {
		t.Errorf("bucket = %+v", f)
	}
	if f := flags["detailed-exitcode"]; f.takes || f.summary == "" {
		t.Errorf("detailed-exitcode = %+v", f)
	}
}

func TestInterleave(t *testing.T) {
	fs := newFlags(commands["import"], nil)
	var w wiring
	w.addAWSFlags(fs)
	fs.Bool("exclusive", false, "")
	tests := []struct{ in, want string }{
		{"sg-1 --exclusive sg-2", "--exclusive -- sg-1 sg-2"},
		{"--region eu-west-1 sg-1", "--region eu-west-1 -- sg-1"},
		{"sg-1 --region=eu-west-1", "--region=eu-west-1 -- sg-1"},
		{"sg-1 -- --odd", "-- sg-1 --odd"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := strings.Join(interleave(fs, strings.Fields(tc.in)), " "); got != tc.want {
				t.Errorf("interleave(%s) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

func TestPrefixSource(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "web.yaml"), []byte("rules: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := prefixSource{inner: dirsource.New(dir), prefix: "rules/"}
	ctx := context.Background()
	objs, err := src.List(ctx)
	if err != nil || len(objs) != 1 || objs[0].Key != "rules/web.yaml" {
		t.Fatalf("List = %+v, %v", objs, err)
	}
	obj, err := src.Get(ctx, "rules/web.yaml")
	if err != nil || obj.Key != "rules/web.yaml" || string(obj.Body) != "rules: {}\n" {
		t.Errorf("Get = %+v, %v", obj, err)
	}
	if _, err := src.Get(ctx, "other/web.yaml"); !errors.Is(err, reconcile.ErrNotFound) {
		t.Errorf("Get outside the prefix: %v, want ErrNotFound", err)
	}
}
