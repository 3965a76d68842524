package ddbledger_test

import (
	"context"
	"errors"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/dev/apicount"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/testutil/legacyledger"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
	"github.com/sgrules/sgrules/pkg/rules"
)

// ledgerState is everything a target's ledger reads.
type ledgerState struct {
	Sources []reconcile.SourceRecord
	Perms   []reconcile.OwnedPermission
	Intents []reconcile.Intent
}

func readState(t *testing.T, led reconcile.Ledger) ledgerState {
	t.Helper()
	ctx := context.Background()
	var st ledgerState
	var err error
	if st.Sources, err = led.ListSources(ctx); err != nil {
		t.Fatal(err)
	}
	if st.Perms, err = led.AllPermissions(ctx); err != nil {
		t.Fatal(err)
	}
	if st.Intents, err = led.Intents(ctx, nil); err != nil {
		t.Fatal(err)
	}
	return st
}

var upgradeTargets = []rules.Target{home, targetA, targetB}

// fillLedger writes, through the ledger, sources (one of them sharing a
// permission with another), permissions, intents and a lease in targets
// home, A and B; it returns what each target reads.
func fillLedger(t *testing.T, l *ddbledger.Ledger) map[rules.Target]ledgerState {
	t.Helper()
	ctx := context.Background()
	at := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	for i, tgt := range upgradeTargets {
		led := l.For(tgt)
		writeTarget(t, led, "n"+tgt.Region)
		k := key("sg-"+tgt.Region, int32(8000+i), "10.1.0.0/16")
		o1, o2 := rules.Owner{Source: "b.yaml", Rule: "r"}, rules.Owner{Source: "c.yaml", Rule: "s"}
		if err := led.Write(ctx, reconcile.Commit{
			Sources: []reconcile.SourceRecord{
				{Key: "b.yaml", Kind: reconcile.KindFile, ETag: "eb", Status: reconcile.StatusApplied, Permissions: []rules.Permission{{Key: k, Owner: o1}}},
				{Key: "c.yaml", Kind: reconcile.KindFile, ETag: "ec", Status: reconcile.StatusInvalid, Diagnostics: []string{"c.yaml:1:1: x: bad"}},
			},
			Put: []reconcile.OwnedPermission{{Key: k, RuleID: "sgr-b", Owners: map[rules.Owner]string{o1: "", o2: "d"}}},
		}); err != nil {
			t.Fatal(err)
		}
		// A second version of b.yaml: versions must survive the upgrade.
		rec, _, err := led.GetSource(ctx, "b.yaml")
		if err != nil {
			t.Fatal(err)
		}
		rec.ETag = "eb2"
		if err := led.Write(ctx, reconcile.Commit{Sources: []reconcile.SourceRecord{rec}}); err != nil {
			t.Fatal(err)
		}
		if err := led.RecordIntents(ctx, []reconcile.Intent{{Key: key(sameGroup, 9, "10.9.0.0/16"), At: at}}); err != nil {
			t.Fatal(err)
		}
	}
	out := map[rules.Target]ledgerState{}
	for _, tgt := range upgradeTargets {
		out[tgt] = readState(t, l.For(tgt))
	}
	return out
}

// oldKeys are the keys of the items of layout 1 in the table.
func oldKeys(t *testing.T, client *dynamodb.Client) []string {
	t.Helper()
	var out []string
	for k := range scanKeys(t, client) {
		for _, p := range []string{"source#", "group#", "lease#", "intent#", "target#"} {
			if strings.HasPrefix(k, p) {
				out = append(out, k)
			}
		}
	}
	return out
}

// crashAPI fails every write after the first n (a crash of the upgrader).
type crashAPI struct {
	*dynamodb.Client
	mu     sync.Mutex
	writes int
	n      int
}

var errCrash = errors.New("cut")

func (c *crashAPI) cut() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	return c.writes > c.n
}

func (c *crashAPI) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if c.cut() {
		return nil, errCrash
	}
	return c.Client.PutItem(ctx, in, o...)
}

func (c *crashAPI) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	if c.cut() {
		return nil, errCrash
	}
	return c.Client.DeleteItem(ctx, in, o...)
}

