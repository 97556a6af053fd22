package e2e

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/redistest"
)

// lrRoute is a limit-req route on upstream u1.
func lrRoute(uri, limitReq string) string {
	return fmt.Sprintf(`{"uri":%q,"upstream_id":"u1","plugins":{"limit-req":%s}}`, uri, limitReq)
}

// lrCount tallies answers by status, failing on anything but 200 and 503.
func lrCount(t *testing.T, res []lcResult) (admitted, rejected int) {
	t.Helper()
	for _, r := range res {
		switch r.status {
		case 200:
			admitted++
		case 503:
			rejected++
		default:
			t.Errorf("unexpected answer %d %q", r.status, r.body)
		}
	}
	return admitted, rejected
}

// TestLimitReqNodelayBurst: with nodelay, a simultaneous burst of 60 gets
// exactly burst+1 through at once and the rest rejected, on both engines;
// every round uses a fresh key. rate 0.1 leaks one request per 10 s, so
// the burst's own duration cannot let an extra one in.
func TestLimitReqNodelayBurst(t *testing.T) {
	for _, engine := range []string{"fast", "std"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			g, _ := pluginGateway(t, engine)
			mustAdmin(t, g, "PUT", "/apisix/admin/routes/lr", lrRoute("/lr", `{"rate":0.1,"burst":9,"key":"http_x_k","nodelay":true}`))
			lcWaitRoute(t, g.URL+"/lr", 200)
			for round := range 3 {
				res := lcBurst(t, repeat(g.URL+"/lr", 60), "round-"+strconv.Itoa(round))
				if a, r := lrCount(t, res); a != 10 || r != 50 {
					t.Fatalf("round %d: admitted %d, rejected %d of 60; want exactly 10 admitted (burst 9 + 1)", round, a, r)
				}
				for _, r := range res {
					if r.took > time.Second {
						t.Errorf("with nodelay a request took %v", r.took)
					}
				}
			}
		})
	}
}

// TestLimitReqDelays: without nodelay, requests over the rate but within
// the burst are delayed by excess/rate: at rate 4 and burst 3 a
// simultaneous burst of 4 is answered at about 0, 250, 500 and 750 ms, the
// 5th is rejected at once, and while they wait a request with another key
// goes straight through (the delay holds its own request only).
func TestLimitReqDelays(t *testing.T) {
	t.Parallel()
	g, _ := pluginGateway(t, "")
	mustAdmin(t, g, "PUT", "/apisix/admin/routes/lr", lrRoute("/lr",
		`{"rate":4,"burst":3,"key":"http_x_k","rejected_code":429,"rejected_msg":"slow down"}`))
	lcWaitRoute(t, g.URL+"/lr", 200)

	other := make(chan lcResult, 1)
	go func() {
		time.Sleep(100 * time.Millisecond) // the burst is waiting by now
		other <- lcGet(g.URL+"/lr", "other-key")
	}()
	res := lcBurst(t, repeat(g.URL+"/lr", 5), "delayed")
	var took []time.Duration
	for _, r := range res {
		switch r.status {
		case 200:
			took = append(took, r.took)
		case 429:
			if r.body != `{"error_msg":"slow down"}`+"\n" {
				t.Errorf("rejection body %q", r.body)
			}
			if r.took > 200*time.Millisecond {
				t.Errorf("the rejection took %v: rejections must not wait", r.took)
			}
		default:
			t.Errorf("unexpected %d %q", r.status, r.body)
		}
	}
	if len(took) != 4 {
		t.Fatalf("%d admitted, want 4 (burst 3 + 1)", len(took))
	}
	slices.Sort(took)
	const slack = 200 * time.Millisecond // scheduling on a busy 2-core machine
	for i, d := range took {
		want := time.Duration(i) * 250 * time.Millisecond
		if d < want-50*time.Millisecond || d > want+slack {
			t.Errorf("admitted request %d answered after %v, want about %v (delays %v)", i, d, want, took)
		}
	}
	o := <-other
	if o.status != 200 || o.took > 150*time.Millisecond {
		t.Errorf("another key during the delays: %d after %v, want 200 at once", o.status, o.took)
	}
	// Invalid configurations are refused with the field named.
	for _, tc := range []struct{ cfg, want string }{
		{`{"burst":1,"key":"remote_addr"}`, "rate: is required"},
		{`{"rate":0,"burst":1,"key":"remote_addr"}`, "rate: must be greater than 0"},
		{`{"rate":1,"burst":1}`, "key: is required"},
		{`{"rate":1,"burst":1,"key":"remote_addr","policy":"redis"}`, "redis_host: is required when policy is redis"},
	} {
		code, out := adminDo(t, g, "PUT", "/apisix/admin/routes/bad", lrRoute("/bad", tc.cfg))
		if code != 400 || !strings.Contains(out, "limit-req") || !strings.Contains(out, tc.want) {
			t.Errorf("PUT %s: %d %s, want 400 naming %q", tc.cfg, code, out, tc.want)
		}
	}
}

