package e2e

import (
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otelReceiver is a real OTLP/HTTP trace receiver: POST /v1/traces bodies
// decoded as ExportTraceServiceRequest (gzip or not).
type otelReceiver struct {
	Addr  string
	mu    sync.Mutex
	spans []*tracepb.Span
}

func otelNewReceiver(t *testing.T) *otelReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &otelReceiver{Addr: ln.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
			http.NotFound(w, req)
			return
		}
		var body io.Reader = req.Body
		if req.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(req.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, err := io.ReadAll(body)
		var msg coltrace.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(b, &msg)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rs := range msg.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				r.spans = append(r.spans, ss.Spans...)
			}
		}
		r.mu.Unlock()
		out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return r
}

// trace returns the spans received for a trace id (hex).
func (r *otelReceiver) trace(tid string) []*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*tracepb.Span
	for _, s := range r.spans {
		if hex.EncodeToString(s.TraceId) == tid {
			out = append(out, s)
		}
	}
	return out
}

func (r *otelReceiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.spans)
}

// waitTrace waits until n spans of trace tid arrived.
func (r *otelReceiver) waitTrace(t *testing.T, tid string, n int) []*tracepb.Span {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := r.trace(tid)
		if len(s) >= n {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace %s: %d spans arrived, want %d", tid, len(s), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func otelAttr(kvs []*commonpb.KeyValue, key string) *commonpb.AnyValue {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value
		}
	}
	return nil
}

func otelKind(spans []*tracepb.Span, k tracepb.Span_SpanKind) *tracepb.Span {
	for _, s := range spans {
		if s.Kind == k {
			return s
		}
	}
	return nil
}

// otelTraceparent splits a version-00 traceparent.
func otelTraceparent(t *testing.T, tp string) (tid, sid, flags string) {
	t.Helper()
	p := strings.Split(tp, "-")
	if len(p) != 4 || p[0] != "00" || len(p[1]) != 32 || len(p[2]) != 16 || len(p[3]) != 2 ||
		p[1] == strings.Repeat("0", 32) || p[2] == strings.Repeat("0", 16) {
		t.Fatalf("upstream got an invalid traceparent %q", tp)
	}
	if _, err := hex.DecodeString(p[1] + p[2] + p[3]); err != nil {
		t.Fatalf("upstream got an invalid traceparent %q", tp)
	}
	return p[1], p[2], p[3]
}

// otelGateway starts a gateway whose plugin_attr points at collector, with
// routes /on (always_on), /off (always_off), /ratio0 (trace_id_ratio 0) and
// /parent (parent_base) to one recording upstream.
func otelGateway(t *testing.T, engine, collector, batch string) (*Gateway, *protoUpstream) {
	t.Helper()
	up := protoNewUpstream(t, nil)
	g := StartGateway(t, GatewayOptions{Store: "embedded", Engine: engine, Extra: fmt.Sprintf(`plugin_attr:
  opentelemetry:
    trace_id_source: random
    resource:
      service.name: sluice-e2e
    collector:
      address: %q
      request_timeout: 3
    batch_span_processor:
%s`, collector, batch)})
	mustAdmin(t, g, "PUT", "/apisix/admin/upstreams/u1", fmt.Sprintf(`{"nodes":{%q:1}}`, up.Addr))
	for uri, sampler := range map[string]string{
		"/on":     `{"name":"always_on"}`,
		"/off":    `{"name":"always_off"}`,
		"/ratio0": `{"name":"trace_id_ratio","options":{"fraction":0}}`,
		"/parent": `{"name":"parent_base","options":{"root":{"name":"always_on"}}}`,
	} {
		id := strings.TrimPrefix(uri, "/")
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/"+id, fmt.Sprintf(
			`{"uri":%q,"name":"route-%s","upstream_id":"u1","plugins":{"opentelemetry":{"sampler":%s,"additional_attributes":["arg_k"],"additional_header_prefix_attributes":["x-my-*"]}}}`, uri, id, sampler))
	}
	waitServed(t, g.URL+"/off", 200, 3*time.Second)
	return g, up
}

const otelFastBatch = "      batch_timeout: 0.1\n"

