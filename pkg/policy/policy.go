package policy

import (
	"net/netip"
	"strings"
	"time"

	"github.com/sgrules/sgrules/pkg/rules"
)

// Enforce is what the drift sweep does with live rules that violate a deny
// clause.
type Enforce string

const (
	// EnforceReport reports violating live rules (the default).
	EnforceReport Enforce = "report"
	// EnforceRevoke revokes violating unmanaged live rules.
	EnforceRevoke Enforce = "revoke"
)

// Policy is a parsed, valid policy file.
type Policy struct {
	// Name is the file name or key used in diagnostics.
	Name    string
	Deny    []Clause
	Tenants []Tenant
	Enforce Enforce
}

// Clause is one deny clause. A clause matches a permission when every
// condition it sets matches (an unset condition matches everything) and
// the permission's group is not exempt.
type Clause struct {
	// ID as written ("no-world-ssh"); messages show it upper-cased.
	ID      string
	Message string
	// Pos locates the clause (its "id" value).
	Pos rules.Pos
	// Direction is "" for both.
	Direction rules.Direction
	// Protocol is canonical ("tcp", "-1", "47") or "" for any.
	Protocol string
	// Ports are port ranges (ICMP types for protocol icmp and icmpv6);
	// nil for any.
	Ports []PortRange
	// CIDRs match a CIDR peer that contains one of them.
	CIDRs []netip.Prefix
	// BroaderThan matches a CIDR peer with a shorter prefix; nil when
	// unset.
	BroaderThan *Broader
	// Groups, PeerGroups and Exempt are any-of lists of selectors; nil
	// when unset.
	Groups     []rules.GroupRef
	PeerGroups []rules.GroupRef
	Exempt     []rules.GroupRef
	// AllowIfExpiresWithin relaxes the clause for temporary rules: a
	// permission whose deadline (expiresAt) is at most this long after
	// the moment of the check (Facts.Now) is not denied, and does not
	// count with the others (see Clause.relaxed). Zero: not relaxed.
	AllowIfExpiresWithin time.Duration
}

// Name is the clause id as messages show it: upper-cased.
func (c *Clause) Name() string { return strings.ToUpper(c.ID) }

// PortRange is an inclusive range of ports (or ICMP types).
type PortRange struct {
	From, To int32
}

// Broader holds the prefix lengths of broaderThan; 0 means unset for that
// address family (a prefix shorter than /0 does not exist).
type Broader struct {
	IPv4 int
	IPv6 int
}

// Tenant restricts the rule files under Prefix to the groups matching
// Groups (any of) and, when set, to Accounts.
type Tenant struct {
	// Prefix is relative to the rules root and ends in "/".
	Prefix   string
	Pos      rules.Pos
	Groups   []rules.GroupRef
	Accounts []string
	// MaxDuration caps the tenant's rules: each must carry a deadline
	// (expiresAt) at most this long after the moment of the check. Zero:
	// no cap.
	MaxDuration time.Duration
	// MaxDurationPos locates the maxDuration value.
	MaxDurationPos rules.Pos
}

// Label names the tenant in messages: "tenant team-a/".
func (t *Tenant) Label() string { return "tenant " + t.Prefix }