// TestUpgradeFromLayout1: a table in the layout written before targets
// had partitions (legacyledger: today's exact item shapes, and items
// written by hand in them) is read, after the upgrade on first use,
// exactly as it was written: the same sources, versions, owners, rule ids,
// intents, a held lease still held; a stale writer still conflicts; no
// item is left in the old layout, and nothing is scanned afterwards. An
// upgrade cut at any point is completed by the next one, and two
// concurrent upgrades agree.
func TestUpgradeFromLayout1(t *testing.T) {
	srv := motoserver.Shared(t)
	srv.Reset(t)
	cfg := srv.Config(t)
	motoserver.CreateTable(t, cfg, table)
	client := dynamodb.NewFromConfig(cfg)
	ctx := context.Background()
	want := fillLedger(t, ddbledger.New(client, table, ddbledger.WithHome(home)))
	unlock, err := ddbledger.New(client, table, ddbledger.WithHome(home)).For(targetA).Lock(ctx, []string{sameGroup}, "old-run", 10*time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	_ = unlock // held by a run of the earlier version

	toLayout1 := func(t *testing.T) {
		t.Helper()
		if n, err := legacyledger.Rewrite(ctx, client, table); err != nil || n < 19 {
			t.Fatalf("rewrite to layout 1: %d items, %v", n, err)
		}
		// Items written by hand in today's shapes, as the earlier
		// version wrote them (not through legacyledger).
		s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
		for _, item := range []map[string]types.AttributeValue{
			{"pk": s("source#hand.yaml"), "sk": s("source"), "kind": s("file"), "etag": s("eh"), "status": s("applied"),
				"ver": &types.AttributeValueMemberN{Value: "7"}},
			{"pk": s("target#444455556666#eu-west-1#intent#sg-hand"), "sk": s(key("sg-hand", 1, "10.2.0.0/16").String()),
				"at": s("2026-12-06T20:00:00Z"), "ttl": &types.AttributeValueMemberN{Value: "1900000000"}},
		} {
			if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
				t.Fatal(err)
			}
		}
		for _, k := range []string{"source#" + sameSource + " source", "target#111122223333#eu-west-1#lease#" + sameGroup + " lease",
			"target#444455556666#eu-west-1#group#sg-eu-west-1 perm#" + key("sg-eu-west-1", 8002, "10.1.0.0/16").String()} {
			if !scanKeys(t, client)[k] {
				t.Fatalf("layout 1 has no item %s", k)
			}
		}
	}
	withHand := func() map[rules.Target]ledgerState {
		w := map[rules.Target]ledgerState{}
		for tgt, st := range want {
			st.Sources = append([]reconcile.SourceRecord(nil), st.Sources...)
			st.Intents = append([]reconcile.Intent(nil), st.Intents...)
			switch tgt {
			case home:
				st.Sources = append(st.Sources, reconcile.SourceRecord{Key: "hand.yaml", Kind: reconcile.KindFile, ETag: "eh", Status: reconcile.StatusApplied, Version: 7})
			case targetB:
				st.Intents = append(st.Intents, reconcile.Intent{Key: key("sg-hand", 1, "10.2.0.0/16"), At: time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)})
			}
			sort.Slice(st.Sources, func(i, j int) bool { return st.Sources[i].Key < st.Sources[j].Key })
			sort.Slice(st.Intents, func(i, j int) bool { return st.Intents[i].Key.Less(st.Intents[j].Key) })
			w[tgt] = st
		}
		return w
	}()
	check := func(t *testing.T, l *ddbledger.Ledger) {
		t.Helper()
		for _, tgt := range upgradeTargets {
			if got := readState(t, l.For(tgt)); !reflect.DeepEqual(got, withHand[tgt]) {
				t.Errorf("%s after the upgrade:\n%+v\nwant\n%+v", tgt, got, withHand[tgt])
			}
		}
		all, err := l.ListAllSources(ctx)
		if err != nil || len(all) != 3 || !reflect.DeepEqual(all[targetA], withHand[targetA].Sources) {
			t.Errorf("ListAllSources after the upgrade = %+v, %v", all, err)
		}
		if old := oldKeys(t, client); len(old) > 0 {
			t.Errorf("items left in layout 1: %v", old)
		}
		if _, err := l.For(targetA).Lock(ctx, []string{sameGroup}, "new-run", time.Minute, 0); !errors.Is(err, reconcile.ErrLeaseHeld) {
			t.Errorf("the earlier version's lease is not held after the upgrade: %v", err)
		}
	}

	t.Run("first use", func(t *testing.T) {
		toLayout1(t)
		counted, calls := cfg, &apicount.Counter{}
		calls.Attach(&counted)
		l := ddbledger.New(dynamodb.NewFromConfig(counted), table, ddbledger.WithHome(home))
		check(t, l)
		// Afterwards: no Scan on any path; versions go on; a stale
		// writer conflicts.
		calls.Reset()
		led := l.For(targetB)
		readState(t, led)
		rec, _, err := led.GetSource(ctx, "b.yaml")
		if err != nil || rec.Version != 2 {
			t.Fatalf("b.yaml = %+v, %v; want version 2", rec, err)
		}
		if err := led.Write(ctx, reconcile.Commit{Sources: []reconcile.SourceRecord{rec}}); err != nil {
			t.Fatalf("write at the version read: %v", err)
		}
		if err := led.Write(ctx, reconcile.Commit{Sources: []reconcile.SourceRecord{rec}}); !errors.Is(err, reconcile.ErrConflict) {
			t.Fatalf("a stale writer: %v, want ErrConflict", err)
		}
		stale := withHand[targetB].Perms[0]
		stale.Version = 0
		if err := led.Write(ctx, reconcile.Commit{Put: []reconcile.OwnedPermission{stale}}); !errors.Is(err, reconcile.ErrConflict) {
			t.Fatalf("a second owner record of a moved permission: %v, want ErrConflict", err)
		}
		if n := calls.Sum("DynamoDB", func(op string) bool { return op == "Scan" }); n != 0 {
			t.Errorf("%d Scans after the upgrade (%s)", n, calls)
		}
		// What the next subtests start from: b.yaml at version 3.
		st := withHand[targetB]
		st.Sources[0].Version = 3
		withHand[targetB] = st
	})

	for _, n := range []int{0, 1, 5, 17, 30} {
		t.Run("cut after "+strconv.Itoa(n)+" writes", func(t *testing.T) {
			toLayout1(t)
			cut := &crashAPI{Client: client, n: n}
			_, err := ddbledger.New(cut, table, ddbledger.WithHome(home)).ListSources(ctx)
			if !errors.Is(err, errCrash) {
				t.Fatalf("the cut upgrade: %v", err)
			}
			// The next process resumes once the cut one's lease expired.
			l := ddbledger.New(client, table, ddbledger.WithHome(home))
			ddbledger.SetClock(l, func() time.Time { return time.Now().Add(5 * time.Minute) })
			check(t, l)
		})
	}

	t.Run("concurrent", func(t *testing.T) {
		toLayout1(t)
		var wg sync.WaitGroup
		res := make([]ddbledger.UpgradeResult, 3)
		errs := make([]error, 3)
		for i := range res {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[i], errs[i] = ddbledger.New(client, table, ddbledger.WithHome(home)).Upgrade(ctx)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		already := 0
		for _, r := range res {
			if r.Already {
				already++
			}
		}
		if already != 2 {
			t.Errorf("upgrades = %+v, want one to do it and two to find it done", res)
		}
		check(t, ddbledger.New(client, table, ddbledger.WithHome(home)))
	})
}

