package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hcBackend is an upstream that can be killed (listener and connections
// closed: connection refused) and revived on the same address. It answers
// probes on /hc with probeStatus and everything else with 200 and its name.
type hcBackend struct {
	name        string
	addr        string
	probeStatus atomic.Int32
	probes      atomic.Int64 // /hc requests since the last revive
	hits        atomic.Int64 // proxied requests, all time
	// firstHitProbes is the probe count when the first proxied request
	// after a revive arrived; -1 until then.
	firstHitProbes atomic.Int64

	mu  sync.Mutex
	srv *http.Server
}

func newHCBackend(t *testing.T, name string) *hcBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &hcBackend{name: name, addr: ln.Addr().String()}
	b.probeStatus.Store(200)
	b.serve(ln)
	t.Cleanup(b.kill)
	return b
}

func (b *hcBackend) serve(ln net.Listener) {
	b.probes.Store(0)
	b.firstHitProbes.Store(-1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hc" {
			b.probes.Add(1)
			w.WriteHeader(int(b.probeStatus.Load()))
			return
		}
		b.hits.Add(1)
		b.firstHitProbes.CompareAndSwap(-1, b.probes.Load())
		io.WriteString(w, b.name)
	})}
	b.mu.Lock()
	b.srv = srv
	b.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

func (b *hcBackend) kill() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv != nil {
		_ = b.srv.Close()
		b.srv = nil
	}
}

func (b *hcBackend) revive(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", b.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("revive %s on %s: %v", b.name, b.addr, err)
	}
	b.serve(ln)
}

// hcNodeStatus is one node of /v1/healthcheck.
type hcNodeStatus struct {
	IP       string `json:"ip"`
	Port     int    `json:"port"`
	Hostname string `json:"hostname"`
	Status   string `json:"status"`
	Counter  struct {
		Success        int `json:"success"`
		HTTPFailure    int `json:"http_failure"`
		TCPFailure     int `json:"tcp_failure"`
		TimeoutFailure int `json:"timeout_failure"`
	} `json:"counter"`
}

type hcUpstreamStatus struct {
	Name  string         `json:"name"`
	Type  string         `json:"type"`
	Nodes []hcNodeStatus `json:"nodes"`
}

// hcStatus reads /v1/healthcheck/upstreams/1 and returns its nodes by address.
func hcStatus(t *testing.T, g *Gateway) map[string]hcNodeStatus {
	t.Helper()
	resp, err := http.Get(g.ControlURL + "/v1/healthcheck/upstreams/1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("/v1/healthcheck/upstreams/1: %d %s", resp.StatusCode, body)
	}
	var us hcUpstreamStatus
	if err := json.Unmarshal(body, &us); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	if us.Name != "/apisix/upstreams/1" || us.Type != "http" {
		t.Fatalf("checker %q type %q, want /apisix/upstreams/1 http", us.Name, us.Type)
	}
	out := make(map[string]hcNodeStatus)
	for _, n := range us.Nodes {
		out[fmt.Sprintf("%s:%d", n.IP, n.Port)] = n
	}
	return out
}

func hcWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hcSend sends n sequential requests and returns, per backend name, how many
// it answered, plus how many requests failed (non-200 or transport error).
func hcSend(t *testing.T, c *http.Client, url string, n int) (map[string]int, int) {
	t.Helper()
	seen := make(map[string]int)
	errs := 0
	for range n {
		resp, err := c.Get(url)
		if err != nil {
			errs++
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			errs++
			continue
		}
		seen[string(body)]++
	}
	return seen, errs
}

// Thresholds of the checks below, which the assertions derive their bounds from.
const (
	hcPassiveTCPFailures = 2
	hcActiveSuccesses    = 2
	hcActiveHTTPFailures = 2
)

// TestHealthChecks drives active and passive checks end to end on both
// engines: a killed backend stops getting traffic within the passive
// thresholds, comes back after healthy.successes probes, a reload keeps the
// states, and with every node unhealthy traffic goes to all of them.
func TestHealthChecks(t *testing.T) {
	for _, engine := range []string{"fast", "std"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			testHealthChecks(t, engine)
		})
	}
}

