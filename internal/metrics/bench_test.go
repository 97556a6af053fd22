package metrics

import (
	"io"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/sluicegw/sluice/plugin/plugintest"
)

// BenchmarkObserve is the per-request cost on a route with an existing
// series: the hash, one table probe, and the atomic adds.
func BenchmarkObserve(b *testing.B) {
	m := NewRegistry(nil).Route(RouteSpec{ID: "1", Route: "1", URIs: []string{"/hello"}})
	c := ctxFor(200, "jack", "127.0.0.1:1980", 5*time.Millisecond, 2*time.Millisecond)
	m.Observe(c)
	b.ReportAllocs()
	for b.Loop() {
		m.Observe(c)
	}
}

// BenchmarkObserveMatched adds finding which of a route's several uris
// matched (a router lookup).
func BenchmarkObserveMatched(b *testing.B) {
	m := NewRegistry(nil).Route(RouteSpec{ID: "1", Route: "1", URIs: []string{"/a", "/b/*", "/c"}})
	c := ctxFor(200, "jack", "127.0.0.1:1980", 5*time.Millisecond, 2*time.Millisecond)
	c.Request = plugintest.NewRequest("GET", "/b/x")
	m.Observe(c)
	b.ReportAllocs()
	for b.Loop() {
		m.Observe(c)
	}
}

// BenchmarkObserveParallel has every goroutine count into the same series,
// the worst case for contention on the atomic counters.
func BenchmarkObserveParallel(b *testing.B) {
	m := NewRegistry(nil).Route(RouteSpec{ID: "1", Route: "1", URIs: []string{"/hello"}})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c := ctxFor(200, "jack", "127.0.0.1:1980", 5*time.Millisecond, 2*time.Millisecond)
		for pb.Next() {
			m.Observe(c)
		}
	})
}

// BenchmarkScrape1000Routes renders 1,000 routes with 3 series each (4,000
// exported series of http_status, 2 bandwidth and 3 histograms per peer)
// through the real HTTP handler.
func BenchmarkScrape1000Routes(b *testing.B) {
	reg := NewRegistry(nil)
	for i := range 1000 {
		id := strconv.Itoa(i)
		m := reg.Route(RouteSpec{ID: id, Route: id, Service: "s", URIs: []string{"/r" + id}})
		for _, code := range []int{200, 404, 502} {
			m.Observe(ctxFor(code, "", "127.0.0.1:1980", 5*time.Millisecond, 2*time.Millisecond))
		}
	}
	h, err := NewHandler(DefaultAttr(), Sources{Routes: reg}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/apisix/prometheus/metrics", nil))
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
		_, _ = io.Copy(io.Discard, rec.Body)
	}
}
