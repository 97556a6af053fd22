package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// protoEngines are the engines a protocol test runs against when the
// behaviour applies to both.
var protoEngines = []string{"fast", "std"}

// protoSeen is what the upstream received for one request.
type protoSeen struct {
	Method, URI, Proto string
	Host               string
	Header             http.Header
	Body               []byte
	BodyErr            error
	Trailer            http.Header
}

// protoUpstream is an httptest upstream that counts connections and requests
// and records what each request carried.
type protoUpstream struct {
	Srv   *httptest.Server
	Addr  string
	conns atomic.Int64
	reqs  atomic.Int64
	mu    sync.Mutex
	seen  []protoSeen
}

// protoNewUpstream starts an upstream. h, when not nil, answers after the
// request was recorded (its body is already read: h gets it in seen.Body);
// the default answers 200 "ok".
func protoNewUpstream(t testing.TB, h func(w http.ResponseWriter, r *http.Request, seen *protoSeen)) *protoUpstream {
	t.Helper()
	u := &protoUpstream{}
	u.Srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.reqs.Add(1)
		s := protoSeen{Method: r.Method, URI: r.RequestURI, Proto: r.Proto, Host: r.Host, Header: r.Header.Clone()}
		s.Body, s.BodyErr = io.ReadAll(r.Body)
		s.Trailer = r.Trailer.Clone()
		u.mu.Lock()
		u.seen = append(u.seen, s)
		u.mu.Unlock()
		if h != nil {
			h(w, r, &s)
			return
		}
		io.WriteString(w, "ok")
	}))
	u.Srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			u.conns.Add(1)
		}
	}
	u.Srv.Start()
	u.Addr = strings.TrimPrefix(u.Srv.URL, "http://")
	t.Cleanup(u.Srv.Close)
	return u
}

// Requests is the number of requests the upstream's handler saw.
func (u *protoUpstream) Requests() int64 { return u.reqs.Load() }

// Seen returns a copy of the recorded requests.
func (u *protoUpstream) Seen() []protoSeen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]protoSeen(nil), u.seen...)
}

// Last returns the last recorded request, failing the test if there is none.
func (u *protoUpstream) Last(t testing.TB) protoSeen {
	t.Helper()
	s := u.Seen()
	if len(s) == 0 {
		t.Fatal("upstream received no request")
	}
	return s[len(s)-1]
}

// protoResources is one upstream (scheme "" means http) with the given nodes
// and one catch-all route; routeExtra is appended to the route (indented by
// four spaces per line, e.g. "    enable_websocket: true\n").
func protoResources(scheme, routeExtra string, nodes ...string) string {
	var b strings.Builder
	b.WriteString("upstreams:\n  - id: \"pu\"\n")
	if scheme != "" {
		fmt.Fprintf(&b, "    scheme: %s\n", scheme)
	}
	b.WriteString("    nodes:\n")
	for _, n := range nodes {
		fmt.Fprintf(&b, "      %q: 1\n", n)
	}
	b.WriteString("routes:\n  - id: \"pr\"\n    uri: /*\n    upstream_id: \"pu\"\n")
	b.WriteString(routeExtra)
	return b.String()
}

// protoGateway starts a gateway with engine proxying everything to addr.
func protoGateway(t testing.TB, engine, addr, extra string) *Gateway {
	t.Helper()
	return StartGateway(t, GatewayOptions{Resources: protoResources("", "", addr), Engine: engine, Extra: extra})
}

// protoCountResponses counts status lines at the start of responses in a raw
// answer (a body that itself contains "HTTP/1.1 " would be miscounted, so
// tests keep bodies free of it).
func protoCountResponses(resp string) int {
	return strings.Count(resp, "HTTP/1.1 ") + strings.Count(resp, "HTTP/1.0 ")
}

// protoReadResponse reads one response with its body from br (http.ReadResponse).
func protoReadResponse(t testing.TB, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading response body: %v", err)
	}
	resp.Body.Close()
	return resp, string(body)
}

// protoRSS returns the gateway's resident set size in KiB (VmRSS), and its
// peak (VmHWM).
func protoRSS(t testing.TB, g *Gateway) (rss, hwm int64) {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", g.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = n
		case "VmHWM:":
			hwm = n
		}
	}
	return rss, hwm
}

// protoAlive fails the test unless the gateway process is running and proxies
// a plain GET to the upstream with 200.
func protoAlive(t testing.TB, g *Gateway) {
	t.Helper()
	select {
	case <-g.Exited():
		t.Fatalf("gateway exited:\n%s", tail(g.Stderr.String(), 3000))
	default:
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(g.URL + "/alive")
	if err != nil {
		t.Fatalf("gateway not healthy: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("gateway not healthy: status %d", resp.StatusCode)
	}
}

// protoNewUpstreamWith starts an httptest upstream serving h, closed when the
// test ends.
func protoNewUpstreamWith(t testing.TB, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}