// lrRedisGateways starts n gateways with the same limit-req route at /r.
func lrRedisGateways(t *testing.T, n int, limitReq string) []*Gateway {
	t.Helper()
	up := protoNewUpstream(t, nil)
	var gs []*Gateway
	for range n {
		g := StartGateway(t, GatewayOptions{Store: "embedded"})
		mustAdmin(t, g, "PUT", "/apisix/admin/upstreams/u1", fmt.Sprintf(`{"nodes":{%q:1}}`, up.Addr))
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r", lrRoute("/r", limitReq))
		gs = append(gs, g)
	}
	for _, g := range gs {
		lcWaitRoute(t, g.URL+"/r", 200)
	}
	return gs
}

// TestLimitReqRedisTwoGateways: two sluice processes sharing one
// redis-server admit exactly burst+1 of 200 simultaneous requests in
// total, however the requests are split between them.
func TestLimitReqRedisTwoGateways(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	gs := lrRedisGateways(t, 2, fmt.Sprintf(`{"rate":0.1,"burst":49,"key":"http_x_k","nodelay":true,"policy":"redis","redis_host":"127.0.0.1","redis_port":%d}`, rs.Port()))
	for _, split := range []int{100, 37, 200, 0} {
		t.Run(fmt.Sprintf("%d-%d", split, 200-split), func(t *testing.T) {
			res := lcBurst(t, lcSplit(gs[0], gs[1], split), "split-"+strconv.Itoa(split))
			if a, r := lrCount(t, res); a != 50 || r != 150 {
				t.Fatalf("admitted %d, rejected %d of 200; want exactly 50", a, r)
			}
		})
	}
}

// TestLimitReqRedisOutage: Redis frozen, then killed: without
// allow_degradation requests get APISIX's bare 500, with it they pass; no
// request waits longer than redis_timeout plus a margin; the failure is
// logged. Redis restarted: limiting resumes without a restart.
func TestLimitReqRedisOutage(t *testing.T) {
	t.Parallel()
	const timeoutMS = 300
	const margin = 400 * time.Millisecond
	rs := redistest.Start(t)
	g, _ := pluginGateway(t, "")
	redis := fmt.Sprintf(`"policy":"redis","redis_host":"127.0.0.1","redis_port":%d,"redis_timeout":%d`, rs.Port(), timeoutMS)
	mustAdmin(t, g, "PUT", "/apisix/admin/routes/strict", lrRoute("/strict", `{"rate":0.1,"burst":1,"nodelay":true,"key":"http_x_k",`+redis+`}`))
	mustAdmin(t, g, "PUT", "/apisix/admin/routes/lenient", lrRoute("/lenient", `{"rate":0.1,"burst":1,"nodelay":true,"key":"http_x_k","allow_degradation":true,`+redis+`}`))
	redisOutage(t, g, rs, timeoutMS*time.Millisecond+margin, timeoutMS*time.Millisecond, "limit-req: redis unavailable")
	lcGet(g.URL+"/strict", "back") // burst 1: the second fits
	if r := lcGet(g.URL+"/strict", "back"); r.status != 503 {
		t.Errorf("after Redis came back, over the burst: %d, want 503", r.status)
	}
}
