package layout

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/sgrules/sgrules/"

// allowed lists, for each group of packages (a path prefix), the groups
// its non-test code may import. The first matching prefix wins.
var allowed = []struct {
	group string
	may   []string
}{
	{"pkg/", []string{"pkg/"}},
	{"internal/reconcile", []string{"pkg/"}},
	{"internal/strutil", nil},
	{"internal/adapters/", []string{"pkg/", "internal/reconcile", "internal/strutil", "internal/adapters/"}},
	// The presentation shared by both wings: pure, under both.
	{"internal/report", []string{"pkg/", "internal/reconcile", "internal/strutil", "internal/report"}},
	// The Lambda wing and the CLI wing never import each other.
	{"internal/lambda/", []string{"pkg/", "internal/reconcile", "internal/strutil", "internal/adapters/", "internal/lambda/", "internal/report"}},
	{"internal/cli/", []string{"pkg/", "internal/reconcile", "internal/strutil", "internal/report"}},
	// The environment, read and checked: builds nothing.
	{"internal/config", []string{"pkg/", "internal/reconcile", "internal/strutil"}},
	// The runtime built from it: sessions, clients, engines per target.
	{"internal/fleetrt", []string{"pkg/", "internal/reconcile", "internal/strutil", "internal/adapters/", "internal/config"}},
	{"internal/dev/", []string{"pkg/", "internal/reconcile", "internal/strutil", "internal/adapters/", "internal/lambda/", "internal/report", "internal/dev/"}},
	{"internal/testutil/", []string{""}},
	{"functions/", []string{"pkg/", "internal/reconcile", "internal/strutil", "internal/adapters/", "internal/lambda/", "internal/report", "internal/config", "internal/fleetrt"}},
	{"cmd/", []string{"pkg/", "internal/reconcile", "internal/strutil", "internal/adapters/", "internal/report", "internal/cli/", "internal/config", "internal/fleetrt", "internal/dev/demo"}},
	{"bench", []string{""}},
}

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
	Name       string
}

func list(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports,Deps,Name", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func TestImportsFlowOneWay(t *testing.T) {
	pkgs := list(t)
	if len(pkgs) < 20 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	for _, p := range pkgs {
		path := strings.TrimPrefix(p.ImportPath, module)
		var may []string
		found := false
		for _, a := range allowed {
			if strings.HasPrefix(path, a.group) {
				may, found = a.may, true
				break
			}
		}
		if !found {
			t.Errorf("%s belongs to no group of docs/architecture.md: place it, and add it to allowed", path)
			continue
		}
		for _, imp := range p.Imports {
			rel, ours := strings.CutPrefix(imp, module)
			if !ours || rel == path {
				continue
			}
			ok := false
			for _, m := range may {
				if strings.HasPrefix(rel, m) {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s imports %s: against the one-way flow (it may import %v)", path, rel, may)
			}
		}
	}
}

// No release binary links the testing package or test helpers.
func TestReleaseBinariesLinkNoTestCode(t *testing.T) {
	for _, p := range list(t) {
		path := strings.TrimPrefix(p.ImportPath, module)
		if p.Name != "main" || !(strings.HasPrefix(path, "cmd/") || strings.HasPrefix(path, "functions/")) {
			continue
		}
		for _, d := range p.Deps {
			if d == "testing" || strings.HasPrefix(d, module+"internal/testutil") {
				t.Errorf("release binary %s links %s", path, d)
			}
		}
	}
}

// The core imports no AWS SDK.
func TestCoreHasNoAWS(t *testing.T) {
	for _, p := range list(t) {
		path := strings.TrimPrefix(p.ImportPath, module)
		if !strings.HasPrefix(path, "pkg/") && path != "internal/reconcile" {
			continue
		}
		for _, d := range p.Deps {
			if strings.HasPrefix(d, "github.com/aws/") {
				t.Errorf("%s depends on %s", path, d)
			}
		}
	}
}

// internal/config reads the environment and builds nothing: no AWS
// service client, credentials provider or Lambda runtime package
// (internal/fleetrt builds them). It may parse ARNs (aws/arn, a pure
// parser).
func TestConfigBuildsNoClient(t *testing.T) {
	for _, p := range list(t) {
		if p.ImportPath != module+"internal/config" {
			continue
		}
		for _, d := range p.Deps {
			if (strings.HasPrefix(d, "github.com/aws/") || strings.HasPrefix(d, module+"internal/adapters/")) && d != "github.com/aws/aws-sdk-go-v2/aws/arn" {
				t.Errorf("internal/config depends on %s", d)
			}
		}
		return
	}
	t.Fatal("go list found no internal/config")
}
