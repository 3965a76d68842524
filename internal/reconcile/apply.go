package reconcile

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"

	"github.com/sgrules/sgrules/pkg/rules"
)

// Apply: run the plan against EC2, make-before-break, batched per group
// and direction. The adapters' errors name the call and the group; this
// layer adds nothing to them but the phase.

// quotaError: EC2 refused an authorization because the group would exceed
// its rules quota. It names the sources that declared the refused rules.
type quotaError struct {
	group   string
	dir     rules.Direction
	count   int
	sources map[string]bool
	err     error
}

func (q *quotaError) Error() string {
	return fmt.Sprintf("%d new %s rules in %s: %v", q.count, q.dir, q.group, q.err)
}

func (q *quotaError) Unwrap() error { return q.err }

type batchKey struct {
	group string
	dir   rules.Direction
}

// execute runs the plan make-before-break: every authorization of every
// group first, then the in-place changes (modifications and description
// updates, one atomic ModifySecurityGroupRules per group), then
// revocations; authorizations and revocations batched per group and
// direction.
func (e *Engine) execute(ctx context.Context, out *diffOutput) error {
	auth := map[batchKey][]rules.Permission{}
	authOwners := map[batchKey]map[string]bool{}
	upd := map[string][]RuleUpdate{}
	rev := map[batchKey][]string{}
	for _, a := range out.plan.Actions {
		bk := batchKey{a.Key.GroupID, a.Key.Direction}
		switch a.Kind {
		case ActAuthorize:
			owner := rules.Owner{}
			if len(a.Owners) > 0 {
				owner = a.Owners[0]
			}
			auth[bk] = append(auth[bk], rules.Permission{Key: a.Key, Description: a.Description, Owner: owner, ExpiresAt: a.ExpiresAt})
			if authOwners[bk] == nil {
				authOwners[bk] = map[string]bool{}
			}
			for _, o := range a.Owners {
				authOwners[bk][o.Source] = true
			}
		case ActUpdate, ActModify:
			upd[a.Key.GroupID] = append(upd[a.Key.GroupID], RuleUpdate{RuleID: a.RuleID, Key: a.Key, Description: a.Description})
		case ActRevoke:
			rev[bk] = append(rev[bk], a.RuleID)
		}
	}

	authBatches := sortedBatches(auth)
	created := &createdRules{byKey: map[rules.Key]ActualRule{}}
	if err := e.forEach(ctx, len(authBatches), func(ctx context.Context, i int) error {
		err := e.authorize(ctx, authBatches[i], auth[authBatches[i]], created)
		var qe *quotaError
		if errors.As(err, &qe) {
			maps.Copy(qe.sources, authOwners[authBatches[i]])
		}
		return err
	}); err != nil {
		return err
	}
	if err := e.readBack(ctx, out, created, upd); err != nil {
		return err
	}
	updGroups := sortedKeys(upd)
	if err := e.forEach(ctx, len(updGroups), func(ctx context.Context, i int) error {
		g, us := updGroups[i], upd[updGroups[i]]
		if err := e.cfg.Groups.ModifyRules(ctx, g, us); err != nil {
			return err
		}
		e.log.InfoContext(ctx, "ec2 batch", "op", "modify", "group", g, "rules", len(us))
		return nil
	}); err != nil {
		return err
	}
	if err := e.claimRules(ctx, out); err != nil {
		return err
	}
	// Only now, with every new rule in place, revoke.
	revBatches := sortedBatches(rev)
	if err := e.forEach(ctx, len(revBatches), func(ctx context.Context, i int) error {
		return e.revoke(ctx, revBatches[i], rev[revBatches[i]])
	}); err != nil {
		return err
	}
	return e.releaseRules(ctx, out)
}

