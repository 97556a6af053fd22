package router

import (
	"math/rand/v2"
	"net/netip"
	"strconv"
	"testing"
)

// genRoutes builds n routes with a realistic mix: 40% exact, 20% prefix,
// 20% parameters, 10% exact hosts, 10% wildcard hosts with a method and an
// address filter. Value is the route index.
func genRoutes(n int) []Route[int] {
	routes := make([]Route[int], n)
	for i := range routes {
		s := strconv.Itoa(i)
		rt := Route[int]{ID: s, Value: i}
		switch i % 10 {
		case 0, 1, 2, 3:
			rt.URIs = []string{"/api/v" + strconv.Itoa(i%3) + "/svc" + s + "/items"}
		case 4, 5:
			rt.URIs = []string{"/static/svc" + s + "/*"}
		case 6:
			rt.URIs = []string{"/svc" + s + "/users/:id"}
		case 7:
			rt.URIs = []string{"/svc" + s + "/users/:id/orders/*rest"}
		case 8:
			rt.URIs = []string{"/*"}
			rt.Hosts = []string{"svc" + s + ".example.com"}
			rt.Methods = []string{"GET", "POST"}
		case 9:
			rt.URIs = []string{"/health"}
			rt.Hosts = []string{"*.t" + s + ".example.com"}
			rt.RemoteAddrs = []string{"10.0.0.0/8"}
		}
		routes[i] = rt
	}
	return routes
}

// requestFor returns a request that must match route i of genRoutes.
func requestFor(i int) *fakeReq {
	s := strconv.Itoa(i)
	r := &fakeReq{method: "GET", host: "client.example.org", ip: netip.MustParseAddr("10.1.2.3")}
	switch i % 10 {
	case 0, 1, 2, 3:
		r.path = "/api/v" + strconv.Itoa(i%3) + "/svc" + s + "/items"
	case 4, 5:
		r.path = "/static/svc" + s + "/js/app.js"
	case 6:
		r.path = "/svc" + s + "/users/12345"
	case 7:
		r.path = "/svc" + s + "/users/12345/orders/2024/07"
	case 8:
		r.host = "svc" + s + ".example.com"
		r.path = "/some/deep/path"
	case 9:
		r.host = "eu.t" + s + ".example.com"
		r.path = "/health"
	}
	return r
}

// requestSet picks count requests for random routes among n, deterministically.
func requestSet(n, count int) ([]*fakeReq, []int) {
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	reqs := make([]*fakeReq, count)
	want := make([]int, count)
	for j := range reqs {
		want[j] = rng.IntN(n)
		reqs[j] = requestFor(want[j])
	}
	return reqs, want
}

func TestMatch100k(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 100k routes")
	}
	const n = 100_000
	r, err := New(genRoutes(n))
	if err != nil {
		t.Fatal(err)
	}
	reqs, want := requestSet(n, 5000)
	for j, req := range reqs {
		got, ok := r.Match(req)
		if !ok || got != want[j] {
			t.Fatalf("%s%s: matched %d, %v; want %d", req.host, req.path, got, ok, want[j])
		}
	}
	// Near misses must not match anything they should not.
	misses := []*fakeReq{
		{method: "GET", host: "x.org", path: "/api/v0/svc0/items/extra"},
		{method: "GET", host: "x.org", path: "/static/svc4"},
		{method: "GET", host: "x.org", path: "/svc6/users/"},
		{method: "GET", host: "x.org", path: "/svc7/users/1/orders"},
		{method: "DELETE", host: "svc8.example.com", path: "/"},
		{method: "GET", host: "t9.example.com", path: "/health", ip: netip.MustParseAddr("10.0.0.1")},
		{method: "GET", host: "a.t9.example.com", path: "/health", ip: netip.MustParseAddr("192.168.0.1")},
	}
	for _, req := range misses {
		if got, ok := r.Match(req); ok {
			t.Errorf("%s %s%s: matched route %d, want none", req.method, req.host, req.path, got)
		}
	}
	// The wildcard-host route with a matching address does match.
	if got, ok := r.Match(&fakeReq{method: "GET", host: "a.t9.example.com", path: "/health", ip: netip.MustParseAddr("10.0.0.1")}); !ok || got != 9 {
		t.Errorf("wildcard host: got %d, %v; want 9", got, ok)
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	r, err := New(genRoutes(1000))
	if err != nil {
		t.Fatal(err)
	}
	reqs, _ := requestSet(1000, 64)
	buf := make([]Param, 0, 8)
	for _, req := range reqs {
		var q Request = req
		if n := testing.AllocsPerRun(50, func() { r.Match(q) }); n != 0 {
			t.Errorf("Match(%s%s) allocated %v times", req.host, req.path, n)
		}
		if n := testing.AllocsPerRun(50, func() { r.MatchParams(q, buf[:0]) }); n != 0 {
			t.Errorf("MatchParams(%s%s) allocated %v times", req.host, req.path, n)
		}
	}
}

