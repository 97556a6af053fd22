package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/redistest"
)

// connUpstream is an upstream whose /slow requests wait at a gate the test
// opens, /stream sends a byte every 20 ms until the gateway hangs up, and
// anything else answers at once.
type connUpstream struct {
	*protoUpstream
	mu   sync.Mutex
	gate chan struct{}
	// slow counts the /slow requests that ever arrived.
	slow atomic.Int64
}

func newConnUpstream(t *testing.T) *connUpstream {
	t.Helper()
	u := &connUpstream{gate: make(chan struct{})}
	u.protoUpstream = protoNewUpstream(t, func(w http.ResponseWriter, r *http.Request, _ *protoSeen) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/slow"):
			u.slow.Add(1)
			u.mu.Lock()
			gate := u.gate
			u.mu.Unlock()
			select {
			case <-gate:
			case <-r.Context().Done():
			}
		case strings.HasSuffix(r.URL.Path, "/stream"):
			for range 500 {
				if _, err := w.Write([]byte("x")); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-time.After(20 * time.Millisecond):
				case <-r.Context().Done():
					return
				}
			}
		}
		w.Write([]byte("ok"))
	})
	t.Cleanup(u.open)
	return u
}

// open lets every waiting /slow request finish, and arms a new gate.
func (u *connUpstream) open() {
	u.mu.Lock()
	close(u.gate)
	u.gate = make(chan struct{})
	u.mu.Unlock()
}

// waitSlow waits until n /slow requests have arrived in all.
func (u *connUpstream) waitSlow(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for u.slow.Load() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d /slow requests arrived, want %d", u.slow.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lnGateway starts a gateway (engine) whose route /lc/* has limit-conn
// cfg on a connUpstream.
func lnGateway(t *testing.T, engine, cfg string) (*Gateway, *connUpstream) {
	t.Helper()
	up := newConnUpstream(t)
	g := StartGateway(t, GatewayOptions{Store: "embedded", Engine: engine})
	mustAdmin(t, g, "PUT", "/apisix/admin/upstreams/u1", fmt.Sprintf(`{"nodes":{%q:1}}`, up.Addr))
	mustAdmin(t, g, "PUT", "/apisix/admin/routes/lc", `{"uri":"/lc/*","upstream_id":"u1","plugins":{"limit-conn":`+cfg+`}}`)
	lcWaitRoute(t, g.URL+"/lc/fast", 200)
	return g, up
}

// lnHold sends requests with key k to the /slow urls at once; it returns
// once every one was either rejected or has reached the upstream (want of
// them), with a function that collects the admitted ones' answers once the
// gate is open.
func lnHold(t *testing.T, up *connUpstream, urls []string, k string, want int) (results func() []lcResult, rejected []lcResult) {
	t.Helper()
	before := up.slow.Load()
	out := make(chan lcResult, len(urls))
	for _, u := range urls {
		go func() { out <- lcGet(u, k) }()
	}
	// The rejections come back at once; the admitted wait at the gate.
	deadline := time.Now().Add(5 * time.Second)
	for len(rejected) < len(urls)-want {
		select {
		case r := <-out:
			if r.status == 200 {
				t.Fatalf("a request completed while the gate is closed: %+v", r)
			}
			rejected = append(rejected, r)
		case <-time.After(time.Until(deadline)):
			t.Fatalf("only %d of %d requests rejected; %d reached the upstream", len(rejected), len(urls),
				up.slow.Load()-before)
		}
	}
	up.waitSlow(t, before+int64(want))
	return func() []lcResult {
		var res []lcResult
		for range want {
			res = append(res, <-out)
		}
		return res
	}, rejected
}

// TestLimitConnLocal: with conn 3 and burst 0 and a slow upstream, 12
// simultaneous requests get exactly 3 through and 9 rejected at once;
// when the 3 complete, 3 more are admitted, and so on; on both engines.
// The rejection carries rejected_code and rejected_msg.
func TestLimitConnLocal(t *testing.T) {
	for _, engine := range []string{"fast", "std"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			g, up := lnGateway(t, engine, `{"conn":3,"burst":0,"default_conn_delay":0.1,"key":"http_x_k","rejected_code":429,"rejected_msg":"busy"}`)
			for round := range 3 {
				wait, rejected := lnHold(t, up, repeat(g.URL+"/lc/slow", 12), "k", 3)
				for _, r := range rejected {
					if r.status != 429 || r.body != `{"error_msg":"busy"}`+"\n" {
						t.Errorf("round %d: rejection %d %q", round, r.status, r.body)
					}
				}
				// Another key is not limited meanwhile.
				if r := lcGet(g.URL+"/lc/fast", "other"); r.status != 200 {
					t.Errorf("round %d: another key got %d", round, r.status)
				}
				up.open()
				for _, r := range wait() {
					if r.status != 200 {
						t.Errorf("round %d: admitted request answered %d", round, r.status)
					}
				}
			}
		})
	}
}

