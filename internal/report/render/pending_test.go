package render

import (
	"strings"
	"testing"

	"github.com/sgrules/sgrules/internal/reconcile"
)

// A move pending out of a target is listed with the sources not applied
// there (it keeps its previous rules), in text and in Markdown.
func TestPendingMoveIsListedNotApplied(t *testing.T) {
	msg := "pending move to 111122223333/us-east-1: invalid there: rules/mv.yaml:4:20: r: security group sg-1 does not exist"
	srcs := []reconcile.SourceResult{{Key: "rules/mv.yaml", Status: reconcile.StatusPending, Message: msg}}
	var b strings.Builder
	Sources(&b, srcs, Options{})
	if got := b.String(); !strings.Contains(got, "Sources not applied") || !strings.Contains(got, "rules/mv.yaml: pending: "+msg) {
		t.Errorf("text:\n%s", got)
	}
	if got := Summary(reconcile.Result{Sources: srcs}, false); got != "No changes. 1 move to another target pending (their rules are kept here)." {
		t.Errorf("summary: %q", got)
	}
	b.Reset()
	Markdown(&b, reconcile.Result{Sources: srcs}, MarkdownOptions{})
	if got := b.String(); !strings.Contains(got, "`rules/mv.yaml`: pending: pending move to 111122223333/us-east-1") || strings.Contains(got, "match the rule files") {
		t.Errorf("markdown:\n%s", got)
	}
}
