package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/redistest"
)

// lcRoute is a limit-count route on upstream u1, counted per X-K header
// (each test round uses its own key, and probes use theirs).
func lcRoute(uri, limitCount string) string {
	return fmt.Sprintf(`{"uri":%q,"upstream_id":"u1","plugins":{"limit-count":%s}}`, uri, limitCount)
}

// lcResult is one answer as a client saw it.
type lcResult struct {
	status    int
	remaining string
	body      string
	took      time.Duration
	err       error
}

// lcGet sends one request with key k on a fresh connection.
func lcGet(url, k string) lcResult {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("X-K", k)
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return lcResult{err: err, took: time.Since(start)}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return lcResult{status: resp.StatusCode, remaining: resp.Header.Get("X-RateLimit-Remaining"), body: string(b), took: time.Since(start)}
}

// lcBurst sends len(urls) requests with key k at once (each client on its
// own connection, released together) and returns the answers.
func lcBurst(t *testing.T, urls []string, k string) []lcResult {
	t.Helper()
	out := make([]lcResult, len(urls))
	var ready, done sync.WaitGroup
	release := make(chan struct{})
	for i, u := range urls {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-release
			out[i] = lcGet(u, k)
		}()
	}
	ready.Wait()
	close(release)
	done.Wait()
	for _, r := range out {
		if r.err != nil {
			t.Fatalf("burst request failed: %v", r.err)
		}
	}
	return out
}

