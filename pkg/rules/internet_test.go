package rules

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func prefixes(s string) []netip.Prefix {
	var out []netip.Prefix
	for _, f := range strings.Fields(s) {
		out = append(out, netip.MustParsePrefix(f))
	}
	return out
}

func TestInternet(t *testing.T) {
	v4 := Internet(false)
	// The routable prefixes and the special ranges partition IPv4.
	if !Covers(append(v4, SpecialIPv4...), prefixes("0.0.0.0/0")) {
		t.Fatal("routable + special do not cover IPv4")
	}
	for _, r := range v4 {
		for _, s := range SpecialIPv4 {
			if r.Overlaps(s) {
				t.Fatalf("routable %s overlaps special %s", r, s)
			}
		}
	}
	for _, a := range []string{"8.8.8.8", "1.0.0.0", "223.255.255.255", "100.128.0.0", "172.32.0.0", "192.0.1.0", "198.20.0.0"} {
		if !Covers(v4, prefixes(a+"/32")) {
			t.Errorf("%s is not routable", a)
		}
	}
	for _, a := range []string{"10.1.2.3", "127.0.0.1", "169.254.169.254", "172.31.255.255", "192.168.1.1", "224.0.0.1", "255.255.255.255", "0.0.0.0", "100.64.0.1", "198.19.0.0"} {
		if Covers(v4, prefixes(a+"/32")) {
			t.Errorf("%s is routable", a)
		}
	}
	if got := Internet(true); !reflect.DeepEqual(got, prefixes("2000::/3")) {
		t.Errorf("IPv6 internet %v", got)
	}
	v4[0] = netip.Prefix{}
	if !Internet(false)[0].IsValid() {
		t.Error("Internet returned shared storage")
	}
}

func TestSpace(t *testing.T) {
	if got := Space(netip.MustParsePrefix("::/0")); !reflect.DeepEqual(got, prefixes("2000::/3")) {
		t.Errorf("::/0 → %v", got)
	}
	if got := Space(netip.MustParsePrefix("0.0.0.0/0")); len(got) < 10 {
		t.Errorf("0.0.0.0/0 → %v", got)
	}
	if got := Space(netip.MustParsePrefix("10.0.0.0/8")); !reflect.DeepEqual(got, prefixes("10.0.0.0/8")) {
		t.Errorf("10.0.0.0/8 → %v", got)
	}
}

func TestWorldOpen(t *testing.T) {
	// Everything routable but a private range, written as the complement
	// of 10.0.0.0/8: 0/5 8/7 11/8 12/6 16/4 32/3 64/2 128/1.
	but10 := "0.0.0.0/5 8.0.0.0/7 11.0.0.0/8 12.0.0.0/6 16.0.0.0/4 32.0.0.0/3 64.0.0.0/2 128.0.0.0/1"
	tests := []struct {
		name string
		set  string
		open bool
		want string // the responsible prefixes, in order
	}{
		{"ipv4 /0", "0.0.0.0/0", true, "0.0.0.0/0"},
		{"ipv6 /0", "::/0", true, "::/0"},
		{"both /0", "::/0 0.0.0.0/0", true, "0.0.0.0/0 ::/0"},
		{"halves", "0.0.0.0/1 128.0.0.0/1", true, "0.0.0.0/1 128.0.0.0/1"},
		{"quarters", "192.0.0.0/2 0.0.0.0/2 128.0.0.0/2 64.0.0.0/2", true, "192.0.0.0/2 0.0.0.0/2 128.0.0.0/2 64.0.0.0/2"},
		{"three quarters", "0.0.0.0/2 64.0.0.0/2 128.0.0.0/2", false, ""},
		{"global unicast", "2000::/3", true, "2000::/3"},
		{"global unicast halves", "2000::/4 3000::/4", true, "2000::/4 3000::/4"},
		{"half of global unicast", "2000::/4", false, ""},
		{"all but 10/8", but10, true, "128.0.0.0/1 64.0.0.0/2 32.0.0.0/3 16.0.0.0/4 0.0.0.0/5 12.0.0.0/6 8.0.0.0/7 11.0.0.0/8"},
		{"all but 8.0.0.0/8", "0.0.0.0/5 9.0.0.0/8 10.0.0.0/7 12.0.0.0/6 16.0.0.0/4 32.0.0.0/3 64.0.0.0/2 128.0.0.0/1", false, ""},
		{"redundant narrower left out", "10.0.0.0/8 0.0.0.0/1 1.0.0.0/8 128.0.0.0/1 200.0.0.0/8", true, "0.0.0.0/1 128.0.0.0/1"},
		{"duplicates once", "0.0.0.0/1 0.0.0.0/1 128.0.0.0/1", true, "0.0.0.0/1 128.0.0.0/1"},
		{"private only", "10.0.0.0/8 172.16.0.0/12 192.168.0.0/16", false, ""},
		{"ipv4-mapped never covers ipv4", "::ffff:0.0.0.0/96", false, ""},
		{"ipv4-mapped halves", "::ffff:0.0.0.0/97 ::ffff:128.0.0.0/97", false, ""},
		{"6to4 and teredo only", "2002::/16 2001::/32", false, ""},
		{"unique local", "fc00::/7", false, ""},
		{"empty", "", false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set := prefixes(tc.set)
			idx, open := WorldOpen(set)
			if open != tc.open {
				t.Fatalf("open = %v, want %v", open, tc.open)
			}
			var got []netip.Prefix
			for _, i := range idx {
				got = append(got, set[i])
			}
			if PrefixesText(got) != PrefixesText(prefixes(tc.want)) {
				t.Errorf("responsible %s, want %s", PrefixesText(got), PrefixesText(prefixes(tc.want)))
			}
		})
	}
}

