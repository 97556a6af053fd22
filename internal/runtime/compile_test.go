package runtime

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/balancer"
	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/upstream"
)

// req is a router.Request for matching compiled snapshots.
type req struct{ method, host, path string }

func (r req) Method() string            { return r.method }
func (r req) Host() string              { return r.host }
func (r req) Path() string              { return r.path }
func (r req) RemoteIP() netip.Addr      { return netip.MustParseAddr("127.0.0.1") }
func (r req) Var(string) (string, bool) { return "", false }

func parse(t *testing.T, yaml string) *config.Resources {
	t.Helper()
	res, err := config.ParseResourcesFile([]byte(yaml+"\n#END\n"), "apisix.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestCompileResolvesUpstreamsAndTimeouts(t *testing.T) {
	res := parse(t, `
upstreams:
  - id: "u1"
    nodes: {"127.0.0.1:8001": 1}
    timeout: {connect: 2, send: 3, read: 4}
  - id: "u2"
    nodes: {"127.0.0.1:8002": 1}
services:
  - id: "s1"
    upstream_id: "u2"
    hosts: ["svc.example.com"]
    enable_websocket: true
routes:
  - id: "by-id"
    uri: /a
    upstream_id: "u1"
    timeout: {connect: 0.5, send: 3, read: 9}
  - id: "by-service"
    uri: /b
    service_id: "s1"
  - id: "inline"
    uri: /c
    upstream:
      nodes: {"127.0.0.1:8003": 1}
      pass_host: rewrite
      upstream_host: example.org
  - id: "disabled"
    uri: /d
    upstream_id: "u1"
    status: 0
`)
	snap, err := Compile(res, 7, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if snap.Revision != 7 || len(snap.Routes) != 4 {
		t.Fatalf("revision %d, %d routes", snap.Revision, len(snap.Routes))
	}
	byID := func(p, host string) *Route {
		r, ok := snap.Router.Match(req{"GET", host, p})
		if !ok {
			return nil
		}
		return r
	}
	a := byID("/a", "x")
	if a == nil || a.Upstream.Targets[0].Node.Addr != "127.0.0.1:8001" {
		t.Fatalf("route by-id: %+v", a)
	}
	want := upstream.Timeouts{Connect: 500 * time.Millisecond, Send: 3 * time.Second, Read: 9 * time.Second}
	if a.Timeouts != want {
		t.Errorf("route timeout should override the upstream's: got %+v", a.Timeouts)
	}
	if byID("/b", "x") != nil {
		t.Error("a route without hosts must inherit its service's hosts")
	}
	b := byID("/b", "svc.example.com")
	if b == nil || b.Upstream.Targets[0].Node.Addr != "127.0.0.1:8002" || !b.EnableWebsocket {
		t.Fatalf("route by-service: %+v", b)
	}
	if b.Timeouts != DefaultTimeouts() {
		t.Errorf("no timeout anywhere should give the defaults: %+v", b.Timeouts)
	}
	c := byID("/c", "x")
	if c == nil || c.Upstream.PassHost != "rewrite" || c.Upstream.UpstreamHost != "example.org" ||
		c.Upstream.Key != "routes/inline/upstream" {
		t.Fatalf("inline upstream: %+v", c.Upstream)
	}
	if byID("/d", "x") != nil {
		t.Error("status 0 must disable a route")
	}
}

func TestCompileRejectsWholeSetWithPaths(t *testing.T) {
	res := parse(t, `
upstreams:
  - id: "u1"
    nodes: {"127.0.0.1:8001": 1}
routes:
  - id: "good"
    uri: /ok
    upstream_id: "u1"
  - id: "badvars"
    uri: /x
    upstream_id: "u1"
    vars: [["arg_a", "=~", "1"]]
`)
	_, err := Compile(res, 1, Deps{})
	if err == nil || !strings.Contains(err.Error(), `routes[id=badvars]: vars:`) {
		t.Fatalf("want the bad route's vars named, got %v", err)
	}
}

func TestCompileDefaultRetriesAndPortByScheme(t *testing.T) {
	res := parse(t, `
upstreams:
  - id: "u1"
    scheme: https
    nodes:
      - {host: a.example, weight: 1}
      - {host: b.example, port: 8443, weight: 1}
      - {host: c.example, port: 443, weight: 1, priority: 5}
routes:
  - id: "r"
    uri: /*
    upstream_id: "u1"
`)
	snap, err := Compile(res, 1, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	u := snap.Routes[0].Upstream
	if u.Retries != 2 {
		t.Errorf("default retries = %d, want nodes-1 = 2", u.Retries)
	}
	// Targets follow the picker's order: higher priority first.
	got := []string{u.Targets[0].Node.Addr, u.Targets[1].Node.Addr, u.Targets[2].Node.Addr}
	want := []string{"c.example:443", "a.example:443", "b.example:8443"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("targets %v, want %v", got, want)
		}
	}
	if u.Targets[0].HostHeader != "c.example" || u.Targets[2].HostHeader != "b.example:8443" {
		t.Errorf("pass_host node headers: %q %q", u.Targets[0].HostHeader, u.Targets[2].HostHeader)
	}
	for i, tg := range u.Targets {
		n, err := u.Picker.Pick(nil, tried(u, i))
		if err != nil {
			t.Fatal(err)
		}
		if tg2 := u.Targets[n.Index()]; tg2.Node.Addr != n.Addr {
			t.Fatalf("Node.Index %d points at %s, picked %s (target %s)", n.Index(), tg2.Node.Addr, n.Addr, tg.Node.Addr)
		}
	}
}

// tried marks the first n targets' nodes as tried, by picking them in order.
func tried(u *upstream.Upstream, n int) (t balancerTried) {
	for i := 0; i < n; i++ {
		node, err := u.Picker.Pick(nil, t)
		if err != nil {
			return t
		}
		t.Add(node)
	}
	return t
}

type balancerTried = balancer.Tried
