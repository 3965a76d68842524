package flowlog

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
)

// maxLine bounds one line; a longer one is malformed (skipped whole).
const maxLine = 64 << 10

// maxExamples is how many malformed lines a Reader keeps for the report.
const maxExamples = 5

// ReadStats counts what a Reader saw.
type ReadStats struct {
	// Lines is the number of lines after the header (blank ones excluded).
	Lines int64
	// Records is the number of well-formed OK records returned.
	Records int64
	// NoData and SkipData count NODATA and SKIPDATA records (not returned).
	NoData, SkipData int64
	// Malformed counts lines that could not be read; Examples keeps the
	// first few with their line number and reason.
	Malformed int64
	Examples  []Malformed
}

// Add adds o's counts to s (keeping at most a few examples).
func (s *ReadStats) Add(o ReadStats) {
	s.Lines += o.Lines
	s.Records += o.Records
	s.NoData += o.NoData
	s.SkipData += o.SkipData
	s.Malformed += o.Malformed
	for _, e := range o.Examples {
		if len(s.Examples) < maxExamples {
			s.Examples = append(s.Examples, e)
		}
	}
}

// Malformed is one line that could not be read.
type Malformed struct {
	// Object names the log file (set by the caller; "" within a Reader).
	Object string
	// Line is 1-based, the header being line 1.
	Line   int64
	Reason string
}

func (m Malformed) String() string {
	if m.Object != "" {
		return fmt.Sprintf("%s:%d: %s", m.Object, m.Line, m.Reason)
	}
	return fmt.Sprintf("line %d: %s", m.Line, m.Reason)
}

// Reader reads the records of one flow-log file in a streaming pass: plain
// text or gzip (detected by its magic bytes), a header line naming the
// fields, then one record a line. Memory does not grow with the file.
// Malformed lines are counted and skipped, never fatal.
type Reader struct {
	br     *bufio.Reader
	gz     *gzip.Reader
	format Format
	line   int64
	rec    Record
	stats  ReadStats
	// intern holds interface and VPC ids, so that a record does not
	// allocate a new string for them.
	intern map[string]string
	fields [][]byte
}

// NewReader reads the header of r (gzip-compressed or not). An empty file
// or a header that names no usable format is an error; so is a gzip
// stream that does not start properly.
func NewReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(r, maxLine)
	rd := &Reader{intern: map[string]string{}}
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		rd.gz = gz
		br = bufio.NewReaderSize(gz, maxLine)
	}
	rd.br = br
	header, err := br.ReadSlice('\n')
	if err != nil && (len(header) == 0 || !errors.Is(err, io.EOF)) {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: empty file", ErrFormat)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%w: first line over %d bytes", ErrFormat, maxLine)
		}
		return nil, err
	}
	rd.line = 1
	f, err := ParseFormat(string(bytes.TrimSpace(header)))
	if err != nil {
		return nil, err
	}
	rd.format = f
	rd.fields = make([][]byte, len(f.cols))
	return rd, nil
}

// Format is the file's format, from its header.
func (r *Reader) Format() Format { return r.format }

// Stats returns the counts so far.
func (r *Reader) Stats() ReadStats { return r.stats }

// Next returns the next well-formed record with log-status OK; the record
// is valid until the next call. At the end it returns io.EOF; an error
// reading the stream itself (a truncated gzip member, say) is returned
// as it is, after the records before it.
func (r *Reader) Next() (*Record, error) {
	for {
		line, err := r.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			r.line++
			r.stats.Lines++
			r.malformed(fmt.Sprintf("line over %d bytes", maxLine))
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.br.ReadSlice('\n')
			}
			if err != nil {
				return nil, r.end(err)
			}
			continue
		}
		if len(line) > 0 {
			r.line++
			if len(bytes.TrimSpace(line)) > 0 {
				r.stats.Lines++
				ok, why := r.parse(line)
				switch {
				case why != "":
					r.malformed(why)
				case ok:
					r.stats.Records++
					return &r.rec, nil
				}
			}
		}
		if err != nil {
			return nil, r.end(err)
		}
	}
}

// end maps the end of the stream: io.EOF when the data ended cleanly.
func (r *Reader) end(err error) error {
	if errors.Is(err, io.EOF) {
		if r.gz != nil {
			if cerr := r.gz.Close(); cerr != nil {
				return cerr
			}
		}
		return io.EOF
	}
	return err
}

func (r *Reader) malformed(why string) {
	r.stats.Malformed++
	if len(r.stats.Examples) < maxExamples {
		r.stats.Examples = append(r.stats.Examples, Malformed{Line: r.line, Reason: why})
	}
}

