package e2e

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestFeatureTimeouts checks upstream and route timeouts: a slow upstream is
// answered with 504 once the read timeout passes, a route's timeout overrides
// its upstream's, and a node on a closed port is answered with 502.
func TestFeatureTimeouts(t *testing.T) {
	t.Parallel()
	slow := featNewUpstream(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
		io.WriteString(w, "late")
	})
	closed := featClosedAddr(t)
	res := fmt.Sprintf(`upstreams:
  - id: "slow-1s"
    timeout: {connect: 1, send: 1, read: 1}
    nodes: {%[1]q: 1}
  - id: "slow-5s"
    timeout: {connect: 5, send: 5, read: 5}
    nodes: {%[1]q: 1}
  - id: "dead"
    timeout: {connect: 1, send: 1, read: 1}
    nodes: {%[2]q: 1}
routes:
  - {id: "up-timeout", uri: "/up", upstream_id: "slow-1s"}
  - {id: "route-timeout", uri: "/route", upstream_id: "slow-5s", timeout: {connect: 1, send: 1, read: 1}}
  - {id: "route-longer", uri: "/longer", upstream_id: "slow-1s", timeout: {connect: 3, send: 3, read: 3}}
  - {id: "dead", uri: "/dead", upstream_id: "dead"}
`, slow.Addr, closed)
	for _, engine := range featEngines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			g := featGateway(t, GatewayOptions{Resources: res, Engine: engine})
			c := featClient(10 * time.Second)
			for _, path := range []string{"/up", "/route"} {
				start := time.Now()
				r := featDo(t, c, "GET", g.URL+path, "")
				el := time.Since(start)
				if r.Status != 504 || !strings.Contains(r.Body, "504 Gateway Time-out") {
					t.Errorf("%s: got %d %q after %v, want 504", path, r.Status, r.Body, el)
				}
				if el < 900*time.Millisecond || el > 1600*time.Millisecond {
					t.Errorf("%s: 504 after %v, want ~1s", path, el)
				}
			}
			// The route's longer timeout overrides the upstream's 1 s.
			start := time.Now()
			r := featDo(t, c, "GET", g.URL+"/longer", "")
			if r.Status != 200 || r.Body != "late" {
				t.Errorf("/longer: got %d %q after %v, want 200 late", r.Status, r.Body, time.Since(start))
			}
			start = time.Now()
			r = featDo(t, c, "GET", g.URL+"/dead", "")
			if r.Status != 502 || !strings.Contains(r.Body, "502 Bad Gateway") {
				t.Errorf("/dead: got %d %q, want 502", r.Status, r.Body)
			}
			if el := time.Since(start); el > 500*time.Millisecond {
				t.Errorf("/dead: 502 took %v", el)
			}
		})
	}
}

