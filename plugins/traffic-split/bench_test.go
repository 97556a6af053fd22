package trafficsplit

import (
	"testing"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

// BenchmarkAccess is the per-request cost: the first rule's header match
// fails, the second's passes, and its 3:1 split picks the upstream.
func BenchmarkAccess(b *testing.B) {
	inst := build(b, `{"rules":[
		{"match":[{"vars":[["http_release","==","beta"]]}],"weighted_upstreams":[{"upstream_id":"blue"}]},
		{"match":[{"vars":[["http_release","==","canary"]]}],"weighted_upstreams":[{"upstream_id":"green","weight":3},{"upstream_id":"blue","weight":1}]}]}`)
	p := inst.(*trafficSplit)
	req := plugintest.NewRequest("GET", "/").WithHeader("Release", "canary")
	var c plugin.Ctx
	b.ReportAllocs()
	for b.Loop() {
		c.Reset(req)
		p.Access(&c)
	}
	if c.Upstream().IsZero() {
		b.Fatal("no upstream chosen")
	}
}

// BenchmarkSplitNext is the weighted choice alone, from parallel goroutines
// sharing one schedule position.
func BenchmarkSplitNext(b *testing.B) {
	s := newSplit(refs(3), []int{5, 3, 2}, 0)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = s.next()
		}
	})
}