func TestCovers(t *testing.T) {
	tests := []struct {
		name        string
		set, target string
		want        bool
	}{
		{"contains", "10.0.0.0/8", "10.1.0.0/16", true},
		{"equal", "10.1.0.0/16", "10.1.0.0/16", true},
		{"narrower", "10.1.0.0/16", "10.0.0.0/8", false},
		{"halves of a /8", "10.0.0.0/9 10.128.0.0/9", "10.0.0.0/8", true},
		{"host bits are masked", "10.0.0.1/9 10.128.0.0/9", "10.0.0.5/8", true},
		{"many /10s", "10.0.0.0/10 10.64.0.0/10 10.128.0.0/10 10.192.0.0/10", "10.0.0.0/8", true},
		{"gap", "10.0.0.0/10 10.64.0.0/10 10.192.0.0/10", "10.0.0.0/8", false},
		{"other family", "::/0", "10.0.0.0/8", false},
		{"ipv4 does not cover mapped", "0.0.0.0/0", "::ffff:10.0.0.0/104", false},
		{"ipv6 /0 covers mapped", "::/0", "::ffff:10.0.0.0/104", true},
		{"mapped does not cover ipv4", "::ffff:0.0.0.0/96", "10.0.0.0/8", false},
		{"host routes", "192.0.2.0/32 192.0.2.1/32 192.0.2.2/31", "192.0.2.0/30", true},
		{"ipv6 host routes", "2001:db8::/128 2001:db8::1/128", "2001:db8::/127", true},
		{"ipv6 /0 by halves", "::/1 8000::/1", "::/0", true},
		{"empty target", "", "", true},
		{"empty set", "", "10.0.0.0/8", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Covers(prefixes(tc.set), prefixes(tc.target)); got != tc.want {
				t.Errorf("Covers = %v, want %v", got, tc.want)
			}
		})
	}
	if Covers([]netip.Prefix{{}}, prefixes("10.0.0.0/8")) {
		t.Error("an invalid prefix covers")
	}
	if _, ok := Cover(prefixes("0.0.0.0/0"), nil); ok {
		t.Error("Cover of nothing: want not ok (nothing is responsible)")
	}
}

func BenchmarkWorldOpen(b *testing.B) {
	// 1024 /10s: the IPv4 space the long way.
	var set []netip.Prefix
	for i := range 1024 {
		set = append(set, netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(i >> 2), byte(i&3) << 6, 0, 0}), 10))
	}
	for b.Loop() {
		if _, ok := WorldOpen(set); !ok {
			b.Fatal("not open")
		}
	}
}

// Many narrow prefixes are rejected without building a cover.
func BenchmarkCoverManyNarrow(b *testing.B) {
	var set []netip.Prefix
	for i := range 1000 {
		set = append(set, netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(1 + i/256), byte(i % 256), 0, 0}), 24))
	}
	target := Internet(false)
	for b.Loop() {
		if _, ok := Cover(set, target); ok {
			b.Fatal("covered")
		}
	}
}
