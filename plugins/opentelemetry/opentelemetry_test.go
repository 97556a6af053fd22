package opentelemetry

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/sluicegw/sluice/internal/pipeline"
	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

func TestPriorityIsAPISIXs(t *testing.T) {
	t.Parallel()
	d, ok := plugin.Lookup(Name)
	if !ok || d.Priority != 12009 {
		t.Fatalf("opentelemetry registered=%v priority=%d, want 12009 (apisix/plugins/opentelemetry.lua)", ok, d.Priority)
	}
}

// testAttr points plugin_attr at a receiver, with a short batch timeout.
func testAttr(addr string, extra ...string) map[string]any {
	js := fmt.Sprintf(`{"collector":{"address":%q,"request_timeout":2,"request_headers":{"Authorization":"token","X-Num":7}},
		"batch_span_processor":{"batch_timeout":0.05},"resource":{"deployment.environment":"test","replicas":3}%s}`, addr, strings.Join(extra, ""))
	var m map[string]any
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		panic(err)
	}
	return m
}

// build decodes cfg with the gateway's decoder and builds an instance with
// the given plugin_attr section and Lasting.
func build(t testing.TB, cfg string, attr map[string]any, l *plugin.Lasting) *otelPlugin {
	t.Helper()
	p, err := tryBuild(cfg, attr, l)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func tryBuild(cfg string, attr map[string]any, l *plugin.Lasting) (*otelPlugin, error) {
	var raw any
	if err := json.Unmarshal([]byte(cfg), &raw); err != nil {
		return nil, err
	}
	ps, err := pipeline.Build(map[string]any{Name: raw}, nil, func(string) plugin.Deps { return plugin.Deps{Attr: attr, Lasting: l} })
	if err != nil {
		return nil, err
	}
	return ps[0].Instance.(*otelPlugin), nil
}

func newLasting(t testing.TB) *plugin.Lasting {
	l := plugin.NewLasting(nil)
	t.Cleanup(l.Close)
	return l
}

// serve runs the rewrite phase, then the log phase with s as what the
// gateway observed.
func serve(t testing.TB, p *otelPlugin, req *plugintest.Request, s plugin.Served) *plugin.Ctx {
	t.Helper()
	c := &plugin.Ctx{}
	c.Reset(req)
	c.RouteID, c.ServiceID = "r1", "s1"
	c.Served.Start = s.Start
	if e := p.Rewrite(c); e != nil {
		t.Fatalf("rewrite exited: %+v", e)
	}
	c.Served = s
	p.Log(c)
	return c
}

func flush(t testing.TB, p *otelPlugin) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.prov.tp.ForceFlush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

func byKind(spans []*tracepb.Span, k tracepb.Span_SpanKind) *tracepb.Span {
	for _, s := range spans {
		if s.Kind == k {
			return s
		}
	}
	return nil
}

// parseTP splits a traceparent into its hex fields.
func parseTP(t testing.TB, tp string) (tid, sid, flags string) {
	t.Helper()
	parts := strings.Split(tp, "-")
	if len(parts) != 4 || parts[0] != "00" || len(parts[1]) != 32 || len(parts[2]) != 16 || len(parts[3]) != 2 {
		t.Fatalf("bad traceparent %q", tp)
	}
	return parts[1], parts[2], parts[3]
}

func TestExportsServerAndUpstreamSpans(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	p := build(t, `{"sampler":{"name":"always_on"}}`, testAttr(rcv.Addr), newLasting(t))
	start := time.Now().Add(-time.Second).Truncate(time.Microsecond)
	s := plugin.Served{Start: start, Status: 200, Latency: 30 * time.Millisecond,
		UpstreamAddr: "10.0.0.7:8080", UpstreamStatus: 200,
		UpstreamStart: start.Add(5 * time.Millisecond), UpstreamLatency: 20 * time.Millisecond}
	req := plugintest.NewRequest("GET", "/get?x=1").WithHeader("User-Agent", "curl/8")
	req.Vars = map[string]string{"request_uri": "/get?x=1", "scheme": "http"}
	serve(t, p, req, s)
	flush(t, p)

	spans := rcv.take()
	if len(spans) != 2 {
		t.Fatalf("got %d spans, want 2 (server + upstream)", len(spans))
	}
	srv, cli := byKind(spans, tracepb.Span_SPAN_KIND_SERVER), byKind(spans, tracepb.Span_SPAN_KIND_CLIENT)
	if srv == nil || cli == nil {
		t.Fatalf("kinds: %v, %v", spans[0].Kind, spans[1].Kind)
	}
	tid, sid, flags := parseTP(t, req.Header("traceparent"))
	if hex.EncodeToString(srv.TraceId) != tid || hex.EncodeToString(cli.TraceId) != tid || flags != "01" {
		t.Fatalf("upstream traceparent %q, exported trace ids %x %x", req.Header("traceparent"), srv.TraceId, cli.TraceId)
	}
	if hex.EncodeToString(cli.SpanId) != sid {
		t.Fatalf("the upstream's parent %s is not the exported CLIENT span %x", sid, cli.SpanId)
	}
	if len(srv.ParentSpanId) != 0 || string(cli.ParentSpanId) != string(srv.SpanId) {
		t.Fatalf("parents: server %x (want none), client %x (want %x)", srv.ParentSpanId, cli.ParentSpanId, srv.SpanId)
	}
	if srv.Name != "GET" || cli.Name != UpstreamSpanName {
		t.Fatalf("names %q %q", srv.Name, cli.Name)
	}
	// The spans carry the gateway's own timings, to the nanosecond.
	if got, want := srv.StartTimeUnixNano, uint64(start.UnixNano()); got != want {
		t.Fatalf("server start %d, want %d", got, want)
	}
	if got, want := srv.EndTimeUnixNano, uint64(start.Add(30*time.Millisecond).UnixNano()); got != want {
		t.Fatalf("server end %d, want %d", got, want)
	}
	if cli.StartTimeUnixNano != uint64(s.UpstreamStart.UnixNano()) || cli.EndTimeUnixNano != uint64(s.UpstreamStart.Add(20*time.Millisecond).UnixNano()) {
		t.Fatalf("client times %d..%d", cli.StartTimeUnixNano, cli.EndTimeUnixNano)
	}
	for k, want := range map[string]string{"http.method": "GET", "net.host.name": "example.com", "http.target": "/get?x=1",
		"http.scheme": "http", "http.user_agent": "curl/8", "client.address": "127.0.0.1", "apisix.route_id": "r1", "apisix.service_id": "s1"} {
		if got := strAttr(srv.Attributes, k); got != want {
			t.Errorf("server %s = %q, want %q", k, got, want)
		}
	}
	if v, _ := attrOf(srv.Attributes, "http.status_code"); v.GetIntValue() != 200 {
		t.Errorf("server http.status_code %v", v)
	}
	if srv.Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR || cli.Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("status error on a 200")
	}
	if strAttr(cli.Attributes, "server.address") != "10.0.0.7" {
		t.Errorf("client attributes %v", cli.Attributes)
	}
	if v, _ := attrOf(cli.Attributes, "server.port"); v.GetIntValue() != 8080 {
		t.Errorf("client server.port %v", v)
	}
	if v, _ := attrOf(cli.Attributes, "http.response.status_code"); v.GetIntValue() != 200 {
		t.Errorf("client http.response.status_code %v", v)
	}
	// Resource and collector headers come from plugin_attr.
	rcv.mu.Lock()
	res, hdr := rcv.resource, rcv.headers[0]
	rcv.mu.Unlock()
	if strAttr(res, "service.name") != "APISIX" || strAttr(res, "deployment.environment") != "test" || strAttr(res, "hostname") == "" {
		t.Errorf("resource %v", res)
	}
	if v, _ := attrOf(res, "replicas"); v.GetDoubleValue() != 3 {
		t.Errorf("resource replicas %v", v)
	}
	if hdr.Get("Authorization") != "token" || hdr.Get("X-Num") != "7" || hdr.Get("Content-Type") != "application/x-protobuf" {
		t.Errorf("collector request headers %v", hdr)
	}
}

