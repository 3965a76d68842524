package flowlog

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	a := netip.MustParseAddr
	web, client := a("10.0.1.10"), a("198.51.100.7")
	tcp := func(src, dst netip.Addr, sp, dp uint16) Record {
		return Record{Interface: "eni-w", Src: src, Dst: dst, SrcPort: sp, DstPort: dp, Protocol: ProtoTCP, Action: ActionAccept}
	}
	with := func(r Record, f func(*Record)) Record { f(&r); return r }
	tests := []struct {
		name string
		rec  Record
		want FlowKey
		fwd  bool
	}{
		{
			name: "SYN from the client: client opened, port 443",
			rec:  with(tcp(client, web, 50000, 443), func(r *Record) { r.TCPFlags, r.HasTCPFlags = FlagSYN|FlagFIN|FlagPSH, true }),
			want: FlowKey{Interface: "eni-w", Protocol: 6, Class: Handshake, A: client, B: web, BPort: 443}, fwd: true,
		},
		{
			name: "SYN-ACK from the server: same flow, reverse record",
			rec:  with(tcp(web, client, 443, 50000), func(r *Record) { r.TCPFlags, r.HasTCPFlags = FlagSYNACK, true }),
			want: FlowKey{Interface: "eni-w", Protocol: 6, Class: Handshake, A: client, B: web, BPort: 443}, fwd: false,
		},
		{
			name: "SYN-ACK wins over ports: a server on a high port",
			rec:  with(tcp(web, client, 50001, 80), func(r *Record) { r.TCPFlags, r.HasTCPFlags = FlagSYNACK, true }),
			want: FlowKey{Interface: "eni-w", Protocol: 6, Class: Handshake, A: client, B: web, BPort: 50001}, fwd: false,
		},
		{
			name: "flags without SYN fall back to ports",
			rec:  with(tcp(client, web, 50000, 443), func(r *Record) { r.TCPFlags, r.HasTCPFlags = FlagFIN, true }),
			want: FlowKey{Interface: "eni-w", Protocol: 6, Class: Ports, A: client, B: web, BPort: 443}, fwd: true,
		},
		{
			name: "ports: well-known port listens",
			rec:  tcp(web, client, 443, 1500),
			want: FlowKey{Interface: "eni-w", Protocol: 6, Class: Ports, A: client, B: web, BPort: 443}, fwd: false,
		},
		{
			name: "ports: registered against ephemeral",
			rec:  tcp(client, web, 40000, 8080),
			want: FlowKey{Interface: "eni-w", Protocol: 6, Class: Ports, A: client, B: web, BPort: 8080}, fwd: true,
		},
		{
			name: "ports of one kind: ambiguous, lower address first",
			rec:  tcp(client, web, 40000, 50000),
			want: FlowKey{Interface: "eni-w", Protocol: 6, Class: Ambiguous, A: web, B: client, APort: 50000, BPort: 40000}, fwd: false,
		},
		{
			name: "ambiguous with flow-direction: the interface first",
			rec:  with(tcp(client, web, 8080, 9090), func(r *Record) { r.FlowDirection = DirIngress; r.Src, r.Dst = a("10.0.0.1"), a("10.0.0.2") }),
			want: FlowKey{Interface: "eni-w", Protocol: 6, Class: Ambiguous, Local: SideA, A: a("10.0.0.2"), B: a("10.0.0.1"), APort: 9090, BPort: 8080}, fwd: false,
		},
		{
			name: "icmp is ambiguous, ports dropped",
			rec:  Record{Interface: "eni-w", Src: client, Dst: web, SrcPort: 3, DstPort: 4, Protocol: ProtoICMP, Action: ActionAccept},
			want: FlowKey{Interface: "eni-w", Protocol: 1, Class: Ambiguous, A: web, B: client}, fwd: false,
		},
		{
			name: "udp dns from the interface, flow-direction egress",
			rec:  Record{Interface: "eni-w", Src: web, Dst: a("10.0.0.2"), SrcPort: 53123, DstPort: 53, Protocol: ProtoUDP, FlowDirection: DirEgress},
			want: FlowKey{Interface: "eni-w", Protocol: 17, Class: Ports, Local: SideA, A: web, B: a("10.0.0.2"), BPort: 53}, fwd: true,
		},
		{
			name: "reply on ingress: local is the opener",
			rec:  Record{Interface: "eni-w", Src: a("10.0.0.2"), Dst: web, SrcPort: 53, DstPort: 53123, Protocol: ProtoUDP, FlowDirection: DirIngress},
			want: FlowKey{Interface: "eni-w", Protocol: 17, Class: Ports, Local: SideA, A: web, B: a("10.0.0.2"), BPort: 53}, fwd: false,
		},
		{
			name: "pkt-srcaddr is the peer",
			rec:  with(tcp(a("10.0.9.9"), web, 50000, 22), func(r *Record) { r.PktSrc = client; r.FlowDirection = DirIngress }),
			want: FlowKey{Interface: "eni-w", Protocol: 6, Class: Ports, Local: SideB, A: client, B: web, BPort: 22}, fwd: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, fwd := Classify(&tc.rec)
			if got != tc.want || fwd != tc.fwd {
				t.Errorf("Classify = %+v fwd=%v\nwant       %+v fwd=%v", got, fwd, tc.want, tc.fwd)
			}
		})
	}
}

