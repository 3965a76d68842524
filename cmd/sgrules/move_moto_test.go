package main

import (
	"strings"
	"testing"

	"github.com/sgrules/sgrules/internal/testutil/motoserver"
)

// A file that moves to another region is revoked in its old one: a move,
// not a mass revoke, so the relative guard does not hold it (the old
// target loses every rule it had) and the file is not named as gone.
func TestMoveIsNotAMassRevoke(t *testing.T) {
	w := newCLIWorld(t)
	home := w.group("web")
	ecfg := w.cfg.Copy()
	ecfg.Region = "eu-west-1"
	eweb := motoserver.CreateGroup(t, ecfg, motoserver.CreateVPC(t, ecfg), "web", map[string]string{"Name": "web-eu"})
	w.write("web.yaml", portRules(home, 1000, 6))
	w.expect(exitOK, []string{"6 authorized"}, "apply", w.dir)
	w.write("web.yaml", "region: eu-west-1\n"+portRules(eweb, 1000, 6))
	out := w.expect(exitOK, []string{"6 revoked", "6 authorized"}, "apply", w.dir)
	if strings.Contains(out, "held") || strings.Contains(out, "Rule files gone") {
		t.Errorf("a move was held or called gone:\n%s", out)
	}
}