// claimRules tags the rules this deployment holds without having created them
// with its claim tag, one call per group.
func (e *Engine) claimRules(ctx context.Context, out *diffOutput) error {
	id := e.ruleTagLedger()
	byGroup := map[string][]string{}
	for _, a := range out.claims {
		byGroup[a.Key.GroupID] = append(byGroup[a.Key.GroupID], a.RuleID)
	}
	for _, g := range sortedKeys(byGroup) {
		if err := e.cfg.Groups.TagRules(ctx, g, byGroup[g], map[string]string{TagClaimPrefix + id: "true"}); err != nil {
			return err
		}
		e.log.InfoContext(ctx, "ec2 batch", "op", "claim", "group", g, "rules", len(byGroup[g]))
	}
	return nil
}

// releaseRules removes this deployment's tags (its claim, and its TagLedger
// when the rule carries its identity or table name) from the rules it lets
// go to the other deployments claiming them; one call per group and tag
// set. Then it revokes those no other deployment tags any more
// (revokeUnclaimed).
func (e *Engine) releaseRules(ctx context.Context, out *diffOutput) error {
	id := e.ruleTagLedger()
	type batch struct {
		group, ledger string
	}
	byBatch := map[batch][]string{}
	for _, a := range out.plan.Actions {
		if a.Kind != ActRelease {
			continue
		}
		b := batch{group: a.Key.GroupID}
		if v := out.ledgerTags[a.RuleID]; v != "" && (v == id || v == e.cfg.LedgerID) {
			b.ledger = v
		}
		byBatch[b] = append(byBatch[b], a.RuleID)
	}
	keys := slices.Collect(maps.Keys(byBatch))
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].group < keys[j].group || keys[i].group == keys[j].group && keys[i].ledger < keys[j].ledger
	})
	for _, b := range keys {
		tags := map[string]string{TagClaimPrefix + id: ""}
		if b.ledger != "" {
			tags[TagLedger] = b.ledger
		}
		if err := e.cfg.Groups.UntagRules(ctx, b.group, byBatch[b], tags); err != nil {
			return err
		}
		e.log.InfoContext(ctx, "ec2 batch", "op", "release", "group", b.group, "rules", len(byBatch[b]))
	}
	groups := map[string]bool{}
	for _, b := range keys {
		groups[b.group] = true
	}
	return e.revokeUnclaimed(ctx, out, sortedKeys(groups))
}

// revokeUnclaimed reads again, with this deployment's tags off them, the
// rules of groups it released, and revokes those that no other deployment
// tags any more: the others let them go at the same time, each run having
// read the other's tag before either removed its own. Whichever run
// removes its tags last then finds none and revokes the rule (its ledger
// still holds it until the commit), or it would stay, declared by nobody
// and managed by neither. The action becomes a revocation in the plan.
func (e *Engine) revokeUnclaimed(ctx context.Context, out *diffOutput, groups []string) error {
	if len(groups) == 0 {
		return nil
	}
	actual, err := e.cfg.Groups.DescribeRules(ctx, groups)
	if err != nil {
		return fmt.Errorf("re-read released rules: %w", err)
	}
	byID := make(map[string]ActualRule, len(actual))
	for _, a := range actual {
		byID[a.RuleID] = a
	}
	id := e.ruleTagLedger()
	rev := map[batchKey][]string{}
	for i := range out.plan.Actions {
		a := &out.plan.Actions[i]
		if a.Kind != ActRelease {
			continue
		}
		r, ok := byID[a.RuleID]
		if !ok || r.Key != a.Key || len(otherDeployments(r, id, e.cfg.LedgerID)) > 0 {
			continue
		}
		bk := batchKey{a.Key.GroupID, a.Key.Direction}
		rev[bk] = append(rev[bk], a.RuleID)
		a.Kind, a.Others = ActRevoke, nil
		a.Reason = "no longer declared; the deployments claiming it let it go meanwhile"
	}
	for _, bk := range sortedBatches(rev) {
		if err := e.revoke(ctx, bk, rev[bk]); err != nil {
			return err
		}
	}
	return nil
}

// createdRules are the rules Authorize reported it created in one run
// (RuleAuthorizer), by key.
type createdRules struct {
	mu    sync.Mutex
	byKey map[rules.Key]ActualRule
}

func (c *createdRules) add(rs []ActualRule) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range rs {
		c.byKey[r.Key] = r
	}
}

