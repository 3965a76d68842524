package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sgrules/sgrules/pkg/rules"
)

// Write is one permission about to be written into a security group (an
// authorization, or a rule modified into it), for the admission check. Its
// deadline, when it has one, is facts.Deadlines[Key], measured from
// facts.Now (allowIfExpiresWithin, maxDuration).
type Write struct {
	Key rules.Key
	// Account is the account of the group written to ("" when unknown).
	Account string
	// Paths are the owners declaring the permission: each file's path
	// relative to the rules root, "" for an owner that is not a rule file
	// (a CloudFormation resource), which no tenant restricts.
	Paths []string
}

// Refusal is one reason the admission check refuses a write, or, when
// Skipped, a check it could not decide (Need says what was missing).
type Refusal struct {
	// Policy is the clause id as written, or "tenant PREFIX".
	Policy string
	// Owner indexes Write.Paths: the owner a tenant refuses; -1 for a
	// deny clause (it refuses whoever declares the permission).
	Owner int
	// Msg reads "violates policy ID: MESSAGE (what matched)".
	Msg     string
	Skipped bool
	Need    []string
}

// Admit is the admission check of one write, with the facts of its target
// at that moment (group facts as EC2 reports them, the account written
// to, the entries of prefix lists, the other rules the group will hold in
// facts.Held). Every deny clause matching the permission refuses it; a
// clause on CIDRs takes it together with the group's other rules (see
// Clause.eval), so the write that would complete a cover is refused. The tenants
// refuse it when none of its owners may write it: an owner may when its
// path is under no tenant prefix, or when every tenant whose prefix it is
// under accepts the group and the account. It returns the refusals, then
// the checks it could not decide; none: admitted.
func (p *Policy) Admit(w Write, facts Facts) []Refusal {
	if p == nil {
		return nil
	}
	var out, skipped []Refusal
	for i := range p.Deny {
		c := &p.Deny[i]
		switch o := c.eval([]rules.Key{w.Key}, facts)[0]; o.m {
		case yes:
			what := describe(w.Key, facts) + o.together(facts)
			msg := "violates policy " + c.Name() + ": " + what
			if c.Message != "" {
				msg = "violates policy " + c.Name() + ": " + c.Message + " (" + what + ")"
			}
			out = append(out, Refusal{Policy: c.ID, Owner: -1, Msg: msg})
		case unknown:
			skipped = append(skipped, Refusal{Policy: c.ID, Owner: -1, Skipped: true, Need: o.need,
				Msg: fmt.Sprintf("skipped policy %s: needs %s", c.Name(), strings.Join(o.need, " and "))})
		}
	}

	// Tenants: the best outcome over the owners decides.
	best := no
	if len(w.Paths) == 0 {
		best = yes
	}
	var refused, undecided []Refusal
	for o, path := range w.Paths {
		ownerOut := yes
		var mine, mineSkipped []Refusal
		for i := range p.Tenants {
			t := &p.Tenants[i]
			if path == "" || !strings.HasPrefix(path, t.Prefix) {
				continue
			}
			var need needs
			g := facts.group(w.Key.GroupID)
			switch anyOf(t.Groups, g, &need) {
			case no:
				ownerOut = no
				mine = append(mine, Refusal{Policy: t.Label(), Owner: o,
					Msg: fmt.Sprintf("violates policy %s: group %s is not a group of the tenant (%s)", t.Label(), w.Key.GroupID, selectorsText(t.Groups))})
			case unknown:
				ownerOut = min(ownerOut, unknown)
				mineSkipped = append(mineSkipped, Refusal{Policy: t.Label(), Owner: o, Skipped: true, Need: need,
					Msg: fmt.Sprintf("skipped policy %s: needs %s", t.Label(), strings.Join(need, " and "))})
			}
			if t.MaxDuration > 0 {
				switch msg, decided := t.duration(facts.Deadlines[w.Key], facts.Now); {
				case !decided:
					ownerOut = min(ownerOut, unknown)
					mineSkipped = append(mineSkipped, Refusal{Policy: t.Label(), Owner: o, Skipped: true, Need: []string{"the time of the check"},
						Msg: fmt.Sprintf("skipped policy %s: needs the time of the check", t.Label())})
				case msg != "":
					ownerOut = no
					mine = append(mine, Refusal{Policy: t.Label(), Owner: o, Msg: msg})
				}
			}
			if len(t.Accounts) == 0 {
				continue
			}
			switch {
			case w.Account == "":
				ownerOut = min(ownerOut, unknown)
				mineSkipped = append(mineSkipped, Refusal{Policy: t.Label(), Owner: o, Skipped: true, Need: []string{"the account"},
					Msg: fmt.Sprintf("skipped policy %s: needs the account the permission is written to", t.Label())})
			case !slices.Contains(t.Accounts, w.Account):
				ownerOut = no
				mine = append(mine, Refusal{Policy: t.Label(), Owner: o,
					Msg: fmt.Sprintf("violates policy %s: account %s is not an account of the tenant (%s)", t.Label(), w.Account, strings.Join(t.Accounts, ", "))})
			}
		}
		best = max(best, ownerOut)
		refused = append(refused, mine...)
		if ownerOut == unknown {
			undecided = append(undecided, mineSkipped...)
		}
	}
	switch best {
	case no:
		out = append(out, refused...)
	case unknown:
		skipped = append(skipped, undecided...)
	}
	return append(out, skipped...)
}
