package e2e

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestFeatureBalancers checks each balancer type against real upstreams.
func TestFeatureBalancers(t *testing.T) {
	t.Parallel()
	for _, engine := range featEngines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			a := featNewUpstream(t, "a", nil)
			b := featNewUpstream(t, "b", nil)
			c := featNewUpstream(t, "c", nil)
			z := featNewUpstream(t, "zero", nil)
			slow := featNewUpstream(t, "slow", func(w http.ResponseWriter, r *http.Request) {
				time.Sleep(150 * time.Millisecond)
				w.Write([]byte("slow"))
			})
			quick := featNewUpstream(t, "quick", nil)
			res := fmt.Sprintf(`upstreams:
  - id: "rr"
    type: roundrobin
    nodes: {%[1]q: 3, %[2]q: 1}
  - id: "chash"
    type: chash
    hash_on: header
    key: X-User
    nodes: {%[1]q: 1, %[2]q: 1, %[3]q: 1}
  - id: "zero"
    nodes: {%[1]q: 1, %[4]q: 0}
  - id: "lc"
    type: least_conn
    nodes: {%[5]q: 1, %[6]q: 1}
routes:
  - {id: "rr", uri: "/rr", upstream_id: "rr"}
  - {id: "chash", uri: "/chash", upstream_id: "chash"}
  - {id: "zero", uri: "/zero", upstream_id: "zero"}
  - {id: "lc", uri: "/lc", upstream_id: "lc"}
`, a.Addr, b.Addr, c.Addr, z.Addr, slow.Addr, quick.Addr)
			g := featGateway(t, GatewayOptions{Resources: res, Engine: engine})
			cl := featClient(10 * time.Second)

			// Smooth weighted round robin is exact over whole periods.
			counts := map[string]int{}
			for i := 0; i < 400; i++ {
				r := featDo(t, cl, "GET", g.URL+"/rr", "")
				if r.Status != 200 {
					t.Fatalf("/rr: %d %q", r.Status, r.Body)
				}
				counts[r.Body]++
			}
			if counts["a"] != 300 || counts["b"] != 100 || len(counts) != 2 {
				t.Errorf("roundrobin 3:1 over 400: %v, want a=300 b=100", counts)
			}

			// chash on a header: a user always lands on the same node; users spread.
			nodeOf := map[string]string{}
			spread := map[string]int{}
			for round := 0; round < 3; round++ {
				for u := 0; u < 60; u++ {
					user := fmt.Sprintf("user-%d", u)
					r := featDo(t, cl, "GET", g.URL+"/chash", "", "X-User", user)
					if r.Status != 200 {
						t.Fatalf("/chash: %d", r.Status)
					}
					if prev, ok := nodeOf[user]; ok && prev != r.Body {
						t.Errorf("chash: %s went to %s, then %s", user, prev, r.Body)
					}
					if round == 0 {
						spread[r.Body]++
					}
					nodeOf[user] = r.Body
				}
			}
			if len(spread) != 3 || spread["a"] < 5 || spread["b"] < 5 || spread["c"] < 5 {
				t.Errorf("chash: 60 users spread as %v, want all three nodes used", spread)
			}

			// A weight-0 node gets nothing.
			for i := 0; i < 50; i++ {
				if r := featDo(t, cl, "GET", g.URL+"/zero", ""); r.Status != 200 || r.Body != "a" {
					t.Fatalf("/zero: %d %q", r.Status, r.Body)
				}
			}
			if n := z.Hits.Load(); n != 0 {
				t.Errorf("weight-0 node received %d requests", n)
			}

			// least_conn under concurrency: the slow node holds its connections,
			// so the quick one takes most requests.
			var mu sync.Mutex
			lc := map[string]int{}
			var wg sync.WaitGroup
			for w := 0; w < 6; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 20; i++ {
						r, err := featTry(cl, "GET", g.URL+"/lc", "")
						mu.Lock()
						if err != nil || r.Status != 200 {
							lc["error"]++
						} else {
							lc[r.Body]++
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if lc["error"] != 0 || lc["quick"]+lc["slow"] != 120 || lc["quick"] < 84 {
				t.Errorf("least_conn: %v, want quick >= 84 of 120 (round robin would give 60)", lc)
			}
		})
	}
}

// TestFeatureKeepalivePool checks upstream connection reuse and
// keepalive_pool.requests.
func TestFeatureKeepalivePool(t *testing.T) {
	t.Parallel()
	for _, engine := range featEngines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			def := featNewUpstream(t, "default", nil)
			small := featNewUpstream(t, "small", nil)
			// An upstream that closes idle keepalive connections quickly: the
			// gateway must not fail requests on the connections it closed.
			closer := featStartUpstream(t, "closer", nil, false, func(s *http.Server) { s.IdleTimeout = 50 * time.Millisecond })
			res := fmt.Sprintf(`upstreams:
  - id: "default"
    nodes: {%q: 1}
  - id: "small"
    keepalive_pool: {size: 1, requests: 10, idle_timeout: 60}
    nodes: {%q: 1}
  - id: "closer"
    nodes: {%q: 1}
routes:
  - {id: "default", uri: "/default", upstream_id: "default"}
  - {id: "small", uri: "/small", upstream_id: "small"}
  - {id: "closer", uri: "/closer", upstream_id: "closer"}
`, def.Addr, small.Addr, closer.Addr)
			g := featGateway(t, GatewayOptions{Resources: res, Engine: engine})
			cl := featClient(5 * time.Second)
			for _, path := range []string{"/default", "/small"} {
				for i := 0; i < 200; i++ {
					if r := featDo(t, cl, "GET", g.URL+path, ""); r.Status != 200 {
						t.Fatalf("%s #%d: %d", path, i, r.Status)
					}
				}
			}
			if n := def.NewConns.Load(); n < 1 || n > 2 {
				t.Errorf("200 sequential requests opened %d upstream connections, want 1-2", n)
			}
			if h := def.Hits.Load(); h != 200 {
				t.Errorf("default upstream got %d requests", h)
			}
			// requests: 10 closes each connection after its 10th request.
			if n := small.NewConns.Load(); n < 19 || n > 21 {
				t.Errorf("keepalive_pool.requests 10: 200 requests opened %d connections, want ~20", n)
			}
			for i := 0; i < 6; i++ {
				time.Sleep(120 * time.Millisecond) // the upstream has closed the pooled connection
				for _, method := range []string{"GET", "DELETE"} {
					if r := featDo(t, cl, method, g.URL+"/closer", ""); r.Status != 200 || r.Body != "closer" {
						t.Fatalf("%s /closer after the upstream closed the idle connection: %d %q", method, r.Status, r.Body)
					}
				}
			}
			if n := closer.NewConns.Load(); n < 6 {
				t.Errorf("closer: %d connections; the upstream idle timeout did not close any?", n)
			}
		})
	}
}
