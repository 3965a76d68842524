package reconcile_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/adapters/s3source"
	"github.com/sgrules/sgrules/internal/dev/apicount"
	"github.com/sgrules/sgrules/internal/reconcile"
)

// Sibling refresh (issue 24, under load): a run writing a group also
// applies the group's other files whose objects changed.

// siblingFile is file i of the group app: an ingress and an egress rule,
// and from version 2 one more of each.
func siblingFile(i, v int) []byte {
	b := []byte("rules:\n")
	for n := range v {
		port := 7100 + 10*i + n
		for _, dir := range []string{"ingress", "egress"} {
			b = fmt.Appendf(b, "  %s%d:\n    securityGroup: {tags: {Name: app}}\n    type: %s\n    protocol: tcp\n    fromPort: %d\n    toPort: %d\n    cidrBlocks: [10.7.%d.0/24]\n",
				dir, n, dir, port, port, i)
		}
	}
	return b
}

var siblingKeys = []string{"rules/s0.yaml", "rules/s1.yaml", "rules/s2.yaml"}

// applySiblings uploads version 1 of the first n sibling files and runs
// each one's event.
func (w *world) applySiblings(n int) {
	w.t.Helper()
	for i, k := range siblingKeys[:n] {
		w.put(k, siblingFile(i, 1))
		w.reconcile(reconcile.Request{Keys: []string{k}})
	}
}

func (w *world) mutating() int { return w.calls.Sum("EC2", apicount.IsEC2Mutating) }

func (w *world) record(key string) reconcile.SourceRecord {
	w.t.Helper()
	rec, ok, err := ddbledger.New(dynamodb.NewFromConfig(w.cfg), "ledger").GetSource(context.Background(), key)
	if err != nil || !ok {
		w.t.Fatalf("record of %s: %v (found %v)", key, err, ok)
	}
	return rec
}

// Three files of one group changed, the run of one of them applies all
// three: one authorize per direction; the runs of the other two change
// nothing, and the ledger records each file as its own run would.
func TestRunRefreshesChangedSiblingsOfItsGroup(t *testing.T) {
	w := newWorld(t)
	base := w.baseline()
	w.applySiblings(len(siblingKeys))
	files := map[string][]byte{}
	for i, k := range siblingKeys {
		files[k] = siblingFile(i, 2)
		w.put(k, files[k])
	}

	w.calls.Reset()
	res := w.reconcile(reconcile.Request{Keys: siblingKeys[:1]})
	if got, want := w.rules(), union(base, w.expected(files)); !slices.Equal(got, want) {
		t.Fatalf("after the run of %s:\n%s", siblingKeys[0], diffLines(got, want))
	}
	if in, eg := w.count("EC2.AuthorizeSecurityGroupIngress"), w.count("EC2.AuthorizeSecurityGroupEgress"); in != 1 || eg != 1 || w.mutating() != 2 {
		t.Errorf("the run of one file made %d ingress and %d egress authorizations (%d mutating calls), want 1 and 1 (2): %s", in, eg, w.mutating(), w.calls)
	}
	for _, s := range res.Sources {
		if s.Status != reconcile.StatusApplied {
			t.Errorf("%s: %s %s", s.Key, s.Status, s.Message)
		}
	}
	for _, k := range siblingKeys {
		if rec := w.record(k); rec.Status != reconcile.StatusApplied || len(rec.Permissions) != 4 {
			t.Errorf("record of %s: %s with %d permissions, want applied with 4", k, rec.Status, len(rec.Permissions))
		}
	}

	for _, k := range siblingKeys[1:] {
		w.calls.Reset()
		w.reconcile(reconcile.Request{Keys: []string{k}})
		if n := w.mutating(); n != 0 {
			t.Errorf("the run of %s after its sibling's made %d mutating calls, want 0: %s", k, n, w.calls)
		}
		if n := w.count("S3.GetObject"); n != 1 {
			t.Errorf("the run of %s read %d objects, want 1 (its own; it writes nothing, so it checks no sibling)", k, n)
		}
	}
}

// A sibling whose new content is invalid is not refreshed: it keeps its
// record and its rules; its own run records it invalid.
func TestInvalidSiblingIsLeftToItsOwnRun(t *testing.T) {
	w := newWorld(t)
	base := w.baseline()
	w.applySiblings(2)
	before := w.record(siblingKeys[1])
	w.put(siblingKeys[0], siblingFile(0, 2))
	w.put(siblingKeys[1], []byte("rules:\n  bad:\n    type: sideways\n"))

	res := w.reconcile(reconcile.Request{Keys: siblingKeys[:1]})
	for _, s := range res.Sources {
		if s.Key != siblingKeys[0] {
			t.Errorf("the run of %s reports %s (%s): an invalid sibling is not part of it", siblingKeys[0], s.Key, s.Status)
		}
	}
	want := union(base, w.expected(map[string][]byte{siblingKeys[0]: siblingFile(0, 2), siblingKeys[1]: siblingFile(1, 1)}))
	if got := w.rules(); !slices.Equal(got, want) {
		t.Fatalf("after the run of %s:\n%s", siblingKeys[0], diffLines(got, want))
	}
	if rec := w.record(siblingKeys[1]); rec.Status != reconcile.StatusApplied || rec.ETag != before.ETag || rec.Version != before.Version {
		t.Errorf("record of the invalid sibling: %s, ETag %s version %d; want it untouched (applied, %s, %d)", rec.Status, rec.ETag, rec.Version, before.ETag, before.Version)
	}

	res = w.reconcile(reconcile.Request{Keys: siblingKeys[1:2]})
	if s := res.Sources[0]; s.Status != reconcile.StatusInvalid {
		t.Errorf("its own run: %s, want invalid", s.Status)
	}
}