// readBack learns the ids of the new rules: from what Authorize reported
// it created, and, for the groups where that is not every new rule (an
// EC2 that does not report them, a rule that existed already), from one
// DescribeRules of those groups only. A description EC2 did not keep is
// set in place in the same run. A rule that existed already (another
// deployment created it since the read: the authorize found it there) is
// held from now on, so it is claimed in this run too, before anything is
// revoked: otherwise its creator, no longer declaring it, would revoke it
// before this deployment's next run claims it.
func (e *Engine) readBack(ctx context.Context, out *diffOutput, created *createdRules, upd map[string][]RuleUpdate) error {
	got := created.byKey
	read := map[rules.Key]bool{}
	missing := map[string]bool{}
	for _, p := range out.put {
		if _, ok := got[p.Key]; !ok && p.RuleID == "" {
			missing[p.Key.GroupID] = true
		}
	}
	if len(missing) > 0 {
		actual, err := e.cfg.Groups.DescribeRules(ctx, sortedKeys(missing))
		if err != nil {
			return fmt.Errorf("read back new rules: %w", err)
		}
		for _, a := range actual {
			got[a.Key] = a
			read[a.Key] = true
		}
	}
	id := e.ruleTagLedger()
	for i, p := range out.put {
		if p.RuleID != "" {
			continue
		}
		a, ok := got[p.Key]
		if !ok {
			return fmt.Errorf("read back new rules: %s not found after authorize", p.Key)
		}
		out.put[i].RuleID = a.RuleID
		v := a.Tags[TagLedger]
		ours := v != "" && (v == id || v == e.cfg.LedgerID)
		if read[p.Key] && id != "" && !ours && a.Tags[TagClaimPrefix+id] == "" {
			out.claims = append(out.claims, a)
		}
		if a.Description != p.Description && !e.othersRule(a) {
			// Some EC2 implementations drop the description of
			// group-referencing rules on authorize: set it in place now
			// rather than leave drift for the next run. A rule another
			// deployment created or claims since the read (the
			// authorize found it there) keeps its description.
			upd[p.Key.GroupID] = append(upd[p.Key.GroupID], RuleUpdate{RuleID: a.RuleID, Key: p.Key, Description: p.Description})
		}
	}
	return nil
}

// othersRule reports whether another deployment created or claims the
// rule (its TagLedger or claim tags), as far as its tags tell.
func (e *Engine) othersRule(a ActualRule) bool {
	id := e.ruleTagLedger()
	if v := a.Tags[TagLedger]; v != "" && (v == id || v == e.cfg.LedgerID) {
		return false
	}
	return len(otherDeployments(a, id, e.cfg.LedgerID)) > 0
}

// forEach runs fn for 0..n-1 on at most Config.Concurrency goroutines. The
// first error cancels the others' context and is returned once all have
// stopped, so a phase never overlaps the next one.
func (e *Engine) forEach(ctx context.Context, n int, fn func(context.Context, int) error) error {
	if n == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	sem := make(chan struct{}, e.cfg.Concurrency)
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := fn(ctx, i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
				cancel()
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		// Cancelled from outside before every batch started.
		return fmt.Errorf("execute: %w", context.Cause(ctx))
	}
	return first
}

// ruleTags are the tags of the rules one Authorize call creates.
func (e *Engine) ruleTags(perms []rules.Permission) map[string]string {
	tags := map[string]string{TagManaged: "true", TagLedger: e.ruleTagLedger()}
	if src := commonSource(perms); src != "" {
		tags[TagOwner] = truncate(src, 256)
	}
	if len(perms) > 0 && !perms[0].ExpiresAt.IsZero() {
		tags[TagExpiresAt] = rules.FormatExpiresAt(perms[0].ExpiresAt)
	}
	return tags
}

