// Package opentelemetry implements APISIX's opentelemetry plugin: a SERVER
// span per request (continuing the client's W3C trace context), a CLIENT
// span for the upstream call, the trace context sent upstream, and OTLP/HTTP
// export through a batch processor that drops rather than slows requests.
package opentelemetry

import (
	"context"
	"encoding/hex"
	"net"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluicegw/sluice/plugin"
)

// Name and Priority are APISIX's.
const (
	Name     = "opentelemetry"
	Priority = 12009
)

// Per-request values under these keys (Ctx.Set). The three opentelemetry_*
// ones are APISIX's set_ngx_var variables.
const (
	stateKey       = "opentelemetry"
	VarTraceparent = "opentelemetry_context_traceparent"
	VarTraceID     = "opentelemetry_trace_id"
	VarSpanID      = "opentelemetry_span_id"
)

// UpstreamSpanName names the CLIENT span of the upstream call.
const UpstreamSpanName = "upstream"

func init() {
	plugin.Register(plugin.Descriptor{
		Name:      Name,
		Priority:  Priority,
		NewConfig: func() plugin.Config { return NewConfig() },
		New:       newPlugin,
	})
}

// otelPlugin is a built instance: the route's sampler and attribute lists
// over the gateway-wide provider. It is immutable and shared.
type otelPlugin struct {
	prov        *provider // nil in validation-only compiles
	sampler     sdktrace.Sampler
	vars        []string     // additional_attributes
	headers     []headerAttr // additional_header_prefix_attributes
	fromReqID   bool         // trace_id_source: x-request-id
	setVars     bool         // set_ngx_var
	traceparent propagation.TraceContext
}

type headerAttr struct {
	name   string // header name, or prefix when prefix is set
	prefix bool
}

func newPlugin(cfg plugin.Config, deps plugin.Deps) (any, error) {
	c := cfg.(*Config)
	a, err := settings(deps)
	if err != nil {
		return nil, err
	}
	p := &otelPlugin{
		sampler:   newSampler(c.Sampler),
		vars:      c.AdditionalAttributes,
		fromReqID: a.TraceIDSource == "x-request-id",
		setVars:   a.SetNgxVar,
	}
	for _, h := range c.AdditionalHeaderPrefixAttributes {
		if len(h) >= 2 && h[len(h)-1] == '*' {
			p.headers = append(p.headers, headerAttr{name: strings.ToLower(h[:len(h)-1]), prefix: true})
		} else {
			p.headers = append(p.headers, headerAttr{name: h})
		}
	}
	key, err := lastingKey(a)
	if err != nil {
		return nil, err
	}
	o, err := deps.Lasting.Get(key, func() (any, error) { return newProvider(a, deps.Logger(Name)) })
	if err != nil {
		return nil, err
	}
	if o != nil {
		p.prov = o.(*provider)
	}
	return p, nil
}

// settings are the gateway-wide settings: plugin_attr.opentelemetry (APISIX
// up to 3.11), or, when one is stored, the plugin_metadata object of the
// same shape that later APISIX versions read instead.
func settings(deps plugin.Deps) (*Attr, error) {
	if deps.Metadata != nil {
		return parseSettings(deps.Metadata, "plugin_metadata.opentelemetry")
	}
	return ParseAttr(deps.Attr)
}

// newSampler maps APISIX's sampler object onto the SDK's samplers, which
// have the same semantics (parent_base: the parent's sampled flag decides,
// the root sampler decides for requests without a parent).
func newSampler(s Sampler) sdktrace.Sampler {
	switch s.Name {
	case AlwaysOn:
		return sdktrace.AlwaysSample()
	case TraceIDRatio:
		return sdktrace.TraceIDRatioBased(s.Options.Fraction)
	case ParentBase:
		r := s.Options.Root
		return sdktrace.ParentBased(newSampler(Sampler{Name: r.Name, Options: SamplerOptions{Fraction: r.Options.Fraction}}))
	}
	return sdktrace.NeverSample()
}

// reqState is one request's tracing state between rewrite and log, pooled
// by the provider.
type reqState struct {
	rc       reqCtx
	prov     *provider
	carrier  carrier
	ctx      context.Context // the server span's context
	server   trace.Span
	clientID trace.SpanID // the upstream CLIENT span's ID, sent upstream
	opts     [2]trace.SpanStartOption
	attrs    []attribute.KeyValue
}

// carrier adapts a plugin request to the propagator.
type carrier struct{ req plugin.Request }

// Get returns a header. tracestate is copied: the parsed trace state is
// kept by the span, which outlives the request's buffer.
func (c *carrier) Get(key string) string {
	v := c.req.Header(key)
	if key == "tracestate" && v != "" {
		return strings.Clone(v)
	}
	return v
}
func (c *carrier) Set(key, val string) { c.req.SetHeader(key, val) }
func (c *carrier) Keys() []string      { return nil }

