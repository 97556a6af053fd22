package health

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/balancer"
	"github.com/sluicegw/sluice/internal/config"
)

// checks decodes a checks object through the config decoder, so the
// defaults are APISIX's.
func checks(t *testing.T, js string) *config.HealthChecks {
	t.Helper()
	u, err := config.DecodeUpstream([]byte(`{"nodes":[],"checks":`+js+`}`), config.FormatJSON)
	if err != nil {
		t.Fatalf("decode checks: %v", err)
	}
	if err := u.Validate(); err != nil {
		t.Fatalf("validate checks: %v", err)
	}
	return u.Checks
}

func node(addr string) balancer.Node {
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return balancer.Node{Addr: addr, Host: host, Port: p, Weight: 1}
}

// waitFor polls cond until it holds, failing after a generous deadline; it
// bounds a wait, it does not assert a speed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func nodeStatus(r *Registry, key, addr string) (NodeStatus, bool) {
	for _, us := range r.Status() {
		if us.Key != key {
			continue
		}
		for _, n := range us.Nodes {
			if net.JoinHostPort(n.IP, strconv.Itoa(n.Port)) == addr {
				return n, true
			}
		}
	}
	return NodeStatus{}, false
}

// switchable is an HTTP backend whose answer the test changes, and which
// counts the probes it gets.
type switchable struct {
	srv    *httptest.Server
	status atomic.Int32
	probes atomic.Int32
	mu     sync.Mutex
	last   *http.Request
}

func newSwitchable(t *testing.T) *switchable {
	s := &switchable{}
	s.status.Store(200)
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.probes.Add(1)
		s.mu.Lock()
		s.last = r
		s.mu.Unlock()
		w.WriteHeader(int(s.status.Load()))
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *switchable) addr() string { return s.srv.Listener.Addr().String() }

func newRegistry(t *testing.T) *Registry {
	r := NewRegistry(nil)
	t.Cleanup(r.Close)
	return r
}

// TestActiveHTTPDownAndBack: a node answering 500 becomes unhealthy after
// unhealthy.http_failures probes and leaves the mask's complement; back on
// 200 it returns after healthy.successes probes.
func TestActiveHTTPDownAndBack(t *testing.T) {
	t.Parallel()
	a, b := newSwitchable(t), newSwitchable(t)
	r := newRegistry(t)
	r.BeginCompile()
	v := r.Bind(Spec{Key: "upstreams/1", Nodes: []balancer.Node{node(a.addr()), node(b.addr())},
		Checks: checks(t, `{"active":{"http_path":"/hc","healthy":{"successes":2},"unhealthy":{"http_failures":2}}}`)})
	r.Commit()
	if v.Down() != nil {
		t.Fatal("fresh nodes must start healthy")
	}
	a.status.Store(500)
	waitFor(t, "node a unhealthy", func() bool { return v.Down().Has(0) })
	if v.Down().Has(1) {
		t.Fatal("node b marked down too")
	}
	st, _ := nodeStatus(r, "upstreams/1", a.addr())
	if st.Status != "unhealthy" || st.Healthy || st.Counter.HTTPFailure != 2 || st.Counter.Success != 0 {
		t.Fatalf("node a status %+v, want unhealthy with http_failure 2", st)
	}
	a.status.Store(200)
	waitFor(t, "node a healthy again", func() bool { return v.Down() == nil })
	st, _ = nodeStatus(r, "upstreams/1", a.addr())
	if st.Status != "healthy" || st.Counter.Success != 2 || st.Counter.HTTPFailure != 0 {
		t.Fatalf("node a status %+v, want healthy with success 2", st)
	}
	a.mu.Lock()
	path := a.last.URL.Path
	a.mu.Unlock()
	if path != "/hc" {
		t.Fatalf("probe path %q, want /hc", path)
	}
}