// TestFeatureRetries checks retries on connect failures: with one dead and one
// live node every request succeeds when retries allow another node, some fail
// with retries 0, and retry_timeout bounds the retrying.
func TestFeatureRetries(t *testing.T) {
	t.Parallel()
	holes := []string{featBlackhole(t), featBlackhole(t), featBlackhole(t), featBlackhole(t)}
	resFor := func(dead, live string) string {
		return fmt.Sprintf(`upstreams:
  - id: "retry1"
    retries: 1
    nodes: {%[1]q: 1, %[2]q: 1}
  - id: "retry0"
    retries: 0
    nodes: {%[1]q: 1, %[2]q: 1}
  - id: "default"
    nodes: {%[1]q: 1, %[2]q: 1}
  - id: "holes"
    retries: 3
    retry_timeout: 1
    timeout: {connect: 0.5, send: 1, read: 1}
    nodes: {%[3]q: 1, %[4]q: 1, %[5]q: 1, %[6]q: 1}
  - id: "holes-unbounded"
    retries: 3
    timeout: {connect: 0.3, send: 1, read: 1}
    nodes: {%[3]q: 1, %[4]q: 1, %[5]q: 1, %[6]q: 1}
routes:
  - {id: "retry1", uri: "/retry1", upstream_id: "retry1"}
  - {id: "retry0", uri: "/retry0", upstream_id: "retry0"}
  - {id: "default", uri: "/default", upstream_id: "default"}
  - {id: "holes", uri: "/holes", upstream_id: "holes"}
  - {id: "holes-unbounded", uri: "/holes-unbounded", upstream_id: "holes-unbounded"}
`, dead, live, holes[0], holes[1], holes[2], holes[3])
	}
	for _, engine := range featEngines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			live := featNewUpstream(t, "live", nil)
			g := featGateway(t, GatewayOptions{Resources: resFor(featClosedAddr(t), live.Addr), Engine: engine})
			c := featClient(10 * time.Second)
			for _, path := range []string{"/retry1", "/default"} { // default retries: nodes-1
				for i := 0; i < 20; i++ {
					r := featDo(t, c, "GET", g.URL+path, "")
					if r.Status != 200 || r.Body != "live" {
						t.Fatalf("%s #%d: got %d %q, want 200 live", path, i, r.Status, r.Body)
					}
				}
			}
			// A request body survives the retry.
			for i := 0; i < 4; i++ {
				body := fmt.Sprintf("body-%d-%s", i, strings.Repeat("x", 1000*i))
				resp, err := c.Post(g.URL+"/retry1", "text/plain", strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 200 || live.Last(t).Body != body || live.Last(t).Method != "POST" {
					t.Fatalf("POST /retry1 #%d: %d, upstream got %d bytes", i, resp.StatusCode, len(live.Last(t).Body))
				}
			}
			var ok, bad int
			for i := 0; i < 20; i++ {
				r := featDo(t, c, "GET", g.URL+"/retry0", "")
				switch {
				case r.Status == 200 && r.Body == "live":
					ok++
				case r.Status == 502:
					bad++
				default:
					t.Fatalf("/retry0: got %d %q", r.Status, r.Body)
				}
			}
			// Round robin alternates between the two nodes: exactly half fail.
			if ok != 10 || bad != 10 {
				t.Errorf("/retry0: %d ok, %d 502, want 10/10", ok, bad)
			}

			// Four nodes whose connects hang for 0.5 s each, retries 3: retry_timeout 1
			// stops after the attempt that ends past 1 s (two or three attempts).
			start := time.Now()
			r := featDo(t, c, "GET", g.URL+"/holes", "")
			el := time.Since(start)
			if r.Status != 504 {
				t.Errorf("/holes: got %d %q, want 504", r.Status, r.Body)
			}
			if el < 900*time.Millisecond || el > 1700*time.Millisecond {
				t.Errorf("/holes: answered after %v, want 1-1.5 s (retry_timeout 1 s)", el)
			}
			// Without retry_timeout every node is tried: 4 x 0.3 s.
			start = time.Now()
			r = featDo(t, c, "GET", g.URL+"/holes-unbounded", "")
			el = time.Since(start)
			if r.Status != 504 || el < 1100*time.Millisecond || el > 2*time.Second {
				t.Errorf("/holes-unbounded: got %d after %v, want 504 after ~1.2 s", r.Status, el)
			}
		})
	}
}

// TestFeatureMidBodyFailure checks that an upstream dying after the status line
// gives the client a broken response, promptly, never a complete-looking one.
func TestFeatureMidBodyFailure(t *testing.T) {
	t.Parallel()
	up := featNewUpstream(t, "dying", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ok" {
			io.WriteString(w, "fine")
			return
		}
		chunked := r.URL.Query().Get("chunked") == "1"
		if !chunked {
			w.Header().Set("Content-Length", "100000")
		}
		w.WriteHeader(200)
		io.WriteString(w, strings.Repeat("x", 1000))
		w.(http.Flusher).Flush()
		time.Sleep(50 * time.Millisecond)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	res := fmt.Sprintf("upstreams:\n  - id: u\n    nodes: {%q: 1}\nroutes:\n  - {id: r, uri: /*, upstream_id: u}\n", up.Addr)
	for _, engine := range featEngines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			g := featGateway(t, GatewayOptions{Resources: res, Engine: engine})
			c := featClient(5 * time.Second)
			for _, q := range []string{"chunked=0", "chunked=1"} {
				start := time.Now()
				resp, err := c.Get(g.URL + "/body?" + q)
				if err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				el := time.Since(start)
				if resp.StatusCode != 200 {
					t.Errorf("%s: status %d", q, resp.StatusCode)
				}
				if err == nil {
					t.Errorf("%s: body read completed without error (%d bytes); want a broken response", q, len(body))
				} else if !errors.Is(err, io.ErrUnexpectedEOF) && !strings.Contains(err.Error(), "EOF") &&
					!strings.Contains(err.Error(), "reset") {
					t.Errorf("%s: body error %v, want unexpected EOF", q, err)
				}
				if len(body) != 1000 {
					t.Errorf("%s: got %d body bytes before the break, want 1000", q, len(body))
				}
				if el > 2*time.Second {
					t.Errorf("%s: took %v (hang?)", q, el)
				}
			}
			// The gateway still serves after the broken exchanges.
			r := featDo(t, c, "GET", g.URL+"/ok?chunked=0", "")
			if r.Status != 200 || r.Body != "fine" {
				t.Errorf("follow-up: %d %q", r.Status, r.Body)
			}
		})
	}
}