var (
	serverKind = trace.WithSpanKind(trace.SpanKindServer)
	clientKind = trace.WithSpanKind(trace.SpanKindClient)
)

// Rewrite starts the SERVER span, as a child of the client's traceparent
// when it has a valid one, and sends the trace context upstream.
func (p *otelPlugin) Rewrite(c *plugin.Ctx) *plugin.Exit {
	if p.prov == nil {
		return nil
	}
	req := c.Request
	st := p.prov.getState()
	st.prov = p.prov
	st.rc.sampler = p.sampler
	st.carrier.req = req
	parent := p.traceparent.Extract(&st.rc, &st.carrier)
	if p.fromReqID && parent == context.Context(&st.rc) {
		st.rc.traceID = traceIDFromRequestID(req.Header("X-Request-Id"))
	}
	opts := st.opts[:1]
	opts[0] = serverKind
	if start := c.Served.Start; !start.IsZero() {
		opts = append(opts, trace.WithTimestamp(start))
	}
	st.ctx, st.server = p.prov.tracer.Start(parent, methodName(req.Method()), opts...)
	sc := st.server.SpanContext()
	if st.server.IsRecording() {
		p.serverAttributes(c, st)
		// The upstream's parent is the CLIENT span the log phase creates
		// with this ID, timed by the upstream call.
		st.clientID = randomSpanID()
		req.SetHeader("traceparent", formatTraceparent(sc.TraceID(), st.clientID, sc.TraceFlags()))
	} else {
		req.SetHeader("traceparent", formatTraceparent(sc.TraceID(), sc.SpanID(), sc.TraceFlags()))
	}
	if p.setVars {
		c.Set(VarTraceparent, formatTraceparent(sc.TraceID(), sc.SpanID(), sc.TraceFlags()))
		c.Set(VarTraceID, sc.TraceID().String())
		c.Set(VarSpanID, sc.SpanID().String())
	}
	c.Set(stateKey, st)
	return nil
}

// serverAttributes sets APISIX's server span attributes. Values are
// copied: the fast engine's request strings view a buffer that is reused
// once the request is done, and spans are exported later.
func (p *otelPlugin) serverAttributes(c *plugin.Ctx, st *reqState) {
	req := c.Request
	st.attrs = append(st.attrs[:0],
		keep("net.host.name", req.Host()),
		attribute.String("http.method", methodName(req.Method())),
	)
	if v, ok := req.Var("scheme"); ok {
		st.attrs = append(st.attrs, keep("http.scheme", v))
	}
	if v, ok := req.Var("request_uri"); ok {
		st.attrs = append(st.attrs, keep("http.target", v))
	}
	if v := req.Header("User-Agent"); v != "" {
		st.attrs = append(st.attrs, keep("http.user_agent", v))
	}
	if v, ok := req.Var("remote_addr"); ok {
		st.attrs = append(st.attrs, keep("client.address", v))
	}
	if c.RouteID != "" {
		st.attrs = append(st.attrs, keep("apisix.route_id", c.RouteID))
	}
	if c.RouteName != "" {
		// Route names live in the snapshot, not in the request buffer:
		// no copy needed.
		st.attrs = append(st.attrs, attribute.String("apisix.route_name", c.RouteName))
	}
	if c.ServiceID != "" {
		st.attrs = append(st.attrs, keep("apisix.service_id", c.ServiceID))
	}
	for _, name := range p.vars {
		if v, ok := req.Var(name); ok {
			st.attrs = append(st.attrs, keep(name, v))
		}
	}
	for _, h := range p.headers {
		if !h.prefix {
			if v := req.Header(h.name); v != "" {
				st.attrs = append(st.attrs, keep(h.name, v))
			}
		} else if hl, ok := req.(headerLister); ok {
			st.addPrefixed(hl, h.name)
		}
	}
	st.server.SetAttributes(st.attrs...)
}

// addPrefixed adds every request header whose name starts with prefix,
// named in lower case as APISIX (nginx) has them.
func (st *reqState) addPrefixed(hl headerLister, prefix string) {
	hl.EachHeader(func(name, value string) {
		if len(name) >= len(prefix) && strings.EqualFold(name[:len(prefix)], prefix) {
			st.attrs = append(st.attrs, attribute.String(strings.ToLower(name), strings.Clone(value)))
		}
	})
}

// keep is attribute.String over a copy of v.
func keep(k, v string) attribute.KeyValue { return attribute.String(k, strings.Clone(v)) }

