package rules

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Direction is the traffic direction of a rule: ingress or egress.
type Direction string

const (
	Ingress Direction = "ingress"
	Egress  Direction = "egress"
)

// Canonical protocol names, as EC2 reports them.
const (
	ProtoTCP    = "tcp"
	ProtoUDP    = "udp"
	ProtoICMP   = "icmp"
	ProtoICMPv6 = "icmpv6"
	ProtoAll    = "-1"
)

// GroupRef names a security group in one of three forms: an id
// ("sg-0123456789abcdef0"), a name within a VPC, or a set of tags that must
// match exactly one group. Exactly one form is set. Account is set only
// with ID, only for a source group in another account than the file's
// target ({groupId: sg-…, account: "…"} in sourceSecurityGroups).
type GroupRef struct {
	ID      string
	Account string
	Name    string
	VPCID   string
	Tags    map[string]string
}

// IsID reports whether the reference is a literal group id.
func (g GroupRef) IsID() bool { return g.ID != "" }

// String is the canonical, stable text of the reference, usable as a map key:
// "sg-…", "ACCOUNT/sg-…" (a group in another account), "name:NAME@vpc-…"
// or "tags:K1=V1,K2=V2" (keys sorted).
func (g GroupRef) String() string {
	switch {
	case g.ID != "" && g.Account != "":
		return g.Account + "/" + g.ID
	case g.ID != "":
		return g.ID
	case g.Name != "":
		return "name:" + g.Name + "@" + g.VPCID
	default:
		keys := make([]string, 0, len(g.Tags))
		for k := range g.Tags {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + g.Tags[k]
		}
		return "tags:" + strings.Join(parts, ",")
	}
}

// Pos is a position in a source file (1-based; zero when unknown).
type Pos struct {
	Line int
	Col  int
}

// Rule is one named rule of a rule file, validated and normalised:
// Protocol is canonical ("tcp", "udp", "icmp", "icmpv6", "-1", or a decimal
// protocol number such as "47"), and ports are -1 where EC2 stores -1
// (protocol -1 and numbered protocols; ICMP "all types/codes").
type Rule struct {
	Name          string
	Pos           Pos
	SecurityGroup GroupRef
	Direction     Direction
	Protocol      string
	FromPort      int32
	ToPort        int32
	// CIDRBlocks and IPv6CIDRBlocks are canonical (masked) prefixes.
	CIDRBlocks           []netip.Prefix
	IPv6CIDRBlocks       []netip.Prefix
	SourceSecurityGroups []GroupRef
	PrefixListIDs        []string
	Description          string
	// ExpiresAt is the rule's deadline (expiresAt), in UTC; zero when the
	// rule never expires. From that moment on the rule is not declared
	// (Expired, Expand).
	ExpiresAt time.Time
	// FieldPos locates the value node of each field, keyed by field path:
	// "securityGroup", "type", "protocol", "fromPort", "toPort",
	// "description", "expiresAt", the list fields themselves ("cidrBlocks") and each
	// element ("cidrBlocks[0]", "ipv6CidrBlocks[2]",
	// "sourceSecurityGroups[1]", "prefixListIds[0]"). Indexes are those of
	// the rule's slices. Absent fields have no entry; positions are zero for
	// rules from ParseValue. Pos (above) locates the rule's name.
	FieldPos map[string]Pos
}

// File is a parsed, valid rule file.
type File struct {
	// Name is the file name or source key used in diagnostics and as owner.
	Name string
	// Rules in file order.
	Rules []Rule
	// ExclusiveGroups lists the groups this file manages exclusively: every
	// rule in them that no source declares is revoked.
	ExclusiveGroups []GroupRef
	// ExclusivePos locates each ExclusiveGroups entry (same index).
	ExclusivePos []Pos
	// Target is the account and region of the file's groups, from the
	// top-level account and region fields; absent fields are empty (the
	// hub's own account and region: see Target.Resolve).
	Target Target
	// TargetPos locates the values of "account" and "region" when present.
	TargetPos map[string]Pos
	// AllowUsedRemoval names the rules (by name, as the file declared
	// them) whose permissions this change may revoke or narrow although
	// they carried traffic lately (allowUsedRemoval): the acknowledgement
	// a reviewer sees in the pull request (docs/usage.md). A name may be
	// of a rule the file no longer declares. AllowUsedPos locates each.
	AllowUsedRemoval []string
	AllowUsedPos     []Pos
}

// AllowsUsedRemoval reports whether the file acknowledges removing the
// used permissions of the rule named.
func (f *File) AllowsUsedRemoval(rule string) bool {
	if f == nil {
		return false
	}
	for _, n := range f.AllowUsedRemoval {
		if n == rule {
			return true
		}
	}
	return false
}

// PeerKind tells what a permission's peer is.
type PeerKind string

const (
	PeerCIDR4      PeerKind = "cidr4"
	PeerCIDR6      PeerKind = "cidr6"
	PeerGroup      PeerKind = "sg"
	PeerPrefixList PeerKind = "pl"
)