// TestActiveTCPDownAndBack: a tcp check marks a node whose port refuses
// connections unhealthy, and healthy again once it listens again.
func TestActiveTCPDownAndBack(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	accept := func(l net.Listener) {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}
	go accept(ln)
	other := newSwitchable(t)
	r := newRegistry(t)
	r.BeginCompile()
	v := r.Bind(Spec{Key: "upstreams/tcp", Nodes: []balancer.Node{node(other.addr()), node(addr)},
		Checks: checks(t, `{"active":{"type":"tcp","unhealthy":{"tcp_failures":2},"healthy":{"successes":1}}}`)})
	r.Commit()
	ln.Close()
	waitFor(t, "closed port unhealthy", func() bool { return v.Down().Has(1) })
	st, _ := nodeStatus(r, "upstreams/tcp", addr)
	if st.Counter.TCPFailure != 2 || st.Status != "unhealthy" {
		t.Fatalf("status %+v, want unhealthy after 2 tcp failures", st)
	}
	// Reopen the same port; the kernel may need a moment to release it.
	var ln2 net.Listener
	for range 50 {
		if ln2, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("reopening %s: %v", addr, err)
	}
	defer ln2.Close()
	go accept(ln2)
	waitFor(t, "reopened port healthy", func() bool { return v.Down() == nil })
}

// TestActiveTimeout: a node that accepts but never answers counts timeouts.
func TestActiveTimeout(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns sync.WaitGroup
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Go(func() { <-done; c.Close() })
		}
	}()
	good := newSwitchable(t)
	r := newRegistry(t)
	r.BeginCompile()
	v := r.Bind(Spec{Key: "upstreams/slow", Nodes: []balancer.Node{node(good.addr()), node(ln.Addr().String())},
		Checks: checks(t, `{"active":{"timeout":0.2,"unhealthy":{"timeouts":2}}}`)})
	r.Commit()
	waitFor(t, "silent node unhealthy", func() bool { return v.Down().Has(1) })
	st, _ := nodeStatus(r, "upstreams/slow", ln.Addr().String())
	if st.Counter.TimeoutFailure != 2 || st.Counter.TCPFailure != 0 {
		t.Fatalf("status %+v, want 2 timeout failures", st)
	}
}

// TestProbeRequest: the probe carries method, path, Host and req_headers.
func TestProbeRequest(t *testing.T) {
	t.Parallel()
	a := newSwitchable(t)
	r := newRegistry(t)
	r.BeginCompile()
	r.Bind(Spec{Key: "upstreams/p", Nodes: []balancer.Node{node(a.addr())}, HostHeader: "rewritten.example",
		Checks: checks(t, `{"active":{"http_method":"HEAD","http_path":"/ping?x=1","host":"probe.example","req_headers":["X-Probe: yes"]}}`)})
	r.Commit()
	waitFor(t, "a probe", func() bool { return a.probes.Load() > 0 })
	a.mu.Lock()
	req := a.last
	a.mu.Unlock()
	if req.Method != "HEAD" || req.URL.RequestURI() != "/ping?x=1" || req.Host != "probe.example" || req.Header.Get("X-Probe") != "yes" {
		t.Fatalf("probe %s %s host %q headers %v", req.Method, req.URL.RequestURI(), req.Host, req.Header)
	}
}