// lcWaitRoute polls url with a probe key until it answers want.
func lcWaitRoute(t *testing.T, url string, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; ; i++ {
		r := lcGet(url, "probe-"+strconv.Itoa(i))
		if r.err == nil && r.status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered %d (last %d %v)", url, want, r.status, r.err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lcCheckExact asserts exactly limit admitted, the rest rejected with 503,
// and each remaining value from limit-1 down to 0 seen exactly once.
func lcCheckExact(t *testing.T, res []lcResult, limit int) {
	t.Helper()
	admitted, rejected := 0, 0
	seen := map[string]int{}
	for _, r := range res {
		switch r.status {
		case 200:
			admitted++
			seen[r.remaining]++
		case 503:
			rejected++
			if r.remaining != "0" {
				t.Errorf("rejection with X-RateLimit-Remaining %q, want 0", r.remaining)
			}
		default:
			t.Errorf("unexpected answer %d %q", r.status, r.body)
		}
	}
	if admitted != limit || rejected != len(res)-limit {
		t.Fatalf("admitted %d, rejected %d of %d; want exactly %d admitted", admitted, rejected, len(res), limit)
	}
	for i := range limit {
		if n := seen[strconv.Itoa(i)]; n != 1 {
			t.Errorf("X-RateLimit-Remaining %d seen %d times, want once", i, n)
		}
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// TestLimitCountLocalExact: 200 concurrent clients against count 100 get
// exactly 100 admitted, with each remaining count handed out once; on both
// engines.
func TestLimitCountLocalExact(t *testing.T) {
	for _, engine := range []string{"fast", "std"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			g, _ := pluginGateway(t, engine)
			mustAdmin(t, g, "PUT", "/apisix/admin/routes/lc", lcRoute("/lc", `{"count":100,"time_window":60,"key":"http_x_k"}`))
			lcWaitRoute(t, g.URL+"/lc", 200)
			for round := range 3 {
				lcCheckExact(t, lcBurst(t, repeat(g.URL+"/lc", 200), "round-"+strconv.Itoa(round)), 100)
			}
		})
	}
}

// TestLimitCountHeadersAndRejection: the quota headers count down, the
// rejection carries rejected_code/rejected_msg (or nginx's page for the
// bare code), counters survive a reload that leaves the route alone, and
// invalid configs are refused by the Admin API with the field named.
func TestLimitCountHeadersAndRejection(t *testing.T) {
	t.Parallel()
	g, _ := pluginGateway(t, "")
	mustAdmin(t, g, "PUT", "/apisix/admin/routes/h", lcRoute("/h",
		`{"count":3,"time_window":60,"key":"http_x_k","rejected_code":429,"rejected_msg":"Requests are too frequent"}`))
	mustAdmin(t, g, "PUT", "/apisix/admin/routes/d", lcRoute("/d", `{"count":1,"time_window":60,"key":"http_x_k"}`))
	mustAdmin(t, g, "PUT", "/apisix/admin/routes/n", lcRoute("/n", `{"count":1,"time_window":60,"key":"http_x_k","show_limit_quota_header":false}`))
	lcWaitRoute(t, g.URL+"/n", 200)

	for i, want := range []string{"2", "1"} {
		code, h, _ := do(t, "GET", g.URL+"/h", "X-K", "a")
		if code != 200 || h.Get("X-RateLimit-Limit") != "3" || h.Get("X-RateLimit-Remaining") != want {
			t.Fatalf("request %d: %d limit=%q remaining=%q, want 200 3 %s", i+1, code,
				h.Get("X-RateLimit-Limit"), h.Get("X-RateLimit-Remaining"), want)
		}
		if reset, err := strconv.ParseFloat(h.Get("X-RateLimit-Reset"), 64); err != nil || reset <= 55 || reset > 60 {
			t.Errorf("request %d: X-RateLimit-Reset = %q, want in (55, 60]", i+1, h.Get("X-RateLimit-Reset"))
		}
	}
	// A reload that leaves route h alone keeps its counts.
	mustAdmin(t, g, "PUT", "/apisix/admin/routes/other", `{"uri":"/other","upstream_id":"u1"}`)
	waitServed(t, g.URL+"/other", 200, 5*time.Second)
	code, h, _ := do(t, "GET", g.URL+"/h", "X-K", "a")
	if code != 200 || h.Get("X-RateLimit-Remaining") != "0" {
		t.Fatalf("after a reload: %d remaining=%q, want 200 0 (counts kept)", code, h.Get("X-RateLimit-Remaining"))
	}
	code, h, body := do(t, "GET", g.URL+"/h", "X-K", "a")
	if code != 429 || body != `{"error_msg":"Requests are too frequent"}`+"\n" {
		t.Errorf("rejection = %d %q", code, body)
	}
	if h.Get("X-RateLimit-Limit") != "3" || h.Get("X-RateLimit-Remaining") != "0" || h.Get("X-RateLimit-Reset") == "" {
		t.Errorf("rejection headers: limit=%q remaining=%q reset=%q", h.Get("X-RateLimit-Limit"),
			h.Get("X-RateLimit-Remaining"), h.Get("X-RateLimit-Reset"))
	}
	// Another key has its own quota.
	if code, h, _ := do(t, "GET", g.URL+"/h", "X-K", "b"); code != 200 || h.Get("X-RateLimit-Remaining") != "2" {
		t.Errorf("other key: %d remaining=%q", code, h.Get("X-RateLimit-Remaining"))
	}
	// Changing the route's limit-count config starts its counts afresh.
	mustAdmin(t, g, "PUT", "/apisix/admin/routes/h", lcRoute("/h", `{"count":4,"time_window":60,"key":"http_x_k"}`))
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, h, _ := do(t, "GET", g.URL+"/h", "X-K", "c")
		if h.Get("X-RateLimit-Limit") == "4" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("route h never got count 4")
		}
	}
	if code, h, _ := do(t, "GET", g.URL+"/h", "X-K", "a"); code != 200 || h.Get("X-RateLimit-Remaining") != "3" {
		t.Errorf("after a config change key a: %d remaining=%q, want 200 3; access log:\n%s", code,
			h.Get("X-RateLimit-Remaining"), strings.Join(g.AccessLog(t, 1), "\n"))
	}

	do(t, "GET", g.URL+"/d", "X-K", "a")
	code, h, body = do(t, "GET", g.URL+"/d", "X-K", "a")
	if code != 503 || !strings.Contains(body, "<title>503 Service Temporarily Unavailable</title>") || h.Get("X-RateLimit-Remaining") != "0" {
		t.Errorf("default rejection = %d %q remaining=%q", code, body, h.Get("X-RateLimit-Remaining"))
	}

	for i := range 2 {
		code, h, _ := do(t, "GET", g.URL+"/n", "X-K", "a")
		if code != []int{200, 503}[i] || h.Get("X-RateLimit-Limit") != "" || h.Get("X-RateLimit-Remaining") != "" {
			t.Errorf("show_limit_quota_header false, request %d: %d headers %v", i+1, code, h)
		}
	}

	for _, tc := range []struct{ cfg, want string }{
		{`{"time_window":60}`, "count: is required"},
		{`{"count":1,"time_window":60,"rejected_code":600}`, "rejected_code: must be between 200 and 599"},
		{`{"count":1,"time_window":60,"policy":"redis"}`, "redis_host: is required when policy is redis"},
	} {
		code, out := adminDo(t, g, "PUT", "/apisix/admin/routes/bad", lcRoute("/bad", tc.cfg))
		if code != 400 || !strings.Contains(out, "limit-count") || !strings.Contains(out, tc.want) {
			t.Errorf("PUT %s: %d %s, want 400 naming %q", tc.cfg, code, out, tc.want)
		}
	}
}

