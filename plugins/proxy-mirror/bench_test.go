package proxymirror

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/sluicegw/sluice/plugin"
)

func jsonDecode(s string, v any) error {
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// benchRequest is a typical API request: eight headers, a query string.
func benchRequest(method string, body string) *listedRequest {
	r := newReq(method, "/api/v1/orders/12345?expand=items&limit=20", "")
	r.WithHeader("User-Agent", "bench/1.0").WithHeader("Accept", "application/json").
		WithHeader("Authorization", "Bearer abcdefghijklmnopqrstuvwxyz").WithHeader("X-Request-Id", "6f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b").
		WithHeader("Accept-Language", "en-US,en;q=0.9").WithHeader("X-Forwarded-For", "203.0.113.9").
		WithHeader("Cookie", "session=0123456789abcdef")
	if body != "" {
		r.WithBody(body).WithHeader("Content-Type", "application/json").WithHeader("Content-Length", itoa(len(body)))
	}
	return r
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// BenchmarkSampledOut is the cost of a request that the draw leaves out:
// one random number.
func BenchmarkSampledOut(b *testing.B) {
	p, _ := buildMirror(b, `{"host":"http://127.0.0.1:1","sample_ratio":0.00001}`, nil)
	p.s.deliver = func(context.Context, *job) error { return nil }
	c := &plugin.Ctx{}
	c.Reset(benchRequest("GET", ""))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p.BeforeProxy(c)
	}
}

// BenchmarkEnqueued is the request side of a mirrored request: copying it
// into a pooled job and handing it to the workers (which here discard it,
// so the benchmark measures the client's cost, not the mirror's).
func BenchmarkEnqueued(b *testing.B) {
	for _, bc := range []struct{ name, method, body string }{
		{"GET", "GET", ""},
		{"POST-1KiB", "POST", string(bytes.Repeat([]byte("x"), 1024))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p, _ := buildMirror(b, `{"host":"http://127.0.0.1:1"}`, map[string]any{"queue_size": float64(1 << 16)})
			p.s.deliver = func(context.Context, *job) error { return nil }
			c := &plugin.Ctx{}
			c.Reset(benchRequest(bc.method, bc.body))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				p.BeforeProxy(c)
			}
			b.StopTimer()
			if st := p.s.Stats(); st.Dropped > st.Queued/100 {
				b.Logf("%d of %d copies dropped: the workers did not keep up", st.Dropped, st.Queued+st.Dropped)
			}
		})
	}
}