// A sibling's own run recording newer content between this run's check of
// it and its leases: this run starts over rather than put the sibling's
// older content back (no rule of the newer one revoked on the way).
func TestSiblingRecordedAnewUnderTheLeasesIsNotPutBack(t *testing.T) {
	w := newWorld(t)
	base := w.baseline()
	w.applySiblings(2)
	w.put(siblingKeys[0], siblingFile(0, 2))
	w.put(siblingKeys[1], siblingFile(1, 2))
	led := &racingLedger{Ledger: ddbledger.New(dynamodb.NewFromConfig(w.cfg), "ledger")}
	led.hook = func() {
		// s1 moves on to version 3 (one more rule each way) and its own
		// run applies it, after this run read s1 at version 2.
		w.put(siblingKeys[1], siblingFile(1, 3))
		w.reconcile(reconcile.Request{Keys: siblingKeys[1:2]})
	}
	eng, err := reconcile.New(reconcile.Config{Source: s3source.New(w.s3, w.bucket, "rules/"), Groups: ec2sg.New(w.ec2), Ledger: led, LedgerID: "ledger"})
	if err != nil {
		t.Fatal(err)
	}
	w.calls.Reset()
	if _, err := eng.Reconcile(context.Background(), reconcile.Request{Keys: siblingKeys[:1]}); err != nil {
		t.Fatal(err)
	}
	if n := w.count("EC2.RevokeSecurityGroupIngress") + w.count("EC2.RevokeSecurityGroupEgress"); n != 0 {
		t.Errorf("%d revoke calls: the sibling's older content was put back over its newer (%s)", n, w.calls)
	}
	want := union(base, w.expected(map[string][]byte{siblingKeys[0]: siblingFile(0, 2), siblingKeys[1]: siblingFile(1, 3)}))
	if got := w.rules(); !slices.Equal(got, want) {
		t.Fatalf("after the runs:\n%s", diffLines(got, want))
	}
	if rec := w.record(siblingKeys[1]); len(rec.Permissions) != 6 {
		t.Errorf("record of %s: %d permissions, want its version 3's 6", siblingKeys[1], len(rec.Permissions))
	}
}

// writeRacingLedger runs hook once, just before the first commit.
type writeRacingLedger struct {
	reconcile.Ledger
	hook func()
}

func (l *writeRacingLedger) Write(ctx context.Context, c reconcile.Commit) error {
	if h := l.hook; h != nil {
		l.hook = nil
		h()
	}
	return l.Ledger.Write(ctx, c)
}

// A run whose commit loses a race after it applied a sibling loads that
// sibling again in its next attempt, whatever its record says: here the
// sibling went back to the content its record held (its own run recorded
// it without a change to make) while this run removed two of its rules;
// the next attempt puts them back, as the sibling's own run would.
func TestSiblingAppliedWithoutCommitIsLoadedAgain(t *testing.T) {
	w := newWorld(t)
	base := w.baseline()
	w.put(siblingKeys[0], siblingFile(0, 1))
	w.put(siblingKeys[1], siblingFile(1, 2))
	for _, k := range siblingKeys[:2] {
		w.reconcile(reconcile.Request{Keys: []string{k}})
	}
	w.put(siblingKeys[0], siblingFile(0, 2))
	w.put(siblingKeys[1], siblingFile(1, 1))
	inner := ddbledger.New(dynamodb.NewFromConfig(w.cfg), "ledger")
	led := &writeRacingLedger{Ledger: inner}
	led.hook = func() {
		w.put(siblingKeys[1], siblingFile(1, 2))
		obj, err := s3source.New(w.s3, w.bucket, "rules/").Get(context.Background(), siblingKeys[1])
		if err != nil {
			t.Fatal(err)
		}
		rec := w.record(siblingKeys[1])
		rec.ETag, rec.VersionID = obj.ETag, obj.VersionID
		if err := inner.Write(context.Background(), reconcile.Commit{Sources: []reconcile.SourceRecord{rec}}); err != nil {
			t.Fatal(err)
		}
	}
	eng, err := reconcile.New(reconcile.Config{Source: s3source.New(w.s3, w.bucket, "rules/"), Groups: ec2sg.New(w.ec2), Ledger: led, LedgerID: "ledger"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Reconcile(context.Background(), reconcile.Request{Keys: siblingKeys[:1]}); err != nil {
		t.Fatal(err)
	}
	want := union(base, w.expected(map[string][]byte{siblingKeys[0]: siblingFile(0, 2), siblingKeys[1]: siblingFile(1, 2)}))
	if got := w.rules(); !slices.Equal(got, want) {
		t.Fatalf("after the run:\n%s", diffLines(got, want))
	}
}