func TestErrorStatus(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	p := build(t, `{"sampler":{"name":"always_on"}}`, testAttr(rcv.Addr), newLasting(t))
	now := time.Now()
	// The upstream answered 503.
	serve(t, p, plugintest.NewRequest("GET", "/"), plugin.Served{Start: now, Status: 503, UpstreamAddr: "127.0.0.1:1",
		UpstreamStatus: 503, UpstreamStart: now})
	// The upstream could not be reached: the gateway answered 502.
	serve(t, p, plugintest.NewRequest("POST", "/"), plugin.Served{Start: now, Status: 502, UpstreamAddr: "127.0.0.1:1", UpstreamStart: now})
	// An auth plugin rejected the request: no upstream call, no CLIENT span.
	serve(t, p, plugintest.NewRequest("PUT", "/"), plugin.Served{Start: now, Status: 401})
	flush(t, p)
	spans := rcv.take()
	if len(spans) != 5 {
		t.Fatalf("got %d spans, want 5", len(spans))
	}
	byName := map[string][]*tracepb.Span{}
	for _, s := range spans {
		byName[s.Name] = append(byName[s.Name], s)
	}
	get, post, put := byName["GET"], byName["POST"], byName["PUT"]
	if len(get) != 1 || len(post) != 1 || len(put) != 1 {
		t.Fatalf("server spans %v", byName)
	}
	if get[0].Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR || post[0].Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("5xx server spans not in error: %v %v", get[0].Status, post[0].Status)
	}
	if put[0].Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("401 marked as error")
	}
	for _, c := range byName[UpstreamSpanName] {
		if c.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR {
			t.Errorf("upstream span %x not in error: %v", c.SpanId, c.Status)
		}
	}
	if len(byName[UpstreamSpanName]) != 2 {
		t.Errorf("upstream spans: %d, want 2", len(byName[UpstreamSpanName]))
	}
}

