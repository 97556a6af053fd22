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

	"github.com/sluicegw/sluice/internal/store/etcdtest"
)

// adminDo sends one Admin API request and returns the status and body.
func adminDo(t testing.TB, g *Gateway, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, g.AdminURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-API-KEY", AdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// mustAdmin is adminDo that fails the test on a status other than 200/201.
func mustAdmin(t testing.TB, g *Gateway, method, path, body string) string {
	t.Helper()
	code, out := adminDo(t, g, method, path, body)
	if code != 200 && code != 201 {
		t.Fatalf("%s %s: %d %s", method, path, code, out)
	}
	return out
}

// waitServed polls url until it answers want (status) and returns how long it took.
func waitServed(t testing.TB, url string, want int, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	c := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := c.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == want {
				return time.Since(start)
			}
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s never answered %d within %v", url, want, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// storeReachable reads store.reachable from a node's control API.
func storeReachable(t testing.TB, g *Gateway) bool {
	t.Helper()
	resp, err := http.Get(g.ControlURL + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Store struct {
			Reachable bool `json:"reachable"`
		} `json:"store"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st.Store.Reachable
}

// revisionOf reads the revision a node serves from its control API.
func revisionOf(t testing.TB, g *Gateway) int64 {
	t.Helper()
	resp, err := http.Get(g.ControlURL + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Revision int64 `json:"revision"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st.Revision
}

func etcdStore(endpoint string) string {
	return fmt.Sprintf("store:\n  type: etcd\n  etcd:\n    endpoints: [%q]\n    prefix: /apisix\n    timeout: 2s", endpoint)
}

func echoUpstream(t testing.TB, name string) string {
	t.Helper()
	up := protoNewUpstreamWith(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name)
	})
	return strings.TrimPrefix(up.URL, "http://")
}

// TestClusterWriteReachesEveryNode: three sluice processes share one etcd; a
// write through one node's Admin API is served by all three, and every node
// reports the same revision.
func TestClusterWriteReachesEveryNode(t *testing.T) {
	t.Parallel()
	endpoint, _, _ := etcdtest.Start(t)
	up := echoUpstream(t, "cluster")
	var nodes []*Gateway
	for i := 0; i < 3; i++ {
		nodes = append(nodes, StartGateway(t, GatewayOptions{Store: etcdStore(endpoint)}))
	}
	mustAdmin(t, nodes[0], "PUT", "/apisix/admin/upstreams/u1", fmt.Sprintf(`{"nodes":{%q:1}}`, up))
	mustAdmin(t, nodes[0], "PUT", "/apisix/admin/routes/r1", `{"uri":"/c/*","upstream_id":"u1"}`)
	for i, n := range nodes {
		d := waitServed(t, n.URL+"/c/x", 200, 5*time.Second)
		t.Logf("node %d served the new route after %v", i, d)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r0, r1, r2 := revisionOf(t, nodes[0]), revisionOf(t, nodes[1]), revisionOf(t, nodes[2])
		if r0 == r1 && r1 == r2 && r0 > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nodes report revisions %d %d %d", r0, r1, r2)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A delete is seen everywhere too.
	mustAdmin(t, nodes[1], "DELETE", "/apisix/admin/routes/r1", "")
	for _, n := range nodes {
		waitServed(t, n.URL+"/c/x", 404, 5*time.Second)
	}
}

// TestClusterEtcdOutage: with etcd stopped for 30 s under client load, the
// unchanged route keeps answering with zero failures; after etcd returns, a
// write reaches the nodes again.
func TestClusterEtcdOutage(t *testing.T) {
	t.Parallel()
	endpoint, stop, restart := etcdtest.Start(t)
	up := echoUpstream(t, "steady")
	var nodes []*Gateway
	for i := 0; i < 3; i++ {
		nodes = append(nodes, StartGateway(t, GatewayOptions{Store: etcdStore(endpoint)}))
	}
	mustAdmin(t, nodes[0], "PUT", "/apisix/admin/upstreams/u1", fmt.Sprintf(`{"nodes":{%q:1}}`, up))
	mustAdmin(t, nodes[0], "PUT", "/apisix/admin/routes/r1", `{"uri":"/s","upstream_id":"u1"}`)
	for _, n := range nodes {
		waitServed(t, n.URL+"/s", 200, 5*time.Second)
	}

	var sent, failed atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, n := range nodes {
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := &http.Client{Timeout: 5 * time.Second}
				for {
					select {
					case <-done:
						return
					default:
					}
					resp, err := c.Get(n.URL + "/s")
					sent.Add(1)
					if err != nil {
						failed.Add(1)
						continue
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || string(b) != "steady" {
						failed.Add(1)
					}
					time.Sleep(5 * time.Millisecond)
				}
			}()
		}
	}
	stop()
	// Every node notices and reports the outage on its control API.
	for _, n := range nodes {
		deadline := time.Now().Add(15 * time.Second)
		for storeReachable(t, n) {
			if time.Now().After(deadline) {
				t.Fatal("the control API still reports etcd reachable")
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	time.Sleep(30 * time.Second)
	restart()
	time.Sleep(time.Second)
	close(done)
	wg.Wait()
	t.Logf("requests during the outage: %d sent, %d failed", sent.Load(), failed.Load())
	if failed.Load() != 0 || sent.Load() < 100 {
		t.Fatalf("%d of %d requests failed while etcd was down", failed.Load(), sent.Load())
	}
	// After etcd returns, writes work and reach every node.
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, _ := adminDo(t, nodes[0], "PUT", "/apisix/admin/routes/r2", `{"uri":"/after","upstream_id":"u1"}`)
		if code == 200 || code == 201 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writes still fail after etcd came back: %d", code)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, n := range nodes {
		waitServed(t, n.URL+"/after", 200, 20*time.Second)
	}
}

// cuttable is a TCP relay between one node and etcd that the test can cut
// and restore, to take a single node off etcd.
type cuttable struct {
	addr, target string
	mu           sync.Mutex
	l            net.Listener
	conns        map[net.Conn]bool
}

func newCuttable(t testing.TB, target string) *cuttable {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cuttable{addr: l.Addr().String(), target: target, conns: map[net.Conn]bool{}}
	c.serve(l)
	t.Cleanup(c.cut)
	return c
}

func (c *cuttable) serve(l net.Listener) {
	c.mu.Lock()
	c.l = l
	c.mu.Unlock()
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", c.target)
			if err != nil {
				in.Close()
				continue
			}
			c.mu.Lock()
			c.conns[in], c.conns[out] = true, true
			c.mu.Unlock()
			go func() { io.Copy(out, in); out.Close() }()
			go func() { io.Copy(in, out); in.Close() }()
		}
	}()
}

// cut closes the listener and every relayed connection.
func (c *cuttable) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.l != nil {
		c.l.Close()
		c.l = nil
	}
	for conn := range c.conns {
		conn.Close()
	}
	clear(c.conns)
}

