package rules

import (
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// The internet: what "open to the world" means (docs/policy.md). A set of
// CIDRs is open to the world when, taken together, it covers the globally
// routable space of an address family: for IPv4 every address but the
// special-purpose ranges below, for IPv6 the global unicast space
// 2000::/3. So 0.0.0.0/1 with 128.0.0.0/1, or 2000::/3 alone, is as open as
// 0.0.0.0/0 and ::/0; a set covering everything but 10.0.0.0/8 is too.
//
// An IPv4-mapped IPv6 range (::ffff:0:0/96) is IPv6 space outside
// 2000::/3: a security group's IPv6 ranges match IPv6 traffic only, never
// IPv4 packets, so it opens nothing of the IPv4 internet.

// SpecialIPv4 are the IPv4 ranges that are not globally routable (IANA
// special-purpose registry, RFC 6890 and successors), in address order.
var SpecialIPv4 = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // this network
	netip.MustParsePrefix("10.0.0.0/8"),      // private
	netip.MustParsePrefix("100.64.0.0/10"),   // shared address space (carrier-grade NAT)
	netip.MustParsePrefix("127.0.0.0/8"),     // loopback
	netip.MustParsePrefix("169.254.0.0/16"),  // link local
	netip.MustParsePrefix("172.16.0.0/12"),   // private
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation (TEST-NET-1)
	netip.MustParsePrefix("192.88.99.0/24"),  // deprecated 6to4 relay anycast
	netip.MustParsePrefix("192.168.0.0/16"),  // private
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation (TEST-NET-2)
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation (TEST-NET-3)
	netip.MustParsePrefix("224.0.0.0/4"),     // multicast
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and the limited broadcast address
}

// RoutableIPv6 is the globally routable IPv6 space: global unicast.
var RoutableIPv6 = netip.MustParsePrefix("2000::/3")

var routableIPv4 = sync.OnceValue(func() []netip.Prefix {
	return subtract(netip.MustParsePrefix("0.0.0.0/0"), SpecialIPv4)
})

// Internet returns the globally routable space of one address family as
// the fewest aligned prefixes: IPv4 without the special-purpose ranges,
// or 2000::/3. The slice is fresh.
func Internet(ipv6 bool) []netip.Prefix {
	if ipv6 {
		return []netip.Prefix{RoutableIPv6}
	}
	return slices.Clone(routableIPv4())
}

// IsInternet reports whether c stands for the internet: 0.0.0.0/0 or ::/0.
func IsInternet(c netip.Prefix) bool { return c.IsValid() && c.Bits() == 0 }

// Space returns the addresses a CIDR of a guardrail stands for: the
// routable space of its family for 0.0.0.0/0 and ::/0 (the internet), c
// itself otherwise.
func Space(c netip.Prefix) []netip.Prefix {
	if IsInternet(c) {
		return Internet(c.Addr().Is6())
	}
	return []netip.Prefix{c.Masked()}
}

// Covers reports whether the union of set contains every address of every
// prefix of target. Prefixes of the other family never cover; invalid
// prefixes are ignored; an empty target is covered.
func Covers(set, target []netip.Prefix) bool {
	norm := normalise(set)
	for _, t := range target {
		if t.IsValid() && !covered(t.Masked(), norm) {
			return false
		}
	}
	return true
}

// Cover returns the indexes into set of a minimal subset whose union
// covers target, broadest first (ties in set order); ok is false, with no
// indexes, when set does not cover target. Greedy: the broadest prefix
// that adds addresses of target not yet covered is taken first. As CIDR
// prefixes either nest or are disjoint, every prefix taken adds addresses
// no other taken prefix has, so none can be left out.
func Cover(set, target []netip.Prefix) (idx []int, ok bool) {
	if !mayCover(set, target) {
		return nil, false
	}
	order := make([]int, 0, len(set))
	for i, p := range set {
		if p.IsValid() {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return set[a].Bits() - set[b].Bits() })
	var chosen []netip.Prefix
	for _, i := range order {
		p := set[i].Masked()
		if !overlapsAny(p, target) || slices.ContainsFunc(chosen, func(c netip.Prefix) bool { return contains(c, p) }) {
			continue
		}
		chosen = append(chosen, p)
		idx = append(idx, i)
	}
	if len(target) == 0 || !Covers(chosen, target) {
		return nil, false
	}
	return idx, true
}

