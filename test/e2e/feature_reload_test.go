package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// featReloadVersion is the i-th resources version of the reload test: the
// route clients hit always exists but moves between the two live upstreams,
// an upstream id and an inline upstream, and a prefix and a catch-all URI;
// routes nobody hits come and go.
func featReloadVersion(i int, a, b string) string {
	var nodes string
	switch i % 3 {
	case 0:
		nodes = fmt.Sprintf("{%q: 1}", a)
	case 1:
		nodes = fmt.Sprintf("{%q: 1}", b)
	default:
		nodes = fmt.Sprintf("{%q: 1, %q: 2}", a, b)
	}
	var s strings.Builder
	fmt.Fprintf(&s, "upstreams:\n  - id: \"u\"\n    desc: \"version %d\"\n    nodes: %s\n", i, nodes)
	if i%4 == 1 {
		fmt.Fprintf(&s, "  - id: \"spare\"\n    nodes: {%q: 1}\n", b)
	}
	s.WriteString("routes:\n")
	uri := "/api/*"
	if i%5 == 2 {
		uri = "/*"
	}
	if i%2 == 0 {
		fmt.Fprintf(&s, "  - {id: \"main\", uri: %q, upstream_id: \"u\"}\n", uri)
	} else {
		fmt.Fprintf(&s, "  - {id: \"main\", uri: %q, upstream: {nodes: %s}}\n", uri, nodes)
	}
	if i%4 == 1 {
		fmt.Fprintf(&s, "  - {id: \"unused-%d\", uri: \"/never/%d\", upstream_id: \"spare\"}\n", i, i)
	}
	if i%3 == 2 {
		s.WriteString("  - {id: \"unused-static\", uri: \"/nope\", methods: [\"PUT\"], upstream_id: \"u\"}\n")
	}
	return s.String()
}

// TestFeatureReloadUnderLoad rewrites the resources file 100 times (by the
// file poller and by SIGHUP) while clients keep sending requests: not one
// request may fail. Then invalid files are rejected with every error logged by
// field path while the last good configuration keeps serving.
func TestFeatureReloadUnderLoad(t *testing.T) {
	t.Parallel()
	for _, engine := range featEngines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			a := featNewUpstream(t, "A", nil)
			b := featNewUpstream(t, "B", nil)
			g := featGateway(t, GatewayOptions{Resources: featReloadVersion(0, a.Addr, b.Addr), Engine: engine})

			var total, failures atomic.Int64
			var mu sync.Mutex
			var firstErrs []string
			fail := func(msg string) {
				failures.Add(1)
				mu.Lock()
				if len(firstErrs) < 10 {
					firstErrs = append(firstErrs, msg)
				}
				mu.Unlock()
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			client := func(c *http.Client, post bool) {
				defer wg.Done()
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					var resp *http.Response
					var err error
					want := ""
					if post {
						want = fmt.Sprintf("payload-%d", n)
						resp, err = c.Post(g.URL+"/api/post", "text/plain", strings.NewReader(want))
					} else {
						resp, err = c.Get(fmt.Sprintf("%s/api/get?n=%d", g.URL, n))
					}
					total.Add(1)
					if err != nil {
						fail(err.Error())
						continue
					}
					body, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil || resp.StatusCode != 200 || (string(body) != "A" && string(body) != "B") {
						fail(fmt.Sprintf("%d %q %v", resp.StatusCode, body, err))
					}
				}
			}
			keepalive := featClient(5 * time.Second)
			fresh := featClient(5 * time.Second)
			fresh.Transport.(*http.Transport).DisableKeepAlives = true
			for i := 0; i < 3; i++ {
				wg.Add(1)
				go client(keepalive, false)
			}
			wg.Add(2)
			go client(keepalive, true)
			go client(fresh, false)

			for i := 1; i <= 100; i++ {
				// Every tenth version is left to the file poller; the rest are
				// applied at once by SIGHUP.
				featSend(t, g, featReloadVersion(i, a.Addr, b.Addr), i%10 != 0)
			}
			close(stop)
			wg.Wait()
			if failures.Load() != 0 {
				t.Fatalf("%d of %d requests failed during 100 reloads; first: %q", failures.Load(), total.Load(), firstErrs)
			}
			if total.Load() < 200 || a.Hits.Load() == 0 || b.Hits.Load() == 0 {
				t.Fatalf("too little traffic: %d requests, A %d, B %d", total.Load(), a.Hits.Load(), b.Hits.Load())
			}
			// POST bodies arrived intact.
			for _, r := range append(a.Requests(), b.Requests()...) {
				if r.Method == "POST" && !strings.HasPrefix(r.Body, "payload-") {
					t.Fatalf("upstream got POST body %q", r.Body)
				}
			}
			t.Logf("%d requests, A %d, B %d", total.Load(), a.Hits.Load(), b.Hits.Load())

			// The last good version (100: 100%3 == 1 -> only B) serves.
			c := featClient(5 * time.Second)
			check := func(when string) {
				t.Helper()
				for i := 0; i < 5; i++ {
					if r := featDo(t, c, "GET", g.URL+"/api/x", ""); r.Status != 200 || r.Body != "B" {
						t.Fatalf("%s: got %d %q, want 200 B", when, r.Status, r.Body)
					}
				}
			}
			check("after reloads")

			applied := strings.Count(g.Stderr.String(), `msg="configuration applied"`)
			invalid := fmt.Sprintf(`upstreams:
  - id: "u"
    type: bogus
    nodes: {%q: 1}
routes:
  - {id: "main", uri: "/api/*", upstream_id: "u"}
  - {id: "ghost", uri: "/ghost", upstream_id: "missing"}
  - {id: "nouri", upstream_id: "u"}
#END
`, a.Addr)
			featReplace(t, g.ResourcesPath, invalid)
			g.Signal(syscall.SIGHUP)
			for _, want := range []string{
				`path=upstreams[0].type`, `path=routes[1].upstream_id`, `path=routes[2].uri`,
				`msg="reload rejected; still serving the previous configuration"`,
			} {
				g.WaitLog(t, want, 5*time.Second)
			}
			check("after an invalid file")

			// A file without #END (a half-written one) is rejected too, by the poller.
			featReplace(t, g.ResourcesPath, featReloadVersion(0, a.Addr, b.Addr))
			g.WaitLog(t, "missing #END", 5*time.Second)
			check("after a file without #END")
			if n := strings.Count(g.Stderr.String(), `msg="configuration applied"`); n != applied {
				t.Fatalf("a rejected file was applied (%d -> %d applies)", applied, n)
			}

			// A good file is picked up again.
			featSend(t, g, featReloadVersion(0, a.Addr, b.Addr), false)
			if r := featDo(t, c, "GET", g.URL+"/api/x", ""); r.Status != 200 || r.Body != "A" {
				t.Fatalf("after recovery: got %d %q, want 200 A", r.Status, r.Body)
			}
		})
	}
}

// featReplace atomically replaces path with data, verbatim.
func featReplace(t testing.TB, path, data string) {
	t.Helper()
	writeFile(t, path+".tmp", data)
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}
