package opentelemetry

import (
	"testing"
	"time"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

// BenchmarkRequest measures the plugin's cost per request, rewrite and log
// phases together. "sampled" keeps the queue full (one span, never
// exported), so it measures the request side alone: building, timing and
// enqueueing two spans. "sampled-exported" adds the exporter's work
// (protobuf, HTTP to a real receiver in this process), which runs on other
// goroutines but shares the CPUs.
func BenchmarkRequest(b *testing.B) {
	rcv := newReceiver(b)
	l := newLasting(b)
	exported := testAttr(rcv.Addr)
	full := testAttr(rcv.Addr)
	full["batch_span_processor"] = map[string]any{"batch_timeout": 3600, "max_queue_size": 1, "max_export_batch_size": 1}
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, bc := range []struct {
		name, cfg, parent string
		attr              map[string]any
	}{
		{"sampled", `{"sampler":{"name":"always_on"}}`, "", full},
		{"sampled-with-parent", `{"sampler":{"name":"parent_base"}}`, parent, full},
		{"sampled-exported", `{"sampler":{"name":"always_on"}}`, "", exported},
		{"unsampled", `{"sampler":{"name":"always_off"}}`, "", full},
		{"unsampled-with-parent", `{"sampler":{"name":"always_off"}}`, parent, full},
		{"unsampled-ratio", `{"sampler":{"name":"trace_id_ratio","options":{"fraction":0.0001}}}`, "", full},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := build(b, bc.cfg, bc.attr, l)
			req := plugintest.NewRequest("GET", "/get").WithHeader("User-Agent", "bench")
			if bc.parent != "" {
				req = req.WithHeader("traceparent", bc.parent)
			}
			base := len(req.Headers)
			c := &plugin.Ctx{}
			now := time.Now()
			s := plugin.Served{Start: now, Status: 200, Latency: time.Millisecond, UpstreamAddr: "127.0.0.1:8080",
				UpstreamStatus: 200, UpstreamStart: now, UpstreamLatency: time.Millisecond}
			b.ReportAllocs()
			for b.Loop() {
				req.Headers = req.Headers[:base] // drop the traceparent set last time
				c.Reset(req)
				c.Served.Start = now
				p.Rewrite(c)
				c.Served = s
				p.Log(c)
			}
		})
	}
}