func testHealthChecks(t *testing.T, engine string) {
	a, b, c := newHCBackend(t, "a"), newHCBackend(t, "b"), newHCBackend(t, "c")
	g := StartGateway(t, GatewayOptions{Store: "embedded", Engine: engine})

	// retries 0: a request sent to a dead node fails to the client, so the
	// errors the client sees are exactly the passive failures counted.
	// passive.healthy.successes 0: live 200s do not revive a node, so only
	// active probes do (and the all-unhealthy step stays unhealthy).
	upstream := fmt.Sprintf(`{"type":"roundrobin","retries":0,
		"nodes":[{"host":"127.0.0.1","port":%s,"weight":1},{"host":"127.0.0.1","port":%s,"weight":1},{"host":"127.0.0.1","port":%s,"weight":1}],
		"checks":{
			"active":{"http_path":"/hc","timeout":1,
				"healthy":{"interval":1,"successes":%d},
				"unhealthy":{"interval":1,"http_failures":%d,"tcp_failures":2}},
			"passive":{"healthy":{"successes":0},"unhealthy":{"tcp_failures":%d,"http_failures":2}}}}`,
		hcPort(a), hcPort(b), hcPort(c), hcActiveSuccesses, hcActiveHTTPFailures, hcPassiveTCPFailures)
	mustAdmin(t, g, "PUT", "/apisix/admin/upstreams/1", upstream)
	mustAdmin(t, g, "PUT", "/apisix/admin/routes/1", `{"uri":"/app","upstream_id":"1"}`)
	client := &http.Client{Timeout: 5 * time.Second}
	url := g.URL + "/app"
	hcWait(t, "route served", func() bool { _, errs := hcSend(t, client, url, 1); return errs == 0 })

	seen, errs := hcSend(t, client, url, 30)
	if errs != 0 || seen["a"] == 0 || seen["b"] == 0 || seen["c"] == 0 {
		t.Fatalf("all healthy: %v, %d errors; want every backend, no error", seen, errs)
	}

	// 1. Kill b. Every request sent to it counts one passive TCP failure
	// (and active probes add theirs to the same counter), so the client sees
	// at most passive.unhealthy.tcp_failures errors.
	b.kill()
	seen, errs = hcSend(t, client, url, 60)
	t.Logf("%s engine: b killed: %d client errors over 60 requests (bound %d); answers %v", engine, errs, hcPassiveTCPFailures, seen)
	if errs > hcPassiveTCPFailures {
		t.Fatalf("client saw %d errors, want at most passive tcp_failures = %d", errs, hcPassiveTCPFailures)
	}
	if seen["a"] == 0 || seen["c"] == 0 {
		t.Fatalf("traffic did not stay on a and c: %v", seen)
	}
	st := hcStatus(t, g)
	if s := st[b.addr]; s.Status != "unhealthy" || s.Counter.TCPFailure < hcPassiveTCPFailures {
		t.Fatalf("b in /v1/healthcheck: %+v, want unhealthy with >= %d tcp failures", s, hcPassiveTCPFailures)
	}
	if st[a.addr].Status != "healthy" || st[c.addr].Status != "healthy" {
		t.Fatalf("a, c in /v1/healthcheck: %+v %+v, want healthy", st[a.addr], st[c.addr])
	}

	// 2. An unrelated change reloads the configuration: b stays unhealthy.
	before := strings.Count(g.Stderr.String(), `msg="configuration applied"`)
	mustAdmin(t, g, "PUT", "/apisix/admin/routes/2", `{"uri":"/other","upstream_id":"1"}`)
	hcWait(t, "reload applied", func() bool {
		return strings.Count(g.Stderr.String(), `msg="configuration applied"`) > before
	})
	if s := hcStatus(t, g)[b.addr]; s.Status != "unhealthy" {
		t.Fatalf("after reload b is %+v, want still unhealthy", s)
	}
	if _, errs := hcSend(t, client, url, 20); errs != 0 {
		t.Fatalf("after reload %d errors: the dead node got traffic again", errs)
	}

	// 3. Revive b: it gets traffic again only after healthy.successes probes.
	hitsBefore := b.hits.Load()
	b.revive(t)
	hcWait(t, "b healthy again", func() bool { return hcStatus(t, g)[b.addr].Status == "healthy" })
	if s := hcStatus(t, g)[b.addr]; s.Counter.Success < hcActiveSuccesses {
		t.Fatalf("b healthy with %d successes, want >= %d", s.Counter.Success, hcActiveSuccesses)
	}
	seen, errs = hcSend(t, client, url, 30)
	if errs != 0 || seen["b"] == 0 {
		t.Fatalf("b revived: %v, %d errors; want b serving again", seen, errs)
	}
	if first := b.firstHitProbes.Load(); b.hits.Load() == hitsBefore || first < hcActiveSuccesses {
		t.Fatalf("b's first proxied request after revival came after %d probes, want >= %d", first, hcActiveSuccesses)
	}

	// 4. Every node fails its probes: all unhealthy, and traffic goes to all
	// of them (APISIX's rule) rather than to none.
	for _, be := range []*hcBackend{a, b, c} {
		be.probeStatus.Store(500)
	}
	hcWait(t, "all unhealthy", func() bool {
		st := hcStatus(t, g)
		return st[a.addr].Status == "unhealthy" && st[b.addr].Status == "unhealthy" && st[c.addr].Status == "unhealthy"
	})
	if s := hcStatus(t, g)[a.addr]; s.Counter.HTTPFailure < hcActiveHTTPFailures {
		t.Fatalf("a: %+v, want >= %d http failures", s, hcActiveHTTPFailures)
	}
	seen, errs = hcSend(t, client, url, 30)
	if errs != 0 || seen["a"] == 0 || seen["b"] == 0 || seen["c"] == 0 {
		t.Fatalf("all unhealthy: %v, %d errors; want traffic on every node", seen, errs)
	}

	// The list endpoint carries the same checker.
	resp, err := http.Get(g.ControlURL + "/v1/healthcheck")
	if err != nil {
		t.Fatal(err)
	}
	var all []hcUpstreamStatus
	err = json.NewDecoder(resp.Body).Decode(&all)
	resp.Body.Close()
	if err != nil || len(all) != 1 || all[0].Name != "/apisix/upstreams/1" || len(all[0].Nodes) != 3 {
		t.Fatalf("/v1/healthcheck: %+v (%v), want the one checker with 3 nodes", all, err)
	}
	if code, _ := adminlessGet(t, g.ControlURL+"/v1/healthcheck/upstreams/404"); code != 404 {
		t.Fatalf("unknown upstream: %d, want 404", code)
	}
}