// TestOTelTrace: the upstream sees the trace the gateway exports; an
// incoming trace is continued; unsampled routes export nothing.
func TestOTelTrace(t *testing.T) {
	for _, engine := range []string{"fast", "std"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			rcv := otelNewReceiver(t)
			g, up := otelGateway(t, engine, rcv.Addr, otelFastBatch)

			// (1) No traceparent: a new trace, SERVER span → CLIENT span →
			// the upstream.
			before := time.Now()
			code, _, _ := do(t, "GET", g.URL+"/on?k=v", "User-Agent", "otel-e2e", "X-My-Tenant", "t1")
			after := time.Now()
			if code != 200 {
				t.Fatalf("status %d", code)
			}
			tid, parent, flags := otelTraceparent(t, up.Last(t).Header.Get("Traceparent"))
			if flags != "01" {
				t.Fatalf("sampled request sent flags %s", flags)
			}
			spans := rcv.waitTrace(t, tid, 2)
			srv, cli := otelKind(spans, tracepb.Span_SPAN_KIND_SERVER), otelKind(spans, tracepb.Span_SPAN_KIND_CLIENT)
			if len(spans) != 2 || srv == nil || cli == nil {
				t.Fatalf("spans %v", spans)
			}
			if hex.EncodeToString(cli.SpanId) != parent || string(cli.ParentSpanId) != string(srv.SpanId) || len(srv.ParentSpanId) != 0 {
				t.Fatalf("links: upstream parent %s, client %x (parent %x), server %x (parent %x)",
					parent, cli.SpanId, cli.ParentSpanId, srv.SpanId, srv.ParentSpanId)
			}
			if srv.Name != "GET" || cli.Name != "upstream" {
				t.Errorf("names %q %q", srv.Name, cli.Name)
			}
			for k, want := range map[string]string{"http.method": "GET", "apisix.route_id": "on", "http.target": "/on?k=v",
				"net.host.name": "127.0.0.1", "http.user_agent": "otel-e2e", "client.address": "127.0.0.1", "arg_k": "v", "http.scheme": "http", "x-my-tenant": "t1"} {
				if got := otelAttr(srv.Attributes, k).GetStringValue(); got != want {
					t.Errorf("server %s = %q, want %q", k, got, want)
				}
			}
			if otelAttr(srv.Attributes, "http.status_code").GetIntValue() != 200 ||
				otelAttr(cli.Attributes, "http.response.status_code").GetIntValue() != 200 {
				t.Errorf("status attributes: %v / %v", srv.Attributes, cli.Attributes)
			}
			if host, port, _ := net.SplitHostPort(up.Addr); otelAttr(cli.Attributes, "server.address").GetStringValue() != host ||
				fmt.Sprint(otelAttr(cli.Attributes, "server.port").GetIntValue()) != port {
				t.Errorf("client span does not name the upstream %s: %v", up.Addr, cli.Attributes)
			}
			// Timings: the gateway's own clock, the upstream call inside the
			// request, starting after the client sent it. The gateway takes
			// its end time after its last write, which the client may have
			// read just before: allow it a little past what the client saw.
			ss, se, cs, ce := srv.StartTimeUnixNano, srv.EndTimeUnixNano, cli.StartTimeUnixNano, cli.EndTimeUnixNano
			if !(uint64(before.UnixNano()) <= ss && ss <= cs && cs < ce && ce <= se && se <= uint64(after.Add(100*time.Millisecond).UnixNano())) {
				t.Errorf("timings: client saw %d..%d, server span %d..%d, upstream span %d..%d",
					before.UnixNano(), after.UnixNano(), ss, se, cs, ce)
			}
			t.Logf("server span %v, upstream span %v", time.Duration(se-ss), time.Duration(ce-cs))

			// (2) An incoming sampled traceparent is continued.
			const inTID, inSID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
			code, _, _ = do(t, "GET", g.URL+"/parent", "traceparent", "00-"+inTID+"-"+inSID+"-01", "tracestate", "vendor=v1")
			seen := up.Last(t)
			tid2, parent2, flags2 := otelTraceparent(t, seen.Header.Get("Traceparent"))
			if code != 200 || tid2 != inTID || parent2 == inSID || flags2 != "01" || seen.Header.Get("Tracestate") != "vendor=v1" {
				t.Fatalf("continued trace: %d, upstream traceparent %s tracestate %q", code, seen.Header.Get("Traceparent"), seen.Header.Get("Tracestate"))
			}
			spans = rcv.waitTrace(t, inTID, 2)
			srv = otelKind(spans, tracepb.Span_SPAN_KIND_SERVER)
			if hex.EncodeToString(srv.ParentSpanId) != inSID || hex.EncodeToString(otelKind(spans, tracepb.Span_SPAN_KIND_CLIENT).SpanId) != parent2 {
				t.Fatalf("server span parent %x, want %s", srv.ParentSpanId, inSID)
			}

			// (3) Unsampled: the requests succeed, the upstream still gets
			// a (not sampled) trace context, nothing is exported.
			var quiet []string
			for _, c := range []struct{ path, tp string }{
				{"/off", ""}, {"/ratio0", ""}, {"/parent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"},
			} {
				var hdr []string
				if c.tp != "" {
					hdr = []string{"traceparent", c.tp}
				}
				for range 5 {
					if code, _, _ := do(t, "GET", g.URL+c.path, hdr...); code != 200 {
						t.Fatalf("%s: %d", c.path, code)
					}
					tid, _, flags := otelTraceparent(t, up.Last(t).Header.Get("Traceparent"))
					if flags != "00" {
						t.Fatalf("%s: unsampled request sent flags %s", c.path, flags)
					}
					quiet = append(quiet, tid)
				}
			}
			// A sampled marker after them, then a few more batch periods.
			do(t, "GET", g.URL+"/on")
			mtid, _, _ := otelTraceparent(t, up.Last(t).Header.Get("Traceparent"))
			rcv.waitTrace(t, mtid, 2)
			time.Sleep(300 * time.Millisecond)
			for _, tid := range quiet {
				if s := rcv.trace(tid); len(s) != 0 {
					t.Fatalf("unsampled trace %s exported %d spans", tid, len(s))
				}
			}
			if n := rcv.count(); n != 6 {
				t.Fatalf("%d spans exported in all, want 6 (three sampled requests)", n)
			}

			// The Admin API rejects an invalid sampler, naming the field.
			code, out := adminDo(t, g, "PUT", "/apisix/admin/routes/bad",
				`{"uri":"/bad","upstream_id":"u1","plugins":{"opentelemetry":{"sampler":{"name":"trace_id_ratio","options":{"fraction":2}}}}}`)
			if code != 400 || !strings.Contains(out, "sampler.options.fraction: must be between 0 and 1") {
				t.Fatalf("invalid sampler: %d %s", code, out)
			}
		})
	}
}

