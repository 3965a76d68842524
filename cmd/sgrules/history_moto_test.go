package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sgrules/sgrules/internal/report"
)

// sgrules history against moto: apply a file, revoke its rule by hand,
// revert with drift --revert, then print the history by group, by the
// rule's new id and by FILE#RULE, newest first, in text and JSON.
func TestHistoryCommand(t *testing.T) {
	w := newCLIWorld(t)
	web := w.group("web")
	w.write("web.yaml", `rules:
  https:
    securityGroup: {tags: {Name: web}}
    type: ingress
    protocol: tcp
    fromPort: 443
    toPort: 443
    cidrBlocks: [10.0.0.0/8]
    description: HTTPS inside
`)
	w.expect(0, nil, "apply", w.dir)
	w.revokeByHand(web, 443)
	w.expect(0, []string{"Reverted 1 of 1 drifted rule"}, "drift", "--revert", w.dir)

	out := w.expect(0, nil, "history", web)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("history of %s:\n%s", web, out)
	}
	for i, want := range []string{
		` reverted ` + web + ` ingress tcp 443 from 10.0.0.0/8 "HTTPS inside" (sgr-`,
		` drifted  ` + web + ` ingress tcp 443 from 10.0.0.0/8 "HTTPS inside" (sgr-`,
		` created  ` + web + ` ingress tcp 443 from 10.0.0.0/8 "HTTPS inside" (sgr-`,
	} {
		if !strings.Contains(lines[i], want) || !strings.Contains(lines[i], "; rule https of rules/web.yaml") {
			t.Errorf("line %d: %s\nwant %s", i, lines[i], want)
		}
	}
	if !strings.Contains(lines[1], ": deleted, found by cli drift") {
		t.Errorf("drifted: %s", lines[1])
	}

	var entries []report.HistoryEntry
	if err := json.Unmarshal([]byte(w.expect(0, nil, "history", "--output", "json", "rules/web.yaml#https")), &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 || entries[0].Event != "reverted" || entries[1].Change != "deleted" || entries[2].Event != "created" ||
		entries[0].RuleID == entries[2].RuleID || entries[2].File != "rules/web.yaml" {
		t.Fatalf("history of rules/web.yaml#https: %+v", entries)
	}
	// The rule's new id finds its whole history, the old id too.
	for _, id := range []string{entries[0].RuleID, entries[2].RuleID} {
		if out := w.expect(0, nil, "history", id); strings.Count(out, "\n") != 3 {
			t.Errorf("history %s:\n%s", id, out)
		}
	}
	w.expect(0, []string{"No history for sg-0000000000000dead."}, "history", "sg-0000000000000dead")
	w.expect(exitUsage, nil, "history", "web")
}
