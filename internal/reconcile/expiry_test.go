package reconcile

import (
	"reflect"
	"testing"
	"time"

	"github.com/sgrules/sgrules/pkg/rules"
)

// TestByDeadline: authorize splits a batch into one call per deadline and
// leaves out what has expired at the moment of the write.
func TestByDeadline(t *testing.T) {
	now := time.Date(2026, 12, 7, 11, 0, 0, 0, time.UTC)
	perm := func(port int32, at time.Time) rules.Permission {
		return rules.Permission{Key: rules.Key{GroupID: "sg-1", Direction: rules.Ingress, Protocol: "tcp", FromPort: port, ToPort: port,
			Peer: rules.Peer{Kind: rules.PeerCIDR4, Value: "10.0.0.0/8"}}, ExpiresAt: at}
	}
	later, later2 := now.Add(time.Hour), now.Add(2*time.Hour)
	tests := []struct {
		name    string
		perms   []rules.Permission
		want    [][]int32
		expired int
	}{
		{"none", nil, nil, 0},
		{"permanent only", []rules.Permission{perm(1, time.Time{}), perm(2, time.Time{})}, [][]int32{{1, 2}}, 0},
		{"mixed", []rules.Permission{perm(1, later), perm(2, time.Time{}), perm(3, later2), perm(4, later)}, [][]int32{{1, 4}, {2}, {3}}, 0},
		{"expired at now", []rules.Permission{perm(1, now), perm(2, later), perm(3, now.Add(-time.Hour))}, [][]int32{{2}}, 2},
		{"all expired", []rules.Permission{perm(1, now)}, nil, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parts, expired := byDeadline(tc.perms, now)
			var got [][]int32
			for _, p := range parts {
				var ports []int32
				for _, x := range p {
					ports = append(ports, x.Key.FromPort)
				}
				got = append(got, ports)
			}
			if !reflect.DeepEqual(got, tc.want) || expired != tc.expired {
				t.Errorf("got %v, %d expired; want %v, %d", got, expired, tc.want, tc.expired)
			}
		})
	}
}

// TestUnexpired: a recorded declaration loses what has expired, and is
// returned as is when nothing has.
func TestUnexpired(t *testing.T) {
	now := time.Date(2026, 12, 7, 11, 0, 0, 0, time.UTC)
	a := rules.Permission{Owner: rules.Owner{Rule: "a"}}
	b := rules.Permission{Owner: rules.Owner{Rule: "b"}, ExpiresAt: now}
	c := rules.Permission{Owner: rules.Owner{Rule: "c"}, ExpiresAt: now.Add(time.Second)}
	in := []rules.Permission{a, b, c}
	if got := unexpired(in, now); !reflect.DeepEqual(got, []rules.Permission{a, c}) {
		t.Errorf("unexpired = %+v", got)
	}
	if !reflect.DeepEqual(in, []rules.Permission{a, b, c}) {
		t.Errorf("the record was changed: %+v", in)
	}
	if got := unexpired(in, now.Add(-time.Second)); &got[0] != &in[0] || len(got) != 3 {
		t.Errorf("nothing expired: want the same slice")
	}
	if got := unexpired(in, time.Time{}); !reflect.DeepEqual(got, []rules.Permission{a}) {
		t.Errorf("no clock: %+v, want only the permanent one", got)
	}
}

