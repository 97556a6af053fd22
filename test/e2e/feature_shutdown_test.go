package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// TestFeatureGracefulShutdown sends SIGTERM while a slow request is in flight:
// the request completes, new connections are refused and the process exits 0.
func TestFeatureGracefulShutdown(t *testing.T) {
	t.Parallel()
	for _, engine := range featEngines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			up := featNewUpstream(t, "slow", func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/slow" {
					time.Sleep(time.Second)
				}
				io.WriteString(w, "done "+r.URL.Path)
			})
			res := fmt.Sprintf("upstreams:\n  - id: u\n    nodes: {%q: 1}\nroutes:\n  - {id: r, uri: /*, upstream_id: u}\n", up.Addr)
			g := featGateway(t, GatewayOptions{Resources: res, Engine: engine, Extra: "timeouts:\n  shutdown: 5s"})
			c := featClient(10 * time.Second)
			// An idle keepalive connection must not hold the drain up.
			if r := featDo(t, c, "GET", g.URL+"/warm", ""); r.Status != 200 {
				t.Fatalf("warm-up: %d", r.Status)
			}
			type result struct {
				r   featResp
				err error
			}
			got := make(chan result, 1)
			slowClient := featClient(10 * time.Second)
			go func() {
				r, err := featTry(slowClient, "GET", g.URL+"/slow", "")
				got <- result{r, err}
			}()
			for up.Hits.Load() < 2 { // the slow request reached the upstream
				time.Sleep(5 * time.Millisecond)
			}
			start := time.Now()
			g.Signal(syscall.SIGTERM)
			g.WaitLog(t, "shutting down", 2*time.Second)
			time.Sleep(50 * time.Millisecond)
			if conn, err := net.DialTimeout("tcp", g.Addr, time.Second); err == nil {
				conn.Close()
				t.Errorf("a new connection was accepted while draining")
			}
			res1 := <-got
			if res1.err != nil || res1.r.Status != 200 || res1.r.Body != "done /slow" {
				t.Fatalf("in-flight request: %+v %v", res1.r, res1.err)
			}
			if !res1.r.Close {
				t.Errorf("in-flight response while draining lacks Connection: close")
			}
			select {
			case <-g.Exited():
			case <-time.After(5 * time.Second):
				t.Fatal("sluice did not exit after draining")
			}
			if el := time.Since(start); el > 2*time.Second+featExitSlack() {
				t.Errorf("exit took %v after SIGTERM with a 1 s request", el)
			}
			if code := g.ExitCode(); code != 0 {
				t.Errorf("exit code %d, want 0", code)
			}
		})
	}
}

// TestFeatureShutdownBounded checks that timeouts.shutdown bounds the drain
// when an upstream hangs.
func TestFeatureShutdownBounded(t *testing.T) {
	t.Parallel()
	for _, engine := range featEngines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			release := make(chan struct{})
			up := featNewUpstream(t, "hang", func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-time.After(10 * time.Second):
				case <-release:
				case <-r.Context().Done():
				}
				io.WriteString(w, "late")
			})
			defer close(release)
			res := fmt.Sprintf("upstreams:\n  - id: u\n    nodes: {%q: 1}\nroutes:\n  - {id: r, uri: /*, upstream_id: u}\n", up.Addr)
			g := featGateway(t, GatewayOptions{Resources: res, Engine: engine, HTTPS: true, Extra: "timeouts:\n  shutdown: 1s"})
			errc := make(chan error, 2)
			go func() {
				_, err := featTry(featClient(15*time.Second), "GET", g.URL+"/hang", "")
				errc <- err
			}()
			// One more on the TLS listener, so both listeners have a request to drain.
			go func() {
				_, err := featTry(featTLSClient(t, g, 15*time.Second), "GET", "https://"+g.TLSAddr+"/hang", "")
				errc <- err
			}()
			for up.Hits.Load() < 2 {
				time.Sleep(5 * time.Millisecond)
			}
			start := time.Now()
			g.Signal(syscall.SIGTERM)
			select {
			case <-g.Exited():
			case <-time.After(5 * time.Second):
				t.Fatal("sluice did not exit within 5 s of SIGTERM with shutdown: 1s")
			}
			el := time.Since(start)
			if el < 900*time.Millisecond || el > 2*time.Second+featExitSlack() {
				t.Errorf("exited %v after SIGTERM, want 1-2 s", el)
			}
			for i := 0; i < 2; i++ {
				select {
				case err := <-errc:
					if err == nil {
						t.Errorf("a hanging request succeeded after a forced shutdown")
					}
				case <-time.After(3 * time.Second):
					t.Errorf("the client of a hanging request was left hanging after the process exited")
				}
			}
			g.WaitLog(t, "drain incomplete", time.Second)
			if code := g.ExitCode(); code != 0 {
				t.Errorf("exit code %d after a bounded drain, want 0", code)
			}
		})
	}
}
