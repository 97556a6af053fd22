package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// pmirWaitHits waits until u has received want requests in all.
func pmirWaitHits(t *testing.T, u *featUpstream, want int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for u.Hits.Load() < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s received %d requests, want %d", u.Name, u.Hits.Load(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// pmirFind waits for u to receive method uri after its first skip
// requests and returns the first such request.
func pmirFind(t *testing.T, u *featUpstream, skip int, method, uri string) featReq {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, r := range u.Requests()[skip:] {
			if r.Method == method && r.URI == uri {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never received %s %s", u.Name, method, uri)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// pmirSettle waits until u's request count has not moved for quiet, and
// returns it: the copies of requests already answered have all arrived.
func pmirSettle(u *featUpstream, quiet time.Duration) int64 {
	last, since := u.Hits.Load(), time.Now()
	for time.Since(since) < quiet {
		time.Sleep(20 * time.Millisecond)
		if n := u.Hits.Load(); n != last {
			last, since = n, time.Now()
		}
	}
	return last
}

// pmirSend sends one request with a body (nil: none; a reader of unknown
// length goes chunked) and extra headers; it fails the test unless the
// gateway answers 200.
func pmirSend(t *testing.T, c *http.Client, method, url string, body io.Reader, hdr http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, vv := range hdr {
		req.Header[k] = vv
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%s %s: status %d", method, url, resp.StatusCode)
	}
}

// TestProxyMirrorCopies: GET and POST requests reach the main upstream and
// the mirror with the same method, path, query, Host, headers and body;
// path and prefix modes rewrite only the copy's path; sample_ratio 0.5
// mirrors about half of 400 requests; bodies over max_body_bytes or of
// unknown length reach the upstream whole and are not mirrored.
func TestProxyMirrorCopies(t *testing.T) {
	for _, engine := range featEngines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			up := featNewUpstream(t, "main", nil)
			mir := featNewUpstream(t, "mirror", nil)
			g := StartGateway(t, GatewayOptions{Store: "embedded", Engine: engine})
			mustAdmin(t, g, "PUT", "/apisix/admin/upstreams/main", fmt.Sprintf(`{"nodes":{%q:1}}`, up.Addr))
			host := "http://" + mir.Addr
			// Stored in order; the last one served means all are.
			routes := [][2]string{
				{"copy", `{"uri":"/copy/*","upstream_id":"main","plugins":{"proxy-mirror":{"host":%q}}}`},
				{"replace", `{"uri":"/rep/*","upstream_id":"main","plugins":{"proxy-mirror":{"host":%q,"path":"/shadow"}}}`},
				{"prefix", `{"uri":"/pre/*","upstream_id":"main","plugins":{"proxy-mirror":{"host":%q,"path":"/shadow","path_concat_mode":"prefix"}}}`},
				{"rewrite", `{"uri":"/rw","upstream_id":"main","plugins":{"proxy-mirror":{"host":%q},
					"proxy-rewrite":{"uri":"/rewritten","headers":{"set":{"X-Rewritten":"yes"}}}}}`},
				{"half", `{"uri":"/half","upstream_id":"main","plugins":{"proxy-mirror":{"host":%q,"sample_ratio":0.5}}}`},
			}
			for _, r := range routes {
				mustAdmin(t, g, "PUT", "/apisix/admin/routes/"+r[0], fmt.Sprintf(r[1], host))
			}
			waitServed(t, g.URL+"/half", 200, 5*time.Second)
			pmirSettle(mir, 300*time.Millisecond) // the copy of waitServed's request, if sampled
			c := featClient(5 * time.Second)

			// same sends a request and checks that the upstream and the
			// mirror got the same one (the mirror at wantURI).
			same := func(method, path string, body []byte, hdr http.Header, wantURI string) {
				t.Helper()
				upBefore, mirBefore := len(up.Requests()), len(mir.Requests())
				var rd io.Reader
				if body != nil {
					rd = bytes.NewReader(body)
				}
				pmirSend(t, c, method, g.URL+path, rd, hdr)
				u := pmirFind(t, up, upBefore, method, path)
				m := pmirFind(t, mir, mirBefore, method, wantURI)
				if m.Method != u.Method || m.Host != u.Host || m.Body != u.Body || string(body) != u.Body {
					t.Fatalf("%s %s: upstream got %s %s Host %q body %q; mirror got %s %s Host %q body %q",
						method, path, u.Method, u.URI, u.Host, u.Body, m.Method, m.URI, m.Host, m.Body)
				}
				if u.URI != path || m.URI != wantURI {
					t.Fatalf("%s %s: upstream URI %q, mirror URI %q, want %q", method, path, u.URI, m.URI, wantURI)
				}
				if !pmirSameHeaders(u.Header, m.Header) {
					t.Fatalf("%s %s: headers differ\nupstream %v\nmirror   %v", method, path, u.Header, m.Header)
				}
				for k, vv := range hdr {
					if k == "X-Forwarded-For" {
						continue // extended with the client address, checked above
					}
					if got := m.Header.Values(k); !slices.Equal(got, vv) {
						t.Fatalf("%s %s: mirror got %s %q, want %q", method, path, k, got, vv)
					}
				}
			}
			hdr := http.Header{
				"User-Agent": {"mirror-e2e/1"}, "Accept": {"application/json"},
				"X-Multi": {"one", "two"}, "X-Forwarded-For": {"198.51.100.7"}, "Cookie": {"s=1; t=2"},
			}
			same("GET", "/copy/items?id=7&sort=desc&q=a%20b", nil, hdr, "/copy/items?id=7&sort=desc&q=a%20b")
			body := []byte(`{"name":"widget","qty":3,"note":"` + strings.Repeat("z", 5000) + `"}`)
			same("POST", "/copy/orders?dry_run=1", body, http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"r-1"}},
				"/copy/orders?dry_run=1")
			same("PUT", "/copy/empty", []byte{}, nil, "/copy/empty")
			same("GET", "/rep/a/b?x=1", nil, nil, "/shadow?x=1")
			same("DELETE", "/rep/a", nil, nil, "/shadow")
			same("GET", "/pre/a/b?x=1", nil, nil, "/shadow/pre/a/b?x=1")

			// proxy-rewrite: the copy has the rewritten headers, and the
			// client's path, as in APISIX (see the docs).
			upN, mirN := len(up.Requests()), len(mir.Requests())
			pmirSend(t, c, "GET", g.URL+"/rw?k=v", nil, nil)
			if u, m := pmirFind(t, up, upN, "GET", "/rewritten?k=v"), pmirFind(t, mir, mirN, "GET", "/rw?k=v"); u.Header.Get("X-Rewritten") != "yes" || m.Header.Get("X-Rewritten") != "yes" {
				t.Fatalf("with proxy-rewrite: upstream %s %v, mirror %s %v", u.URI, u.Header, m.URI, m.Header)
			}

			// Bodies the mirror does not get: over max_body_bytes (1 MiB)
			// and chunked. The upstream still gets them whole.
			big := bytes.Repeat([]byte("0123456789abcdef"), 70_000) // 1.07 MiB
			mirBefore, upBefore := pmirSettle(mir, 200*time.Millisecond), up.Hits.Load()
			pmirSend(t, c, "POST", g.URL+"/copy/big", bytes.NewReader(big), nil)
			pmirSend(t, c, "POST", g.URL+"/copy/chunked", io.MultiReader(bytes.NewReader(body)), nil)
			pmirWaitHits(t, up, upBefore+2)
			reqs := up.Requests()
			if got := reqs[len(reqs)-2].Body; got != string(big) {
				t.Fatalf("upstream got %d bytes of the %d-byte body", len(got), len(big))
			}
			if got := reqs[len(reqs)-1].Body; got != string(body) {
				t.Fatalf("upstream got %d bytes of the chunked %d-byte body", len(got), len(body))
			}
			if n := pmirSettle(mir, 300*time.Millisecond); n != mirBefore {
				t.Fatalf("mirror received %d copies of over-long or chunked bodies, want none", n-mirBefore)
			}
			g.WaitLog(t, "proxy-mirror did not mirror requests", 2*time.Second)

			// sample_ratio 0.5 over 400 requests: Binomial(400, 0.5) has a
			// standard deviation of 10; accept ±6 of them.
			const n = 400
			before := pmirSettle(mir, 200*time.Millisecond)
			for range n {
				pmirSend(t, c, "GET", g.URL+"/half", nil, nil)
			}
			got := pmirSettle(mir, 300*time.Millisecond) - before
			t.Logf("sample_ratio 0.5: %d of %d requests mirrored", got, n)
			if got < 140 || got > 260 {
				t.Fatalf("sample_ratio 0.5 mirrored %d of %d requests, want 200 ± 60", got, n)
			}
		})
	}
}