func TestContinuesIncomingTrace(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	p := build(t, `{"sampler":{"name":"parent_base"}}`, testAttr(rcv.Addr), newLasting(t))
	const inTID, inSID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req := plugintest.NewRequest("GET", "/").WithHeader("traceparent", "00-"+inTID+"-"+inSID+"-01").
		WithHeader("tracestate", "congo=t61rcWkgMzE")
	serve(t, p, req, plugin.Served{Start: time.Now(), Status: 200, UpstreamAddr: "127.0.0.1:2", UpstreamStatus: 200, UpstreamStart: time.Now()})
	flush(t, p)
	spans := rcv.take()
	srv, cli := byKind(spans, tracepb.Span_SPAN_KIND_SERVER), byKind(spans, tracepb.Span_SPAN_KIND_CLIENT)
	if srv == nil || cli == nil {
		t.Fatalf("spans %v", spans)
	}
	if hex.EncodeToString(srv.TraceId) != inTID || hex.EncodeToString(srv.ParentSpanId) != inSID {
		t.Fatalf("server span trace %x parent %x, want %s %s", srv.TraceId, srv.ParentSpanId, inTID, inSID)
	}
	if srv.TraceState != "congo=t61rcWkgMzE" {
		t.Errorf("trace state %q", srv.TraceState)
	}
	tid, sid, flags := parseTP(t, req.Header("traceparent"))
	if tid != inTID || sid != hex.EncodeToString(cli.SpanId) || sid == inSID || flags != "01" {
		t.Fatalf("upstream traceparent %q", req.Header("traceparent"))
	}
}

