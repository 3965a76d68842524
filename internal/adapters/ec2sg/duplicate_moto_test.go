package ec2sg_test

import (
	"context"
	"errors"
	"testing"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// TestAuthorizeSamePermissionOtherDescription: EC2 identifies a rule by
// its permission, not its description; authorizing a permission that is
// there with another description is InvalidPermission.Duplicate, for a
// referenced group as for a CIDR (moto, unpatched, created a second rule
// for a group peer: two deployments authorizing one permission
// concurrently then owned a rule each, chaos seed 20262001).
func TestAuthorizeSamePermissionOtherDescription(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	web, db, pl := e.group(t, "web", nil), e.group(t, "db", nil), e.prefixList(t)
	for _, dir := range []rules.Direction{rules.Ingress, rules.Egress} {
		for _, p := range []rules.Permission{
			perm(web, dir, "tcp", 443, 443, rules.PeerGroup, db, "first"),
			perm(web, dir, "tcp", 443, 443, rules.PeerCIDR4, "10.1.2.0/24", "first"),
			perm(web, dir, "tcp", 443, 443, rules.PeerCIDR6, "2001:db8::/32", "first"),
			perm(web, dir, "tcp", 443, 443, rules.PeerPrefixList, pl, "first"),
		} {
			if err := e.client.Authorize(ctx, web, dir, []rules.Permission{p}, nil); err != nil {
				t.Fatalf("%s: %v", p.Key, err)
			}
			for _, desc := range []string{"second", ""} {
				q := p
				q.Description = desc
				if err := e.client.Authorize(ctx, web, dir, []rules.Permission{q}, nil); !errors.Is(err, reconcile.ErrDuplicate) {
					t.Errorf("%s described %q: err = %v, want ErrDuplicate", p.Key, desc, err)
				}
			}
		}
	}
	all, err := e.client.DescribeRules(ctx, []string{web})
	if err != nil {
		t.Fatal(err)
	}
	n := map[rules.Key]int{}
	for _, r := range all {
		if n[r.Key]++; n[r.Key] == 2 {
			t.Errorf("two rules for %s", r.Key)
		}
	}
}