// TestPassiveCounting follows lua-resty-healthcheck's counter rules through
// Observe, which the picker's Done calls.
func TestPassiveCounting(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)
	r.BeginCompile()
	// Long intervals: the active probes (to a closed port) must not run
	// during this test.
	v := r.Bind(Spec{Key: "upstreams/pass", Nodes: []balancer.Node{node("127.0.0.1:1"), node("127.0.0.1:2")},
		Checks: checks(t, `{"active":{"healthy":{"interval":3600},"unhealthy":{"interval":3600}},
			"passive":{"healthy":{"successes":2},"unhealthy":{"http_failures":3,"tcp_failures":2,"timeouts":2}}}`)})
	r.Commit()
	state := func() NodeStatus { s, _ := nodeStatus(r, "upstreams/pass", "127.0.0.1:1"); return s }

	v.Observe(0, balancer.Result{Status: 200})
	if s := state(); s.Status != "healthy" || s.Counter.Success != 0 {
		t.Fatalf("success on a healthy node must not count: %+v", s)
	}
	v.Observe(0, balancer.Result{Status: 500})
	v.Observe(0, balancer.Result{Status: 500})
	if s := state(); s.Status != "mostly_healthy" || !s.Healthy || s.Counter.HTTPFailure != 2 || v.Down() != nil {
		t.Fatalf("two 500s: %+v, want mostly_healthy, still taking traffic", s)
	}
	v.Observe(0, balancer.Result{Status: 200}) // a success clears the failures
	v.Observe(0, balancer.Result{Status: 404}) // in neither list: ignored
	v.Observe(0, balancer.Result{Status: 500})
	v.Observe(0, balancer.Result{Status: 500})
	if s := state(); s.Status != "mostly_healthy" || s.Counter.HTTPFailure != 2 || s.Counter.Success != 0 {
		t.Fatalf("after reset: %+v, want the failure count restarted", s)
	}
	v.Observe(0, balancer.Result{Status: 503})
	if s := state(); s.Status != "unhealthy" || s.Healthy || !v.Down().Has(0) || v.Down().Has(1) {
		t.Fatalf("third 5xx: %+v, want unhealthy and masked", s)
	}
	v.Observe(0, balancer.Result{Failed: true, Timeout: true}) // unhealthy: not counted
	v.Observe(0, balancer.Result{Status: 200})
	if s := state(); s.Status != "mostly_unhealthy" || s.Healthy || s.Counter.Success != 1 || s.Counter.HTTPFailure != 0 {
		t.Fatalf("first success: %+v, want mostly_unhealthy", s)
	}
	v.Observe(0, balancer.Result{Status: 200})
	if s := state(); s.Status != "healthy" || v.Down() != nil {
		t.Fatalf("second success: %+v, want healthy", s)
	}

	// Connection failures and timeouts count separately.
	v.Observe(1, balancer.Result{Failed: true})
	v.Observe(1, balancer.Result{Failed: true, Timeout: true})
	s, _ := nodeStatus(r, "upstreams/pass", "127.0.0.1:2")
	if s.Counter.TCPFailure != 1 || s.Counter.TimeoutFailure != 1 || !s.Healthy {
		t.Fatalf("node 2: %+v, want one of each, still healthy", s)
	}
	v.Observe(1, balancer.Result{Failed: true, Timeout: true})
	if !v.Down().Has(1) {
		t.Fatal("two timeouts must make node 2 unhealthy")
	}
	// Both nodes unhealthy: APISIX balances over all of them, so no mask.
	for range 3 {
		v.Observe(0, balancer.Result{Status: 500})
	}
	if v.Down() != nil {
		t.Fatalf("all nodes down: mask %v, want nil (traffic to all)", v.Down())
	}
}

// TestPassiveWithoutPassiveSection: without `passive`, statuses are ignored
// but connection failures count with the default threshold (2), as in APISIX.
func TestPassiveWithoutPassiveSection(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)
	r.BeginCompile()
	v := r.Bind(Spec{Key: "upstreams/np", Nodes: []balancer.Node{node("127.0.0.1:1"), node("127.0.0.1:2")},
		Checks: checks(t, `{"active":{"healthy":{"interval":3600},"unhealthy":{"interval":3600}}}`)})
	r.Commit()
	for range 10 {
		v.Observe(0, balancer.Result{Status: 500})
	}
	if v.Down() != nil {
		t.Fatal("statuses must not count without a passive section")
	}
	v.Observe(0, balancer.Result{Failed: true})
	v.Observe(0, balancer.Result{Failed: true})
	if !v.Down().Has(0) {
		t.Fatal("two connection failures must make the node unhealthy")
	}
}