// otelHangingCollector accepts connections and reads them, never answering.
func otelHangingCollector(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go io.Copy(io.Discard, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// TestOTelCollectorTrouble: a collector that hangs or is down never slows
// or fails requests: the batch processor drops what it cannot send.
func TestOTelCollectorTrouble(t *testing.T) {
	for _, tc := range []struct {
		name, engine string
		collector    func(testing.TB) string
	}{
		{"hanging-fast", "fast", otelHangingCollector},
		{"hanging-std", "std", otelHangingCollector},
		{"down-fast", "fast", featClosedAddr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// A small queue so it fills and drops during the test; exports
			// every 100 ms, each hanging for request_timeout (3 s).
			g, _ := otelGateway(t, tc.engine, tc.collector(t),
				"      batch_timeout: 0.1\n      max_queue_size: 32\n      max_export_batch_size: 8\n")
			client := &http.Client{Timeout: 5 * time.Second}
			const n = 400
			var worst time.Duration
			var total time.Duration
			for i := range n {
				start := time.Now()
				resp, err := client.Get(g.URL + "/on")
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				d := time.Since(start)
				total += d
				worst = max(worst, d)
				if resp.StatusCode != 200 {
					t.Fatalf("request %d: status %d", i, resp.StatusCode)
				}
			}
			t.Logf("%d requests: mean %v, worst %v", n, total/n, worst)
			// A request that waited on the collector would take >= 3 s.
			if worst > time.Second {
				t.Fatalf("worst request took %v: the collector slowed requests", worst)
			}
		})
	}
}
