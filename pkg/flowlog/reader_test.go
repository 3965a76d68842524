package flowlog

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
)

func gz(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func readAll(t *testing.T, data []byte) ([]Record, ReadStats, error) {
	t.Helper()
	rd, err := NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, ReadStats{}, err
	}
	var out []Record
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out, rd.Stats(), nil
		}
		if err != nil {
			return out, rd.Stats(), err
		}
		out = append(out, *rec)
	}
}

func TestReader(t *testing.T) {
	a := netip.MustParseAddr
	ssh := Record{Interface: "eni-1235b8ca123456789", Src: a("172.31.16.139"), Dst: a("172.31.16.21"),
		SrcPort: 20641, DstPort: 22, Protocol: 6, Packets: 20, Bytes: 4249, Start: 1418530010, End: 1418530070, Action: ActionAccept}
	tests := []struct {
		name      string
		text      string
		want      []Record
		malformed int64
		noData    int64
		skipData  int64
		reasons   []string
	}{
		{
			name: "default v2",
			text: DefaultFormat + "\n" +
				"2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK\n",
			want: []Record{ssh},
		},
		{
			name: "no final newline, CRLF, blank lines",
			text: DefaultFormat + "\r\n\r\n" +
				"2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK",
			want: []Record{ssh},
		},
		{
			name: "custom fields in another order, unknown fields skipped",
			text: "action srcport interface-id instance-id dstaddr srcaddr dstport protocol bytes vpc-id flow-direction tcp-flags pkt-srcaddr pkt-dstaddr start end\n" +
				"REJECT 443 eni-a i-0123 2001:db8::1 10.0.0.5 55000 6 80 vpc-1 egress 18 10.0.0.99 - 5 9\n",
			want: []Record{{Interface: "eni-a", VPCID: "vpc-1", Src: a("10.0.0.5"), Dst: a("2001:db8::1"), PktSrc: a("10.0.0.99"),
				SrcPort: 443, DstPort: 55000, Protocol: 6, Bytes: 80, Start: 5, End: 9, Action: ActionReject,
				FlowDirection: DirEgress, TCPFlags: 18, HasTCPFlags: true}},
		},
		{
			name: "underscore names (Athena columns)",
			text: "interface_id srcaddr dstaddr srcport dstport protocol action flow_direction\n" +
				"eni-a 10.0.0.1 10.0.0.2 1 2 17 ACCEPT ingress\n",
			want: []Record{{Interface: "eni-a", Src: a("10.0.0.1"), Dst: a("10.0.0.2"), SrcPort: 1, DstPort: 2, Protocol: 17,
				Action: ActionAccept, FlowDirection: DirIngress}},
		},
		{
			name: "NODATA and SKIPDATA counted, not returned",
			text: DefaultFormat + "\n" +
				"2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA\n" +
				"2 123456789010 eni-11111111aaaaaaaaa - - - - - - - 1431280876 1431280934 - SKIPDATA\n",
			noData: 1, skipData: 1,
		},
		{
			name: "malformed lines counted and skipped",
			text: DefaultFormat + "\n" +
				"2 123456789010 eni-a 10.0.0.1 10.0.0.2 1 2 6 1 1 1 2 ACCEPT\n" + // 13 fields
				"2 123456789010 eni-a 10.0.0.1 10.0.0.300 1 2 6 1 1 1 2 ACCEPT OK\n" +
				"2 123456789010 eni-a 10.0.0.1 10.0.0.2 1 70000 6 1 1 1 2 ACCEPT OK\n" +
				"2 123456789010 eni-a 10.0.0.1 10.0.0.2 1 2 6 1 1 1 2 MAYBE OK\n" +
				"2 123456789010 eni-a 10.0.0.1 10.0.0.2 1 2 x 1 1 1 2 ACCEPT OK\n" +
				"2 123456789010 - 10.0.0.1 10.0.0.2 1 2 6 1 1 1 2 ACCEPT OK\n" +
				"2 123456789010 eni-a - 10.0.0.2 1 2 6 1 1 1 2 ACCEPT OK\n" +
				"2 123456789010 eni-a 10.0.0.1 10.0.0.2 1 2 6 1 1 1 2 - OK\n" +
				"2 123456789010 eni-a fe80::1%eth0 10.0.0.2 1 2 6 1 1 1 2 ACCEPT OK\n" +
				"2 123456789010 eni-a 10.0.0.1 10.0.0.2 1 2 6 1 1 1 2 ACCEPT OK\n",
			want:      []Record{{Interface: "eni-a", Src: a("10.0.0.1"), Dst: a("10.0.0.2"), SrcPort: 1, DstPort: 2, Protocol: 6, Packets: 1, Bytes: 1, Start: 1, End: 2, Action: ActionAccept}},
			malformed: 9,
			reasons:   []string{"line 2: 13 fields, the header names 14", `line 3: dstaddr: "10.0.0.300"`, `line 4: dstport: "70000"`, `line 5: action: "MAYBE"`, `line 6: protocol: "x"`},
		},
	}
	for _, tc := range tests {
		for _, zip := range []bool{false, true} {
			name := tc.name
			data := []byte(tc.text)
			if zip {
				name += " (gzip)"
				data = gz(t, tc.text)
			}
			t.Run(name, func(t *testing.T) {
				got, st, err := readAll(t, data)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(tc.want) {
					t.Fatalf("got %d records %+v, want %d", len(got), got, len(tc.want))
				}
				for i := range got {
					if got[i] != tc.want[i] {
						t.Errorf("record %d:\n got %+v\nwant %+v", i, got[i], tc.want[i])
					}
				}
				if st.Malformed != tc.malformed || st.NoData != tc.noData || st.SkipData != tc.skipData || st.Records != int64(len(tc.want)) {
					t.Errorf("stats %+v", st)
				}
				for i, r := range tc.reasons {
					if i >= len(st.Examples) || st.Examples[i].String() != r {
						t.Errorf("example %d = %v, want %q", i, st.Examples, r)
					}
				}
			})
		}
	}
}