// authorize creates perms (one group and direction) with one Authorize
// call per deadline, so each rule carries its own TagExpiresAt. A
// permission whose deadline has passed by now is never authorized, even
// when it was planned before the deadline.
func (e *Engine) authorize(ctx context.Context, bk batchKey, perms []rules.Permission, created *createdRules) error {
	parts, expired := byDeadline(perms, e.cfg.Now())
	if expired > 0 {
		e.log.WarnContext(ctx, "expired before it was authorized: not authorized", "group", bk.group, "direction", bk.dir, "rules", expired)
	}
	for _, part := range parts {
		if err := e.authorizeOnce(ctx, bk, part, created); err != nil {
			return err
		}
	}
	return nil
}

// groupsAuthorize calls Authorize, through RuleAuthorizer when Groups has
// it, adding the rules created to created.
func (e *Engine) groupsAuthorize(ctx context.Context, bk batchKey, perms []rules.Permission, created *createdRules) error {
	tags := e.ruleTags(perms)
	ra, ok := e.cfg.Groups.(RuleAuthorizer)
	if !ok {
		return e.cfg.Groups.Authorize(ctx, bk.group, bk.dir, perms, tags)
	}
	rs, err := ra.AuthorizeRules(ctx, bk.group, bk.dir, perms, tags)
	created.add(rs)
	return err
}

func (e *Engine) authorizeOnce(ctx context.Context, bk batchKey, perms []rules.Permission, created *createdRules) error {
	err := e.groupsAuthorize(ctx, bk, perms, created)
	if errors.Is(err, ErrDuplicate) {
		// Someone created some of them since we read: keep the rest. The
		// ones that exist are adopted by the next read.
		actual, rerr := e.cfg.Groups.DescribeRules(ctx, []string{bk.group})
		if rerr != nil {
			return fmt.Errorf("re-read %s after duplicate: %w", bk.group, rerr)
		}
		have := map[rules.Key]bool{}
		for _, a := range actual {
			have[a.Key] = true
		}
		rest := slices.DeleteFunc(slices.Clone(perms), func(p rules.Permission) bool { return have[p.Key] })
		err = nil
		if len(rest) > 0 {
			err = e.groupsAuthorize(ctx, bk, rest, created)
		}
		perms = rest
	}
	if errors.Is(err, ErrRulesLimit) {
		qe := &quotaError{group: bk.group, dir: bk.dir, count: len(perms), sources: map[string]bool{}, err: err}
		for _, p := range perms {
			qe.sources[p.Owner.Source] = true
		}
		return qe
	}
	if err != nil {
		return err
	}
	e.log.InfoContext(ctx, "ec2 batch", "op", "authorize", "group", bk.group, "direction", bk.dir, "rules", len(perms))
	return nil
}

func (e *Engine) revoke(ctx context.Context, bk batchKey, ids []string) error {
	err := e.cfg.Groups.Revoke(ctx, bk.group, bk.dir, ids)
	if errors.Is(err, ErrNotFound) {
		// Some are already gone: revoke those still there.
		actual, rerr := e.cfg.Groups.DescribeRules(ctx, []string{bk.group})
		if rerr != nil {
			return fmt.Errorf("re-read %s after not found: %w", bk.group, rerr)
		}
		have := map[string]bool{}
		for _, a := range actual {
			have[a.RuleID] = true
		}
		ids = slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return !have[id] })
		err = nil
		if len(ids) > 0 {
			err = e.cfg.Groups.Revoke(ctx, bk.group, bk.dir, ids)
		}
	}
	if err != nil {
		return err
	}
	e.log.InfoContext(ctx, "ec2 batch", "op", "revoke", "group", bk.group, "direction", bk.dir, "rules", len(ids))
	return nil
}

// commonSource is the source of every permission, or "" if they differ.
func commonSource(perms []rules.Permission) string {
	src := ""
	for i, p := range perms {
		if i == 0 {
			src = p.Owner.Source
		} else if p.Owner.Source != src {
			return ""
		}
	}
	return src
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func sortedBatches[V any](m map[batchKey]V) []batchKey {
	out := make([]batchKey, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].group != out[j].group {
			return out[i].group < out[j].group
		}
		return out[i].dir < out[j].dir
	})
	return out
}
