// Package logentry builds the log entry APISIX's loggers send
// (apisix/utils/log-util.lua): by default a JSON object describing the
// request, the response, the server, the upstream, latencies, route, service
// and consumer; or, with log_format (from the plugin's config or its plugin
// metadata), an object of chosen variables. It also captures the request and
// response bodies when a logger asks for them.
//
// Entries are written straight into a byte slice (no maps, no reflection):
// a logger calls Append in its log phase and hands the bytes to its batch
// processor.
package logentry

import (
	"net/netip"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"

	"github.com/sluicegw/sluice/internal/expr"
	"github.com/sluicegw/sluice/plugin"
)

// HeaderLister is implemented by requests and responses that can list all
// their header fields (in order, repeated fields repeated). The default
// entry's request.headers and response.headers list every field when the
// engine's Request and Response implement it; otherwise they hold the
// fields of commonRequestHeaders and commonResponseHeaders only.
type HeaderLister interface {
	EachHeader(fn func(name, value string))
}

// The fields logged when the engine cannot list headers.
var (
	commonRequestHeaders  = []string{"host", "user-agent", "accept", "content-type", "content-length", "x-forwarded-for", "x-real-ip", "x-request-id", "referer"}
	commonResponseHeaders = []string{"content-type", "content-length", "content-encoding", "location", "x-request-id"}
)

// server.hostname and server.version, read once.
var hostname, version = func() (string, string) {
	h, _ := os.Hostname()
	v := "dev"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	return h, v
}()

// defaultFields are the default entry's top-level names, which
// log_format_extra never overrides.
var defaultFields = map[string]bool{
	"request": true, "response": true, "server": true, "upstream": true, "service_id": true,
	"route_id": true, "consumer": true, "client_ip": true, "start_time": true, "latency": true,
	"upstream_latency": true, "apisix_latency": true,
}

// Options build a Builder.
type Options struct {
	// Plugin names the logger; it keys the bodies kept in the request
	// context, so two loggers on a route do not share them.
	Plugin string
	Settings
	// Metadata is the plugin's plugin_metadata object: its log_format
	// applies when Settings has none, its log_format_extra when Settings
	// has none.
	Metadata map[string]any
	// RouteIDFallback is logged as route_id when no route matched
	// (http-logger: "no-matched"); empty leaves the field out.
	RouteIDFallback string
}

// Builder writes one logger's entries. It is immutable and shared by every
// request of the routes using the logger.
type Builder struct {
	format        []field // custom log_format; nil for the default entry
	extra         []field // log_format_extra
	custom        bool
	reqExpr       *expr.Expr
	respExpr      *expr.Expr
	wantReq       bool // read the request body in the access phase
	includeReq    bool // put request.body in the default entry
	wantResp      bool
	maxReq        int64
	maxResp       int64
	reqKey        string
	respKey       string
	routeFallback string
}

// New compiles a Builder; Settings must have been validated.
func New(o Options) (*Builder, error) {
	b := &Builder{
		maxReq: o.MaxReqBodyBytes, maxResp: o.MaxRespBodyBytes,
		reqKey: "logentry.req_body." + o.Plugin, respKey: "logentry.resp_body." + o.Plugin,
		routeFallback: o.RouteIDFallback,
	}
	if b.maxReq <= 0 {
		b.maxReq = DefaultMaxBodyBytes
	}
	if b.maxResp <= 0 {
		b.maxResp = DefaultMaxBodyBytes
	}
	format := o.LogFormat
	if format == nil {
		if m, ok := o.Metadata["log_format"].(map[string]any); ok && len(m) > 0 {
			format = m
		}
	}
	extra := o.LogFormatExtra
	if extra == nil {
		extra, _ = o.Metadata["log_format_extra"].(map[string]any)
	}
	var err error
	if b.reqExpr, err = compileBodyExpr("include_req_body_expr", o.IncludeReqBodyExpr); err != nil {
		return nil, err
	}
	if b.respExpr, err = compileBodyExpr("include_resp_body_expr", o.IncludeRespBodyExpr); err != nil {
		return nil, err
	}
	if format != nil {
		b.custom = true
		b.format = compileFormat(format, 1)
		b.wantReq = usesRequestBody(b.format)
	} else {
		b.extra = compileFormat(extra, 1)
		b.includeReq = o.IncludeReqBody
		b.wantReq = o.IncludeReqBody || usesRequestBody(b.extra)
		b.wantResp = o.IncludeRespBody
	}
	return b, nil
}