// pmirSameHeaders compares the headers the upstream and the mirror got.
// Content-Length may differ only in presence for an empty body (the
// gateway may frame an empty body explicitly; the copy does not).
func pmirSameHeaders(a, b http.Header) bool {
	a, b = a.Clone(), b.Clone()
	for _, h := range []http.Header{a, b} {
		if h.Get("Content-Length") == "0" {
			h.Del("Content-Length")
		}
	}
	if len(a) != len(b) {
		return false
	}
	for k, vv := range a {
		if !slices.Equal(vv, b[k]) {
			return false
		}
	}
	return true
}

// pmirHangServer accepts connections and never reads from or answers
// them; it returns its address and how many connections it accepted.
func pmirHangServer(t *testing.T) (string, func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String(), func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(conns)
	}
}

// pmirLatencies sends n requests one after another and returns their
// latencies, sorted; every one must succeed.
func pmirLatencies(t *testing.T, c *http.Client, url string, n int) []time.Duration {
	t.Helper()
	out := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		pmirSend(t, c, "POST", url, strings.NewReader(`{"k":"v"}`), http.Header{"Content-Type": {"application/json"}})
		out = append(out, time.Since(start))
	}
	slices.Sort(out)
	return out
}

// pmirCounter returns the largest value of counter (dropped_total,
// failed_total) the gateway logged for the mirror at addr.
func pmirCounter(log, addr, counter string) int {
	re := regexp.MustCompile(`mirror=` + regexp.QuoteMeta(addr) + ` .*` + counter + `=(\d+)`)
	best := -1
	for _, m := range re.FindAllStringSubmatch(log, -1) {
		if n, _ := strconv.Atoi(m[1]); n > best {
			best = n
		}
	}
	return best
}

