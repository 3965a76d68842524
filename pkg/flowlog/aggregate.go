package flowlog

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"time"
)

// Class tells how a flow's initiator (the end that opened the
// connection) was found.
type Class uint8

const (
	// Handshake: a TCP record carried the SYN (its sender opened the
	// connection) or the SYN-ACK (its sender listens). Needs tcp-flags.
	Handshake Class = iota + 1
	// Ports: the initiator is the end whose port is not the service port:
	// a port below 1024 is the service's against one at or above; else a
	// port below 32768 against one in the ephemeral range 32768-65535.
	Ports
	// Ambiguous: nothing tells which end opened the flow: the two ports
	// are of the same kind (both below 1024, both 1024-32767 or both
	// 32768 and above), or the protocol has no ports (ICMP, whose type is
	// not logged, GRE, …). Attribution tries both ends as the initiator,
	// each with its own port as the rule's port, and marks what it
	// credits so.
	Ambiguous
)

func (c Class) String() string {
	switch c {
	case Handshake:
		return "handshake"
	case Ports:
		return "ports"
	case Ambiguous:
		return "ambiguous"
	}
	return "?"
}

// Side says which end of a flow is the record's interface, when the
// record tells (flow-direction); else attribution finds it from the
// interface's addresses.
type Side uint8

const (
	SideUnknown Side = iota
	SideA
	SideB
)

// FlowKey is one distinct flow of an interface, the unit of aggregation:
// memory grows with distinct keys, not with records. For Handshake and
// Ports flows A is the initiator and B the listener, BPort the listening
// port, APort 0 (the initiator's ephemeral port is dropped). For
// Ambiguous flows A and B are the two ends in a canonical order (the
// interface's first when known) with both ports.
type FlowKey struct {
	Interface string
	Protocol  uint8
	Class     Class
	Local     Side
	A, B      netip.Addr
	APort     uint16
	BPort     uint16
}

// Counter is what the records of one FlowKey add up to.
type Counter struct {
	// Fwd and Rev count the records whose packets go from A to B and from
	// B to A; FwdBytes and RevBytes their bytes.
	Fwd, Rev           int64
	FwdBytes, RevBytes int64
	// First and Last are the earliest start and the latest end (Unix
	// seconds; 0 when the format has no start or end).
	First, Last int64
}

func (c *Counter) add(fwd bool, rec *Record) {
	if fwd {
		c.Fwd++
		c.FwdBytes += rec.Bytes
	} else {
		c.Rev++
		c.RevBytes += rec.Bytes
	}
	if rec.Start > 0 && (c.First == 0 || rec.Start < c.First) {
		c.First = rec.Start
	}
	end := rec.End
	if end == 0 {
		end = rec.Start
	}
	if end > c.Last {
		c.Last = end
	}
}

// Stats counts what an Aggregator saw, over every object.
type Stats struct {
	ReadStats
	// Objects read, and those that could not be read to the end (bad
	// header, broken gzip): their records before the damage count.
	Objects, BadObjects int64
	// BadObjectErrors keeps the first few such errors, naming the object.
	BadObjectErrors []string
	// Accepted and Rejected count the OK records in the window by action.
	Accepted, Rejected int64
	// OutsideWindow counts records that ended before the window or started
	// after it.
	OutsideWindow int64
}

// Aggregator folds records into per-FlowKey counters in one streaming
// pass. The zero value is not usable: call NewAggregator.
type Aggregator struct {
	flows map[FlowKey]*Counter
	stats Stats
	// from and to bound the records counted (zero: unbounded).
	from, to int64
}

// NewAggregator returns an empty aggregator counting records whose
// capture window overlaps [from, to]; a zero time leaves that end open.
func NewAggregator(from, to time.Time) *Aggregator {
	a := &Aggregator{flows: map[FlowKey]*Counter{}}
	if !from.IsZero() {
		a.from = from.Unix()
	}
	if !to.IsZero() {
		a.to = to.Unix()
	}
	return a
}

// Stats returns the counts so far.
func (a *Aggregator) Stats() Stats { return a.stats }

// Flows returns the aggregated flows (the map itself: do not modify).
func (a *Aggregator) Flows() map[FlowKey]*Counter { return a.flows }

// AddObject reads one log file (plain or gzip) into the aggregator. A file
// that cannot be read to its end is counted as bad and its error returned
// (naming it) for the report, after its good records were added: the
// caller goes on with the next object.
func (a *Aggregator) AddObject(name string, r io.Reader) error {
	a.stats.Objects++
	rd, err := NewReader(r)
	if err != nil {
		return a.bad(name, err)
	}
	for {
		rec, err := rd.Next()
		if err != nil {
			st := rd.Stats()
			for i := range st.Examples {
				st.Examples[i].Object = name
			}
			a.stats.ReadStats.Add(st)
			if errors.Is(err, io.EOF) {
				return nil
			}
			return a.bad(name, err)
		}
		a.Add(rec)
	}
}

func (a *Aggregator) bad(name string, err error) error {
	a.stats.BadObjects++
	err = fmt.Errorf("%s: %w", name, err)
	if len(a.stats.BadObjectErrors) < maxExamples {
		a.stats.BadObjectErrors = append(a.stats.BadObjectErrors, err.Error())
	}
	return err
}

