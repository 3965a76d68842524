package faultproxy

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Service names of Call.Service.
const (
	EC2      = "ec2"
	DynamoDB = "dynamodb"
	S3       = "s3"
	STS      = "sts"
)

// Call identifies one request.
type Call struct {
	Service string // EC2, DynamoDB or S3
	// Action is the EC2 or DynamoDB operation ("AuthorizeSecurityGroupIngress",
	// "PutItem") or, for S3, the method and path ("PUT /bucket/key").
	Action   string
	Mutating bool
	// Params are the form fields of a query-protocol call (EC2, STS).
	Params url.Values
	// Body is the request body as sent (read-only), for predicates and
	// Before functions that look into the request.
	Body []byte
}

func (c Call) String() string { return c.Service + ":" + c.Action }

// Faults is what to inject. Rates are shares of calls in [0, 1], drawn in
// this order: abort, throttle, server error, drop-after (mutating calls
// only); a delay is drawn independently.
type Faults struct {
	// ThrottleRate answers with the service's throttling error
	// (EC2 RequestLimitExceeded, DynamoDB ThrottlingException, S3 SlowDown).
	ThrottleRate float64
	// ServerErrorRate answers 500 or 503 (InternalError/ServiceUnavailable).
	ServerErrorRate float64
	// DropAfterRate forwards a mutating call, then closes the connection
	// without answering.
	DropAfterRate float64
	// DelayRate delays a call by up to MaxDelay before forwarding it.
	DelayRate float64
	MaxDelay  time.Duration
	// AbortAfter, when > 0, lets that many mutating calls through and then
	// fails every later call (mutating or not) with a non-retryable error
	// until Reset or Set.
	AbortAfter int
	// Only, when set, restricts faults (not the abort or the cut) to calls
	// it accepts.
	Only func(Call) bool
	// Deny, when set, answers the calls it accepts with AccessDenied (a
	// role that cannot be assumed: moto does not enforce IAM).
	Deny func(Call) bool
	// CutAt, when > 0, cuts the CutAt-th call (since Set) that CutCalls
	// accepts, or the CutAt-th DynamoDB TransactWriteItems when CutCalls
	// is nil, as CutMode says. Earlier calls of that kind pass; the cut is
	// drawn before the other faults, so the cut call gets no other fault.
	CutAt    int
	CutMode  CutMode
	CutCalls func(Call) bool
}

// CutMode is how the CutAt-th call is cut.
type CutMode int

const (
	// CutBefore answers the call with a non-retryable error (400
	// SimulatedFailure) without forwarding it: the caller fails before
	// its write happened and may go on.
	CutBefore CutMode = iota
	// CutAfter forwards the call and answers it, then fails every later
	// call as AbortAfter does: a process killed right after the write.
	CutAfter
)

func (m CutMode) String() string {
	if m == CutAfter {
		return "after"
	}
	return "before"
}

// Kind of an injected fault, for Stats.
type Kind string

const (
	KindThrottle    Kind = "throttle"
	KindServerError Kind = "server-error"
	KindDropAfter   Kind = "drop-after"
	KindDelay       Kind = "delay"
	KindAborted     Kind = "aborted"
	KindDenied      Kind = "denied"
	KindCutBefore   Kind = "cut-before"
	KindCutAfter    Kind = "cut-after"
)

// Stats counts calls and injected faults since the last Reset.
type Stats struct {
	Calls    int
	Mutating int
	Faults   map[Kind]int
}

// Injected is the number of faults of every kind.
func (s Stats) Injected() int {
	n := 0
	for _, v := range s.Faults {
		n += v
	}
	return n
}

// Proxy is a running fault proxy.
type Proxy struct {
	// URL is the proxy's endpoint ("http://127.0.0.1:PORT").
	URL string

	srv    *httptest.Server
	target *url.URL
	rp     *httputil.ReverseProxy

	mu       sync.Mutex
	rng      *rand.Rand
	faults   Faults
	mutating int // mutating calls forwarded since Set/Reset
	cutCount int // calls CutCalls accepted since Set/Reset
	aborted  bool
	stats    Stats
	before   func(Call)
}

// New starts a proxy to target (the emulator URL) on 127.0.0.1 with a
// seeded random source. Close stops it.
func New(target string, seed uint64) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: target %q: %w", target, err)
	}
	p := &Proxy{target: u, rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), stats: Stats{Faults: map[Kind]int{}}}
	p.rp = httputil.NewSingleHostReverseProxy(u)
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	p.URL = p.srv.URL
	return p, nil
}

