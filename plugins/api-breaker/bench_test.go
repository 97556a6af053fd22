package apibreaker

import (
	"strconv"
	"testing"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

// benchRequest runs one request's access and log phases with the upstream
// answering status, as the gateway calls them.
func benchRequest(p *apiBreaker, c *plugin.Ctx, req *plugintest.Request, status int) {
	c.Reset(req)
	if p.Access(c) != nil {
		c.Served = plugin.Served{Status: p.code}
	} else {
		c.Served = plugin.Served{Status: status, UpstreamAddr: "10.0.0.1:80", UpstreamStatus: status}
	}
	p.Log(c)
}

// BenchmarkRequest is the per-request cost of api-breaker (access + log):
// healthy with nothing tracked (the steady state), healthy while other URIs
// are tracked (hash + lock-free map load in both phases), failing, and
// broken (the shared break answer).
func BenchmarkRequest(b *testing.B) {
	const cfg = `{"break_response_code":502,"break_response_body":"down","break_response_headers":[{"key":"X-A","value":"b"}]}`
	b.Run("healthy-empty-table", func(b *testing.B) {
		p := buildOn(b, cfg, newTable(quiet))
		runBench(b, p, "/a", 200)
	})
	b.Run("healthy-tracked-table", func(b *testing.B) {
		p := buildOn(b, cfg, newTable(quiet))
		c := &plugin.Ctx{}
		for i := range 1000 { // other URIs with a failure each
			benchRequest(p, c, plugintest.NewRequest("GET", "/other/"+strconv.Itoa(i)), 500)
		}
		runBench(b, p, "/a", 200)
	})
	b.Run("failing-below-threshold", func(b *testing.B) {
		// Every answer is a 500 but the breaker never trips: the cost of
		// counting a failure (clock, hash, map load, atomics).
		p := buildOn(b, `{"break_response_code":502,"unhealthy":{"failures":2000000000}}`, newTable(quiet))
		runBench(b, p, "/a", 500)
	})
	b.Run("broken", func(b *testing.B) {
		p := buildOn(b, cfg, newTableWithClock(quiet, func() int64 { return 1 })) // a break that never ends
		c := &plugin.Ctx{}
		for range 3 {
			benchRequest(p, c, plugintest.NewRequest("GET", "/a"), 500)
		}
		if p.Access(c) == nil {
			b.Fatal("not broken")
		}
		runBench(b, p, "/a", 500)
	})
}

func runBench(b *testing.B, p *apiBreaker, uri string, status int) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c := &plugin.Ctx{}
		req := plugintest.NewRequest("GET", uri)
		for pb.Next() {
			benchRequest(p, c, req, status)
		}
	})
}