// TestWithoutUpgrade: a ledger that may not upgrade (the flow-log
// function's role) fails with ErrNotUpgraded on a table not yet upgraded,
// and works once another process has upgraded it.
func TestWithoutUpgrade(t *testing.T) {
	_, _, client := setup(t)
	ctx := context.Background()
	l := ddbledger.New(client, table, ddbledger.WithoutUpgrade())
	if _, err := l.ListSources(ctx); !errors.Is(err, ddbledger.ErrNotUpgraded) {
		t.Fatalf("on a table not upgraded: %v, want ErrNotUpgraded", err)
	}
	if _, err := ddbledger.New(client, table).Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := l.ListSources(ctx); err != nil {
		t.Fatalf("after the upgrade: %v", err)
	}
}

// cutLayoutAPI fails the write that records the layout: the upgrader
// crashes just before it.
type cutLayoutAPI struct{ *dynamodb.Client }

func (c cutLayoutAPI) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if strings.Contains(aws.ToString(in.UpdateExpression), "layout =") {
		return nil, errCrash
	}
	return c.Client.UpdateItem(ctx, in, o...)
}

// TestUpgradeOfNewTableNeedsNoWait: a brand-new table (nothing in it to
// move) is upgraded without waiting for any lease: after a first run
// crashed before recording the layout, and with the upgrade lease of an
// upgrader that died on it still unexpired, the next run (which waits
// for no other upgrader: WithUpgradeWait(0)) records the layout and goes
// on. So does a table holding items, all in the current layout; one with
// an item written the old way still waits for the holder of the lease.
func TestUpgradeOfNewTableNeedsNoWait(t *testing.T) {
	ctx := context.Background()
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	deadLease := map[string]types.AttributeValue{"pk": s("meta#layout"), "sk": s("meta"), "holder": s("upgrade-dead"),
		"expiresAt": &types.AttributeValueMemberN{Value: strconv.FormatInt(time.Now().Add(2*time.Minute).UnixMilli(), 10)}}
	next := func(client *dynamodb.Client) error {
		_, err := ddbledger.New(client, table, ddbledger.WithUpgradeWait(0)).ListSources(ctx)
		return err
	}
	t.Run("crash before recording the layout", func(t *testing.T) {
		_, _, client := setup(t)
		if _, err := ddbledger.New(cutLayoutAPI{client}, table).ListSources(ctx); !errors.Is(err, errCrash) {
			t.Fatalf("the cut upgrade: %v", err)
		}
		if err := next(client); err != nil {
			t.Fatalf("the next run on the new table: %v", err)
		}
	})
	t.Run("dead upgrader's lease", func(t *testing.T) {
		_, _, client := setup(t)
		if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: deadLease}); err != nil {
			t.Fatal(err)
		}
		if err := next(client); err != nil {
			t.Fatalf("the next run on the new table: %v", err)
		}
		if err := next(client); err != nil {
			t.Fatalf("a run after it: %v", err)
		}
	})
	for name, c := range map[string]struct {
		item map[string]types.AttributeValue
		wait bool
	}{
		"layout 1":      {item: map[string]types.AttributeValue{"pk": s("source#a.yaml"), "sk": s("source"), "kind": s("file"), "ver": &types.AttributeValueMemberN{Value: "1"}}, wait: true},
		"already moved": {item: map[string]types.AttributeValue{"pk": s("t#home"), "sk": s("source#a.yaml"), "kind": s("file"), "ver": &types.AttributeValueMemberN{Value: "1"}}},
	} {
		t.Run("table with an item, "+name, func(t *testing.T) {
			_, _, client := setup(t)
			for _, it := range []map[string]types.AttributeValue{deadLease, c.item} {
				if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: it}); err != nil {
					t.Fatal(err)
				}
			}
			err := next(client)
			switch {
			case c.wait && !errors.Is(err, ddbledger.ErrUpgradeInProgress):
				t.Fatalf("the next run: %v, want ErrUpgradeInProgress (the holder of the lease may be moving items)", err)
			case !c.wait && err != nil:
				t.Fatalf("the next run: %v, want none (nothing is written the old way: nothing to move)", err)
			}
		})
	}
}

