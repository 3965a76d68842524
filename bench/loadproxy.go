package bench

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sgrules/sgrules/internal/dev/apicount"
)

// loadPair is a (group, direction) pair. A ModifySecurityGroupRules call
// counts for the direction of each rule it names (the proxy knows the
// directions of the rules that existed before the sync).
type loadPair struct{ group, dir string }

// loadCalls are the calls of one invocation, as the proxy saw them.
type loadCalls struct {
	mu       sync.Mutex
	byAction map[string]int
	// pairs: EC2 mutating calls per group and direction.
	pairs          map[loadPair]int
	mutating       int
	authorized     int // permissions carried by Authorize calls EC2 accepted
	revoked        int // rule ids named by Revoke calls EC2 accepted
	modified       int // rules named by Modify calls EC2 accepted
	failedMutating int
	leaseRefusals  int
}

// loadProxy forwards a function's AWS calls to moto and counts them into
// the invocation the function is running. A function's SDK sends to
// AWS_ENDPOINT_URL, so counting happens on the wire: EC2 query requests
// are form bodies (Action, GroupId, IpPermissions.N..., SecurityGroupRuleId.N),
// DynamoDB requests name their operation in X-Amz-Target.
type loadProxy struct {
	URL string
	srv *http.Server
	cur atomic.Pointer[loadCalls]
	// dirs maps rule ids to their directions.
	dirs atomic.Pointer[map[string]string]
}

func newLoadProxy(target string) (*loadProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &loadProxy{URL: "http://" + ln.Addr().String()}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		rp.ServeHTTP(rec, r)
		if c := p.cur.Load(); c != nil {
			var dirs map[string]string
			if d := p.dirs.Load(); d != nil {
				dirs = *d
			}
			c.record(r, body, rec, dirs)
		}
	})}
	go p.srv.Serve(ln)
	return p, nil
}

// use makes the proxy count into c (nil: not at all).
func (p *loadProxy) use(c *loadCalls) { p.cur.Store(c) }

func (p *loadProxy) Close() { p.srv.Close() }

type statusRecorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status >= 400 && s.body.Len() < 4096 {
		s.body.Write(b)
	}
	return s.ResponseWriter.Write(b)
}

func (c *loadCalls) record(r *http.Request, body []byte, rec *statusRecorder, dirs map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byAction == nil {
		c.byAction, c.pairs = map[string]int{}, map[loadPair]int{}
	}
	ok := rec.status < 300
	switch svc := signedService(r); svc {
	case "dynamodb":
		_, op, _ := strings.Cut(r.Header.Get("X-Amz-Target"), ".")
		c.byAction["DynamoDB."+op]++
		if op == "TransactWriteItems" && !ok && bytes.Contains(body, []byte(`"lease#`)) &&
			strings.Contains(rec.body.String(), "TransactionCanceled") {
			c.leaseRefusals++
		}
	case "ec2":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			c.byAction["EC2.?"]++
			return
		}
		op := form.Get("Action")
		c.byAction["EC2."+op]++
		if !apicount.IsEC2Mutating(op) {
			return
		}
		c.mutating++
		if !ok {
			c.failedMutating++
			return
		}
		group := form.Get("GroupId")
		if strings.HasPrefix(op, "Modify") {
			touched := map[string]bool{}
			for k, v := range form {
				if strings.HasPrefix(k, "SecurityGroupRule.") && strings.HasSuffix(k, ".SecurityGroupRuleId") {
					c.modified++
					dir, ok := dirs[v[0]]
					if !ok {
						dir = "unknown"
					}
					touched[dir] = true
				}
			}
			for dir := range touched {
				c.pairs[loadPair{group: group, dir: dir}]++
			}
			return
		}
		dir := "ingress"
		if strings.HasSuffix(op, "Egress") {
			dir = "egress"
		}
		c.pairs[loadPair{group: group, dir: dir}]++
		perms := map[string]bool{}
		for k := range form {
			switch {
			case strings.HasPrefix(k, "SecurityGroupRuleId."):
				c.revoked++
			case strings.HasPrefix(op, "Authorize") && strings.HasPrefix(k, "IpPermissions."):
				// IpPermissions.N.IpRanges.M.CidrIp and the like: one
				// permission per peer.
				if parts := strings.SplitN(k, ".", 5); len(parts) == 5 {
					perms[strings.Join(parts[:4], ".")] = true
				}
			}
		}
		c.authorized += len(perms)
	default:
		c.byAction[strings.ToUpper(svc)+"."+r.Method]++
	}
}

// signedService is the service of a SigV4-signed request, from the
// credential scope of its Authorization header
// (Credential=KEY/DATE/REGION/SERVICE/aws4_request).
func signedService(r *http.Request) string {
	_, cred, _ := strings.Cut(r.Header.Get("Authorization"), "Credential=")
	cred, _, _ = strings.Cut(cred, ",")
	parts := strings.Split(cred, "/")
	if len(parts) < 5 {
		return "unsigned"
	}
	return parts[3]
}
