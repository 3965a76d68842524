package chaos_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"sort"
	"strings"
	"testing"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/testutil/faultproxy"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
	"github.com/sgrules/sgrules/pkg/rules"
)

// isCommitChunk accepts the TransactWriteItems calls of ledger commits
// (source and permission items), not those of leases.
func isCommitChunk(c faultproxy.Call) bool {
	return c.Service == faultproxy.DynamoDB && c.Action == "TransactWriteItems" &&
		(bytes.Contains(c.Body, []byte(`"source#`)) || bytes.Contains(c.Body, []byte(`"perm#`)))
}

// bigRules returns n rules with one permission each (tcp port from+i,
// peer cidr), spread evenly over the groups and both directions, so that
// a file of them commits in several TransactWriteItems chunks while every
// group and direction stays far under moto's 60 rules.
func bigRules(n, from int, cidr string) map[string]string {
	out := make(map[string]string, n)
	for i := 0; i < n; i++ {
		dir := "ingress"
		if (i/groupsPerWorld)%2 == 1 {
			dir = "egress"
		}
		out[fmt.Sprintf("b%d", from+i)] = fmt.Sprintf("    securityGroup: {tags: {Name: g%d}}\n    type: %s\n    protocol: tcp\n    fromPort: %d\n    toPort: %d\n    cidrBlocks: [%s]\n    description: \"bulk %d\"\n",
			i%groupsPerWorld, dir, from+i, from+i, cidr, i)
	}
	return out
}

// ledgerReader is what the checks read of a ledger (a *ddbledger.Ledger,
// or one target's scope of it).
type ledgerReader interface {
	AllPermissions(ctx context.Context) ([]reconcile.OwnedPermission, error)
	ListSources(ctx context.Context) ([]reconcile.SourceRecord, error)
}

