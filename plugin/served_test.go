package plugin

import (
	"errors"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// varRequest answers Request.Var from a map; the rest of Request is unused.
type varRequest struct {
	Request
	vars map[string]string
}

func (r varRequest) Var(n string) (string, bool) { v, ok := r.vars[n]; return v, ok }
func (r varRequest) RemoteIP() netip.Addr        { return netip.Addr{} }

func TestCtxVarServed(t *testing.T) {
	start := time.Date(2026, 11, 29, 21, 0, 0, 0, time.UTC)
	c := &Ctx{Request: varRequest{vars: map[string]string{"uri": "/a"}}, RouteID: "r1",
		Consumer: &Consumer{Username: "jack"}}
	c.Served = Served{Start: start, Status: 502, BodyBytesSent: 12, BytesSent: 90, RequestLength: 77,
		Latency: 1500 * time.Millisecond, UpstreamAddr: "127.0.0.1:1", UpstreamLatency: 3 * time.Millisecond}
	for name, want := range map[string]string{
		"status": "502", "body_bytes_sent": "12", "bytes_sent": "90", "request_length": "77",
		"request_time": "1.500", "upstream_addr": "127.0.0.1:1", "upstream_status": "",
		"upstream_response_time": "0.003", "route_id": "r1", "consumer_name": "jack", "uri": "/a",
		"time_iso8601": "2026-11-29T21:00:00+00:00", "msec": "1795986001.500",
	} {
		if got, _ := c.Var(name); got != want {
			t.Errorf("Var(%q) = %q, want %q", name, got, want)
		}
	}
	if _, ok := c.Var("service_id"); ok {
		t.Error("service_id is set on a route without a service")
	}
	if _, ok := c.Var("sent_http_x"); ok {
		t.Error("sent_http_x answered with no response")
	}
}

type closer struct{ closed *atomic.Int32 }

func (c closer) Close() error { c.closed.Add(1); return nil }

func TestLastingKeepsWhatIsUsed(t *testing.T) {
	l := NewLasting(nil)
	var closedA, closedB atomic.Int32
	builds := 0
	get := func(key string, n *atomic.Int32) any {
		o, err := l.Get(key, func() (any, error) { builds++; return closer{n}, nil })
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	l.BeginCompile()
	a1 := get("a", &closedA)
	get("b", &closedB)
	l.Sweep()
	l.BeginCompile()
	if a2 := get("a", &closedA); a2 != a1 {
		t.Fatal("a second configuration got a new object for the same key")
	}
	l.Sweep()
	l.closing.Wait() // Sweep closes in the background
	if builds != 2 || closedA.Load() != 0 || closedB.Load() != 1 {
		t.Fatalf("builds=%d closedA=%d closedB=%d, want 2, 0, 1", builds, closedA.Load(), closedB.Load())
	}
	if _, err := l.Get("c", func() (any, error) { return nil, errors.New("boom") }); err == nil {
		t.Fatal("build error not returned")
	}
	l.Close()
	if closedA.Load() != 1 {
		t.Fatalf("Close left a open (closed %d times)", closedA.Load())
	}
	var nilL *Lasting
	if o, err := nilL.Get("x", func() (any, error) { t.Fatal("build ran on a nil Lasting"); return nil, nil }); o != nil || err != nil {
		t.Fatal("nil Lasting returned something")
	}
}