// TestLimitConnBurstDelay: past conn but within conn+burst a request is
// admitted after default_conn_delay; past conn+burst it is rejected.
func TestLimitConnBurstDelay(t *testing.T) {
	t.Parallel()
	g, up := lnGateway(t, "", `{"conn":1,"burst":1,"default_conn_delay":0.4,"only_use_default_delay":true,"key":"http_x_k"}`)
	wait, _ := lnHold(t, up, []string{g.URL + "/lc/slow"}, "k", 1)
	r := lcGet(g.URL+"/lc/fast", "k")
	if r.status != 200 || r.took < 350*time.Millisecond || r.took > 900*time.Millisecond {
		t.Errorf("second request (within burst): %d after %v, want 200 after about 400ms", r.status, r.took)
	}
	// Hold two (the second delayed), then a third is past conn+burst.
	wait2, _ := lnHold(t, up, []string{g.URL + "/lc/slow"}, "k", 1)
	if r := lcGet(g.URL+"/lc/fast", "k"); r.status != 503 || r.took > 300*time.Millisecond {
		t.Errorf("third request (past conn+burst): %d after %v, want 503 at once", r.status, r.took)
	}
	up.open()
	wait()
	wait2()
}

// TestLimitConnReleases: a count is released whatever ends the request:
// an upstream that refuses connections (502), a client that hangs up in
// the middle of a streamed response, and a rejection by the route's next
// plugin; each time conn more requests are admitted afterwards.
func TestLimitConnReleases(t *testing.T) {
	for _, engine := range []string{"fast", "std"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			g, up := lnGateway(t, engine, `{"conn":2,"burst":0,"default_conn_delay":0.1,"key":"http_x_k"}`)

			// Upstream error: conn 1 on a dead upstream; every request gets
			// 502, none 503.
			mustAdmin(t, g, "PUT", "/apisix/admin/upstreams/dead", fmt.Sprintf(`{"nodes":{%q:1},"retries":0}`, featClosedAddr(t)))
			mustAdmin(t, g, "PUT", "/apisix/admin/routes/dead", `{"uri":"/dead","upstream_id":"dead","plugins":{"limit-conn":{"conn":1,"burst":0,"default_conn_delay":0.1,"key":"http_x_k"}}}`)
			waitServed(t, g.URL+"/dead", 502, 5*time.Second)
			for i := range 10 {
				if r := lnAfterRelease(g.URL+"/dead", "dead"); r.status != 502 {
					t.Fatalf("request %d to a dead upstream: %d, want 502 (503: an earlier one was not released)", i, r.status)
				}
			}

			// Rejection by a later plugin (limit-count, priority 1002, runs
			// after limit-conn's 1003): the count taken is still released.
			mustAdmin(t, g, "PUT", "/apisix/admin/routes/lcc", `{"uri":"/lcc","upstream_id":"u1","plugins":{`+
				`"limit-conn":{"conn":1,"burst":0,"default_conn_delay":0.1,"key":"http_x_k"},`+
				`"limit-count":{"count":1,"time_window":60,"key":"http_x_k","rejected_code":429}}}`)
			waitServed(t, g.URL+"/lcc", 200, 5*time.Second)
			for i := range 5 {
				if r := lnAfterRelease(g.URL+"/lcc", "lcc"); r.status != []int{200, 429}[min(i, 1)] {
					t.Fatalf("request %d: %d, want limit-count's answer (503: limit-conn leaked a count)", i, r.status)
				}
			}

			// Client hangs up mid-response: two streams are counted while
			// they run, and released once the clients are gone.
			var conns []net.Conn
			for range 2 {
				c, err := net.Dial("tcp", g.Addr)
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(c, "GET /lc/stream HTTP/1.1\r\nHost: x\r\nX-K: s\r\n\r\n")
				br := bufio.NewReader(c)
				resp, err := http.ReadResponse(br, nil)
				if err != nil || resp.StatusCode != 200 {
					t.Fatalf("stream: %v %v", resp, err)
				}
				if _, err := br.ReadByte(); err != nil { // a byte of the body: the response is under way
					t.Fatal(err)
				}
				conns = append(conns, c)
			}
			if r := lcGet(g.URL+"/lc/fast", "s"); r.status != 503 {
				t.Fatalf("with two streams running, a third request got %d, want 503", r.status)
			}
			for _, c := range conns {
				c.Close()
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				// Both released: one held and one more fit.
				wait, rejected := lnHoldOrReject(t, up, g.URL+"/lc/slow", "s")
				if rejected == nil {
					if r := lcGet(g.URL+"/lc/fast", "s"); r.status == 200 {
						up.open()
						wait()
						break
					}
				}
				up.open()
				wait()
				if time.Now().After(deadline) {
					t.Fatal("the streams' clients hung up 5s ago, but their counts were not released")
				}
				time.Sleep(50 * time.Millisecond)
			}
			for i, r := range lcBurst(t, repeat(g.URL+"/lc/fast", 2), "s") {
				if r.status != 200 {
					t.Errorf("after the releases, request %d: %d", i, r.status)
				}
			}
		})
	}
}

