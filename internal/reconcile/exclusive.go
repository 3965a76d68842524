package reconcile

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Exclusive groups of several deployments. A deployment marks each group it
// manages exclusively with TagExclusivePrefix+<identity>, so another one
// declaring the same group exclusive sees it even when it holds no rule
// there. Neither then revokes anything in that group as exclusive clean-up:
// each reports the conflict (Plan.ExclusiveConflicts), naming the other.

// ExclusiveConflict is a group this deployment declares exclusive that
// other deployments declare exclusive too (their TagExclusivePrefix tags on
// the group): nothing in it is revoked as exclusive clean-up, an error to
// settle by hand (only one deployment may manage a group exclusively).
type ExclusiveConflict struct {
	GroupID string
	// Deployments are the other deployments' identities, sorted.
	Deployments []string
}

func (c ExclusiveConflict) String() string {
	return fmt.Sprintf("security group %s is declared exclusive by this deployment and by deployment %s: nothing in it is revoked as exclusive clean-up",
		c.GroupID, strings.Join(c.Deployments, ", "))
}

// exclusiveMarks is what the run reads and writes of the exclusive tags.
type exclusiveMarks struct {
	// others maps each exclusive group to the other deployments' identities
	// whose exclusive tag it carries.
	others map[string][]string
	// tag are the exclusive groups still lacking this deployment's tag;
	// untag those carrying it that no source of the run declares exclusive
	// any more (an applied source stopped declaring them).
	tag, untag []string
}

// readExclusiveMarks reads the tags of the groups the run declares
// exclusive and of those its sources declared exclusive before (one
// DescribeGroups call, cached for the attempt).
func (e *Engine) readExclusiveMarks(ctx context.Context, at *attempt) error {
	at.excl = exclusiveMarks{}
	var restrict map[string]bool
	if len(at.req.Groups) > 0 {
		restrict = setOf(at.req.Groups)
	}
	cand := map[string]bool{}
	for g := range at.st.exclusive {
		cand[g] = true
	}
	for _, s := range at.srcs {
		for _, g := range s.rec.Exclusive {
			if restrict == nil || restrict[g] {
				cand[g] = true
			}
		}
	}
	if len(cand) == 0 || at.id == "" {
		return nil
	}
	if err := e.groupInfo(ctx, &at.st, cand); err != nil {
		return err
	}
	mine := TagExclusivePrefix + at.id
	for _, g := range sortedKeys(cand) {
		info := at.st.info[g]
		if info == nil {
			continue
		}
		_, marked := info.Tags[mine]
		switch {
		case at.st.exclusive[g]:
			if others := exclusiveOthers(info.Tags, at.id, e.cfg.LedgerID); len(others) > 0 {
				if at.excl.others == nil {
					at.excl.others = map[string][]string{}
				}
				at.excl.others[g] = others
			}
			if !marked {
				at.excl.tag = append(at.excl.tag, g)
			}
		case marked:
			at.excl.untag = append(at.excl.untag, g)
		}
	}
	return nil
}

// exclusiveOthers returns the identities of the other deployments whose
// exclusive tag a group carries, sorted.
func exclusiveOthers(tags map[string]string, id, legacy string) []string {
	var out []string
	for k := range tags {
		if o, ok := strings.CutPrefix(k, TagExclusivePrefix); ok && o != "" && o != id && o != legacy {
			out = append(out, o)
		}
	}
	slices.Sort(out)
	return out
}

// markExclusive writes the exclusive tags the run decided: one call to tag,
// one to untag.
func (e *Engine) markExclusive(ctx context.Context, at *attempt) error {
	mine := TagExclusivePrefix + at.id
	if len(at.excl.tag) > 0 {
		if err := e.cfg.Groups.TagGroups(ctx, at.excl.tag, map[string]string{mine: "true"}); err != nil {
			return fmt.Errorf("mark exclusive groups: %w", err)
		}
		e.log.InfoContext(ctx, "ec2 batch", "op", "mark-exclusive", "groups", len(at.excl.tag))
	}
	if len(at.excl.untag) > 0 {
		if err := e.cfg.Groups.UntagGroups(ctx, at.excl.untag, []string{mine}); err != nil {
			return fmt.Errorf("unmark exclusive groups: %w", err)
		}
		e.log.InfoContext(ctx, "ec2 batch", "op", "unmark-exclusive", "groups", len(at.excl.untag))
	}
	return nil
}
