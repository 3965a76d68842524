package reconcile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sgrules/sgrules/pkg/rules"
)

// fakeEC2 is an in-memory EC2 with EC2's semantics for the calls the
// engine makes: authorize is all-or-nothing and refuses duplicates, revoke
// by id refuses unknown ids, a missing group fails authorize.
type fakeEC2 struct {
	mu     sync.Mutex
	groups map[string]GroupInfo
	rules  map[string]ActualRule // by rule id
	nextID int
	calls  map[string]int
	// ops records every mutating call in order, e.g. "authorize sg-1 ingress 2".
	ops []string
	// beforeMutate, if set, runs before each mutating call; an error fails it.
	beforeMutate func(op string) error
	// quota, if set, is the most rules a group may have per direction.
	quota int
	// prefixLists are the managed prefix lists, by id.
	prefixLists map[string]PrefixListInfo
	// entries are the entries of the customer-managed prefix lists, by id.
	entries map[string][]netip.Prefix
	// prefixListErr and entriesErr, if set, fail DescribePrefixLists and
	// PrefixListEntries.
	prefixListErr, entriesErr error
}

// testLedgerID is the LedgerID of the engines under test.
const testLedgerID = "sgrules-test"

func newFakeEC2() *fakeEC2 {
	return &fakeEC2{groups: map[string]GroupInfo{}, rules: map[string]ActualRule{}, calls: map[string]int{}}
}

func (f *fakeEC2) addGroup(id, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.groups[id] = GroupInfo{GroupID: id, VPCID: "vpc-11111111", Name: name, Tags: map[string]string{"Name": name}}
}

// addRule adds a rule as if by hand; returns its id.
func (f *fakeEC2) addRule(k rules.Key, desc string, tags map[string]string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.create(k, desc, tags)
}

func (f *fakeEC2) create(k rules.Key, desc string, tags map[string]string) string {
	f.nextID++
	id := fmt.Sprintf("sgr-%017x", f.nextID)
	f.rules[id] = ActualRule{Key: k, RuleID: id, Description: desc, Tags: maps.Clone(tags)}
	return id
}

func (f *fakeEC2) mutate(op string) error {
	f.calls[strings.Fields(op)[0]]++
	f.ops = append(f.ops, op)
	if f.beforeMutate != nil {
		return f.beforeMutate(op)
	}
	return nil
}

func (f *fakeEC2) mutating() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls["authorize"] + f.calls["revoke"] + f.calls["update"]
}

func (f *fakeEC2) snapshot() map[rules.Key]ActualRule {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[rules.Key]ActualRule{}
	for _, r := range f.rules {
		out[r.Key] = r
	}
	return out
}

func (f *fakeEC2) ResolveGroups(_ context.Context, refs []rules.GroupRef) (map[string][]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["describe-groups"]++
	out := map[string][]string{}
	for _, r := range refs {
		var ids []string
		for _, g := range f.groups {
			switch {
			case r.ID != "":
				if g.GroupID == r.ID {
					ids = append(ids, g.GroupID)
				}
			case r.Name != "":
				if g.Name == r.Name && g.VPCID == r.VPCID {
					ids = append(ids, g.GroupID)
				}
			default:
				match := true
				for k, v := range r.Tags {
					if g.Tags[k] != v {
						match = false
					}
				}
				if match {
					ids = append(ids, g.GroupID)
				}
			}
		}
		sort.Strings(ids)
		out[r.String()] = ids
	}
	return out, nil
}

func (f *fakeEC2) DescribeGroups(_ context.Context, ids []string) ([]GroupInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["describe-groups"]++
	var out []GroupInfo
	for _, id := range ids {
		if g, ok := f.groups[id]; ok {
			out = append(out, g)
		}
	}
	return out, nil
}

func (f *fakeEC2) DescribePrefixLists(_ context.Context, ids []string) ([]PrefixListInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["describe-prefix-lists"]++
	if f.prefixListErr != nil {
		return nil, f.prefixListErr
	}
	var out []PrefixListInfo
	for _, id := range ids {
		if pl, ok := f.prefixLists[id]; ok {
			out = append(out, pl)
		}
	}
	return out, nil
}