func (c *cuttable) restore(t testing.TB) {
	l, err := net.Listen("tcp", c.addr)
	if err != nil {
		t.Fatal(err)
	}
	c.serve(l)
}

// TestClusterNodeCatchesUp: one node is cut off from etcd while routes change;
// when it reconnects it serves every change, and reports the same revision.
func TestClusterNodeCatchesUp(t *testing.T) {
	t.Parallel()
	endpoint, _, _ := etcdtest.Start(t)
	relay := newCuttable(t, strings.TrimPrefix(endpoint, "http://"))
	up := echoUpstream(t, "catch")
	a := StartGateway(t, GatewayOptions{Store: etcdStore(endpoint)})
	b := StartGateway(t, GatewayOptions{Store: etcdStore("http://" + relay.addr)})
	mustAdmin(t, a, "PUT", "/apisix/admin/upstreams/u1", fmt.Sprintf(`{"nodes":{%q:1}}`, up))
	mustAdmin(t, a, "PUT", "/apisix/admin/routes/keep", `{"uri":"/keep","upstream_id":"u1"}`)
	mustAdmin(t, a, "PUT", "/apisix/admin/routes/gone", `{"uri":"/gone","upstream_id":"u1"}`)
	waitServed(t, b.URL+"/gone", 200, 5*time.Second)

	relay.cut()
	for i := 0; i < 20; i++ {
		mustAdmin(t, a, "PUT", fmt.Sprintf("/apisix/admin/routes/new%d", i), fmt.Sprintf(`{"uri":"/new/%d","upstream_id":"u1"}`, i))
	}
	mustAdmin(t, a, "DELETE", "/apisix/admin/routes/gone", "")
	waitServed(t, a.URL+"/new/19", 200, 5*time.Second)
	// b is cut off: it still serves what it had.
	time.Sleep(300 * time.Millisecond)
	if code := getStatus(t, b.URL+"/new/0"); code != 404 {
		t.Fatalf("a cut-off node served a route written after the cut: %d", code)
	}
	if code := getStatus(t, b.URL+"/keep"); code != 200 {
		t.Fatalf("a cut-off node stopped serving its last good config: %d", code)
	}

	relay.restore(t)
	for i := 0; i < 20; i++ {
		waitServed(t, fmt.Sprintf("%s/new/%d", b.URL, i), 200, 20*time.Second)
	}
	waitServed(t, b.URL+"/gone", 404, 10*time.Second)
	if ra, rb := revisionOf(t, a), revisionOf(t, b); ra != rb {
		t.Fatalf("after catching up, revisions differ: %d vs %d", ra, rb)
	}
}

func getStatus(t testing.TB, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