// Add counts one record. Rejected records are counted but make no flow:
// they credit nothing.
func (a *Aggregator) Add(rec *Record) {
	if rec.Status != StatusOK {
		return
	}
	end := rec.End
	if end == 0 {
		end = rec.Start
	}
	if (a.from != 0 && end != 0 && end < a.from) || (a.to != 0 && rec.Start > a.to) {
		a.stats.OutsideWindow++
		return
	}
	if rec.Action != ActionAccept {
		a.stats.Rejected++
		return
	}
	a.stats.Accepted++
	key, fwd := Classify(rec)
	c := a.flows[key]
	if c == nil {
		c = &Counter{}
		a.flows[key] = c
	}
	c.add(fwd, rec)
}

// Classify returns the flow a record belongs to and whether its packets
// go from the key's A to its B. See Class for how the initiator is found.
func Classify(rec *Record) (FlowKey, bool) {
	src, dst := rec.Addrs()
	sp, dp := rec.SrcPort, rec.DstPort
	k := FlowKey{Interface: rec.Interface, Protocol: rec.Protocol}
	var fwd bool
	srcOpened := func() { k.A, k.B, k.BPort, fwd = src, dst, dp, true }
	dstOpened := func() { k.A, k.B, k.BPort, fwd = dst, src, sp, false }
	switch {
	case rec.Protocol == ProtoTCP && rec.HasTCPFlags && rec.TCPFlags&FlagSYN != 0:
		k.Class = Handshake
		if rec.TCPFlags&FlagACK == 0 {
			srcOpened()
		} else {
			dstOpened()
		}
	case rec.Protocol == ProtoTCP || rec.Protocol == ProtoUDP:
		switch rs, rd := portRank(sp), portRank(dp); {
		case rd < rs:
			k.Class = Ports
			srcOpened()
		case rs < rd:
			k.Class = Ports
			dstOpened()
		default:
			k.Class = Ambiguous
		}
	default:
		k.Class = Ambiguous
		sp, dp = 0, 0
	}
	if k.Class == Ambiguous {
		// Canonical order: the interface's end first when the record says
		// which it is, else the lower (address, port).
		srcFirst := src.Less(dst) || (src == dst && sp <= dp)
		switch rec.FlowDirection {
		case DirEgress:
			srcFirst = true
		case DirIngress:
			srcFirst = false
		}
		if srcFirst {
			k.A, k.B, k.APort, k.BPort, fwd = src, dst, sp, dp, true
		} else {
			k.A, k.B, k.APort, k.BPort, fwd = dst, src, dp, sp, false
		}
	}
	// The interface's end, when flow-direction tells: the destination of
	// ingress packets, the source of egress ones.
	var localIsSrc bool
	switch rec.FlowDirection {
	case DirIngress:
		localIsSrc = false
	case DirEgress:
		localIsSrc = true
	default:
		return k, fwd
	}
	// The sender of a forward record is A.
	if localIsSrc == fwd {
		k.Local = SideA
	} else {
		k.Local = SideB
	}
	return k, fwd
}

// portRank orders ports by how likely they are a service's: 0 below 1024,
// 1 below 32768, 2 in the ephemeral range.
func portRank(p uint16) int {
	switch {
	case p < 1024:
		return 0
	case p < 32768:
		return 1
	}
	return 2
}

// Fork returns an empty aggregator with the same window, for a worker
// whose result Merge adds back.
func (a *Aggregator) Fork() *Aggregator {
	b := &Aggregator{flows: map[FlowKey]*Counter{}, from: a.from, to: a.to}
	return b
}

// Merge adds b's flows and counts to a, as if a had read b's objects
// itself. The kept examples are sorted by object and line, so that the
// result does not depend on the order of the merges.
func (a *Aggregator) Merge(b *Aggregator) {
	for k, cb := range b.flows {
		ca := a.flows[k]
		if ca == nil {
			cp := *cb
			a.flows[k] = &cp
			continue
		}
		ca.Fwd += cb.Fwd
		ca.Rev += cb.Rev
		ca.FwdBytes += cb.FwdBytes
		ca.RevBytes += cb.RevBytes
		if cb.First > 0 && (ca.First == 0 || cb.First < ca.First) {
			ca.First = cb.First
		}
		if cb.Last > ca.Last {
			ca.Last = cb.Last
		}
	}
	s, o := &a.stats, b.stats
	examples := append(append([]Malformed(nil), s.Examples...), o.Examples...)
	bad := append(append([]string(nil), s.BadObjectErrors...), o.BadObjectErrors...)
	s.Examples, s.BadObjectErrors = nil, nil
	o.Examples = nil
	s.ReadStats.Add(o.ReadStats)
	s.Objects += o.Objects
	s.BadObjects += o.BadObjects
	s.Accepted += o.Accepted
	s.Rejected += o.Rejected
	s.OutsideWindow += o.OutsideWindow
	sort.Slice(examples, func(i, j int) bool {
		if examples[i].Object != examples[j].Object {
			return examples[i].Object < examples[j].Object
		}
		return examples[i].Line < examples[j].Line
	})
	sort.Strings(bad)
	s.Examples = examples[:min(len(examples), maxExamples)]
	s.BadObjectErrors = bad[:min(len(bad), maxExamples)]
}