// ledgerViolations compares a converged ledger with what the files
// declare: every owned permission is declared, with its EC2 rule id
// (ids) and exactly the declaring owners; no owner is a source with
// neither a record nor a file (a ghost left by a commit cut short); every
// declared permission is owned; there is one source record per file,
// with the status status gives it (applied for the others).
func ledgerViolations(ctx context.Context, led ledgerReader, d declared, files map[string]string, status map[string]reconcile.Status, ids map[rules.Key]string) ([]string, error) {
	owned, err := led.AllPermissions(ctx)
	if err != nil {
		return nil, err
	}
	recs, err := led.ListSources(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	hasRec := map[string]bool{}
	for _, r := range recs {
		hasRec[r.Key] = true
		_, isFile := files[r.Key]
		want := reconcile.StatusApplied
		if st, ok := status[r.Key]; ok {
			want = st
		}
		switch {
		case !isFile:
			out = append(out, fmt.Sprintf("ledger keeps a source record for %s, which is not a file (status %s)", r.Key, r.Status))
		case r.Status != want:
			out = append(out, fmt.Sprintf("source record %s: status %s, want %s (%s %v)", r.Key, r.Status, want, r.Message, r.Diagnostics))
		}
		if n := len(r.Diagnostics); n > reconcile.MaxStoredDiagnostics+1 {
			out = append(out, fmt.Sprintf("source record %s stores %d diagnostics (cap %d + 1)", r.Key, n, reconcile.MaxStoredDiagnostics))
		}
	}
	for k := range files {
		if !hasRec[k] {
			out = append(out, fmt.Sprintf("no source record for file %s", k))
		}
	}
	seen := map[rules.Key]bool{}
	for _, o := range owned {
		seen[o.Key] = true
		want, ok := d[o.Key]
		if !ok {
			out = append(out, fmt.Sprintf("ledger owns %s, which no file declares (owners %v)", o.Key, ownerNames(o.Owners)))
		} else if o.RuleID != ids[o.Key] {
			out = append(out, fmt.Sprintf("ledger records rule %s for %s, EC2 has %q", o.RuleID, o.Key, ids[o.Key]))
		}
		got := map[string]string{}
		for owner, desc := range o.Owners {
			got[owner.String()] = desc
			if _, isFile := files[owner.Source]; !isFile && !hasRec[owner.Source] {
				out = append(out, fmt.Sprintf("ledger permission %s names owner %s, whose source has neither a record nor a file", o.Key, owner))
			}
		}
		if ok && !maps.Equal(got, want) {
			out = append(out, fmt.Sprintf("ledger owners of %s: %v, declared by %v", o.Key, got, want))
		}
	}
	for k := range d {
		if !seen[k] {
			out = append(out, fmt.Sprintf("ledger does not own declared %s", k))
		}
	}
	return out, nil
}

func ownerNames(m map[rules.Owner]string) []string {
	out := make([]string, 0, len(m))
	for o := range m {
		out = append(out, o.String())
	}
	sort.Strings(out)
	return out
}

// ec2Violations compares EC2 with the declared permissions (winning
// descriptions) plus the rules that must stay as they are.
func ec2Violations(actual []reconcile.ActualRule, d declared, keep []reconcile.ActualRule) []string {
	var want []string
	for k := range d {
		want = append(want, k.String()+" "+d.description(k))
	}
	for _, r := range keep {
		want = append(want, r.Key.String()+" "+r.Description)
	}
	sort.Strings(want)
	got := lines(actual)
	if strings.Join(got, "\n") == strings.Join(want, "\n") {
		return nil
	}
	return []string{"EC2 differs from the files (+ unexpected, - missing):\n" + diffLines(got, want)}
}

// TestCommitCut cuts the ledger commit of a file of 101 permissions (102
// items: two TransactWriteItems chunks, the second holding the last
// permission and, on delete, the source record's deletion) before each
// chunk, and right after the first (a crash: leases left behind), when
// the file is created and when it is deleted; the file's event is not
// delivered again. One complete sweep without faults must then converge: EC2 is
// exactly the files' rules, the ledger owns exactly them with their
// declaring owners (no ghost owner keeps a rule alive or wins a
// description conflict), one record per file, and a further sweep writes
// nothing.
func TestCommitCut(t *testing.T) {
	srv := motoserver.Shared(t)
	p := faultproxy.Start(t, srv.URL, 1)
	const big, small = "rules/big.yaml", "rules/small.yaml"
	bulk := file{rules: bigRules(101, 20000, "10.200.0.0/16")}
	// small declares one of big's permissions with another description:
	// big's owner sorts first and wins while big declares it.
	shared := strings.Replace(bulk.rules["b20000"], `"bulk 0"`, `"small says"`, 1)
	smallBody := file{rules: map[string]string{"s1": shared}}.render()

	type tc struct {
		op   string // the commit cut: "create" or "delete" big
		mode faultproxy.CutMode
		at   int  // the chunk cut
		keep bool // create: big stays (else it is deleted, event lost)
	}
	cases := []tc{
		{"create", faultproxy.CutBefore, 2, true}, // record and 99 permissions written; the file stays
		{"create", faultproxy.CutBefore, 1, false},
		{"create", faultproxy.CutBefore, 2, false},
		{"create", faultproxy.CutAfter, 1, false},
		{"delete", faultproxy.CutBefore, 1, false},
		{"delete", faultproxy.CutBefore, 2, false}, // 99 deleted, the record and one permission left
		{"delete", faultproxy.CutAfter, 1, false},
	}
	for _, c := range cases {
		name := fmt.Sprintf("%s/cut-%s-chunk-%d", c.op, c.mode, c.at)
		if c.op == "create" && c.keep {
			name += "/kept"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			w := newWorld(t, srv, groupsPerWorld)
			p.Reset()
			eng := w.engine(p, "cut", nil)
			run := func(req reconcile.Request) error {
				_, err := eng.Reconcile(ctx, req)
				return err
			}
			base := w.rules()
			files := map[string]string{small: smallBody, big: bulk.render()}
			w.put(small, smallBody)
			w.put(big, files[big])
			if c.op == "create" {
				if err := run(reconcile.Request{Keys: []string{small}}); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := run(reconcile.Request{Keys: []string{small, big}}); err != nil {
					t.Fatal(err)
				}
				w.remove(big)
				delete(files, big)
			}
			p.Set(faultproxy.Faults{CutAt: c.at, CutMode: c.mode, CutCalls: isCommitChunk})
			if err := run(reconcile.Request{Keys: []string{big}}); err == nil {
				t.Fatalf("the run of %s succeeded through the cut", big)
			}
			if st := p.Stats(); st.Injected() == 0 {
				t.Fatalf("no cut: %+v", st)
			}
			p.Reset()
			if c.op == "create" && !c.keep {
				w.remove(big)
				delete(files, big)
			}

			if err := run(reconcile.Request{All: true, Reason: "sweep"}); err != nil {
				t.Fatalf("sweep: %v", err)
			}
			actual := w.rules()
			d := w.desire(files)
			bad := ec2Violations(actual, d, base)
			ids := map[rules.Key]string{}
			for _, a := range actual {
				ids[a.Key] = a.RuleID
			}
			lv, err := ledgerViolations(ctx, w.ledger, d, files, nil, ids)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range append(bad, lv...) {
				t.Error(v)
			}
			before := p.Stats().Mutating
			if err := run(reconcile.Request{All: true, Reason: "idle"}); err != nil {
				t.Fatal(err)
			}
			if n := p.Stats().Mutating - before; n != 0 {
				t.Errorf("a sweep after convergence made %d mutating calls", n)
			}
		})
	}
}