// BenchmarkMatch measures how lookup cost grows with the number of routes.
// Each size cycles through the same 16 requests, covering every route kind,
// so the working set stays in cache and the numbers reflect the algorithm
// (tree depth, candidates) rather than the memory hierarchy.
func BenchmarkMatch(b *testing.B) {
	benchMatch(b, 16)
}

// BenchmarkMatchColdCache cycles through 1024 random requests per size. At
// 100k routes most of them touch route data that is not in cache, so this
// shows memory latency on top of the algorithm.
func BenchmarkMatchColdCache(b *testing.B) {
	benchMatch(b, 1024)
}

func benchMatch(b *testing.B, count int) {
	for _, n := range []int{10, 100, 1_000, 10_000, 100_000} {
		r, err := New(genRoutes(n))
		if err != nil {
			b.Fatal(err)
		}
		var qs []Request
		if count <= 16 {
			// Spread over the whole route set, two requests of each kind
			// except one, so large routers are exercised deep in the tree.
			for j := range count {
				qs = append(qs, requestFor((n-10)*j/count/10*10+j%10))
			}
		} else {
			reqs, _ := requestSet(n, count)
			for _, req := range reqs {
				qs = append(qs, req)
			}
		}
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, ok := r.Match(qs[i%len(qs)]); !ok {
					b.Fatal("no match")
				}
				i++
			}
		})
	}
}

func BenchmarkMatchParams(b *testing.B) {
	r, err := New(genRoutes(10_000))
	if err != nil {
		b.Fatal(err)
	}
	var q Request = requestFor(7)
	buf := make([]Param, 0, 8)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := r.MatchParams(q, buf[:0]); !ok {
			b.Fatal("no match")
		}
	}
}

func TestMatchWithVarsDoesNotAllocate(t *testing.T) {
	f := route("filter", "/f/:id")
	f.Filter = func(r Request) bool { _, ok := r.Var("http_x"); return ok }
	r := mustNew(t, []Route[string]{
		route("vars", "/v/*rest").withVars(t, `[["http_x","~*","^y"],["remote_addr","ipmatch","10.0.0.0/8"]]`).withAddrs("10.0.0.0/8"),
		f,
		route("wild", "/*").withHosts("*.Example.com").withMethods("GET"),
	}, Options{})
	reqs := []*fakeReq{get("/v/a/b"), get("/f/1"), get("A.EXAMPLE.com/x"), get("/none")}
	for _, req := range reqs {
		req.vars = map[string]string{"http_x": "yes", "remote_addr": "10.0.0.1"}
		var q Request = req
		buf := make([]Param, 0, 4)
		if n := testing.AllocsPerRun(50, func() { r.MatchParams(q, buf[:0]) }); n != 0 {
			t.Errorf("MatchParams(%s%s) allocated %v times", req.host, req.path, n)
		}
	}
}