// cutRenewalAPI fails every write of the upgrade lease after the first:
// the upgrader takes the lease, scans a page and dies before renewing it.
type cutRenewalAPI struct {
	*dynamodb.Client
	mu    sync.Mutex
	takes int
}

func (c *cutRenewalAPI) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if strings.HasPrefix(aws.ToString(in.UpdateExpression), "SET holder") {
		c.mu.Lock()
		c.takes++
		n := c.takes
		c.mu.Unlock()
		if n > 1 {
			return nil, errCrash
		}
	}
	return c.Client.UpdateItem(ctx, in, o...)
}

// TestUpgradeAfterALossWithNothingToMoveNeedsNoWait: every item of the
// table is deleted (the layout item too) while a process that checked the
// layout before keeps writing in the current layout; a new process
// upgrades, takes the upgrade lease and dies holding it (chaos seed
// 20263419). The table holds nothing written the old way: the next run
// (which waits for no other upgrader: WithUpgradeWait(0)) records the
// layout and reads what the first process wrote, with the lease still
// unexpired.
func TestUpgradeAfterALossWithNothingToMoveNeedsNoWait(t *testing.T) {
	warm, _, client := setup(t)
	ctx := context.Background()
	writeTarget(t, warm, "before")
	p := dynamodb.NewScanPaginator(client, &dynamodb.ScanInput{TableName: aws.String(table)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			if _, err := client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table),
				Key: map[string]types.AttributeValue{"pk": it["pk"], "sk": it["sk"]}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	writeTarget(t, warm, "after")
	if _, err := ddbledger.New(&cutRenewalAPI{Client: client}, table).ListSources(ctx); !errors.Is(err, errCrash) {
		t.Fatalf("the cut upgrade: %v", err)
	}
	srcs, err := ddbledger.New(client, table, ddbledger.WithUpgradeWait(0)).ListSources(ctx)
	if err != nil {
		t.Fatalf("the next run: %v", err)
	}
	if len(srcs) != 1 || srcs[0].Key != sameSource || srcs[0].ETag != "after" {
		t.Fatalf("sources = %+v, want %s as the first process wrote it after the loss", srcs, sameSource)
	}
	if res, err := ddbledger.New(client, table, ddbledger.WithUpgradeWait(0)).Upgrade(ctx); err != nil || !res.Already {
		t.Fatalf("a later upgrade = %+v, %v; want the layout already recorded", res, err)
	}
}