// methodName returns a constant for the common methods (span names must
// outlive the request's buffer) and a copy otherwise.
func methodName(m string) string {
	switch m {
	case "GET":
		return "GET"
	case "POST":
		return "POST"
	case "PUT":
		return "PUT"
	case "DELETE":
		return "DELETE"
	case "HEAD":
		return "HEAD"
	case "PATCH":
		return "PATCH"
	case "OPTIONS":
		return "OPTIONS"
	}
	return strings.Clone(m)
}

// headerLister is implemented by both engines' requests (as for loggers);
// header prefixes ("x-my-*") need it.
type headerLister interface {
	EachHeader(fn func(name, value string))
}

// Log ends the spans with the gateway's own timings: the server span from
// the request's start to the end of the response, the CLIENT span over the
// last upstream attempt.
func (p *otelPlugin) Log(c *plugin.Ctx) {
	v, _ := c.Get(stateKey)
	st, _ := v.(*reqState)
	if st == nil {
		return
	}
	c.Set(stateKey, nil) // a second opentelemetry instance must not end it again
	if st.server.IsRecording() {
		endRecording(c, st)
	}
	st.prov.putState(st)
}

func endRecording(c *plugin.Ctx, st *reqState) {
	s := &c.Served
	if s.UpstreamAddr != "" && st.clientID.IsValid() {
		start := s.UpstreamStart
		if start.IsZero() {
			start = s.Start
		}
		st.rc.spanID = st.clientID
		opts := st.opts[:1]
		opts[0] = clientKind
		if !start.IsZero() {
			opts = append(opts, trace.WithTimestamp(start))
		}
		_, cs := st.prov.tracer.Start(st.ctx, UpstreamSpanName, opts...)
		a := append(st.attrs[:0], attribute.String("http.method", methodName(c.Request.Method())))
		if host, port, err := net.SplitHostPort(s.UpstreamAddr); err == nil {
			a = append(a, keep("server.address", host))
			if n, err := strconv.Atoi(port); err == nil {
				a = append(a, attribute.Int("server.port", n))
			}
		}
		if s.UpstreamStatus != 0 {
			a = append(a, attribute.Int("http.status_code", s.UpstreamStatus), attribute.Int("http.response.status_code", s.UpstreamStatus))
		}
		st.attrs = a
		cs.SetAttributes(a...)
		switch {
		case s.UpstreamStatus == 0:
			cs.SetStatus(codes.Error, "no response from upstream")
		case s.UpstreamStatus >= 500:
			cs.SetStatus(codes.Error, "upstream response status: "+strconv.Itoa(s.UpstreamStatus))
		}
		endAt(cs, start, s.UpstreamLatency)
	}
	if s.Status != 0 {
		st.server.SetAttributes(attribute.Int("http.status_code", s.Status), attribute.Int("http.response.status_code", s.Status))
		if s.Status >= 500 {
			st.server.SetStatus(codes.Error, "response status: "+strconv.Itoa(s.Status))
		}
	}
	endAt(st.server, s.Start, s.Latency)
}

// endAt ends span at start+d, or now when the gateway gave no start.
func endAt(span trace.Span, start time.Time, d time.Duration) {
	if start.IsZero() {
		span.End()
		return
	}
	span.End(trace.WithTimestamp(start.Add(d)))
}

// formatTraceparent writes a version-00 W3C traceparent.
func formatTraceparent(tid trace.TraceID, sid trace.SpanID, flags trace.TraceFlags) string {
	var b [55]byte
	b[0], b[1], b[2] = '0', '0', '-'
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	b[52] = '-'
	f := byte(flags & (trace.FlagsSampled | trace.FlagsRandom))
	const digits = "0123456789abcdef"
	b[53], b[54] = digits[f>>4], digits[f&15]
	return string(b[:])
}

// traceIDFromRequestID reads a trace ID from an X-Request-Id: 32 hex
// digits, or a UUID (request-id's default) without its dashes. Anything
// else gives the zero (invalid) ID, and the trace gets a random one.
func traceIDFromRequestID(s string) trace.TraceID {
	var digits [32]byte
	switch len(s) {
	case 32:
		copy(digits[:], s)
	case 36:
		if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
			return trace.TraceID{}
		}
		n := copy(digits[:], s[:8])
		n += copy(digits[n:], s[9:13])
		n += copy(digits[n:], s[14:18])
		n += copy(digits[n:], s[19:23])
		copy(digits[n:], s[24:])
	default:
		return trace.TraceID{}
	}
	var id trace.TraceID
	if _, err := hex.Decode(id[:], digits[:]); err != nil {
		return trace.TraceID{}
	}
	return id
}

var (
	_ plugin.Rewriter = (*otelPlugin)(nil)
	_ plugin.Logger   = (*otelPlugin)(nil)
	_ plugin.Config   = (*Config)(nil)
)