func (f *fakeEC2) PrefixListEntries(_ context.Context, id string) ([]netip.Prefix, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["prefix-list-entries"]++
	if f.entriesErr != nil {
		return nil, f.entriesErr
	}
	if _, ok := f.prefixLists[id]; !ok {
		return nil, fmt.Errorf("prefix list %s: %w", id, ErrNotFound)
	}
	return f.entries[id], nil
}

func (f *fakeEC2) DescribeRules(_ context.Context, ids []string) ([]ActualRule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["describe-rules"]++
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	var out []ActualRule
	for _, r := range f.rules {
		if want[r.Key.GroupID] {
			r.Tags = maps.Clone(r.Tags)
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].RuleID < out[j].RuleID })
	return out, nil
}

func (f *fakeEC2) DescribeManagedRules(_ context.Context, ledgerIDs ...string) ([]ActualRule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["describe-rules"]++
	var out []ActualRule
	for _, r := range f.rules {
		if v, ok := r.Tags[TagLedger]; ok && slices.Contains(ledgerIDs, v) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *fakeEC2) Authorize(_ context.Context, g string, dir rules.Direction, perms []rules.Permission, tags map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.mutate(fmt.Sprintf("authorize %s %s %d", g, dir, len(perms))); err != nil {
		return err
	}
	if _, ok := f.groups[g]; !ok {
		return fmt.Errorf("authorize %s: %w", g, ErrGroupNotFound)
	}
	have := map[rules.Key]bool{}
	for _, r := range f.rules {
		have[r.Key] = true
	}
	for _, p := range perms {
		if p.Key.GroupID != g || p.Key.Direction != dir {
			return fmt.Errorf("authorize %s %s: permission %s of another batch", g, dir, p.Key)
		}
		if have[p.Key] {
			return fmt.Errorf("authorize %s: %w", p.Key, ErrDuplicate)
		}
		if p.Key.Peer.Kind == rules.PeerGroup {
			if _, ok := f.groups[p.Key.Peer.Value]; !ok {
				return fmt.Errorf("authorize %s: peer: %w", g, ErrGroupNotFound)
			}
		}
	}
	if f.quota > 0 {
		n := len(perms)
		for _, r := range f.rules {
			if r.Key.GroupID == g && r.Key.Direction == dir {
				n++
			}
		}
		if n > f.quota {
			return fmt.Errorf("authorize %s: %w", g, ErrRulesLimit)
		}
	}
	for _, p := range perms {
		f.create(p.Key, p.Description, tags)
	}
	return nil
}

func (f *fakeEC2) Revoke(_ context.Context, g string, dir rules.Direction, ids []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.mutate(fmt.Sprintf("revoke %s %s %d", g, dir, len(ids))); err != nil {
		return err
	}
	if _, ok := f.groups[g]; !ok {
		return nil
	}
	for _, id := range ids {
		r, ok := f.rules[id]
		if !ok || r.Key.GroupID != g || r.Key.Direction != dir {
			return fmt.Errorf("revoke %s: %w", id, ErrNotFound)
		}
	}
	for _, id := range ids {
		delete(f.rules, id)
	}
	return nil
}

func (f *fakeEC2) ModifyRules(_ context.Context, g string, us []RuleUpdate) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.mutate(fmt.Sprintf("update %s %d", g, len(us))); err != nil {
		return err
	}
	for _, u := range us {
		r, ok := f.rules[u.RuleID]
		if !ok {
			return fmt.Errorf("update %s: %w", u.RuleID, ErrNotFound)
		}
		if u.Key.GroupID != r.Key.GroupID || u.Key.Direction != r.Key.Direction {
			return fmt.Errorf("update %s: moves the rule to another group or direction", u.RuleID)
		}
		r.Key, r.Description = u.Key, u.Description
		f.rules[u.RuleID] = r
	}
	return nil
}