// lnAfterRelease sends a request, again while it is rejected with 503 for
// up to a second. The log phase, which releases a count, runs after the
// response went out (as in nginx), so a client that sends its next request
// the moment it has read an answer can still find the previous request
// counted; a count that is never released keeps answering 503.
func lnAfterRelease(url, k string) lcResult {
	deadline := time.Now().Add(time.Second)
	for {
		r := lcGet(url, k)
		if r.status != 503 || time.Now().After(deadline) {
			return r
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lnHoldOrReject sends one /slow request: either it reaches the upstream
// (wait collects its answer after open) or it is rejected.
func lnHoldOrReject(t *testing.T, up *connUpstream, url, k string) (wait func(), rejected *lcResult) {
	t.Helper()
	before := up.slow.Load()
	out := make(chan lcResult, 1)
	go func() { out <- lcGet(url, k) }()
	deadline := time.Now().Add(5 * time.Second)
	for up.slow.Load() == before {
		select {
		case r := <-out:
			return func() {}, &r
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the request neither reached the upstream nor was rejected")
		}
	}
	return func() { <-out }, nil
}

// TestLimitConnRedisTwoGateways: two sluice processes sharing one
// redis-server and conn 5: 20 simultaneous slow requests split between
// them get exactly 5 through in total; when they complete, 5 more are
// admitted.
func TestLimitConnRedisTwoGateways(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newConnUpstream(t)
	cfg := fmt.Sprintf(`{"conn":5,"burst":0,"default_conn_delay":0.1,"key":"http_x_k","policy":"redis","redis_host":"127.0.0.1","redis_port":%d}`, rs.Port())
	var gs []*Gateway
	for range 2 {
		g := StartGateway(t, GatewayOptions{Store: "embedded"})
		mustAdmin(t, g, "PUT", "/apisix/admin/upstreams/u1", fmt.Sprintf(`{"nodes":{%q:1}}`, up.Addr))
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/lc", `{"uri":"/lc/*","upstream_id":"u1","plugins":{"limit-conn":`+cfg+`}}`)
		gs = append(gs, g)
	}
	for _, g := range gs {
		lcWaitRoute(t, g.URL+"/lc/fast", 200)
	}
	for round, split := range []int{10, 3, 17} {
		urls := make([]string, 20)
		for i := range urls {
			urls[i] = gs[min(i/split, 1)].URL + "/lc/slow"
		}
		wait, rejected := lnHold(t, up, urls, "k", 5)
		for _, r := range rejected {
			if r.status != 503 {
				t.Errorf("round %d: rejection %d", round, r.status)
			}
		}
		up.open()
		for _, r := range wait() {
			if r.status != 200 {
				t.Errorf("round %d: admitted request answered %d", round, r.status)
			}
		}
		// The releases reach Redis off the request path: wait for them, so
		// that the next round starts from zero.
		deadline := time.Now().Add(5 * time.Second)
		for {
			r, err := rs.Do("EVAL", `"local n = 0 for _, k in ipairs(redis.call('KEYS', 'plugin-limit-conn:*')) do n = n + redis.call('ZCARD', k) end return n"`, "0")
			if err != nil {
				t.Fatal(err)
			}
			if r == ":0" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: Redis still counts %s requests after they completed", round, r)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TestLimitConnRedisOutage: Redis frozen, then killed: without
// allow_degradation requests get APISIX's bare 500, with it they pass; no
// request waits longer than redis_timeout plus a margin.
func TestLimitConnRedisOutage(t *testing.T) {
	t.Parallel()
	const timeoutMS = 300
	const margin = 400 * time.Millisecond
	rs := redistest.Start(t)
	g, _ := pluginGateway(t, "")
	redis := fmt.Sprintf(`"policy":"redis","redis_host":"127.0.0.1","redis_port":%d,"redis_timeout":%d`, rs.Port(), timeoutMS)
	base := `"conn":100,"burst":0,"default_conn_delay":0.1,"key":"http_x_k",`
	mustAdmin(t, g, "PUT", "/apisix/admin/routes/strict", `{"uri":"/strict","upstream_id":"u1","plugins":{"limit-conn":{`+base+redis+`}}}`)
	mustAdmin(t, g, "PUT", "/apisix/admin/routes/lenient", `{"uri":"/lenient","upstream_id":"u1","plugins":{"limit-conn":{`+base+`"allow_degradation":true,`+redis+`}}}`)
	redisOutage(t, g, rs, timeoutMS*time.Millisecond+margin, timeoutMS*time.Millisecond, "limit-conn: redis unavailable")
}

// redisOutage drives the shared Redis-outage scenario of the limiter tests
// against routes /strict (no allow_degradation) and /lenient (with it):
// with Redis frozen, then stopped, strict requests get APISIX's bare 500 and
// lenient ones pass, none taking longer than bound; the failure is logged
// (logLine); once Redis restarts, /strict admits again without a gateway
// restart.
func redisOutage(t *testing.T, g *Gateway, rs *redistest.Server, bound, redisTimeout time.Duration, logLine string) {
	t.Helper()
	lcWaitRoute(t, g.URL+"/strict", 200)
	lcWaitRoute(t, g.URL+"/lenient", 200)
	check := func(phase string) time.Duration {
		t.Helper()
		urls := append(repeat(g.URL+"/strict", 10), repeat(g.URL+"/lenient", 10)...)
		var slowest time.Duration
		for i, r := range lcBurst(t, urls, phase) {
			slowest = max(slowest, r.took)
			if r.took > bound {
				t.Errorf("%s: a request took %v, redis_timeout is %v", phase, r.took, redisTimeout)
			}
			if i < 10 {
				if r.status != 500 || !strings.Contains(r.body, "<title>500 Internal Server Error</title>") {
					t.Errorf("%s, no degradation: %d %q, want 500 with nginx's page", phase, r.status, r.body)
				}
			} else if r.status != 200 {
				t.Errorf("%s, allow_degradation: %d, want 200", phase, r.status)
			}
		}
		return slowest
	}
	rs.Pause()
	if slowest := check("frozen"); slowest < redisTimeout*8/10 {
		t.Errorf("frozen Redis: slowest request %v, expected about redis_timeout: was Redis really frozen?", slowest)
	}
	rs.Resume()
	rs.Stop()
	check("down")
	g.WaitLog(t, logLine, 5*time.Second)
	rs.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for lcGet(g.URL+"/strict", "back").status != 200 {
		if time.Now().After(deadline) {
			t.Fatal("Redis is back but /strict does not admit again")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
