package flowlog

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Action is what the security group and network ACL did with a flow.
type Action uint8

const (
	ActionNone   Action = iota // "-" (NODATA and SKIPDATA records)
	ActionAccept               // ACCEPT
	ActionReject               // REJECT
)

// Status is a record's log-status.
type Status uint8

const (
	StatusOK       Status = iota // OK, or the field is not in the format
	StatusNoData                 // NODATA: no traffic in the capture window
	StatusSkipData               // SKIPDATA: records were skipped
)

// Direction is a record's flow-direction: whether its packets arrive at
// the record's interface (ingress) or leave it (egress).
type Direction uint8

const (
	DirUnknown Direction = iota // the field is absent or "-"
	DirIngress
	DirEgress
)

// TCP flag bits as flow logs report them. A record's tcp-flags is the
// bitwise OR of the flags of its packets in the capture window, and ACK is
// reported only together with SYN: 2 means the record's sender sent the
// SYN (it opened the connection), 18 (SYN-ACK) that its sender answered
// one (it listens).
const (
	FlagFIN    = 1
	FlagSYN    = 2
	FlagRST    = 4
	FlagPSH    = 8
	FlagACK    = 16
	FlagURG    = 32
	FlagSYNACK = FlagSYN | FlagACK
)

// IANA protocol numbers the attribution treats specially.
const (
	ProtoICMP   = 1
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoICMPv6 = 58
)

// Record is one flow-log record. Fields the format does not carry, or
// that hold "-", are zero (addresses invalid); the Has… fields tell the
// optional ones apart from a real zero.
type Record struct {
	// Interface is interface-id ("eni-…").
	Interface string
	// VPCID is vpc-id, "" when absent.
	VPCID string
	// Src and Dst are srcaddr and dstaddr; PktSrc and PktDst are
	// pkt-srcaddr and pkt-dstaddr (invalid when absent).
	Src, Dst       netip.Addr
	PktSrc, PktDst netip.Addr
	SrcPort        uint16
	DstPort        uint16
	// Protocol is the IANA protocol number.
	Protocol uint8
	Packets  int64
	Bytes    int64
	// Start and End are the capture window in Unix seconds (0: absent).
	Start, End    int64
	Action        Action
	Status        Status
	FlowDirection Direction
	TCPFlags      uint16
	HasTCPFlags   bool
}

// Addrs returns the packet's source and destination: pkt-srcaddr and
// pkt-dstaddr where the format carries them (the addresses in the packet
// itself, which the security group evaluates: a pod's address rather than
// its node's, for example), else srcaddr and dstaddr.
func (r *Record) Addrs() (src, dst netip.Addr) {
	src, dst = r.Src, r.Dst
	if r.PktSrc.IsValid() {
		src = r.PktSrc
	}
	if r.PktDst.IsValid() {
		dst = r.PktDst
	}
	return src, dst
}

// field identifies a column the parser reads; the others are skipped.
type field uint8

const (
	fSkip field = iota
	fVersion
	fAccount
	fInterface
	fSrcAddr
	fDstAddr
	fSrcPort
	fDstPort
	fProtocol
	fPackets
	fBytes
	fStart
	fEnd
	fAction
	fLogStatus
	fVPC
	fFlowDirection
	fTCPFlags
	fPktSrcAddr
	fPktDstAddr
	nFields
)

// fieldNames maps the names a header may use (the format's, with
// hyphens, or the Athena/Parquet column names, with underscores) to the
// columns read.
var fieldNames = map[string]field{
	"version":        fVersion,
	"account-id":     fAccount,
	"interface-id":   fInterface,
	"srcaddr":        fSrcAddr,
	"dstaddr":        fDstAddr,
	"srcport":        fSrcPort,
	"dstport":        fDstPort,
	"protocol":       fProtocol,
	"packets":        fPackets,
	"bytes":          fBytes,
	"start":          fStart,
	"end":            fEnd,
	"action":         fAction,
	"log-status":     fLogStatus,
	"vpc-id":         fVPC,
	"flow-direction": fFlowDirection,
	"tcp-flags":      fTCPFlags,
	"pkt-srcaddr":    fPktSrcAddr,
	"pkt-dstaddr":    fPktDstAddr,
}

// required are the fields attribution cannot do without.
var required = []field{fInterface, fSrcAddr, fDstAddr, fSrcPort, fDstPort, fProtocol, fAction}

// DefaultFormat is the header of the default (version 2) format.
const DefaultFormat = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"

// ErrFormat: a header line that names no usable format.
var ErrFormat = errors.New("flow-log header")

// Format is the column layout of a log file, from its header line.
type Format struct {
	cols []field
	has  [nFields]bool
	// Names are the header's field names, in order.
	Names []string
}

// Has reports whether the format carries the named field ("tcp-flags").
func (f Format) Has(name string) bool {
	id, ok := fieldNames[strings.ReplaceAll(name, "_", "-")]
	return ok && f.has[id]
}

// ParseFormat reads a header line: field names separated by spaces, in
// any order. Unknown names are allowed (skipped); a name given twice and
// a missing required field (interface-id, srcaddr, dstaddr, srcport,
// dstport, protocol, action) are errors wrapping ErrFormat.
func ParseFormat(header string) (Format, error) {
	var f Format
	f.Names = strings.Fields(header)
	if len(f.Names) == 0 {
		return Format{}, fmt.Errorf("%w: empty", ErrFormat)
	}
	seen := map[string]bool{}
	for _, n := range f.Names {
		name := strings.ReplaceAll(n, "_", "-")
		if seen[name] && fieldNames[name] != fSkip {
			return Format{}, fmt.Errorf("%w: field %q given twice", ErrFormat, n)
		}
		seen[name] = true
		id := fieldNames[name]
		f.cols = append(f.cols, id)
		f.has[id] = true
	}
	var missing []string
	for _, id := range required {
		if !f.has[id] {
			missing = append(missing, nameOf(id))
		}
	}
	if len(missing) > 0 {
		return Format{}, fmt.Errorf("%w: %q lacks %s (is the first line a header?)", ErrFormat, header, strings.Join(missing, ", "))
	}
	return f, nil
}

// nameOf is the header name of a column.
func nameOf(id field) string {
	for n, v := range fieldNames {
		if v == id {
			return n
		}
	}
	return "?"
}
