package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// portRules declares n ingress rules on group, ports from base.
func portRules(group string, base, n int) string {
	var b strings.Builder
	b.WriteString("rules:\n")
	for i := range n {
		fmt.Fprintf(&b, "  r%d:\n    securityGroup: %s\n    type: ingress\n    protocol: tcp\n    fromPort: %d\n    toPort: %d\n    cidrBlocks: [10.0.0.0/8]\n", i, group, base+i, base+i)
	}
	return b.String()
}

// "sgrules plan d" on a wrong directory (one unrelated file) would revoke
// every rule of the other files: under the absolute limit of 50, but more
// than half of what the files owned, so it is held; the plan names the
// files that are gone first, and advises --allow-mass-revoke, which plan
// accepts as apply does.
func TestWrongDirectoryIsHeld(t *testing.T) {
	w := newCLIWorld(t)
	web, db, app := w.group("web"), w.group("db"), w.group("app")
	w.write("web.yaml", portRules(web, 1000, 8))
	w.write("db.yaml", portRules(db, 2000, 8))
	w.write("app.yaml", portRules(app, 3000, 6))
	w.expect(exitOK, []string{"22 authorized"}, "apply", w.dir)

	wrong := t.TempDir()
	if err := os.WriteFile(filepath.Join(wrong, "other.yaml"), []byte(portRules(app, 4000, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := w.expect(exitFail, []string{
		"Rule files gone (3): rules/app.yaml, rules/db.yaml, rules/web.yaml",
		"plan held: it would revoke 22 of the 22 permissions the rule files owned (more than half",
		"if this is intended, run again with --allow-mass-revoke",
	}, "plan", wrong)
	if strings.Index(out, "Rule files gone") != 0 {
		t.Errorf("the gone files are not the plan's headline:\n%s", out)
	}
	if strings.Contains(out, "- ingress") || strings.Contains(out, "to revoke") && !strings.Contains(out, "0 to revoke") {
		t.Errorf("a held plan revokes:\n%s", out)
	}
	js := w.expect(exitFail, nil, "plan", "--output", "json", wrong)
	if !strings.Contains(js, `"gone": [
    "rules/app.yaml",
    "rules/db.yaml",
    "rules/web.yaml"
  ]`) {
		t.Errorf("the JSON plan does not list the files gone:\n%s", js)
	}
	// The advice works: plan accepts the flag and plans the revocations.
	w.expect(exitOK, []string{"22 to revoke"}, "plan", "--allow-mass-revoke", wrong)
	// apply holds the files that are gone and applies the other one.
	w.expect(exitFail, []string{"plan held", "1 authorized"}, "apply", wrong)
	// Back in the right directory: one rule to revoke, under the floor.
	w.expect(exitOK, []string{"Rule files gone (1): rules/other.yaml", "1 to revoke"}, "plan", w.dir)
	w.expect(exitOK, []string{"1 revoked"}, "apply", w.dir)

	// Every rule of a group (at least 5) is held too, even when far
	// under half; fewer than 5 losses never trip the relative guard.
	w.write("more.yaml", portRules(app, 5000, 20))
	w.expect(exitOK, nil, "apply", w.dir)
	if err := os.Remove(filepath.Join(w.dir, "web.yaml")); err != nil {
		t.Fatal(err)
	}
	w.expect(exitFail, []string{"Rule files gone (1): rules/web.yaml", "plan held: it would revoke every rule sgrules manages in " + web}, "plan", w.dir)
	w.write("web.yaml", portRules(web, 1000, 4))
	w.expect(exitOK, []string{"4 to revoke"}, "plan", w.dir)
}