// TestDiffExpiredOutsideScope: in a sweep, an owner it keeps from the
// ledger without loading its source (unloaded) declares a permission no
// more once its record's deadline has passed, or, when its record could
// not be read, once the deadline tagged on a rule of this deployment has;
// a rule only unread owners declare is never created again.
func TestDiffExpiredOutsideScope(t *testing.T) {
	k := key(sgWeb, rules.Ingress, "tcp", 22, 22, rules.PeerCIDR4, "198.51.100.7/32")
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	past, future := "2026-12-07T11:00:00Z", "2026-12-07T13:00:00Z"
	deadline := time.Date(2026, 12, 7, 11, 0, 0, 0, time.UTC)
	owned := func(owners ...string) []OwnedPermission {
		m := map[rules.Owner]string{}
		for _, o := range owners {
			m[rules.ParseOwner(o)] = "ssh"
		}
		return []OwnedPermission{{Key: k, RuleID: "sgr-1", Owners: m, Description: "ssh", Version: 1}}
	}
	rule := func(tags map[string]string) []ActualRule {
		return []ActualRule{{Key: k, RuleID: "sgr-1", Description: "ssh", Tags: tags}}
	}
	ours := func(expires string) map[string]string {
		t := map[string]string{TagManaged: "true", TagLedger: "t1"}
		if expires != "" {
			t[TagExpiresAt] = expires
		}
		return t
	}
	expired := map[rules.Key]map[rules.Owner]time.Time{k: {rules.ParseOwner("f.yaml#ssh"): deadline}}
	unread := map[string]bool{"cfn/x": true}
	tests := []struct {
		name    string
		in      diffInput
		want    string
		reason  string
		put     int
		del     int
		expires bool
	}{
		{name: "expired in its record: revoked",
			in:   diffInput{owned: owned("f.yaml#ssh"), actual: rule(ours(past)), expired: expired},
			want: "revoke " + k.String() + " sgr-1 (loss)\n", reason: "expired at " + past, del: 1, expires: true},
		{name: "expired in its record, deleted by hand: forgotten, not created again",
			in:   diffInput{owned: owned("f.yaml#ssh"), expired: expired},
			want: "forget " + k.String() + " sgr-1\n", del: 1},
		{name: "expired in its record, declared by another owner: kept, the owner dropped",
			in:   diffInput{owned: owned("f.yaml#ssh", "g.yaml#ssh"), actual: rule(ours(past)), expired: expired},
			want: "", put: 1},
		{name: "unread, tagged deadline passed: revoked",
			in:   diffInput{owned: owned("cfn/x#R"), actual: rule(ours(past)), unread: unread},
			want: "revoke " + k.String() + " sgr-1 (loss)\n", reason: "expired at " + past, del: 1, expires: true},
		{name: "unread, tagged deadline to come: kept",
			in:   diffInput{owned: owned("cfn/x#R"), actual: rule(ours(future)), unread: unread},
			want: ""},
		{name: "unread, no deadline: kept",
			in:   diffInput{owned: owned("cfn/x#R"), actual: rule(ours("")), unread: unread},
			want: ""},
		{name: "unread, deadline tagged on a rule not of this deployment: kept",
			in:   diffInput{owned: owned("cfn/x#R"), actual: rule(map[string]string{TagExpiresAt: past}), unread: unread},
			want: ""},
		{name: "unread, tagged deadline passed, declared by another owner: kept",
			in:   diffInput{owned: owned("cfn/x#R", "g.yaml#ssh"), actual: rule(ours(past)), unread: unread},
			want: "", put: 1},
		{name: "unread, deleted by hand: not created again",
			in:   diffInput{owned: owned("cfn/x#R"), unread: unread},
			want: ""},
		{name: "unread and another owner, deleted by hand: created again",
			in:   diffInput{owned: owned("cfn/x#R", "g.yaml#ssh"), unread: unread},
			want: "authorize " + k.String() + " ssh (drift)\n", put: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.complete, in.now, in.ledgerID = true, now, "t1"
			in.known = map[string]bool{"f.yaml": true, "g.yaml": true, "cfn/x": true}
			in.groups = map[string]bool{sgWeb: true}
			out := diff(in)
			if got := render(out.plan); got != tc.want {
				t.Fatalf("plan:\n%s\nwant:\n%s", got, tc.want)
			}
			if len(out.put) != tc.put || len(out.del) != tc.del {
				t.Errorf("put %d del %d, want %d %d", len(out.put), len(out.del), tc.put, tc.del)
			}
			for _, p := range out.put {
				if _, ok := p.Owners[rules.ParseOwner("f.yaml#ssh")]; ok {
					t.Errorf("the expired owner is still recorded: %+v", p)
				}
				if _, ok := p.Owners[rules.ParseOwner("cfn/x#R")]; ok && tc.in.actual != nil {
					t.Errorf("the expired unread owner is still recorded: %+v", p)
				}
			}
			for _, a := range out.plan.Actions {
				if a.Kind == ActRevoke && (a.Reason != tc.reason || a.ExpiresAt.IsZero() != !tc.expires || a.LossSource == "") {
					t.Errorf("revoke: reason %q expires %v loss source %q, want %q", a.Reason, a.ExpiresAt, a.LossSource, tc.reason)
				}
			}
		})
	}
}

// TestRelativeGuardIgnoresUnloadedExpiry: the relative guard weighs the
// losses of the sweep's sources against what they owned; the expiries of
// sources the sweep does not load (a custom resource whose record does
// not decode) are neither, and hold nothing.
func TestRelativeGuardIgnoresUnloadedExpiry(t *testing.T) {
	at := &attempt{req: Request{All: true, RelativeGuard: true}, srcs: []*loaded{{key: "a.yaml"}}}
	var p planned
	for port := range int32(MinRelativeLosses) {
		k := key(sgWeb, rules.Ingress, "tcp", 8000+port, 8000+port, rules.PeerCIDR4, "10.0.0.0/8")
		at.st.owned = append(at.st.owned, OwnedPermission{Key: k, RuleID: "sgr-x", Owners: map[rules.Owner]string{{Source: "cfn/x", Rule: "R"}: ""}})
		p.plan.Actions = append(p.plan.Actions, Action{Kind: ActRevoke, Cause: CauseUndeclared, Key: k, Loss: true, LossSource: "cfn/x",
			ExpiresAt: time.Date(2026, 12, 7, 11, 0, 0, 0, time.UTC)})
	}
	if h := relativeHold(at, &p); h != nil {
		t.Fatalf("held: %+v", h)
	}
}