func usesRequestBody(fs []field) bool {
	for i := range fs {
		if fs[i].isVar && fs[i].varName == "request_body" || usesRequestBody(fs[i].nested) {
			return true
		}
	}
	return false
}

// Custom reports whether entries follow a log_format instead of the default.
func (b *Builder) Custom() bool { return b.custom }

// Append writes c's entry, a JSON object, to dst. It runs in the log phase:
// everything it needs from c is copied into dst.
func (b *Builder) Append(dst []byte, c *plugin.Ctx) []byte {
	if b.custom {
		return b.appendCustom(dst, c)
	}
	return b.appendDefault(dst, c)
}

// appendCustom writes the log_format fields, then route_id and service_id
// from the matched route, which APISIX always sets over the format's own.
func (b *Builder) appendCustom(dst []byte, c *plugin.Ctx) []byte {
	dst = append(dst, '{')
	dst, first := b.appendFields(dst, b.format, c, true, func(n string) bool {
		return n == "route_id" || n == "service_id"
	})
	if id := b.routeID(c); id != "" {
		dst = appendKey(dst, "route_id", first)
		dst = appendString(dst, id)
		first = false
	}
	if c.ServiceID != "" {
		dst = appendKey(dst, "service_id", first)
		dst = appendString(dst, c.ServiceID)
	}
	return append(dst, '}')
}

func (b *Builder) routeID(c *plugin.Ctx) string {
	if c.RouteID != "" {
		return c.RouteID
	}
	return b.routeFallback
}

func (b *Builder) appendDefault(dst []byte, c *plugin.Ctx) []byte {
	s := &c.Served
	req := c.Request
	dst = append(dst, `{"request":{"url":`...)
	scheme, _ := req.Var("scheme")
	if scheme == "" {
		scheme = "http"
	}
	host, _ := req.Var("host")
	port, _ := req.Var("server_port")
	uri, ok := req.Var("request_uri")
	if !ok {
		uri = req.Path()
		if q := req.RawQuery(); q != "" {
			uri += "?" + q
		}
	}
	dst = append(dst, '"')
	dst = appendEscaped(dst, scheme)
	dst = append(dst, "://"...)
	dst = appendEscaped(dst, host)
	dst = append(dst, ':')
	dst = appendEscaped(dst, port)
	dst = appendEscaped(dst, uri)
	dst = append(dst, '"')
	dst = append(dst, `,"uri":`...)
	dst = appendString(dst, uri)
	dst = append(dst, `,"method":`...)
	dst = appendString(dst, req.Method())
	dst = append(dst, `,"headers":`...)
	dst = appendRequestHeaders(dst, req)
	dst = append(dst, `,"querystring":`...)
	dst = appendQuery(dst, req.RawQuery())
	dst = append(dst, `,"size":`...)
	dst = strconv.AppendInt(dst, s.RequestLength, 10)
	if b.includeReq {
		if body, ok := b.reqBody(c); ok {
			dst = append(dst, `,"body":`...)
			dst = appendString(dst, body)
		}
	}
	dst = append(dst, `},"response":{"status":`...)
	dst = strconv.AppendInt(dst, int64(s.Status), 10)
	dst = append(dst, `,"headers":`...)
	dst = appendResponseHeaders(dst, c.Response)
	dst = append(dst, `,"size":`...)
	dst = strconv.AppendInt(dst, s.BytesSent, 10)
	if v, ok := c.Get(b.respKey); ok {
		if rb, ok := v.(*bodyBuf); ok {
			dst = append(dst, `,"body":`...)
			dst = appendString(dst, rb.b)
		}
	}
	dst = append(dst, `},"server":{"hostname":`...)
	dst = appendString(dst, hostname)
	dst = append(dst, `,"version":`...)
	dst = appendString(dst, version)
	dst = append(dst, '}')
	if s.UpstreamAddr != "" {
		dst = append(dst, `,"upstream":`...)
		dst = appendString(dst, s.UpstreamAddr)
	}
	dst = append(dst, `,"service_id":`...)
	dst = appendString(dst, c.ServiceID)
	if id := b.routeID(c); id != "" {
		dst = append(dst, `,"route_id":`...)
		dst = appendString(dst, id)
	}
	if c.Consumer != nil {
		dst = append(dst, `,"consumer":{"username":`...)
		dst = appendString(dst, c.Consumer.Username)
		dst = append(dst, '}')
	}
	dst = append(dst, `,"client_ip":`...)
	dst = appendClientIP(dst, c)
	dst = append(dst, `,"start_time":`...)
	dst = strconv.AppendInt(dst, s.Start.UnixMilli(), 10)
	latency := int64(s.Latency)
	dst = append(dst, `,"latency":`...)
	dst = appendMillis(dst, latency)
	apisix := latency
	if s.UpstreamAddr != "" {
		up := int64(s.UpstreamLatency)
		dst = append(dst, `,"upstream_latency":`...)
		dst = appendMillis(dst, up)
		apisix = max(latency-up, 0)
	}
	dst = append(dst, `,"apisix_latency":`...)
	dst = appendMillis(dst, apisix)
	if len(b.extra) > 0 {
		dst, _ = b.appendFields(dst, b.extra, c, false, func(n string) bool { return defaultFields[n] })
	}
	return append(dst, '}')
}