func hcPort(be *hcBackend) string {
	_, p, _ := net.SplitHostPort(be.addr)
	return p
}

func adminlessGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHealthClientFaultsDoNotCount: a client whose chunked body is broken
// makes the exchange fail, but the node did nothing wrong, so passive checks
// must not count it (a handful of bad clients could otherwise take a healthy
// backend out of service).
func TestHealthClientFaultsDoNotCount(t *testing.T) {
	for _, engine := range []string{"fast", "std"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			a := newHCBackend(t, "a")
			g := StartGateway(t, GatewayOptions{Store: "embedded", Engine: engine})
			mustAdmin(t, g, "PUT", "/apisix/admin/upstreams/1", fmt.Sprintf(`{"retries":0,
				"nodes":[{"host":"127.0.0.1","port":%s,"weight":1}],
				"checks":{"active":{"http_path":"/hc","healthy":{"interval":60},"unhealthy":{"interval":60}},
					"passive":{"unhealthy":{"tcp_failures":1,"timeouts":1}}}}`, hcPort(a)))
			mustAdmin(t, g, "PUT", "/apisix/admin/routes/1", `{"uri":"/app","upstream_id":"1"}`)
			waitServed(t, g.URL+"/app", 200, 5*time.Second)
			for range 5 {
				// A chunk size that is not hex, after the head went upstream.
				resp, _ := RawRequest(t, g.Addr, "POST /app HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 3*time.Second)
				if code := StatusOf(resp); code != 400 && code != 0 {
					t.Fatalf("broken chunked body answered %d, want 400 (or a closed connection)", code)
				}
			}
			s := hcStatus(t, g)[a.addr]
			if s.Status != "healthy" || s.Counter.TCPFailure != 0 || s.Counter.TimeoutFailure != 0 {
				t.Fatalf("node after 5 broken client bodies: %+v, want healthy with no failure counted", s)
			}
			if code, _, _ := do(t, "GET", g.URL+"/app"); code != 200 {
				t.Fatalf("node taken out of service by client faults: %d", code)
			}
		})
	}
}