func TestReaderBadHeader(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"empty", "", "empty file"},
		{"record first", "2 123456789010 eni-a 10.0.0.1 10.0.0.2 1 2 6 1 1 1 2 ACCEPT OK\n", "lacks interface-id"},
		{"missing action", "interface-id srcaddr dstaddr srcport dstport protocol\n", "lacks action"},
		{"twice", "interface-id srcaddr srcaddr dstaddr srcport dstport protocol action\n", `"srcaddr" given twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewReader(strings.NewReader(tc.text))
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrFormat containing %q", err, tc.want)
			}
		})
	}
}

func TestReaderTruncatedGzip(t *testing.T) {
	text := DefaultFormat + "\n" + strings.Repeat("2 1 eni-a 10.0.0.1 10.0.0.2 1 2 6 1 1 1 2 ACCEPT OK\n", 1000)
	data := gz(t, text)
	got, _, err := readAll(t, data[:len(data)-10])
	if err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("truncated gzip: err = %v, want an error", err)
	}
	if len(got) == 0 {
		t.Fatalf("no record before the damage")
	}
}

func TestReaderLongLine(t *testing.T) {
	text := DefaultFormat + "\n" + strings.Repeat("x", maxLine+10) + "\n" +
		"2 1 eni-a 10.0.0.1 10.0.0.2 1 2 6 1 1 1 2 ACCEPT OK\n"
	got, st, err := readAll(t, []byte(text))
	if err != nil || len(got) != 1 || st.Malformed != 1 {
		t.Fatalf("got %d records, stats %+v, err %v", len(got), st, err)
	}
}

func TestParseAddr(t *testing.T) {
	for _, s := range []string{"0.0.0.0", "10.0.0.1", "255.255.255.255", "2001:db8::1", "::ffff:10.0.0.1", "1.2.3.4"} {
		got, bad := parseAddr([]byte(s))
		want := netip.MustParseAddr(s).Unmap()
		if bad || got != want {
			t.Errorf("parseAddr(%q) = %v, %v; want %v", s, got, bad, want)
		}
	}
	for _, s := range []string{"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1..2.3", "01.2.3.4", "a.b.c.d", "1.2.3.4/8", "fe80::1%eth0"} {
		if _, bad := parseAddr([]byte(s)); !bad {
			t.Errorf("parseAddr(%q) accepted", s)
		}
	}
}