// TestProxyMirrorNeverSlowsClient: with a mirror that accepts and never
// answers, and one that is down, clients see the latency of a route
// without a mirror and every request succeeds; the hung mirror's copies
// beyond the 2 workers and the queue of 8 are dropped and counted, the
// dead mirror's are counted as failed.
func TestProxyMirrorNeverSlowsClient(t *testing.T) {
	for _, engine := range featEngines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			up := featNewUpstream(t, "main", nil)
			hangAddr, accepted := pmirHangServer(t)
			downAddr := featClosedAddr(t)
			g := StartGateway(t, GatewayOptions{Store: "embedded", Engine: engine, Extra: `plugin_attr:
  proxy-mirror:
    timeout: {connect: 2s, send: 2s, read: 2s}
    workers: 2
    queue_size: 8
`})
			mustAdmin(t, g, "PUT", "/apisix/admin/upstreams/main", fmt.Sprintf(`{"nodes":{%q:1}}`, up.Addr))
			mustAdmin(t, g, "PUT", "/apisix/admin/routes/base", `{"uri":"/base","upstream_id":"main"}`)
			mustAdmin(t, g, "PUT", "/apisix/admin/routes/hang",
				fmt.Sprintf(`{"uri":"/hang","upstream_id":"main","plugins":{"proxy-mirror":{"host":"http://%s"}}}`, hangAddr))
			mustAdmin(t, g, "PUT", "/apisix/admin/routes/down",
				fmt.Sprintf(`{"uri":"/down","upstream_id":"main","plugins":{"proxy-mirror":{"host":"http://%s"}}}`, downAddr))
			waitServed(t, g.URL+"/down", 200, 5*time.Second)
			c := featClient(10 * time.Second)
			pmirLatencies(t, c, g.URL+"/base", 20) // warm the connections

			const n = 200
			base := pmirLatencies(t, c, g.URL+"/base", n)
			hang := pmirLatencies(t, c, g.URL+"/hang", n)
			down := pmirLatencies(t, c, g.URL+"/down", n)
			p := func(l []time.Duration, q float64) time.Duration { return l[int(q*float64(len(l)-1))] }
			t.Logf("latency p50/p99/max: base %v/%v/%v, hung mirror %v/%v/%v, mirror down %v/%v/%v",
				p(base, .5), p(base, .99), base[n-1], p(hang, .5), p(hang, .99), hang[n-1], p(down, .5), p(down, .99), down[n-1])
			for name, l := range map[string][]time.Duration{"hung mirror": hang, "mirror down": down} {
				// A client that waited on the mirror would take its 2 s
				// timeouts; one that did not is as fast as the base route.
				if l[n-1] >= time.Second {
					t.Errorf("%s: slowest request took %v; the client waited on the mirror", name, l[n-1])
				}
				// The median allows for the CPU the copies themselves take
				// on a small machine (dialing, logging failures).
				if p(l, .5) > 4*p(base, .5)+5*time.Millisecond {
					t.Errorf("%s: median %v against %v without a mirror", name, p(l, .5), p(base, .5))
				}
			}
			if accepted() == 0 {
				t.Fatal("the hung mirror was never connected to")
			}

			// Drop and failure reports are rate-limited to one a second: one
			// more request after a second reports the totals.
			time.Sleep(1100 * time.Millisecond)
			pmirSend(t, c, "GET", g.URL+"/hang", nil, nil)
			pmirSend(t, c, "GET", g.URL+"/down", nil, nil)
			deadline := time.Now().Add(3 * time.Second)
			var dropped, failed int
			for time.Now().Before(deadline) {
				log := g.Stderr.String()
				dropped, failed = pmirCounter(log, hangAddr, "dropped_total"), pmirCounter(log, downAddr, "failed_total")
				if dropped >= n+1-10 && failed >= n {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Logf("hung mirror: %d of %d copies dropped; mirror down: %d copies failed", dropped, n+1, failed)
			// 2 copies held by the workers and 8 queued; every other one is
			// dropped while the workers wait out their timeouts.
			if dropped < n+1-10 || dropped > n+1 {
				t.Errorf("hung mirror: dropped_total %d, want %d", dropped, n+1-10)
			}
			if failed < n {
				t.Errorf("mirror down: failed_total %d, want at least %d", failed, n)
			}
			if !strings.Contains(g.Stderr.String(), `reason="queue full"`) {
				t.Error("the drops were not logged with their reason")
			}
		})
	}
}