// parse reads one line into r.rec. It returns ok when the record is an OK
// record to return, or a reason when the line is malformed.
func (r *Reader) parse(line []byte) (ok bool, why string) {
	n := 0
	for i := 0; i < len(line); {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i == len(line) {
			break
		}
		j := i
		for j < len(line) && !isSpace(line[j]) {
			j++
		}
		if n < len(r.fields) {
			r.fields[n] = line[i:j]
		}
		n++
		i = j
	}
	if n != len(r.fields) {
		return false, fmt.Sprintf("%d fields, the header names %d", n, len(r.fields))
	}
	rec := &r.rec
	*rec = Record{}
	var haveSrc, haveDst, haveProto bool
	for i, id := range r.format.cols {
		b := r.fields[i]
		dash := len(b) == 1 && b[0] == '-'
		var bad bool
		switch id {
		case fInterface:
			if !dash {
				rec.Interface = r.str(b)
			}
		case fVPC:
			if !dash {
				rec.VPCID = r.str(b)
			}
		case fSrcAddr:
			if !dash {
				rec.Src, bad = parseAddr(b)
				haveSrc = true
			}
		case fDstAddr:
			if !dash {
				rec.Dst, bad = parseAddr(b)
				haveDst = true
			}
		case fPktSrcAddr:
			if !dash {
				rec.PktSrc, bad = parseAddr(b)
			}
		case fPktDstAddr:
			if !dash {
				rec.PktDst, bad = parseAddr(b)
			}
		case fSrcPort:
			if !dash {
				rec.SrcPort, bad = parsePort(b)
			}
		case fDstPort:
			if !dash {
				rec.DstPort, bad = parsePort(b)
			}
		case fProtocol:
			if !dash {
				var v int64
				v, bad = parseInt(b, 255)
				rec.Protocol = uint8(v)
				haveProto = true
			}
		case fPackets:
			if !dash {
				rec.Packets, bad = parseInt(b, 1<<62)
			}
		case fBytes:
			if !dash {
				rec.Bytes, bad = parseInt(b, 1<<62)
			}
		case fStart:
			if !dash {
				rec.Start, bad = parseInt(b, 1<<40)
			}
		case fEnd:
			if !dash {
				rec.End, bad = parseInt(b, 1<<40)
			}
		case fTCPFlags:
			if !dash {
				var v int64
				v, bad = parseInt(b, 0xffff)
				rec.TCPFlags, rec.HasTCPFlags = uint16(v), true
			}
		case fAction:
			switch string(b) {
			case "ACCEPT":
				rec.Action = ActionAccept
			case "REJECT":
				rec.Action = ActionReject
			case "-":
			default:
				bad = true
			}
		case fLogStatus:
			switch string(b) {
			case "OK", "-":
			case "NODATA":
				rec.Status = StatusNoData
			case "SKIPDATA":
				rec.Status = StatusSkipData
			default:
				bad = true
			}
		case fFlowDirection:
			switch string(b) {
			case "ingress":
				rec.FlowDirection = DirIngress
			case "egress":
				rec.FlowDirection = DirEgress
			case "-":
			default:
				bad = true
			}
		}
		if bad {
			return false, fmt.Sprintf("%s: %q", r.format.Names[i], clip(b))
		}
	}
	switch rec.Status {
	case StatusNoData:
		r.stats.NoData++
		return false, ""
	case StatusSkipData:
		r.stats.SkipData++
		return false, ""
	}
	switch {
	case rec.Interface == "":
		return false, "no interface-id"
	case !haveSrc || !haveDst:
		return false, "no srcaddr or dstaddr"
	case !haveProto:
		return false, "no protocol"
	case rec.Action == ActionNone:
		return false, "no action"
	}
	return true, ""
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// str interns b: one allocation per distinct value, none per record.
func (r *Reader) str(b []byte) string {
	if s, ok := r.intern[string(b)]; ok {
		return s
	}
	s := string(b)
	r.intern[s] = s
	return s
}

// clip shortens a bad value for a message.
func clip(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

// parseInt reads a non-negative decimal integer no larger than limit.
func parseInt(b []byte, limit int64) (v int64, bad bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, true
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, true
		}
		v = v*10 + int64(c-'0')
		if v > limit {
			return 0, true
		}
	}
	return v, false
}

func parsePort(b []byte) (uint16, bool) {
	v, bad := parseInt(b, 65535)
	return uint16(v), bad
}

// parseAddr reads an IPv4 address without allocating, an IPv6 one with
// netip.
func parseAddr(b []byte) (netip.Addr, bool) {
	var a [4]byte
	part, digits, n := 0, 0, 0
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			if digits > 0 && n == 0 {
				return slowAddr(b) // leading zero
			}
			n = n*10 + int(c-'0')
			digits++
			if n > 255 {
				return slowAddr(b) // IPv6 starting with digits, or bad
			}
		case c == '.':
			if digits == 0 || part == 3 {
				return netip.Addr{}, true
			}
			a[part] = byte(n)
			part, digits, n = part+1, 0, 0
		default:
			return slowAddr(b)
		}
	}
	if part != 3 || digits == 0 {
		return netip.Addr{}, true
	}
	a[3] = byte(n)
	return netip.AddrFrom4(a), false
}

func slowAddr(b []byte) (netip.Addr, bool) {
	a, err := netip.ParseAddr(string(b))
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, true
	}
	return a.Unmap(), false
}

// ProtocolName is the canonical protocol of a number, as pkg/rules writes
// it: "tcp", "udp", "icmp", "icmpv6", or the decimal number.
func ProtocolName(p uint8) string {
	switch p {
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoICMP:
		return "icmp"
	case ProtoICMPv6:
		return "icmpv6"
	}
	return strconv.Itoa(int(p))
}
