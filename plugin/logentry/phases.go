package logentry

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/sluicegw/sluice/plugin"
)

// Instance returns a logger's plugin instance: log runs in the log phase;
// the access phase (reading the request body) and the body filter
// (capturing the response body) are added only when the settings need them,
// so a logger without body options costs routes nothing but its log phase.
func (b *Builder) Instance(log func(c *plugin.Ctx)) any {
	l := logOnly{log: log}
	switch {
	case b.wantReq && b.wantResp:
		return &withBoth{withResp{l, b}}
	case b.wantReq:
		return &withReq{l, b}
	case b.wantResp:
		return &withResp{l, b}
	}
	return &l
}

type logOnly struct{ log func(c *plugin.Ctx) }

func (l *logOnly) Log(c *plugin.Ctx) { l.log(c) }

type withReq struct {
	logOnly
	b *Builder
}

func (w *withReq) Access(c *plugin.Ctx) *plugin.Exit { w.b.Access(c); return nil }

type withResp struct {
	logOnly
	b *Builder
}

func (w *withResp) WantsBody(c *plugin.Ctx) bool { return w.b.WantsBody(c) }
func (w *withResp) BodyFilter(c *plugin.Ctx, chunk []byte, eof bool) []byte {
	return w.b.BodyFilter(c, chunk, eof)
}

type withBoth struct{ withResp }

func (w *withBoth) Access(c *plugin.Ctx) *plugin.Exit { w.b.Access(c); return nil }

var (
	_ plugin.Logger       = (*logOnly)(nil)
	_ plugin.Accessor     = (*withReq)(nil)
	_ plugin.BodyFilterer = (*withResp)(nil)
	_ plugin.BodyWanter   = (*withResp)(nil)
	_ plugin.Accessor     = (*withBoth)(nil)
	_ plugin.BodyFilterer = (*withBoth)(nil)
)

// Access reads the request body for the log, as APISIX does in the access
// phase, when include_req_body_expr (if any) matches. Only a body with a
// Content-Length up to max_req_body_bytes is read: reading part of a longer
// or chunked body would leave the rest unsendable upstream, and reading all
// of it would hold an unbounded body in memory. Such bodies are not logged.
func (b *Builder) Access(c *plugin.Ctx) {
	if !b.wantReq || !b.reqExpr.Eval(c) {
		return
	}
	n, err := strconv.ParseInt(c.Request.Header("Content-Length"), 10, 64)
	if err != nil || n <= 0 || n > b.maxReq {
		return
	}
	body, err := c.Request.ReadBody(b.maxReq)
	if err != nil {
		return
	}
	c.Set(b.reqKey, body)
}

// bodyBuf collects the response body up to max bytes.
type bodyBuf struct {
	b   []byte
	max int64
}

// WantsBody decides, after header_filter, whether this response's body is
// logged (include_resp_body_expr sees the response status and headers). It
// never changes the body, but saying yes makes the gateway send the body
// chunked (see the package docs of plugin.BodyWanter): that is the cost of
// include_resp_body.
func (b *Builder) WantsBody(c *plugin.Ctx) bool {
	if !b.wantResp || !b.respExpr.Eval(respVars{c}) {
		return false
	}
	c.Set(b.respKey, &bodyBuf{max: b.maxResp})
	return true
}

// BodyFilter copies chunks (up to max_resp_body_bytes) and passes them on
// unchanged.
func (b *Builder) BodyFilter(c *plugin.Ctx, chunk []byte, _ bool) []byte {
	if v, ok := c.Get(b.respKey); ok {
		if bb, ok := v.(*bodyBuf); ok {
			if room := bb.max - int64(len(bb.b)); room > 0 {
				bb.b = append(bb.b, chunk[:min(int64(len(chunk)), room)]...)
			}
		}
	}
	return chunk
}

// respVars answers variables in body_filter: the response's status and
// headers ($status, $sent_http_*), then the request's.
type respVars struct{ c *plugin.Ctx }

func (v respVars) Var(name string) (string, bool) {
	if r := v.c.Response; r != nil {
		if name == "status" {
			return strconv.Itoa(r.Status()), true
		}
		if h, ok := strings.CutPrefix(name, "sent_http_"); ok {
			s := r.Header(strings.ReplaceAll(h, "_", "-"))
			return s, s != ""
		}
	}
	return v.c.Var(name)
}

// appendQuery writes the query as ngx.req.get_uri_args() gives it: decoded
// names and values, true for an argument without "=", an array for a
// repeated name; in order of first appearance.
func appendQuery(dst []byte, q string) []byte {
	if q == "" {
		return append(dst, "{}"...)
	}
	type arg struct {
		k, v  string
		value bool // has "="
	}
	var stack [16]arg
	args := stack[:0]
	for part := range strings.SplitSeq(q, "&") {
		k, v, hasEq := strings.Cut(part, "=")
		if k == "" {
			continue
		}
		if d, err := url.QueryUnescape(k); err == nil {
			k = d
		}
		if d, err := url.QueryUnescape(v); err == nil {
			v = d
		}
		args = append(args, arg{k, v, hasEq})
	}
	dst = append(dst, '{')
	first := true
	for i, a := range args {
		seen := false
		for j := range i {
			if args[j].k == a.k {
				seen = true
				break
			}
		}
		if seen {
			continue
		}
		dst = appendKey(dst, a.k, first)
		first = false
		n := 0
		for _, o := range args[i:] {
			if o.k == a.k {
				n++
			}
		}
		if n > 1 {
			dst = append(dst, '[')
		}
		k := 0
		for _, o := range args[i:] {
			if o.k != a.k {
				continue
			}
			if k > 0 {
				dst = append(dst, ',')
			}
			k++
			if o.value {
				dst = appendString(dst, o.v)
			} else {
				dst = append(dst, "true"...)
			}
		}
		if n > 1 {
			dst = append(dst, ']')
		}
	}
	return append(dst, '}')
}