func TestAggregatorWindowAndActions(t *testing.T) {
	text := DefaultFormat + "\n" +
		"2 1 eni-a 10.0.0.1 10.0.0.2 50000 22 6 1 100 1000 1060 ACCEPT OK\n" +
		"2 1 eni-a 10.0.0.2 10.0.0.1 22 50000 6 1 40 1000 1060 ACCEPT OK\n" +
		"2 1 eni-a 10.0.0.1 10.0.0.2 50001 22 6 1 7 1100 1160 ACCEPT OK\n" +
		"2 1 eni-a 10.0.0.3 10.0.0.2 50000 22 6 1 100 1000 1060 REJECT OK\n" +
		"2 1 eni-a 10.0.0.1 10.0.0.2 50000 22 6 1 100 10 60 ACCEPT OK\n" + // before the window
		"2 1 eni-a 10.0.0.1 10.0.0.2 50000 22 6 1 100 9000 9060 ACCEPT OK\n" + // after
		"garbage\n"
	ag := NewAggregator(time.Unix(900, 0), time.Unix(5000, 0))
	if err := ag.AddObject("a.log", strings.NewReader(text)); err != nil {
		t.Fatal(err)
	}
	if err := ag.AddObject("b.log", strings.NewReader("not a header\n")); err == nil || !strings.Contains(err.Error(), "b.log") {
		t.Fatalf("bad object: err = %v", err)
	}
	st := ag.Stats()
	if st.Accepted != 3 || st.Rejected != 1 || st.OutsideWindow != 2 || st.Malformed != 1 || st.Objects != 2 || st.BadObjects != 1 {
		t.Errorf("stats %+v", st)
	}
	if len(st.Examples) != 1 || st.Examples[0].String() != `a.log:8: 1 fields, the header names 14` {
		t.Errorf("examples %v", st.Examples)
	}
	flows := ag.Flows()
	if len(flows) != 1 {
		t.Fatalf("flows %v", flows)
	}
	for k, c := range flows {
		want := FlowKey{Interface: "eni-a", Protocol: 6, Class: Ports, A: netip.MustParseAddr("10.0.0.1"), B: netip.MustParseAddr("10.0.0.2"), BPort: 22}
		if k != want || *c != (Counter{Fwd: 2, Rev: 1, FwdBytes: 107, RevBytes: 40, First: 1000, Last: 1160}) {
			t.Errorf("flow %+v %+v", k, *c)
		}
	}
}