// TestSamplers: routes sharing one provider sample each by their own
// sampler; unsampled requests still propagate a (not sampled) trace context.
func TestSamplers(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	l := newLasting(t)
	attr := testAttr(rcv.Addr)
	const parentOn = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	const parentOff = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
	tests := []struct {
		desc, cfg, parent string
		spans             int
	}{
		{"always_on", `{"sampler":{"name":"always_on"}}`, "", 2},
		{"always_on ignores an unsampled parent", `{"sampler":{"name":"always_on"}}`, parentOff, 2},
		{"always_off", `{"sampler":{"name":"always_off"}}`, "", 0},
		{"always_off ignores a sampled parent", `{}`, parentOn, 0},
		{"ratio 0", `{"sampler":{"name":"trace_id_ratio","options":{"fraction":0}}}`, "", 0},
		{"ratio 1", `{"sampler":{"name":"trace_id_ratio","options":{"fraction":1}}}`, "", 2},
		{"parent_base, sampled parent", `{"sampler":{"name":"parent_base"}}`, parentOn, 2},
		{"parent_base, unsampled parent", `{"sampler":{"name":"parent_base","options":{"root":{"name":"always_on"}}}}`, parentOff, 0},
		{"parent_base, no parent, root off", `{"sampler":{"name":"parent_base"}}`, "", 0},
		{"parent_base, no parent, root on", `{"sampler":{"name":"parent_base","options":{"root":{"name":"always_on"}}}}`, "", 2},
		{"parent_base, no parent, root ratio 1", `{"sampler":{"name":"parent_base","options":{"root":{"name":"trace_id_ratio","options":{"fraction":1}}}}}`, "", 2},
	}
	var first *otelPlugin
	for _, tt := range tests {
		p := build(t, tt.cfg, attr, l)
		if first == nil {
			first = p
		} else if p.prov != first.prov {
			t.Fatal("routes with the same plugin_attr got different providers")
		}
		req := plugintest.NewRequest("GET", "/")
		if tt.parent != "" {
			req = req.WithHeader("traceparent", tt.parent)
		}
		serve(t, p, req, plugin.Served{Start: time.Now(), Status: 200, UpstreamAddr: "127.0.0.1:2", UpstreamStatus: 200, UpstreamStart: time.Now()})
		flush(t, p)
		if got := len(rcv.take()); got != tt.spans {
			t.Errorf("%s: exported %d spans, want %d", tt.desc, got, tt.spans)
		}
		tid, _, flags := parseTP(t, req.Header("traceparent"))
		if tt.parent != "" && tid != "4bf92f3577b34da6a3ce929d0e0e4736" {
			t.Errorf("%s: upstream trace id %s does not continue the parent", tt.desc, tid)
		}
		if want := map[bool]string{true: "01", false: "00"}[tt.spans > 0]; flags != want {
			t.Errorf("%s: upstream flags %s, want %s", tt.desc, flags, want)
		}
	}
}

func TestTraceIDSource(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	l := newLasting(t)
	fromHeader := build(t, `{"sampler":{"name":"always_on"}}`, testAttr(rcv.Addr), l)
	random := build(t, `{"sampler":{"name":"always_on"}}`, testAttr(rcv.Addr, `,"trace_id_source":"random"`), l)
	const want = "0af7651916cd43dd8448eb211c80319c"
	tests := []struct {
		desc  string
		p     *otelPlugin
		reqID string
		same  bool
	}{
		{"hex", fromHeader, want, true},
		{"uuid", fromHeader, "0af76519-16cd-43dd-8448-eb211c80319c", true},
		{"upper case", fromHeader, strings.ToUpper(want), true},
		{"not an id", fromHeader, "abc", false},
		{"zero", fromHeader, strings.Repeat("0", 32), false},
		{"random ignores the header", random, want, false},
	}
	for _, tt := range tests {
		req := plugintest.NewRequest("GET", "/").WithHeader("X-Request-Id", tt.reqID)
		serve(t, tt.p, req, plugin.Served{Start: time.Now(), Status: 200})
		tid, _, _ := parseTP(t, req.Header("traceparent"))
		if (tid == want) != tt.same || tid == strings.Repeat("0", 32) {
			t.Errorf("%s: trace id %s", tt.desc, tid)
		}
	}
	// A request's own traceparent wins over its X-Request-Id.
	req := plugintest.NewRequest("GET", "/").WithHeader("X-Request-Id", want).
		WithHeader("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	serve(t, fromHeader, req, plugin.Served{Start: time.Now(), Status: 200})
	if tid, _, _ := parseTP(t, req.Header("traceparent")); tid != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("traceparent lost to X-Request-Id: %s", tid)
	}
}

// visitingRequest lists its headers as the engines' requests do, which
// header prefixes need.
type visitingRequest struct{ *plugintest.Request }

func (r visitingRequest) EachHeader(fn func(name, value string)) {
	for _, h := range r.Headers {
		fn(h.Name, h.Value)
	}
}