// WorldOpen reports whether set, taken together, covers the internet of
// IPv4 or of IPv6, with the indexes of a minimal subset responsible
// (broadest first; IPv4 before IPv6 when both are).
func WorldOpen(set []netip.Prefix) (idx []int, ok bool) {
	i4, ok4 := Cover(set, Internet(false))
	i6, ok6 := Cover(set, Internet(true))
	switch {
	case ok4 && ok6:
		return append(i4, i6...), true
	case ok4:
		return i4, true
	case ok6:
		return i6, true
	}
	return nil, false
}

// PrefixesText renders prefixes for messages: "0.0.0.0/1, 128.0.0.0/1".
func PrefixesText(ps []netip.Prefix) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.String()
	}
	return strings.Join(parts, ", ")
}

// mayCover is a quick necessary condition of Cover: set holds at least as
// many addresses (counted with overlaps) as the largest prefix of target.
func mayCover(set, target []netip.Prefix) bool {
	size := func(p netip.Prefix) float64 { return math.Ldexp(1, p.Addr().BitLen()-p.Bits()) }
	need := 0.0
	for _, t := range target {
		if t.IsValid() {
			need = max(need, size(t))
		}
	}
	have := 0.0
	for _, p := range set {
		if p.IsValid() {
			have += size(p)
		}
	}
	return have >= need
}

func normalise(set []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(set))
	for _, p := range set {
		if p.IsValid() {
			out = append(out, p.Masked())
		}
	}
	return out
}

// contains reports whether prefix x contains prefix c (same family).
func contains(x, c netip.Prefix) bool {
	return x.Addr().BitLen() == c.Addr().BitLen() && x.Bits() <= c.Bits() && x.Contains(c.Addr())
}

func overlapsAny(p netip.Prefix, target []netip.Prefix) bool {
	return slices.ContainsFunc(target, func(t netip.Prefix) bool {
		return t.IsValid() && t.Addr().BitLen() == p.Addr().BitLen() && t.Overlaps(p)
	})
}

// covered reports whether the union of set (masked) covers t: one prefix
// contains t, or both halves of t are covered by the prefixes inside t.
func covered(t netip.Prefix, set []netip.Prefix) bool {
	var inside []netip.Prefix
	for _, s := range set {
		if contains(s, t) {
			return true
		}
		if contains(t, s) {
			inside = append(inside, s)
		}
	}
	if len(inside) == 0 {
		return false
	}
	lo, hi := halves(t)
	return covered(lo, inside) && covered(hi, inside)
}

// subtract returns t without the holes, as the fewest aligned prefixes in
// address order.
func subtract(t netip.Prefix, holes []netip.Prefix) []netip.Prefix {
	var inside []netip.Prefix
	for _, h := range holes {
		if contains(h, t) {
			return nil
		}
		if contains(t, h) {
			inside = append(inside, h)
		}
	}
	if len(inside) == 0 {
		return []netip.Prefix{t}
	}
	lo, hi := halves(t)
	return append(subtract(lo, inside), subtract(hi, inside)...)
}

// halves splits t (shorter than a host prefix) into its two halves.
func halves(t netip.Prefix) (lo, hi netip.Prefix) {
	b := t.Bits()
	a := t.Addr().AsSlice()
	a[b/8] |= 0x80 >> (b % 8)
	h, _ := netip.AddrFromSlice(a)
	return netip.PrefixFrom(t.Addr(), b+1), netip.PrefixFrom(h, b+1)
}
