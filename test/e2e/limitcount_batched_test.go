package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/redistest"
)

// lcBatchedCredit is the batched mode's credit: max(1, count/100)
// requests a gateway admits for a key before its first lease arrives, the
// only source of over-admission (docs/plugins/limit-count.md).
func lcBatchedCredit(count int) int { return max(1, count/100) }

// lcBatchedBound is the documented bound on admitted requests per key and
// window: count + (gateways-1) x credit.
func lcBatchedBound(count, gateways int) int { return count + gateways*lcBatchedCredit(count) }

// lcLoadResult is what a load run saw.
type lcLoadResult struct {
	admitted, rejected, other atomic.Int64
	otherSample               atomic.Value
}

// lcLoad sends requests with key k from conns keep-alive clients per URL
// until d has passed.
func lcLoad(t *testing.T, urls []string, conns int, k string, d time.Duration) *lcLoadResult {
	t.Helper()
	res := &lcLoadResult{}
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for _, u := range urls {
		for range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := &http.Client{Timeout: 10 * time.Second}
				for time.Now().Before(deadline) {
					req, _ := http.NewRequest("GET", u, nil)
					req.Header.Set("X-K", k)
					resp, err := c.Do(req)
					if err != nil {
						res.other.Add(1)
						res.otherSample.Store(err.Error())
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					switch resp.StatusCode {
					case 200:
						res.admitted.Add(1)
					case 503:
						res.rejected.Add(1)
					default:
						res.other.Add(1)
						res.otherSample.Store(resp.Status)
					}
				}
			}()
		}
	}
	wg.Wait()
	if n := res.other.Load(); n > 0 {
		t.Fatalf("%d requests neither admitted nor rejected, e.g. %v", n, res.otherSample.Load())
	}
	return res
}

// TestLimitCountBatchedBound measures the batched cluster mode's
// over-admission: two sluice processes share one redis-server, each under
// 8 concurrent keep-alive clients on the same key, far more requests than
// count. Per window the total admitted is at least count (the quota is
// used up) and at most count + (gateways-1) x credit. Over several fresh
// windows of count 100 and 1000, and over consecutive windows of one key.
func TestLimitCountBatchedBound(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	redis := fmt.Sprintf(`"policy":"redis","redis_host":"127.0.0.1","redis_port":%d,"sync_interval":0.1`, rs.Port())
	up := protoNewUpstream(t, nil)
	var gs []*Gateway
	for range 2 {
		g := StartGateway(t, GatewayOptions{Store: "embedded"})
		mustAdmin(t, g, "PUT", "/apisix/admin/upstreams/u1", fmt.Sprintf(`{"nodes":{%q:1}}`, up.Addr))
		for _, count := range []int{100, 1000} {
			mustAdmin(t, g, "PUT", fmt.Sprintf("/apisix/admin/routes/b%d", count), lcRoute(fmt.Sprintf("/b%d", count),
				fmt.Sprintf(`{"count":%d,"time_window":30,"key":"http_x_k",%s}`, count, redis)))
		}
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/w", lcRoute("/w", `{"count":100,"time_window":1,"key":"http_x_k",`+redis+`}`))
		gs = append(gs, g)
	}
	for _, g := range gs {
		for _, p := range []string{"/b100", "/b1000", "/w"} {
			lcWaitRoute(t, g.URL+p, 200)
		}
	}

	for _, count := range []int{100, 1000} {
		bound := lcBatchedBound(count, len(gs))
		for round := range 3 {
			urls := []string{gs[0].URL + fmt.Sprintf("/b%d", count), gs[1].URL + fmt.Sprintf("/b%d", count)}
			r := lcLoad(t, urls, 8, fmt.Sprintf("fresh-%d-%d", count, round), 1200*time.Millisecond)
			n := int(r.admitted.Load())
			t.Logf("count %d, window %d: admitted %d, rejected %d (bound [%d, %d])", count, round+1, n, r.rejected.Load(), count, bound)
			if n > bound {
				t.Errorf("count %d, window %d: admitted %d, over the documented bound %d", count, round+1, n, bound)
			}
			if n < count {
				t.Errorf("count %d, window %d: admitted %d under sustained load, want the whole quota %d", count, round+1, n, count)
			}
			if r.rejected.Load() == 0 {
				t.Errorf("count %d, window %d: nothing rejected: the load did not exceed the quota", count, round+1)
			}
		}
	}

	// One key through consecutive 1 s windows for 3.5 s: windows follow
	// each other (each lasts its full second), so at most 4 begin in the
	// run and at least 3 end in it.
	const d = 3500 * time.Millisecond
	r := lcLoad(t, []string{gs[0].URL + "/w", gs[1].URL + "/w"}, 8, "consecutive", d)
	n := int(r.admitted.Load())
	lo, hi := 3*100, 4*lcBatchedBound(100, len(gs))
	t.Logf("count 100, 1 s windows for %v: admitted %d, rejected %d (want [%d, %d])", d, n, r.rejected.Load(), lo, hi)
	if n < lo || n > hi {
		t.Errorf("consecutive windows: admitted %d, want within [%d, %d]", n, lo, hi)
	}
}