// TestStateSurvivesReload: a rebind with the same or changed checks keeps the
// states of nodes that stay; a removed node forgets its state; an upstream
// no longer bound stops being checked.
func TestStateSurvivesReload(t *testing.T) {
	t.Parallel()
	a, b := newSwitchable(t), newSwitchable(t)
	r := newRegistry(t)
	quiet := `{"active":{"healthy":{"interval":3600},"unhealthy":{"interval":3600}},"passive":{"unhealthy":{"http_failures":1}}}`
	r.BeginCompile()
	v1 := r.Bind(Spec{Key: "upstreams/r", Nodes: []balancer.Node{node(a.addr()), node(b.addr())}, Checks: checks(t, quiet)})
	r.Commit()
	v1.Observe(0, balancer.Result{Status: 500})
	if !v1.Down().Has(0) {
		t.Fatal("setup: node a should be down")
	}

	// Same checks, nodes reordered: the new view maps a to index 1.
	r.BeginCompile()
	v2 := r.Bind(Spec{Key: "upstreams/r", Nodes: []balancer.Node{node(b.addr()), node(a.addr())}, Checks: checks(t, quiet)})
	if !v2.Down().Has(1) || v2.Down().Has(0) {
		t.Fatalf("rebound view mask wrong: a must stay down at its new index")
	}
	r.Commit()
	if s, _ := nodeStatus(r, "upstreams/r", a.addr()); s.Status != "unhealthy" {
		t.Fatalf("after reload a is %q, want unhealthy", s.Status)
	}

	// Changed checks restart the prober and keep the state.
	changed := `{"active":{"http_path":"/other","healthy":{"interval":3600},"unhealthy":{"interval":3600}},"passive":{"unhealthy":{"http_failures":1}}}`
	r.BeginCompile()
	v3 := r.Bind(Spec{Key: "upstreams/r", Nodes: []balancer.Node{node(a.addr()), node(b.addr())}, Checks: checks(t, changed)})
	r.Commit()
	if !v3.Down().Has(0) {
		t.Fatal("changed checks reset node a's state")
	}

	// A failed compile's binding is never committed: nothing changes.
	r.BeginCompile()
	r.Bind(Spec{Key: "upstreams/other", Nodes: []balancer.Node{node(a.addr())}, Checks: checks(t, quiet)})
	r.BeginCompile()
	r.Bind(Spec{Key: "upstreams/r", Nodes: []balancer.Node{node(b.addr())}, Checks: checks(t, changed)})
	r.Commit()
	if _, ok := nodeStatus(r, "upstreams/r", a.addr()); ok {
		t.Fatal("removed node a still reported")
	}
	if len(r.Status()) != 1 {
		t.Fatalf("status %+v, want only upstreams/r", r.Status())
	}

	// Node a comes back: fresh, healthy.
	r.BeginCompile()
	v5 := r.Bind(Spec{Key: "upstreams/r", Nodes: []balancer.Node{node(a.addr()), node(b.addr())}, Checks: checks(t, changed)})
	r.Commit()
	if v5.Down() != nil {
		t.Fatal("re-added node must start healthy")
	}

	// Upstream gone: no status, no probes.
	r.BeginCompile()
	r.Commit()
	if len(r.Status()) != 0 {
		t.Fatalf("status %+v after removal, want none", r.Status())
	}
}

// TestRemovedCheckerStopsProbing: once an upstream is dropped, its node gets
// no more probes.
func TestRemovedCheckerStopsProbing(t *testing.T) {
	t.Parallel()
	a := newSwitchable(t)
	r := newRegistry(t)
	r.BeginCompile()
	r.Bind(Spec{Key: "upstreams/s", Nodes: []balancer.Node{node(a.addr())}, Checks: checks(t, `{"active":{}}`)})
	r.Commit()
	waitFor(t, "a probe", func() bool { return a.probes.Load() > 0 })
	r.BeginCompile()
	r.Commit()
	time.Sleep(100 * time.Millisecond) // let a probe already under way finish
	n := a.probes.Load()
	time.Sleep(2500 * time.Millisecond) // more than two intervals
	if got := a.probes.Load(); got != n {
		t.Fatalf("probes went on after removal: %d -> %d", n, got)
	}
}

func TestName(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]string{
		"upstreams/1":         "/apisix/upstreams/1",
		"routes/r1/upstream":  "/apisix/routes/r1",
		"services/s/upstream": "/apisix/services/s",
	} {
		if got := Name(key); got != want {
			t.Errorf("Name(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestStatusCode(t *testing.T) {
	t.Parallel()
	for line, want := range map[string]int{
		"HTTP/1.1 200 OK\r\n": 200, "HTTP/1.0 503\r\n": 503, "SSH-2.0\r\n": 0, "HTTP/1.1 2x0 OK": 0, "": 0,
	} {
		if got := statusCode(line); got != want {
			t.Errorf("statusCode(%q) = %d, want %d", line, got, want)
		}
	}
	if failure(errors.New("refused")) != ctrTCP {
		t.Error("a plain error is a tcp failure")
	}
}