// lcRedisGateways starts n gateways with the same limit-count route (same
// id, same config: the same Redis counters) at /r.
func lcRedisGateways(t *testing.T, n int, limitCount string) []*Gateway {
	t.Helper()
	up := protoNewUpstream(t, nil)
	var gs []*Gateway
	for range n {
		g := StartGateway(t, GatewayOptions{Store: "embedded"})
		mustAdmin(t, g, "PUT", "/apisix/admin/upstreams/u1", fmt.Sprintf(`{"nodes":{%q:1}}`, up.Addr))
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r", lcRoute("/r", limitCount))
		gs = append(gs, g)
	}
	for _, g := range gs {
		lcWaitRoute(t, g.URL+"/r", 200)
	}
	return gs
}

// lcSplit sends 200 requests at once, first of them to a, the rest to b.
func lcSplit(a, b *Gateway, first int) []string {
	urls := make([]string, 200)
	for i := range urls {
		if i < first {
			urls[i] = a.URL + "/r"
		} else {
			urls[i] = b.URL + "/r"
		}
	}
	return urls
}

// TestLimitCountRedisTwoGateways: two sluice processes sharing one
// redis-server with count 100 admit exactly 100 in total, however the 200
// concurrent requests are split between them.
func TestLimitCountRedisTwoGateways(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	gs := lcRedisGateways(t, 2, fmt.Sprintf(`{"count":100,"time_window":60,"key":"http_x_k","policy":"redis","redis_host":"127.0.0.1","redis_port":%d}`, rs.Port()))
	for _, split := range []int{100, 37, 163, 200, 0} {
		t.Run(fmt.Sprintf("%d-%d", split, 200-split), func(t *testing.T) {
			lcCheckExact(t, lcBurst(t, lcSplit(gs[0], gs[1], split), "split-"+strconv.Itoa(split)), 100)
		})
	}
}

// TestLimitCountRedisCluster: the same through a real 3-master Redis
// Cluster (policy redis-cluster).
func TestLimitCountRedisCluster(t *testing.T) {
	t.Parallel()
	cl := redistest.StartCluster(t, 3)
	nodes := `["` + strings.Join(cl.Addrs(), `","`) + `"]`
	gs := lcRedisGateways(t, 2, `{"count":100,"time_window":60,"key":"http_x_k","policy":"redis-cluster","redis_cluster_name":"e2e","redis_cluster_nodes":`+nodes+`}`)
	for _, split := range []int{100, 50, 150} {
		t.Run(fmt.Sprintf("%d-%d", split, 200-split), func(t *testing.T) {
			lcCheckExact(t, lcBurst(t, lcSplit(gs[0], gs[1], split), "cluster-"+strconv.Itoa(split)), 100)
		})
	}
	keys := 0
	for _, s := range cl.Servers {
		r, err := s.Do("DBSIZE")
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(strings.TrimPrefix(r, ":"))
		keys += n
	}
	if keys < 3 {
		t.Errorf("the cluster holds %d keys, want one per round and probe", keys)
	}
}