func TestAdditionalAttributesAndVars(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	p := build(t, `{"sampler":{"name":"always_on"},"additional_attributes":["arg_page","http_x_user","missing"],
		"additional_header_prefix_attributes":["X-Tenant","x-my-*"]}`, testAttr(rcv.Addr, `,"set_ngx_var":true`), newLasting(t))
	req := plugintest.NewRequest("GET", "/list?page=3").WithHeader("X-User", "alice").WithHeader("X-Tenant", "t1").
		WithHeader("X-My-A", "1").WithHeader("x-my-b", "2").WithHeader("X-Other", "no")
	c := &plugin.Ctx{}
	c.Reset(visitingRequest{req})
	if e := p.Rewrite(c); e != nil {
		t.Fatal(e)
	}
	tp, _ := c.Get(VarTraceparent)
	tid, _ := c.Get(VarTraceID)
	sid, _ := c.Get(VarSpanID)
	c.Served = plugin.Served{Start: time.Now(), Status: 204}
	p.Log(c)
	flush(t, p)
	spans := rcv.take()
	if len(spans) != 1 {
		t.Fatalf("%d spans", len(spans))
	}
	a := spans[0].Attributes
	for k, want := range map[string]string{"arg_page": "3", "http_x_user": "alice", "X-Tenant": "t1", "x-my-a": "1", "x-my-b": "2"} {
		if got := strAttr(a, k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"missing", "x-other"} {
		if _, ok := attrOf(a, k); ok {
			t.Errorf("unexpected attribute %s", k)
		}
	}
	// set_ngx_var: the server span's own context, for other plugins.
	if tid != hex.EncodeToString(spans[0].TraceId) || sid != hex.EncodeToString(spans[0].SpanId) ||
		tp != fmt.Sprintf("00-%s-%s-01", tid, sid) {
		t.Errorf("vars %v %v %v, span %x %x", tp, tid, sid, spans[0].TraceId, spans[0].SpanId)
	}
}

// TestProvidersOutliveReloads: one provider per distinct plugin_attr, kept
// while a configuration uses it; closing flushes what it queued.
func TestProvidersOutliveReloads(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	l := newLasting(t)
	slow := testAttr(rcv.Addr)
	slow["batch_span_processor"] = map[string]any{"batch_timeout": 3600} // exports only on close
	a := build(t, `{"sampler":{"name":"always_on"}}`, slow, l)
	b := build(t, `{"sampler":{"name":"always_off"}}`, slow, l)
	c := build(t, `{"sampler":{"name":"always_on"}}`, testAttr(rcv.Addr), l)
	if a.prov != b.prov || a.prov == c.prov {
		t.Fatalf("providers: same settings shared=%v, different settings shared=%v", a.prov == b.prov, a.prov == c.prov)
	}
	serve(t, a, plugintest.NewRequest("GET", "/"), plugin.Served{Start: time.Now(), Status: 200})
	// A reload that keeps using c's settings only: a's provider is closed,
	// and its queued span is exported on the way.
	l.BeginCompile()
	c2 := build(t, `{}`, testAttr(rcv.Addr), l)
	l.Sweep() // closes in the background
	if c2.prov != c.prov {
		t.Fatal("a reload with the same settings built a new provider")
	}
	deadline := time.Now().Add(5 * time.Second)
	var got int
	for got == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		got = len(rcv.take())
	}
	if got != 1 {
		t.Fatalf("closing flushed %d spans, want 1", got)
	}
	// Requests still in flight on the old configuration go through; their
	// spans have nowhere to go.
	req := plugintest.NewRequest("GET", "/")
	serve(t, a, req, plugin.Served{Start: time.Now(), Status: 200})
	parseTP(t, req.Header("traceparent"))
	if err := a.prov.tp.ForceFlush(context.Background()); err != nil || len(rcv.take()) != 0 {
		t.Fatalf("a closed provider exported: %v", err)
	}
}

// TestDeadCollector: exports to a closed port fail, every request still
// goes through both phases, and closing returns.
func TestDeadCollector(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there any more
	l := plugin.NewLasting(nil)
	p := build(t, `{"sampler":{"name":"always_on"}}`, testAttr(addr), l)
	for range 200 {
		req := plugintest.NewRequest("GET", "/")
		serve(t, p, req, plugin.Served{Start: time.Now(), Status: 200})
		parseTP(t, req.Header("traceparent"))
	}
	l.Close()
}