// Peer is the one source (ingress) or destination (egress) of a permission.
// Value is a canonical CIDR, a resolved group id, or a prefix list id.
// Account is set only for a group peer in another account than the
// permission's group (EC2's UserIdGroupPairs UserId); empty means the same
// account.
type Peer struct {
	Kind    PeerKind
	Value   string
	Account string
}

// String renders "KIND:VALUE", or "sg:ACCOUNT/sg-…" for a group in another
// account.
func (p Peer) String() string {
	if p.Account != "" {
		return string(p.Kind) + ":" + p.Account + "/" + p.Value
	}
	return string(p.Kind) + ":" + p.Value
}

// InAccount returns the peer as seen from a group in account: a group peer
// naming that same account loses its Account (it is local there).
func (p Peer) InAccount(account string) Peer {
	if p.Account != "" && p.Account == account {
		p.Account = ""
	}
	return p
}

// Key is the canonical identity of one EC2 security group rule: two rules
// with equal keys are the same rule to EC2. It is comparable and usable as
// a map key.
type Key struct {
	GroupID   string
	Direction Direction
	Protocol  string
	FromPort  int32
	ToPort    int32
	Peer      Peer
}

// String renders the key as "sg-…|ingress|tcp|80|80|cidr4:0.0.0.0/0".
// ParseKey is its inverse.
func (k Key) String() string {
	return k.GroupID + "|" + string(k.Direction) + "|" + k.Protocol + "|" +
		strconv.Itoa(int(k.FromPort)) + "|" + strconv.Itoa(int(k.ToPort)) + "|" + k.Peer.String()
}

// Less orders keys by their fields, for stable plans and output.
func (k Key) Less(o Key) bool {
	if k.GroupID != o.GroupID {
		return k.GroupID < o.GroupID
	}
	if k.Direction != o.Direction {
		return k.Direction < o.Direction
	}
	if k.Protocol != o.Protocol {
		return k.Protocol < o.Protocol
	}
	if k.FromPort != o.FromPort {
		return k.FromPort < o.FromPort
	}
	if k.ToPort != o.ToPort {
		return k.ToPort < o.ToPort
	}
	if k.Peer.Kind != o.Peer.Kind {
		return k.Peer.Kind < o.Peer.Kind
	}
	if k.Peer.Account != o.Peer.Account {
		return k.Peer.Account < o.Peer.Account
	}
	return k.Peer.Value < o.Peer.Value
}

// ParseKey parses the text form produced by Key.String, with or without
// a peer account ("…|sg:sg-…" and "…|sg:111122223333/sg-…").
func ParseKey(s string) (Key, error) {
	f := strings.Split(s, "|")
	if len(f) != 6 {
		return Key{}, fmt.Errorf("parse key %q: want 6 fields, got %d", s, len(f))
	}
	from, err := strconv.ParseInt(f[3], 10, 32)
	if err != nil {
		return Key{}, fmt.Errorf("parse key %q: from port: %w", s, err)
	}
	to, err := strconv.ParseInt(f[4], 10, 32)
	if err != nil {
		return Key{}, fmt.Errorf("parse key %q: to port: %w", s, err)
	}
	kind, val, ok := strings.Cut(f[5], ":")
	if !ok {
		return Key{}, fmt.Errorf("parse key %q: peer %q has no kind", s, f[5])
	}
	d := Direction(f[1])
	if d != Ingress && d != Egress {
		return Key{}, fmt.Errorf("parse key %q: direction %q", s, f[1])
	}
	peer := Peer{Kind: PeerKind(kind), Value: val}
	if peer.Kind == PeerGroup {
		if acct, id, ok := strings.Cut(val, "/"); ok {
			if !IsAccountID(acct) {
				return Key{}, fmt.Errorf("parse key %q: peer account %q is not 12 digits", s, acct)
			}
			peer.Account, peer.Value = acct, id
		}
	}
	return Key{GroupID: f[0], Direction: d, Protocol: f[2], FromPort: int32(from), ToPort: int32(to), Peer: peer}, nil
}

// Owner identifies who declares a permission: a source (file key or
// custom resource key) and the rule name within it.
type Owner struct {
	Source string
	Rule   string
}

func (o Owner) String() string { return o.Source + "#" + o.Rule }

// Permission is one EC2 security group rule as declared: the canonical key,
// the description, its owner, and the deadline of the rule that declares it
// (ExpiresAt, UTC; zero: none).
type Permission struct {
	Key         Key
	Description string
	Owner       Owner
	ExpiresAt   time.Time
}

// SortPermissions sorts by key, then owner, for stable output.
func SortPermissions(ps []Permission) {
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Key != ps[j].Key {
			return ps[i].Key.Less(ps[j].Key)
		}
		return ps[i].Owner.String() < ps[j].Owner.String()
	})
}
