package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/strutil"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Texts of the manual changes the demo makes.
const (
	editedDescription    = "changed by hand in the console"
	unmanagedDescription = "added by hand: RDP for a contractor"
	openSSHDescription   = "added by hand: SSH for debugging"
)

// drift is the set of manual changes the demo makes.
type drift struct {
	Deleted   row       // a managed rule, revoked by hand
	Edited    row       // a managed rule whose description was changed by hand
	Unmanaged rules.Key // a rule added by hand, which sgrules must leave alone
	// OpenSSH is a rule added by hand that violates the policy: the drift
	// function reports it (the example policy says enforce: report).
	OpenSSH rules.Key
}

// pickRule returns the first managed rule of group matching pred, else the
// first managed rule matching pred in any group.
func pickRule(rows []row, group string, pred func(row) bool) (row, bool) {
	for _, anyGroup := range []bool{false, true} {
		for _, r := range rows {
			if r.Managed() && (anyGroup || r.Group == group) && pred(r) {
				return r, true
			}
		}
	}
	return row{}, false
}

// chooseDrift picks the rules to change: the HTTPS rule of web to delete, a
// database rule to re-describe (or any managed ingress rules), and an RDP
// rule from one address to add to admin.
func chooseDrift(rows []row, groups map[string]string) (drift, error) {
	var d drift
	var ok bool
	d.Deleted, ok = pickRule(rows, "web", func(r row) bool {
		return r.Key.Direction == rules.Ingress && (r.Key.FromPort == 443 || r.Group != "web")
	})
	if !ok {
		return d, errors.New("no managed ingress rule to delete")
	}
	d.Edited, ok = pickRule(rows, "database", func(r row) bool {
		return r.Key.Direction == rules.Ingress && r.Description != "" && r.Key != d.Deleted.Key
	})
	if !ok {
		return d, errors.New("no managed ingress rule with a description to edit")
	}
	target, ok := groups["admin"]
	if !ok {
		target = d.Deleted.Key.GroupID
	}
	d.Unmanaged = rules.Key{GroupID: target, Direction: rules.Ingress, Protocol: rules.ProtoTCP, FromPort: 3389, ToPort: 3389,
		Peer: rules.Peer{Kind: rules.PeerCIDR4, Value: "198.51.100.7/32"}}
	d.OpenSSH = rules.Key{GroupID: target, Direction: rules.Ingress, Protocol: rules.ProtoTCP, FromPort: 22, ToPort: 22,
		Peer: rules.Peer{Kind: rules.PeerCIDR4, Value: "0.0.0.0/0"}}
	return d, nil
}

// applyDrift makes the manual changes, as someone in the console would.
func applyDrift(ctx context.Context, c clients, d drift) error {
	del := d.Deleted
	if _, err := c.ec2.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{
		GroupId: aws.String(del.Key.GroupID), SecurityGroupRuleIds: []string{del.RuleID},
	}); err != nil {
		return fmt.Errorf("revoke %s by hand: %w", del.RuleID, err)
	}
	ed := d.Edited
	// ModifySecurityGroupRules, as the console does.
	if err := ec2sg.New(c.ec2).ModifyRules(ctx, ed.Key.GroupID, []reconcile.RuleUpdate{
		{RuleID: ed.RuleID, Key: ed.Key, Description: editedDescription},
	}); err != nil {
		return fmt.Errorf("edit the description of %s by hand: %w", ed.RuleID, err)
	}
	for u, desc := range map[rules.Key]string{d.Unmanaged: unmanagedDescription, d.OpenSSH: openSSHDescription} {
		if _, err := c.ec2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
			GroupId: aws.String(u.GroupID),
			IpPermissions: []ec2types.IpPermission{{
				IpProtocol: aws.String(u.Protocol), FromPort: aws.Int32(u.FromPort), ToPort: aws.Int32(u.ToPort),
				IpRanges: []ec2types.IpRange{{CidrIp: aws.String(u.Peer.Value), Description: aws.String(desc)}},
			}},
		}); err != nil {
			return fmt.Errorf("add a rule to %s by hand: %w", u.GroupID, err)
		}
	}
	return nil
}

// scheduledEvent is the EventBridge event of the drift function's schedule.
func scheduledEvent(now time.Time) []byte {
	ev := map[string]any{
		"version":     "0",
		"id":          fmt.Sprintf("sgrules-demo-%d", now.UnixNano()),
		"detail-type": "Scheduled Event",
		"source":      "aws.events",
		"account":     "123456789012",
		"time":        now.UTC().Format(time.RFC3339),
		"region":      Region,
		"resources":   []string{"arn:aws:events:" + Region + ":123456789012:rule/sgrules-demo-drift-schedule"},
		"detail":      map[string]any{},
	}
	b, _ := json.Marshal(ev)
	return b
}

// planSummary adds up the engine's "plan" log lines in a function's output
// (one per reconciled request): "7 plans: authorize 31, update 1, adopt 1".
// Zero counts are left out.
func planSummary(lines []string) string {
	keys := []string{"authorize", "update", "revoke", "adopt", "forget", "drifted"}
	sum := map[string]int{}
	plans := 0
	for _, l := range lines {
		if !strings.HasPrefix(l, "{") {
			continue
		}
		var p map[string]any
		if json.Unmarshal([]byte(l), &p) != nil || (p["message"] != "plan" && p["msg"] != "plan") {
			continue
		}
		plans++
		for _, k := range keys {
			if v, ok := p[k].(float64); ok {
				sum[k] += int(v)
			}
		}
	}
	if plans == 0 {
		return ""
	}
	var parts []string
	for _, k := range keys {
		if sum[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, sum[k]))
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "nothing to do")
	}
	return fmt.Sprintf("%d %s: %s", plans, strutil.Plural(plans, "plan"), strings.Join(parts, ", "))
}

// expected is every permission the examples declare, resolved in the
// demo's groups.
func expected(files []example, groups map[string]string) ([]rules.Permission, error) {
	resolve := func(g rules.GroupRef) []string {
		if id, ok := groups[g.Tags[nameTag]]; ok {
			return []string{id}
		}
		return nil
	}
	var out []rules.Permission
	for _, e := range files {
		perms, _, diags := rules.Expand(e.File, e.Key(), resolve)
		if diags.HasErrors() {
			return nil, fmt.Errorf("expand %s: %w", e.Name, diags.Err())
		}
		out = append(out, perms...)
	}
	return out, nil
}

// verify checks that rows hold every declared permission, managed and with
// its declared description, and every rule of keep.
func verify(rows []row, want []rules.Permission, keep []rules.Key) error {
	byKey := make(map[rules.Key]row, len(rows))
	for _, r := range rows {
		byKey[r.Key] = r
	}
	var problems []string
	for _, p := range want {
		r, ok := byKey[p.Key]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("missing %s (%s)", p.Key, p.Owner))
		case r.Description != p.Description:
			problems = append(problems, fmt.Sprintf("%s has description %q, declared %q (%s)", p.Key, r.Description, p.Description, p.Owner))
		case !r.Managed():
			problems = append(problems, fmt.Sprintf("%s is not in the ledger (%s)", p.Key, p.Owner))
		}
	}
	for _, k := range keep {
		if _, ok := byKey[k]; !ok {
			problems = append(problems, fmt.Sprintf("unmanaged rule %s was removed", k))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("not converged: %d %s:\n  %s", len(problems), strutil.Plural(len(problems), "problem"),
			strings.Join(problems, "\n  "))
	}
	return nil
}