func TestValidationOnlyCompile(t *testing.T) {
	t.Parallel()
	p := build(t, `{"sampler":{"name":"always_on"}}`, nil, nil)
	req := plugintest.NewRequest("GET", "/")
	res := plugintest.Run(p, req, &plugintest.Response{Code: 200})
	if res.Exit != nil || req.Header("traceparent") != "" {
		t.Fatalf("a validation-only instance acted: %+v %q", res.Exit, req.Header("traceparent"))
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	if c := NewConfig(); c.Sampler.Name != AlwaysOff || c.Sampler.Options.Root.Name != AlwaysOff || c.Sampler.Options.Fraction != 0 {
		t.Fatalf("defaults %+v", c)
	}
	const pre = "plugins.opentelemetry: "
	tests := []struct{ desc, cfg, err string }{
		{"sampler name", `{"sampler":{"name":"sometimes"}}`, `sampler.name: must be one of always_on, always_off, trace_id_ratio, parent_base, got "sometimes"`},
		{"fraction", `{"sampler":{"name":"trace_id_ratio","options":{"fraction":1.5}}}`, "sampler.options.fraction: must be between 0 and 1, got 1.5"},
		{"root name", `{"sampler":{"name":"parent_base","options":{"root":{"name":"parent_base"}}}}`, `sampler.options.root.name: must be one of always_on, always_off, trace_id_ratio, got "parent_base"`},
		{"root fraction", `{"sampler":{"options":{"root":{"options":{"fraction":-1}}}}}`, "sampler.options.root.options.fraction: must be between 0 and 1, got -1"},
		{"empty attribute", `{"additional_attributes":[""]}`, "additional_attributes[0]: must not be empty"},
		{"empty header", `{"additional_header_prefix_attributes":["a",""]}`, "additional_header_prefix_attributes[1]: must not be empty"},
		{"type", `{"additional_attributes":"x"}`, "additional_attributes: must be an array, got string"},
		{"unknown", `{"sampler":{"ratio":1}}`, "ratio: unknown field"},
	}
	for _, tt := range tests {
		_, err := plugintest.Build(Name, tt.cfg)
		if err == nil || err.Error() != pre+tt.err {
			t.Errorf("%s: err = %v\nwant  %s", tt.desc, err, pre+tt.err)
		}
	}
}

func TestAttrValidation(t *testing.T) {
	t.Parallel()
	a, err := ParseAttr(nil)
	if err != nil || a.TraceIDSource != "x-request-id" || a.Collector.Address != "127.0.0.1:4318" || a.Collector.RequestTimeout != 3 ||
		a.BatchSpanProcessor != (BatchSpanProcessor{MaxQueueSize: 1024, BatchTimeout: 2, InactiveTimeout: 1, MaxExportBatchSize: 16}) {
		t.Fatalf("defaults %+v %v", a, err)
	}
	const pre = "plugins.opentelemetry: plugin_attr.opentelemetry."
	tests := []struct{ desc, attr, err string }{
		{"source", `{"trace_id_source":"header"}`, `trace_id_source: must be one of x-request-id, random, got "header"`},
		{"address", `{"collector":{"address":"collector"}}`, `collector.address: must be host:port or http(s)://host:port, got "collector"`},
		{"port", `{"collector":{"address":"http://c:0"}}`, `collector.address: invalid port in "http://c:0"`},
		{"timeout", `{"collector":{"request_timeout":0}}`, "collector.request_timeout: must be > 0, got 0"},
		{"timeout type", `{"collector":{"request_timeout":1.5}}`, "collector.request_timeout: must be an integer, got number 1.5"},
		{"header value", `{"collector":{"request_headers":{"X-A":{"b":1}}}}`, "collector.request_headers.X-A: must be a string, number or boolean"},
		{"header name", `{"collector":{"request_headers":{"X A":"1"}}}`, `collector.request_headers: invalid header name "X A"`},
		{"resource value", `{"resource":{"k":[1]}}`, "resource.k: must be a string, number or boolean"},
		{"queue", `{"batch_span_processor":{"max_queue_size":0}}`, "batch_span_processor.max_queue_size: must be >= 1, got 0"},
		{"batch size", `{"batch_span_processor":{"max_export_batch_size":2048}}`, "batch_span_processor.max_export_batch_size: must be <= max_queue_size (1024), got 2048"},
		{"batch timeout", `{"batch_span_processor":{"batch_timeout":0}}`, "batch_span_processor.batch_timeout: must be > 0 and <= 3600 seconds, got 0"},
		{"inactive", `{"batch_span_processor":{"inactive_timeout":-1}}`, "batch_span_processor.inactive_timeout: must be > 0 and <= 3600 seconds, got -1"},
		{"drop type", `{"batch_span_processor":{"drop_on_queue_full":"yes"}}`, "batch_span_processor.drop_on_queue_full: must be a boolean, got string"},
		{"unknown", `{"exporter":{}}`, "exporter: unknown field"},
	}
	for _, tt := range tests {
		var m map[string]any
		if err := json.Unmarshal([]byte(tt.attr), &m); err != nil {
			t.Fatal(err)
		}
		_, err := tryBuild(`{}`, m, nil)
		if err == nil || err.Error() != pre+tt.err {
			t.Errorf("%s: err = %v\nwant  %s", tt.desc, err, pre+tt.err)
		}
	}
	// Accepted forms of the collector address.
	for _, addr := range []string{"127.0.0.1:4318", "http://otel:4318", "https://otel.example.com:443/", "[::1]:4318"} {
		if _, err := ParseAttr(map[string]any{"collector": map[string]any{"address": addr}}); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
}

func TestTraceparentFormat(t *testing.T) {
	t.Parallel()
	tid := traceIDFromRequestID("4bf92f3577b34da6a3ce929d0e0e4736")
	var sid [8]byte
	hex.Decode(sid[:], []byte("00f067aa0ba902b7"))
	for flags, want := range map[byte]string{0: "00", 1: "01", 3: "03", 0xff: "03"} {
		got := formatTraceparent(tid, sid, traceFlags(flags))
		if got != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-"+want {
			t.Errorf("flags %x: %s", flags, got)
		}
	}
}

func traceFlags(b byte) trace.TraceFlags { return trace.TraceFlags(b) }

// TestMetadataOverridesAttr: a stored plugin_metadata object (later APISIX
// versions) is used instead of plugin_attr, validated the same way.
func TestMetadataOverridesAttr(t *testing.T) {
	t.Parallel()
	deps := func(meta map[string]any) pipeline.DepsFunc {
		return func(string) plugin.Deps {
			return plugin.Deps{Attr: map[string]any{"trace_id_source": "random"}, Metadata: meta}
		}
	}
	ps, err := pipeline.Build(map[string]any{Name: map[string]any{}}, nil, deps(map[string]any{"trace_id_source": "x-request-id"}))
	if err != nil || !ps[0].Instance.(*otelPlugin).fromReqID {
		t.Fatalf("metadata not applied: %v", err)
	}
	_, err = pipeline.Build(map[string]any{Name: map[string]any{}}, nil, deps(map[string]any{"collector": map[string]any{"address": "x"}}))
	if want := `plugins.opentelemetry: plugin_metadata.opentelemetry.collector.address: must be host:port or http(s)://host:port, got "x"`; err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant  %s", err, want)
	}
}

// TestConcurrentRequests: many requests at once on one instance (the
// per-request state is pooled); every span arrives, each trace whole.
func TestConcurrentRequests(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	attr := testAttr(rcv.Addr)
	attr["batch_span_processor"] = map[string]any{"batch_timeout": 0.05, "max_queue_size": 4096, "max_export_batch_size": 256}
	p := build(t, `{"sampler":{"name":"always_on"}}`, attr, newLasting(t))
	const workers, each = 8, 100
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				now := time.Now()
				serve(t, p, plugintest.NewRequest("GET", "/"), plugin.Served{Start: now, Status: 200,
					UpstreamAddr: "127.0.0.1:9", UpstreamStatus: 200, UpstreamStart: now})
			}
		})
	}
	wg.Wait()
	flush(t, p)
	traces := map[string]int{}
	for _, s := range rcv.take() {
		traces[hex.EncodeToString(s.TraceId)]++
	}
	if len(traces) != workers*each {
		t.Fatalf("%d traces, want %d", len(traces), workers*each)
	}
	for tid, n := range traces {
		if n != 2 {
			t.Fatalf("trace %s has %d spans", tid, n)
		}
	}
}
