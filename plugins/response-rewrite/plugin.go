// Package responserewrite implements APISIX's response-rewrite plugin: it
// rewrites the status, headers and body of the response sent to the client,
// optionally only when a vars expression matches.
package responserewrite

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicegw/sluice/internal/expr"
	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/ngxtmpl"
)

// Name and Priority are APISIX's.
const (
	Name     = "response-rewrite"
	Priority = 899
)

func init() {
	plugin.Register(plugin.Descriptor{
		Name:      Name,
		Priority:  Priority,
		NewConfig: func() plugin.Config { return NewConfig() },
		New:       newResponseRewrite,
	})
}

// responseRewrite is a built instance; it is immutable and shared.
type responseRewrite struct {
	key     string // per-request state key in plugin.Ctx, unique per instance
	vars    *expr.Expr
	status  int
	body    []byte // nil: body not replaced
	filters []filter
	max     int64
	add     []ngxtmpl.Header
	set     []ngxtmpl.Header
	remove  []string
}

func newResponseRewrite(cfg plugin.Config, _ plugin.Deps) (any, error) {
	c := cfg.(*Config)
	p := &responseRewrite{max: c.MaxRespBodySize}
	p.key = fmt.Sprintf("response-rewrite@%p", p)
	var err error
	if p.vars, err = expr.Compile(c.Vars); err != nil {
		return nil, err
	}
	if c.StatusCode != nil {
		p.status = *c.StatusCode
	}
	if c.Body != nil {
		p.body = []byte(*c.Body)
		if c.BodyBase64 {
			if p.body, err = decodeBase64(*c.Body); err != nil {
				return nil, err
			}
		}
	}
	if p.filters, err = compileFilters(c.Filters); err != nil {
		return nil, err
	}
	if h := c.Headers; h != nil {
		for _, line := range h.Add {
			name, value, _ := parseAdd(line)
			p.add = append(p.add, ngxtmpl.Header{Name: name, Value: ngxtmpl.Compile(value)})
		}
		for _, name := range slices.Sorted(maps.Keys(h.Set)) {
			p.set = append(p.set, ngxtmpl.Header{Name: name, Value: ngxtmpl.Compile(h.Set[name])})
		}
		p.remove = h.Remove
	}
	return p, nil
}

// bodyState is one response's state between HeaderFilter and BodyFilter.
type bodyState struct {
	buf         []byte
	gzip        bool // decode before filtering
	passthrough bool // unsupported Content-Encoding: leave the body alone
	done        bool // truncated at max: drop the rest
}

// HeaderFilter evaluates vars and rewrites the status and headers.
func (p *responseRewrite) HeaderFilter(c *plugin.Ctx) {
	rv := respVars{c}
	if !p.vars.Eval(rv) {
		return
	}
	resp := c.Response
	if p.status != 0 {
		resp.SetStatus(p.status)
	}
	switch {
	case p.filters != nil:
		st := &bodyState{}
		switch enc := strings.ToLower(resp.Header("Content-Encoding")); enc {
		case "", "identity":
		case "gzip":
			st.gzip = true
		default:
			st.passthrough = true
		}
		if !st.passthrough {
			clearBodyHeaders(resp)
		}
		c.Set(p.key, st)
	case p.body != nil:
		clearBodyHeaders(resp)
		c.Set(p.key, true)
	}
	p.rewriteHeaders(resp, rv)
}

// clearBodyHeaders drops what no longer describes a changed body
// (APISIX's clear_header_as_body_modified).
func clearBodyHeaders(resp plugin.Response) {
	resp.DelHeader("Content-Length")
	resp.DelHeader("Content-Encoding")
	resp.DelHeader("Last-Modified")
	resp.DelHeader("ETag")
}

func (p *responseRewrite) rewriteHeaders(resp plugin.Response, rv respVars) {
	for i := range p.add {
		resp.AddHeader(p.add[i].Name, p.add[i].Value.Render(rv))
	}
	for i := range p.set {
		resp.SetHeader(p.set[i].Name, p.set[i].Value.Render(rv))
	}
	for _, name := range p.remove {
		resp.DelHeader(name)
	}
}

// WantsBody reports whether HeaderFilter decided to replace or filter this
// response's body; when only status or headers change, the body streams
// untouched and keeps its Content-Length.
func (p *responseRewrite) WantsBody(c *plugin.Ctx) bool {
	_, ok := c.Get(p.key)
	return ok
}

// BodyFilter replaces the body, or buffers it (up to max_resp_body_size)
// and runs the filters over it at the end.
func (p *responseRewrite) BodyFilter(c *plugin.Ctx, chunk []byte, eof bool) []byte {
	v, ok := c.Get(p.key)
	if !ok {
		return chunk // vars did not match, or nothing to do to the body
	}
	st, isFilter := v.(*bodyState)
	if !isFilter {
		if eof {
			return p.body
		}
		return nil
	}
	if st.passthrough {
		return chunk
	}
	if st.done {
		return nil
	}
	st.buf = append(st.buf, chunk...)
	if int64(len(st.buf)) >= p.max {
		st.buf, st.done = st.buf[:p.max], true
		return p.filter(st)
	}
	if !eof {
		return nil
	}
	return p.filter(st)
}

// filter runs every filter over the buffered body, in order.
func (p *responseRewrite) filter(st *bodyState) []byte {
	body := st.buf
	if st.gzip {
		// A body that does not decompress is sent as it is.
		if zr, err := gzip.NewReader(bytes.NewReader(body)); err == nil {
			if plain, err := io.ReadAll(io.LimitReader(zr, p.max)); err == nil {
				body = plain
			}
		}
	}
	s := string(body)
	for i := range p.filters {
		f := &p.filters[i]
		if f.global {
			s = ngxtmpl.GSub(f.re, &f.repl, s)
		} else {
			s, _, _ = ngxtmpl.Sub(f.re, &f.repl, s)
		}
	}
	st.buf = nil
	return []byte(s)
}

// respVars answers variables in header_filter: the response's status and
// headers, then the request's variables.
type respVars struct{ c *plugin.Ctx }

// Var implements expr.VarSource.
func (v respVars) Var(name string) (string, bool) {
	resp := v.c.Response
	switch name {
	case "status", "upstream_status":
		return strconv.Itoa(resp.Status()), true
	}
	if h, ok := strings.CutPrefix(name, "sent_http_"); ok {
		return respHeader(resp, h)
	}
	if h, ok := strings.CutPrefix(name, "upstream_http_"); ok {
		return respHeader(resp, h)
	}
	return v.c.Request.Var(name)
}

func respHeader(resp plugin.Response, suffix string) (string, bool) {
	val := resp.Header(strings.ReplaceAll(suffix, "_", "-"))
	return val, val != ""
}

var (
	_ plugin.HeaderFilterer = (*responseRewrite)(nil)
	_ plugin.BodyFilterer   = (*responseRewrite)(nil)
	_ plugin.BodyWanter     = (*responseRewrite)(nil)
	_ expr.VarSource        = respVars{}
	_ plugin.Config         = (*Config)(nil)
)