func (f *fakeEC2) TagRules(_ context.Context, g string, ids []string, tags map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.mutate(fmt.Sprintf("tag %s %d", g, len(ids))); err != nil {
		return err
	}
	for _, id := range ids {
		r, ok := f.rules[id]
		if !ok {
			continue
		}
		if r.Tags == nil {
			r.Tags = map[string]string{}
		}
		maps.Copy(r.Tags, tags)
		f.rules[id] = r
	}
	return nil
}

func (f *fakeEC2) UntagRules(_ context.Context, g string, ids []string, tags map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.mutate(fmt.Sprintf("untag %s %d", g, len(ids))); err != nil {
		return err
	}
	for _, id := range ids {
		r, ok := f.rules[id]
		if !ok {
			continue
		}
		r.Tags = maps.Clone(r.Tags)
		for k, v := range tags {
			if have, ok := r.Tags[k]; ok && (v == "" || v == have) {
				delete(r.Tags, k)
			}
		}
		f.rules[id] = r
	}
	return nil
}

// fakeLedger is an in-memory ledger with versioned, all-or-nothing writes
// and real leases.
type fakeLedger struct {
	mu      sync.Mutex
	sources map[string]SourceRecord
	perms   map[rules.Key]OwnedPermission
	leases  map[string]string
	writes  int // items written
	calls   int // Write calls
	// beforeWrite, if set, runs (under the lock) before each Write.
	beforeWrite func(*fakeLedger)
	// failNext, if set, fails the next Write (then clears).
	failNext error
	// intents are the write-ahead intents (RecordIntents).
	intents map[rules.Key]Intent
	// id is the deployment identity (DeploymentID).
	id string
}

func newFakeLedger() *fakeLedger {
	return &fakeLedger{sources: map[string]SourceRecord{}, perms: map[rules.Key]OwnedPermission{}, leases: map[string]string{}}
}

func (l *fakeLedger) GetSource(_ context.Context, key string) (SourceRecord, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.sources[key]
	return r, ok, nil
}

func (l *fakeLedger) ListSources(context.Context) ([]SourceRecord, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]SourceRecord, 0, len(l.sources))
	for _, r := range l.sources {
		out = append(out, r)
	}
	return out, nil
}

func (l *fakeLedger) GroupPermissions(_ context.Context, ids []string) ([]OwnedPermission, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	var out []OwnedPermission
	for _, p := range l.perms {
		if want[p.Key.GroupID] {
			p.Owners = maps.Clone(p.Owners)
			out = append(out, p)
		}
	}
	return out, nil
}

func (l *fakeLedger) AllPermissions(context.Context) ([]OwnedPermission, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []OwnedPermission
	for _, p := range l.perms {
		p.Owners = maps.Clone(p.Owners)
		out = append(out, p)
	}
	return out, nil
}

func (l *fakeLedger) Write(_ context.Context, c Commit) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	if l.beforeWrite != nil {
		l.beforeWrite(l)
	}
	if err := l.failNext; err != nil {
		l.failNext = nil
		return err // as a crash between the EC2 calls and the commit
	}
	for _, p := range slicesConcat(c.Put, c.Delete) {
		if l.perms[p.Key].Version != p.Version {
			return fmt.Errorf("write %s: %w", p.Key, ErrConflict)
		}
	}
	for _, s := range append(c.Sources, c.DeleteSources...) {
		if l.sources[s.Key].Version != s.Version {
			return fmt.Errorf("write source %s: %w", s.Key, ErrConflict)
		}
	}
	for _, p := range c.Put {
		p.Version++
		p.Owners = maps.Clone(p.Owners)
		l.perms[p.Key] = p
	}
	for _, p := range c.Delete {
		delete(l.perms, p.Key)
	}
	for _, s := range c.Sources {
		s.Version++
		l.sources[s.Key] = s
	}
	for _, s := range c.DeleteSources {
		delete(l.sources, s.Key)
	}
	l.writes += len(c.Put) + len(c.Delete) + len(c.Sources) + len(c.DeleteSources)
	return nil
}