// appendClientIP writes the client address: the one real-ip established,
// else the connection's.
func appendClientIP(dst []byte, c *plugin.Ctx) []byte {
	if v, ok := c.Get("real_ip"); ok {
		if ip, ok := v.(netip.Addr); ok && ip.IsValid() {
			dst = append(dst, '"')
			dst = ip.AppendTo(dst)
			return append(dst, '"')
		}
	}
	if a, ok := c.Request.Var("remote_addr"); ok {
		return appendString(dst, a)
	}
	dst = append(dst, '"')
	if ip := c.Request.RemoteIP(); ip.IsValid() {
		dst = ip.AppendTo(dst)
	}
	return append(dst, '"')
}

// reqBody returns the request body the access phase kept, capped.
func (b *Builder) reqBody(c *plugin.Ctx) ([]byte, bool) {
	v, ok := c.Get(b.reqKey)
	if !ok {
		return nil, false
	}
	body, ok := v.([]byte)
	if !ok {
		return nil, false
	}
	return body[:min(int64(len(body)), b.maxReq)], true
}

// header is one header field, for grouping repeated names.
type header struct{ name, value string }

// headerPool recycles the slices headers are gathered in: the callback
// given to EachHeader makes a stack array escape.
var headerPool = sync.Pool{New: func() any { s := make([]header, 0, 32); return &s }}

func appendRequestHeaders(dst []byte, req plugin.Request) []byte {
	if l, ok := req.(HeaderLister); ok {
		return appendListed(dst, l)
	}
	return appendCommon(dst, commonRequestHeaders, req.Header)
}

func appendResponseHeaders(dst []byte, resp plugin.Response) []byte {
	if resp == nil {
		return append(dst, "{}"...)
	}
	if l, ok := resp.(HeaderLister); ok {
		return appendListed(dst, l)
	}
	return appendCommon(dst, commonResponseHeaders, resp.Header)
}

func appendCommon(dst []byte, names []string, get func(string) string) []byte {
	dst = append(dst, '{')
	first := true
	for _, n := range names {
		if v := get(n); v != "" {
			dst = appendKey(dst, n, first)
			dst = appendString(dst, v)
			first = false
		}
	}
	return append(dst, '}')
}

// appendListed writes every field, names lower-cased; a repeated field
// becomes an array of its values, as ngx.req.get_headers() gives it.
func appendListed(dst []byte, l HeaderLister) []byte {
	hp := headerPool.Get().(*[]header)
	defer func() {
		clear(*hp)
		headerPool.Put(hp)
	}()
	hs := (*hp)[:0]
	l.EachHeader(func(name, value string) { hs = append(hs, header{name, value}) })
	*hp = hs
	dst = append(dst, '{')
	first := true
	for i, h := range hs {
		seen := false
		for j := range i {
			if strings.EqualFold(hs[j].name, h.name) {
				seen = true
				break
			}
		}
		if seen {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendLower(dst, h.name)
		dst = append(dst, ':')
		n := 0
		for _, o := range hs[i:] {
			if strings.EqualFold(o.name, h.name) {
				n++
			}
		}
		if n == 1 {
			dst = appendString(dst, h.value)
			continue
		}
		dst = append(dst, '[')
		k := 0
		for _, o := range hs[i:] {
			if strings.EqualFold(o.name, h.name) {
				if k > 0 {
					dst = append(dst, ',')
				}
				dst = appendString(dst, o.value)
				k++
			}
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}