// TestLimitCountRedisOutage: Redis frozen (SIGSTOP: a slow Redis) and then
// killed: without allow_degradation requests get 500 with APISIX's body,
// with it they pass; no request waits longer than redis_timeout plus a
// margin; the degradation is logged. Redis restarted: limiting resumes
// without restarting the gateway.
func TestLimitCountRedisOutage(t *testing.T) {
	t.Parallel()
	const timeoutMS = 300
	const margin = 400 * time.Millisecond // process scheduling on a busy 2-core machine
	rs := redistest.Start(t)
	g, _ := pluginGateway(t, "")
	redis := fmt.Sprintf(`"policy":"redis","redis_host":"127.0.0.1","redis_port":%d,"redis_timeout":%d`, rs.Port(), timeoutMS)
	mustAdmin(t, g, "PUT", "/apisix/admin/routes/strict", lcRoute("/strict", `{"count":2,"time_window":60,"key":"http_x_k",`+redis+`}`))
	mustAdmin(t, g, "PUT", "/apisix/admin/routes/lenient", lcRoute("/lenient", `{"count":2,"time_window":60,"key":"http_x_k","allow_degradation":true,`+redis+`}`))
	lcWaitRoute(t, g.URL+"/strict", 200)
	lcWaitRoute(t, g.URL+"/lenient", 200)

	check := func(phase string) time.Duration {
		t.Helper()
		urls := append(repeat(g.URL+"/strict", 20), repeat(g.URL+"/lenient", 20)...)
		var slowest time.Duration
		for i, r := range lcBurst(t, urls, phase) {
			slowest = max(slowest, r.took)
			if r.took > timeoutMS*time.Millisecond+margin {
				t.Errorf("%s: a request took %v, redis_timeout is %dms", phase, r.took, timeoutMS)
			}
			if i < 20 {
				if r.status != 500 || r.body != `{"error_msg":"failed to limit count"}`+"\n" {
					t.Errorf("%s, no degradation: %d %q, want 500 failed to limit count", phase, r.status, r.body)
				}
			} else if r.status != 200 || r.remaining != "" {
				t.Errorf("%s, allow_degradation: %d remaining=%q, want 200 without quota headers", phase, r.status, r.remaining)
			}
		}
		return slowest
	}
	rs.Pause()
	// A frozen Redis answers nothing: requests wait out redis_timeout (so
	// the slowest took at least most of it), and not much longer.
	if slowest := check("frozen"); slowest < timeoutMS*time.Millisecond*8/10 {
		t.Errorf("frozen Redis: slowest request %v, expected about redis_timeout (%dms): was Redis really frozen?", slowest, timeoutMS)
	}
	rs.Resume()
	rs.Stop()
	check("down")
	g.WaitLog(t, "limit-count: redis unavailable", 5*time.Second)

	rs.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if r := lcGet(g.URL+"/strict", "back"); r.status == 200 && r.remaining == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Redis is back but /strict does not count again")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := lcGet(g.URL+"/strict", "back"); r.status != 200 || r.remaining != "0" {
		t.Errorf("after Redis came back: %d remaining=%q, want 200 0", r.status, r.remaining)
	}
	if r := lcGet(g.URL+"/strict", "back"); r.status != 503 {
		t.Errorf("after Redis came back, over the limit: %d, want 503", r.status)
	}
}