// TestLimitCountBatchedOutage: Redis frozen, then killed: a gateway in the
// batched mode spends the tokens it holds (here the credit: one request of
// a fresh key), then answers like the redis policy, 500 without
// allow_degradation and a pass with it; no request waits longer than
// redis_timeout plus a margin, and once the gateway knows Redis is down
// none waits at all. Redis restarted: limiting resumes without a restart.
func TestLimitCountBatchedOutage(t *testing.T) {
	t.Parallel()
	const timeoutMS = 300
	const margin = 400 * time.Millisecond // process scheduling on a busy 2-core machine
	rs := redistest.Start(t)
	g, _ := pluginGateway(t, "")
	redis := fmt.Sprintf(`"policy":"redis","redis_host":"127.0.0.1","redis_port":%d,"redis_timeout":%d,"sync_interval":0.1`, rs.Port(), timeoutMS)
	mustAdmin(t, g, "PUT", "/apisix/admin/routes/strict", lcRoute("/strict", `{"count":2,"time_window":60,"key":"http_x_k",`+redis+`}`))
	mustAdmin(t, g, "PUT", "/apisix/admin/routes/lenient", lcRoute("/lenient", `{"count":2,"time_window":60,"key":"http_x_k","allow_degradation":true,`+redis+`}`))
	lcWaitRoute(t, g.URL+"/strict", 200)
	lcWaitRoute(t, g.URL+"/lenient", 200)

	check := func(phase string) time.Duration {
		t.Helper()
		urls := append(repeat(g.URL+"/strict", 20), repeat(g.URL+"/lenient", 20)...)
		var slowest time.Duration
		strictOK := 0
		for i, r := range lcBurst(t, urls, phase) {
			slowest = max(slowest, r.took)
			if r.took > timeoutMS*time.Millisecond+margin {
				t.Errorf("%s: a request took %v, redis_timeout is %dms", phase, r.took, timeoutMS)
			}
			switch {
			case i < 20 && r.status == 200:
				strictOK++ // the credit
			case i < 20:
				if r.status != 500 || r.body != `{"error_msg":"failed to limit count"}`+"\n" {
					t.Errorf("%s, no degradation: %d %q, want 500 failed to limit count", phase, r.status, r.body)
				}
			case r.status != 200:
				t.Errorf("%s, allow_degradation: %d, want 200", phase, r.status)
			}
		}
		if strictOK > 1 {
			t.Errorf("%s: %d strict requests passed, want at most the credit (1)", phase, strictOK)
		}
		return slowest
	}
	rs.Pause()
	if slowest := check("frozen"); slowest < timeoutMS*time.Millisecond*8/10 {
		t.Errorf("frozen Redis: slowest request %v, expected about redis_timeout (%dms): was Redis really frozen?", slowest, timeoutMS)
	}
	rs.Resume()
	rs.Stop()
	// The gateway knows Redis is down: nobody waits for it any more.
	if slowest := check("down"); slowest > timeoutMS*time.Millisecond/2 {
		t.Errorf("Redis known down: slowest request %v, want no wait for redis_timeout", slowest)
	}
	g.WaitLog(t, "limit-count: redis unavailable", 5*time.Second)

	rs.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; ; i++ {
		// A fresh key each try: its credit passes; the second request
		// passes only when the gateway got a lease from Redis.
		k := "back-" + strconv.Itoa(i)
		first, second := lcGet(g.URL+"/strict", k), lcGet(g.URL+"/strict", k)
		if first.status == 200 && second.status == 200 && second.remaining == "0" {
			if r := lcGet(g.URL+"/strict", k); r.status != 503 {
				t.Errorf("after Redis came back, over the limit: %d, want 503", r.status)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis is back but /strict does not count again (%d, %d %q)", first.status, second.status, second.remaining)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
