package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/redistest"
)

// TestLimitCountSlidingLocalExact: window_type sliding, policy local: 200
// concurrent clients against count 100 in a fresh window get exactly 100
// admitted, each Remaining value handed out once; on both engines. (A day
// long window keeps the bursts clear of a window boundary.)
func TestLimitCountSlidingLocalExact(t *testing.T) {
	for _, engine := range []string{"fast", "std"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			g, _ := pluginGateway(t, engine)
			mustAdmin(t, g, "PUT", "/apisix/admin/routes/lcs", lcRoute("/lcs", `{"count":100,"time_window":86400,"window_type":"sliding","key":"http_x_k"}`))
			lcWaitRoute(t, g.URL+"/lcs", 200)
			for round := range 3 {
				lcCheckExact(t, lcBurst(t, repeat(g.URL+"/lcs", 200), "sliding-"+strconv.Itoa(round)), 100)
			}
		})
	}
}

// TestLimitCountSlidingBoundary: a client spends its quota in one window
// and comes back right after the boundary. Windows are aligned on Unix
// time, so the test places itself on the gateway's clock (the same
// machine's). A fixed window would admit a whole new quota; the sliding
// window weighs the full previous window: with count 10 and 2 s windows,
// at most 0.5 s past the boundary the weight is at least 7.5, so at most
// 2 requests fit. Rejections say when the weight will have decayed enough.
// Invalid combinations are refused with the field named.
func TestLimitCountSlidingBoundary(t *testing.T) {
	t.Parallel()
	g, _ := pluginGateway(t, "")
	mustAdmin(t, g, "PUT", "/apisix/admin/routes/b", lcRoute("/b", `{"count":10,"time_window":2,"window_type":"sliding","key":"http_x_k","rejected_code":429}`))
	lcWaitRoute(t, g.URL+"/b", 200)

	// One attempt: fill a window from 100 ms into it, then come back 50
	// ms after its end. It reports false when this machine was too slow
	// for the timing the bound assumes (the batch overran the window, or
	// the second batch ended more than 500 ms past the boundary).
	const w = 2 * time.Second
	attempt := func(key string) bool {
		into := time.Duration(time.Now().UnixNano() % int64(w))
		if into > 100*time.Millisecond {
			time.Sleep(w - into + 100*time.Millisecond)
		} else {
			time.Sleep(100*time.Millisecond - into)
		}
		windowEnd := time.Now().Truncate(w).Add(w)
		admitted := 0
		for i := range 15 {
			code, h, _ := do(t, "GET", g.URL+"/b", "X-K", key)
			if code == 200 {
				admitted++
			} else if code != 429 || h.Get("X-RateLimit-Remaining") != "0" {
				t.Fatalf("request %d: %d remaining=%q", i+1, code, h.Get("X-RateLimit-Remaining"))
			}
		}
		if time.Now().After(windowEnd) {
			return false
		}
		if admitted != 10 {
			t.Fatalf("first window admitted %d of 15, want 10", admitted)
		}
		time.Sleep(time.Until(windowEnd) + 50*time.Millisecond)
		admitted = 0
		var resets []string
		for range 10 {
			code, h, _ := do(t, "GET", g.URL+"/b", "X-K", key)
			switch code {
			case 200:
				admitted++
			case 429:
				resets = append(resets, h.Get("X-RateLimit-Reset"))
			default:
				t.Fatalf("unexpected %d", code)
			}
		}
		if time.Since(windowEnd) > w/4 {
			return false
		}
		t.Logf("just after the boundary: %d of 10 admitted", admitted)
		if admitted > 2 {
			t.Errorf("just after the boundary %d of 10 admitted; the previous window's weight allows at most 2 (a fixed window would allow 10)", admitted)
		}
		for _, r := range resets {
			// Reset on a rejection is when one request fits again: within
			// the window (< 2 s), rounded up to hundredths.
			f, err := strconv.ParseFloat(r, 64)
			if err != nil || f <= 0 || f >= 2 || (strings.Contains(r, ".") && len(r)-strings.Index(r, ".") > 3) {
				t.Errorf("X-RateLimit-Reset on a rejection = %q, want a wait in (0, 2) with at most 2 decimals", r)
			}
		}
		return true
	}
	done := false
	for i := 0; i < 3 && !done; i++ {
		done = attempt("edge-" + strconv.Itoa(i))
	}
	if !done {
		t.Fatal("three attempts were too slow to test the boundary (see the timing above)")
	}

	for _, tc := range []struct{ cfg, want string }{
		{`{"count":1,"time_window":60,"window_type":"sliding","sync_interval":1,"policy":"redis","redis_host":"127.0.0.1"}`,
			"window_type: sliding is not supported with sync_interval"},
		{`{"count":1,"time_window":60,"window_type":"rolling"}`, "window_type: must be one of fixed, sliding"},
	} {
		code, out := adminDo(t, g, "PUT", "/apisix/admin/routes/bad", lcRoute("/bad", tc.cfg))
		if code != 400 || !strings.Contains(out, "limit-count") || !strings.Contains(out, tc.want) {
			t.Errorf("PUT %s: %d %s, want 400 naming %q", tc.cfg, code, out, tc.want)
		}
	}
}

// TestLimitCountSlidingRedisTwoGateways: two sluice processes sharing one
// redis-server, window_type sliding: exactly 100 of 200 concurrent
// requests pass, however they are split; then the same key in the same
// window stays closed on both.
func TestLimitCountSlidingRedisTwoGateways(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	gs := lcRedisGateways(t, 2, fmt.Sprintf(`{"count":100,"time_window":86400,"window_type":"sliding","key":"http_x_k","policy":"redis","redis_host":"127.0.0.1","redis_port":%d}`, rs.Port()))
	for _, split := range []int{100, 37, 200} {
		t.Run(fmt.Sprintf("%d-%d", split, 200-split), func(t *testing.T) {
			k := "sliding-split-" + strconv.Itoa(split)
			lcCheckExact(t, lcBurst(t, lcSplit(gs[0], gs[1], split), k), 100)
			for _, g := range gs {
				if r := lcGet(g.URL+"/r", k); r.status != 503 {
					t.Errorf("%s after the burst: %d, want 503", g.URL, r.status)
				}
			}
		})
	}
}