func (l *fakeLedger) DeploymentID(_ context.Context, proposed string) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.id == "" {
		l.id = proposed
	}
	return l.id, nil
}

func (l *fakeLedger) RecordIntents(_ context.Context, its []Intent) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.intents == nil {
		l.intents = map[rules.Key]Intent{}
	}
	for _, it := range its {
		l.intents[it.Key] = it
	}
	return nil
}

func (l *fakeLedger) Intents(_ context.Context, ids []string) ([]Intent, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	want := setOf(ids)
	var out []Intent
	for _, it := range l.intents {
		if ids == nil || want[it.Key.GroupID] {
			out = append(out, it)
		}
	}
	return out, nil
}

func (l *fakeLedger) ClearIntents(_ context.Context, keys []rules.Key) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		delete(l.intents, k)
	}
	return nil
}

func slicesConcat(a, b []OwnedPermission) []OwnedPermission {
	return append(append([]OwnedPermission{}, a...), b...)
}

func (l *fakeLedger) Lock(ctx context.Context, ids []string, holder string, _ time.Duration, wait time.Duration) (func(context.Context) error, error) {
	ids = sortedKeys(setOf(ids))
	deadline := time.Now().Add(wait)
	var taken []string
	release := func(context.Context) error {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, id := range taken {
			if l.leases[id] == holder {
				delete(l.leases, id)
			}
		}
		return nil
	}
	for _, id := range ids {
		for {
			l.mu.Lock()
			h, held := l.leases[id]
			if !held || h == holder {
				l.leases[id] = holder
				l.mu.Unlock()
				taken = append(taken, id)
				break
			}
			l.mu.Unlock()
			if time.Now().After(deadline) {
				_ = release(ctx)
				return nil, fmt.Errorf("lock %s: %w", id, ErrLeaseHeld)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return release, nil
}

func (l *fakeLedger) owned() map[rules.Key]OwnedPermission {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.perms)
}

func (l *fakeLedger) wiped() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sources = map[string]SourceRecord{}
	l.perms = map[rules.Key]OwnedPermission{}
	l.intents = nil
	l.id = ""
}

// fakeSource is an in-memory rule source.
type fakeSource struct {
	mu    sync.Mutex
	files map[string][]byte
	gets  int
}

func newFakeSource() *fakeSource { return &fakeSource{files: map[string][]byte{}} }

func (s *fakeSource) put(key, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[key] = []byte(body)
}

func (s *fakeSource) remove(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.files, key)
}

func etag(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

func (s *fakeSource) List(context.Context) ([]ObjectInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ObjectInfo
	for k, b := range s.files {
		out = append(out, ObjectInfo{Key: k, ETag: etag(b), Size: int64(len(b))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (s *fakeSource) Get(_ context.Context, key string) (Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gets++
	b, ok := s.files[key]
	if !ok {
		return Object{}, fmt.Errorf("get %s: %w", key, ErrNotFound)
	}
	info := ObjectInfo{Key: key, ETag: etag(b), Size: int64(len(b))}
	if len(b) > rules.MaxFileSize {
		return Object{ObjectInfo: info}, nil
	}
	return Object{ObjectInfo: info, Body: b}, nil
}

var errInjected = errors.New("injected fault")

func (f *fakeEC2) TagGroups(_ context.Context, ids []string, tags map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["tag-groups"]++
	for _, id := range ids {
		g, ok := f.groups[id]
		if !ok {
			continue
		}
		g.Tags = maps.Clone(g.Tags)
		if g.Tags == nil {
			g.Tags = map[string]string{}
		}
		maps.Copy(g.Tags, tags)
		f.groups[id] = g
	}
	return nil
}

func (f *fakeEC2) UntagGroups(_ context.Context, ids []string, keys []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["untag-groups"]++
	for _, id := range ids {
		g, ok := f.groups[id]
		if !ok {
			continue
		}
		g.Tags = maps.Clone(g.Tags)
		for _, k := range keys {
			delete(g.Tags, k)
		}
		f.groups[id] = g
	}
	return nil
}
