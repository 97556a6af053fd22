// Package gzip implements APISIX's gzip plugin: it compresses responses of
// the configured types with gzip when the client accepts it, streaming chunk
// by chunk.
package gzip

import (
	"bytes"
	stdgzip "compress/gzip"
	"strconv"
	"strings"
	"sync"

	"github.com/sluicegw/sluice/plugin"
)

// Name and Priority are APISIX's (apisix/plugins/gzip.lua).
const (
	Name     = "gzip"
	Priority = 995
)

// stateKey holds a request's *stream in the Ctx.
const stateKey = "gzip"

func init() {
	plugin.Register(plugin.Descriptor{
		Name:      Name,
		Priority:  Priority,
		NewConfig: func() plugin.Config { return NewConfig() },
		New:       newGzip,
	})
}

// gz is one compiled gzip config. It is shared by every request of the
// route; only its pool changes.
type gz struct {
	all       bool
	types     []string
	minLength int64
	http10    bool // compress HTTP/1.0 requests' responses too
	vary      bool
	// pool keeps streams (a writer at this config's level and its output
	// buffer): a gzip.Writer is ~800 KB of state to allocate, far more than
	// a response costs to compress.
	pool sync.Pool
}

// stream is one response being compressed.
type stream struct {
	zw  *stdgzip.Writer
	out bytes.Buffer
}

func newGzip(cfg plugin.Config, _ plugin.Deps) (any, error) {
	c := cfg.(*Config)
	all, list, err := types(c.Types)
	if err != nil {
		return nil, err
	}
	g := &gz{all: all, types: list, minLength: int64(c.MinLength), http10: c.HTTPVersion == 1.0, vary: c.Vary}
	level := c.CompLevel
	g.pool.New = func() any {
		s := &stream{}
		s.zw, _ = stdgzip.NewWriterLevel(&s.out, level) // level validated: 1-9
		return s
	}
	return g, nil
}

// HeaderFilter decides whether to compress, as nginx's gzip filter does with
// APISIX's conditions, and rewrites the headers if so.
func (g *gz) HeaderFilter(c *plugin.Ctx) {
	rs, rq := c.Response, c.Request
	if !g.wants(rq, rs) {
		return
	}
	rs.SetHeader("Content-Encoding", "gzip")
	rs.DelHeader("Content-Length")
	// The compressed body is a new representation: ranges of the old one
	// do not apply and a strong ETag no longer holds (nginx does the same).
	rs.DelHeader("Accept-Ranges")
	if et := rs.Header("ETag"); et != "" && !strings.HasPrefix(et, "W/") {
		if strings.HasPrefix(et, `"`) {
			rs.SetHeader("ETag", "W/"+et)
		} else {
			rs.DelHeader("ETag")
		}
	}
	if g.vary {
		rs.AddHeader("Vary", "Accept-Encoding")
	}
	s := g.pool.Get().(*stream)
	s.out.Reset()
	s.zw.Reset(&s.out)
	c.Set(stateKey, s)
}

func (g *gz) wants(rq plugin.Request, rs plugin.Response) bool {
	// nginx compresses only these statuses, and never a HEAD response.
	switch rs.Status() {
	case 200, 403, 404:
	default:
		return false
	}
	if rq.Method() == "HEAD" || rs.Header("Content-Encoding") != "" {
		return false
	}
	ct := rs.Header("Content-Type")
	if ct == "" {
		return false // like nginx: no type, no compression
	}
	if !g.all {
		if i := strings.IndexByte(ct, ';'); i >= 0 {
			ct = ct[:i]
		}
		if !contains(g.types, ct) {
			return false
		}
	}
	if cl := rs.Header("Content-Length"); cl != "" {
		// Without a Content-Length, min_length does not apply (nginx).
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n < g.minLength {
			return false
		}
	}
	if !g.http10 && httpVersion(rq) < 11 {
		return false
	}
	return acceptsGzip(rq.Header("Accept-Encoding"))
}

// WantsBody reports whether HeaderFilter chose to compress this response:
// otherwise the body streams untouched and keeps its Content-Length, as
// nginx's gzip filter leaves a response it does not compress.
func (g *gz) WantsBody(c *plugin.Ctx) bool {
	v, ok := c.Get(stateKey)
	if !ok {
		return false
	}
	s, _ := v.(*stream)
	return s != nil
}

// BodyFilter compresses each chunk and flushes it, so a streamed response
// stays streamed; the gzip trailer goes out with the last call. The slice
// returned is valid until the next call.
func (g *gz) BodyFilter(c *plugin.Ctx, chunk []byte, eof bool) []byte {
	v, ok := c.Get(stateKey)
	if !ok {
		return chunk
	}
	s, _ := v.(*stream)
	if s == nil {
		return chunk // already closed
	}
	s.out.Reset()
	if len(chunk) > 0 {
		_, _ = s.zw.Write(chunk) // writes to a bytes.Buffer cannot fail
	}
	if !eof {
		if len(chunk) == 0 {
			return nil
		}
		_ = s.zw.Flush()
		return s.out.Bytes()
	}
	_ = s.zw.Close()
	out := bytes.Clone(s.out.Bytes())
	c.Set(stateKey, (*stream)(nil))
	if s.out.Cap() <= maxPooledBuf {
		g.pool.Put(s)
	}
	return out
}

// maxPooledBuf keeps streams whose output buffer grew past it (one huge
// chunk) out of the pool.
const maxPooledBuf = 256 << 10

// httpVersion returns the request's HTTP version ×10 (10, 11, 20...) from the
// engine's server_protocol variable, or 11 when the engine has none.
func httpVersion(r plugin.Request) int {
	p, ok := r.Var("server_protocol")
	if !ok {
		return 11
	}
	switch p {
	case "HTTP/1.0":
		return 10
	case "HTTP/0.9":
		return 9
	case "HTTP/1.1":
		return 11
	}
	return 20
}

// acceptsGzip reports whether an Accept-Encoding value lists gzip with a
// non-zero quality (RFC 9110, section 12.5.3), as nginx's gzip_ok does.
func acceptsGzip(h string) bool {
	for h != "" {
		var item string
		item, h, _ = strings.Cut(h, ",")
		coding, params, _ := strings.Cut(item, ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		return !qZero(params)
	}
	return false
}

// qZero reports whether parameters carry q=0 (0, 0., 0.0, 0.00, 0.000).
func qZero(params string) bool {
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		v = strings.TrimSpace(v)
		if v == "" || v[0] != '0' {
			return false
		}
		return strings.Trim(v[1:], ".0") == ""
	}
	return false
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// Interface guards.
var (
	_ plugin.HeaderFilterer = (*gz)(nil)
	_ plugin.BodyFilterer   = (*gz)(nil)
	_ plugin.BodyWanter     = (*gz)(nil)
	_ plugin.Config         = (*Config)(nil)
)