// Start is New for tests: it fails tb on error and closes the proxy in
// tb.Cleanup.
func Start(tb testing.TB, target string, seed uint64) *Proxy {
	tb.Helper()
	p, err := New(target, seed)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Close)
	return p
}

// Close stops the proxy.
func (p *Proxy) Close() { p.srv.Close() }

// Set replaces the faults and clears the abort state (stats are kept).
func (p *Proxy) Set(f Faults) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults, p.mutating, p.cutCount, p.aborted = f, 0, 0, false
}

// Reset turns every fault off, clears the abort state and the stats.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults, p.mutating, p.cutCount, p.aborted = Faults{}, 0, 0, false
	p.stats = Stats{Faults: map[Kind]int{}}
}

// Reseed restarts the random source.
func (p *Proxy) Reseed(seed uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rng = rand.New(rand.NewPCG(seed, seed^0x5eed))
}

// Before sets a function called with every call that passes the abort
// check, before it is forwarded (and before any fault). It runs on the
// request's goroutine and holds up that request, so it can observe the
// emulator's state between a client's calls.
func (p *Proxy) Before(fn func(Call)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.before = fn
}

// Aborted reports whether the abort point was reached.
func (p *Proxy) Aborted() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.aborted
}

// Stats returns a copy of the counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Faults = make(map[Kind]int, len(p.stats.Faults))
	for k, v := range p.stats.Faults {
		s.Faults[k] = v
	}
	return s
}

// decision is what to do with one call, drawn under the lock.
type decision struct {
	abort, throttle, dropAfter, deny bool
	cutBefore, cutAfter              bool
	status                           int // server error status, 0 for none
	delay                            time.Duration
	before                           func(Call)
}

func (p *Proxy) decide(c Call) decision {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Calls++
	if c.Mutating {
		p.stats.Mutating++
	}
	f := p.faults
	var d decision
	if p.aborted {
		p.stats.Faults[KindAborted]++
		d.abort = true
		return d
	}
	d.before = p.before
	if c.Mutating && f.AbortAfter > 0 {
		p.mutating++
		if p.mutating > f.AbortAfter {
			p.aborted = true
			p.stats.Faults[KindAborted]++
			d.abort = true
			return d
		}
	}
	if f.Deny != nil && f.Deny(c) {
		d.deny = true
		p.stats.Faults[KindDenied]++
		return d
	}
	if f.CutAt > 0 && p.cutCount < f.CutAt && cutCandidate(f, c) {
		p.cutCount++
		if p.cutCount == f.CutAt {
			if f.CutMode == CutAfter {
				d.cutAfter = true
				p.stats.Faults[KindCutAfter]++
			} else {
				d.cutBefore = true
				p.stats.Faults[KindCutBefore]++
			}
			return d
		}
	}
	if f.Only != nil && !f.Only(c) {
		return d
	}
	if f.DelayRate > 0 && f.MaxDelay > 0 && p.rng.Float64() < f.DelayRate {
		d.delay = time.Duration(p.rng.Int64N(int64(f.MaxDelay)) + 1)
		p.stats.Faults[KindDelay]++
	}
	switch {
	case f.ThrottleRate > 0 && p.rng.Float64() < f.ThrottleRate:
		d.throttle = true
		p.stats.Faults[KindThrottle]++
	case f.ServerErrorRate > 0 && p.rng.Float64() < f.ServerErrorRate:
		d.status = http.StatusInternalServerError
		if p.rng.IntN(2) == 1 {
			d.status = http.StatusServiceUnavailable
		}
		p.stats.Faults[KindServerError]++
	case c.Mutating && f.DropAfterRate > 0 && p.rng.Float64() < f.DropAfterRate:
		d.dropAfter = true
		p.stats.Faults[KindDropAfter]++
	}
	return d
}

func cutCandidate(f Faults, c Call) bool {
	if f.CutCalls != nil {
		return f.CutCalls(c)
	}
	return c.Service == DynamoDB && c.Action == "TransactWriteItems"
}

