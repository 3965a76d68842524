package reconcile

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Claims of other deployments. A rule another deployment created (its
// TagLedger names another identity) or claims (TagClaimPrefix+identity)
// is never revoked or modified by this one: it is released, reported as
// foreign, or reported as another's policy violation. Those are tags,
// which anyone allowed to tag rules can set: a claim tag put by hand on a
// rule this deployment created would make it let the rule go instead of
// revoking it when its file goes away. So a claim is honoured only as far
// as it can be proven:
//
//   - with peer ledgers configured (Config.Peers, PEER_LEDGERS: the other
//     deployments' tables, read only), a claim of identity X is proven when
//     the ledger of the peer whose identity is X (or, for rules made before
//     identities, whose table is named X) holds the rule's id. An unproven
//     claim is ignored: the rule is revoked, cleaned up or enforced as if
//     the tag were not there, and reported (Plan.UnverifiedClaims,
//     Honoured false);
//   - without peer ledgers nothing can be proven: every claim is honoured
//     (a permission another deployment declares is never dropped) and
//     reported (Plan.UnverifiedClaims, Honoured true), every run, so that a
//     claim set by hand is seen.
//
// A peer ledger that cannot be read fails the run (it is retried): an
// unreadable proof neither drops another deployment's rule nor honours a
// forged claim.

// PeerLedger is another deployment's ledger, read only. A
// ddbledger.Ledger of the peer's table (scoped to the same target)
// satisfies it.
type PeerLedger interface {
	// DeploymentID with proposed "" reads the peer's identity ("" when it
	// has none yet).
	DeploymentID(ctx context.Context, proposed string) (string, error)
	// GroupPermissions returns the peer's owned permissions in the groups.
	GroupPermissions(ctx context.Context, groupIDs []string) ([]OwnedPermission, error)
}

// Peer is a peer ledger and its table's name (the identity of the rules
// the peer created before deployments had identities).
type Peer struct {
	Table  string
	Ledger PeerLedger
}

// ClaimedRule is a rule with claims of other deployments that could not
// be proven (Plan.UnverifiedClaims).
type ClaimedRule struct {
	Rule ActualRule
	// Deployments are the identities claiming it without proof, sorted.
	Deployments []string
	// Honoured is true when no peer ledger is configured: the claims are
	// honoured all the same (the rule is left to them). False: peer
	// ledgers are configured and none proves the claims, which are
	// ignored (a forged tag).
	Honoured bool
}

func (c ClaimedRule) String() string {
	if c.Honoured {
		return fmt.Sprintf("rule %s is claimed by deployment %s, which no peer ledger (PEER_LEDGERS) can prove: honoured, left to it",
			c.Rule.RuleID, strings.Join(c.Deployments, ", "))
	}
	return fmt.Sprintf("rule %s is claimed by deployment %s, whose ledger does not hold it: the claim is ignored",
		c.Rule.RuleID, strings.Join(c.Deployments, ", "))
}

// claimProof is what the peer ledgers prove; nil when none is configured.
type claimProof struct {
	// held maps a rule id to the identities (and legacy table names) of
	// the peers whose ledgers hold it.
	held map[string]map[string]bool
}

// split divides the other deployments a rule names (raw) into those whose
// claims are honoured and those whose claims are not proven.
func (p *claimProof) split(ruleID string, raw []string) (honoured, unproven []string) {
	if p == nil {
		return raw, raw
	}
	for _, d := range raw {
		if p.held[ruleID][d] {
			honoured = append(honoured, d)
		} else {
			unproven = append(unproven, d)
		}
	}
	return honoured, unproven
}

// proveClaims reads, when peer ledgers are configured, what they hold in
// the groups where some rule names another deployment.
func (e *Engine) proveClaims(ctx context.Context, at *attempt) error {
	at.proof = nil
	if len(e.cfg.Peers) == 0 {
		return nil
	}
	proof := &claimProof{held: map[string]map[string]bool{}}
	groups := map[string]bool{}
	for _, a := range at.st.actual {
		if at.st.groups[a.Key.GroupID] && len(otherDeployments(a, at.id, e.cfg.LedgerID)) > 0 {
			groups[a.Key.GroupID] = true
		}
	}
	if len(groups) > 0 {
		ids := sortedKeys(groups)
		for _, p := range e.cfg.Peers {
			id, err := p.Ledger.DeploymentID(ctx, "")
			if err != nil {
				return fmt.Errorf("read the identity of peer ledger %s: %w", p.Table, err)
			}
			perms, err := p.Ledger.GroupPermissions(ctx, ids)
			if err != nil {
				return fmt.Errorf("read peer ledger %s: %w", p.Table, err)
			}
			for _, o := range perms {
				if o.RuleID == "" {
					continue
				}
				if proof.held[o.RuleID] == nil {
					proof.held[o.RuleID] = map[string]bool{}
				}
				for _, name := range []string{id, p.Table} {
					if name != "" {
						proof.held[o.RuleID][name] = true
					}
				}
			}
		}
	}
	at.proof = proof
	return nil
}

// unverifiedClaims lists the rules whose claims are not proven among
// those the claims could take from this deployment: rules its ledger
// holds or that carry its tag, and rules in its exclusive groups.
func unverifiedClaims(in diffInput, ownedIDs map[string]bool) []ClaimedRule {
	var out []ClaimedRule
	for _, a := range in.actual {
		if !in.groups[a.Key.GroupID] {
			continue
		}
		if !ownedIDs[a.RuleID] && !in.taggedOurs(a) && !in.exclusive[a.Key.GroupID] {
			continue
		}
		if _, unproven := in.proof.split(a.RuleID, otherDeployments(a, in.ledgerID, in.legacyID)); len(unproven) > 0 {
			out = append(out, ClaimedRule{Rule: a, Deployments: slices.Clone(unproven), Honoured: in.proof == nil})
		}
	}
	slices.SortFunc(out, func(x, y ClaimedRule) int {
		if x.Rule.Key.Less(y.Rule.Key) {
			return -1
		}
		if y.Rule.Key.Less(x.Rule.Key) {
			return 1
		}
		return 0
	})
	return out
}