// abortNow makes every later call fail, as after AbortAfter.
func (p *Proxy) abortNow() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.aborted = true
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	c, ok := Identify(r, body)
	if !ok { // the emulator's own API (reset, data): pass through
		p.rp.ServeHTTP(w, r)
		return
	}
	d := p.decide(c)
	if d.abort {
		writeError(w, c, http.StatusBadRequest, "SimulatedCrash", "faultproxy: the caller was aborted (simulated crash)")
		return
	}
	if d.before != nil {
		d.before(c)
	}
	if d.delay > 0 {
		select {
		case <-time.After(d.delay):
		case <-r.Context().Done():
			return
		}
	}
	switch {
	case d.deny:
		writeError(w, c, http.StatusForbidden, "AccessDenied", "faultproxy: not authorized to perform "+c.Action)
	case d.cutBefore:
		writeError(w, c, http.StatusBadRequest, "SimulatedFailure", "faultproxy: the call was cut (non-retryable)")
		return
	case d.cutAfter:
		p.rp.ServeHTTP(w, r)
		p.abortNow()
		return
	case d.throttle:
		status, code := throttleOf(c.Service)
		writeError(w, c, status, code, "Rate exceeded (faultproxy)")
		return
	case d.status != 0:
		code := "InternalError"
		if d.status == http.StatusServiceUnavailable {
			code = "ServiceUnavailable"
		}
		writeError(w, c, d.status, code, "faultproxy: injected server error")
		return
	case d.dropAfter:
		// Forward to the emulator, read its answer, then hang up.
		rec := httptest.NewRecorder()
		p.rp.ServeHTTP(rec, r)
		hj, ok := w.(http.Hijacker)
		if !ok {
			panic(http.ErrAbortHandler)
		}
		conn, _, err := hj.Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	p.rp.ServeHTTP(w, r)
}

func throttleOf(service string) (int, string) {
	switch service {
	case EC2:
		return http.StatusServiceUnavailable, "RequestLimitExceeded"
	case DynamoDB:
		return http.StatusBadRequest, "ThrottlingException"
	default:
		return http.StatusServiceUnavailable, "SlowDown"
	}
}

// writeError answers in the service's error format.
func writeError(w http.ResponseWriter, c Call, status int, code, msg string) {
	switch c.Service {
	case STS:
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>faultproxy</RequestId></ErrorResponse>`, code, msg)
	case DynamoDB:
		ns := "com.amazonaws.dynamodb.v20120810#"
		if code == "ThrottlingException" {
			ns = "com.amazon.coral.availability#"
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Header().Set("X-Amzn-Errortype", code)
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"__type":%q,"message":%q}`, ns+code, msg)
	case EC2:
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
			`<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>faultproxy</RequestID></Response>`, code, msg)
	default:
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
			`<Error><Code>%s</Code><Message>%s</Message><RequestId>faultproxy</RequestId></Error>`, code, msg)
	}
}

// Identify tells the service and action of an SDK request; false for
// requests to the emulator's own API (/moto-api/).
func Identify(r *http.Request, body []byte) (Call, bool) {
	if strings.HasPrefix(r.URL.Path, "/moto-api") {
		return Call{}, false
	}
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		svc, op, _ := strings.Cut(t, ".")
		if strings.HasPrefix(svc, "DynamoDB") {
			return Call{Service: DynamoDB, Action: op, Mutating: dynamoMutating[op], Body: body}, true
		}
		return Call{Service: svc, Action: op, Body: body}, true
	}
	if r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if v, err := url.ParseQuery(string(body)); err == nil && v.Get("Action") != "" {
			a := v.Get("Action")
			if strings.Contains(r.Header.Get("Authorization"), "/sts/aws4_request") {
				return Call{Service: STS, Action: a, Params: v, Body: body}, true
			}
			return Call{Service: EC2, Action: a, Mutating: ec2Mutating(a), Params: v, Body: body}, true
		}
	}
	m := r.Method
	return Call{Service: S3, Action: m + " " + r.URL.Path,
		Mutating: m == http.MethodPut || m == http.MethodPost || m == http.MethodDelete, Body: body}, true
}

var dynamoMutating = map[string]bool{
	"PutItem": true, "DeleteItem": true, "UpdateItem": true,
	"TransactWriteItems": true, "BatchWriteItem": true,
}

func ec2Mutating(action string) bool {
	for _, p := range []string{"Describe", "Get", "List"} {
		if strings.HasPrefix(action, p) {
			return false
		}
	}
	return true
}
