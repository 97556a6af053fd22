// Package proxyrewrite implements APISIX's proxy-rewrite plugin: it rewrites
// the path, query, method, Host and headers of the request sent upstream.
package proxyrewrite

import (
	"strings"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/ngxtmpl"
)

// Name and Priority are APISIX's.
const (
	Name     = "proxy-rewrite"
	Priority = 1008
)

func init() {
	plugin.Register(plugin.Descriptor{
		Name:      Name,
		Priority:  Priority,
		NewConfig: func() plugin.Config { return NewConfig() },
		New:       newProxyRewrite,
	})
}

// proxyRewrite is a built instance; it is immutable and shared by requests.
type proxyRewrite struct {
	uri     *ngxtmpl.Template // nil: no uri
	regex   []regexRule
	method  string
	host    string
	headers headerOps
	unsafe  bool
}

func newProxyRewrite(cfg plugin.Config, _ plugin.Deps) (any, error) {
	c := cfg.(*Config)
	p := &proxyRewrite{method: c.Method, host: c.Host, unsafe: c.UseRealRequestURIUnsafe}
	if c.URI != nil {
		t := ngxtmpl.Compile(*c.URI)
		p.uri = &t
	}
	var err error
	if p.regex, err = compileRegexURI(c.RegexURI); err != nil {
		return nil, err
	}
	if c.Headers != nil {
		p.headers = compileHeaders(c.Headers)
	}
	return p, nil
}

// Rewrite applies the configured changes to the upstream request.
func (p *proxyRewrite) Rewrite(c *plugin.Ctx) *plugin.Exit {
	r := c.Request
	if p.host != "" {
		r.SetHost(p.host)
	}
	var m match
	if p.uri != nil || p.regex != nil || p.unsafe {
		m = p.rewriteURI(r)
	}
	p.headers.apply(r, &m)
	if p.method != "" {
		r.SetMethod(p.method)
	}
	return nil
}

// match is the regex_uri match of this request, for $N in header values.
type match struct {
	src string
	loc []int
}

// group returns capture n, "" when absent (as APISIX does).
func (m *match) group(n int) string { return ngxtmpl.Group(m.src, m.loc, n) }

// rewriteURI computes the upstream URI as APISIX's rewrite does and sets
// the path and query from it.
func (p *proxyRewrite) rewriteURI(r plugin.Request) match {
	var m match
	upstream := r.Path()
	origQuery := "" // with its '?', in unsafe mode
	if p.unsafe {
		upstream = realRequestURI(r)
		if i := strings.IndexByte(upstream, '?'); i >= 0 {
			origQuery = upstream[i:]
		}
	}
	rewritten, sepEscaped := false, false
	switch {
	case p.uri != nil:
		rewritten, sepEscaped = true, true
		var buf [256]byte
		upstream = string(p.uri.Append(buf[:0], r, escapeSeparator))
		if origQuery != "" {
			if strings.IndexByte(upstream, '?') >= 0 {
				upstream += "&" + origQuery[1:]
			} else {
				upstream += origQuery
			}
		}
	case p.regex != nil:
		// A '?' in the matched path came from a decoded %3F: it stays part
		// of the path, and so does one the replacement adds.
		sepEscaped = strings.IndexByte(upstream, '?') < 0
		for i := range p.regex {
			rule := &p.regex[i]
			if out, loc, ok := ngxtmpl.Sub(rule.re, &rule.repl, upstream); ok {
				m = match{src: upstream, loc: loc}
				upstream, rewritten = out, true
				break
			}
		}
	}
	if p.unsafe {
		path, query, _ := strings.Cut(upstream, "?")
		r.SetPath(path)
		r.SetRawQuery(query)
		return m
	}
	if !rewritten {
		return m
	}
	path, query := upstream, ""
	if sepEscaped {
		if i := strings.IndexByte(upstream, '?'); i >= 0 {
			path, query = upstream[:i], ngxtmpl.EscapeControls(upstream[i+1:])
		}
	}
	if args := r.RawQuery(); args != "" {
		if query != "" {
			query += "&" + args
		} else {
			query = args
		}
	}
	r.SetPath(ngxtmpl.EscapeURI(path))
	r.SetRawQuery(query)
	return m
}

// realRequestURI is the URI as the client sent it (APISIX's
// $real_request_uri), falling back to $request_uri.
func realRequestURI(r plugin.Request) string {
	if v, ok := r.Var("real_request_uri"); ok {
		return v
	}
	if v, ok := r.Var("request_uri"); ok {
		return v
	}
	if q := r.RawQuery(); q != "" {
		return r.Path() + "?" + q
	}
	return r.Path()
}

// escapeSeparator keeps a '?' inside a variable's value from starting the
// query string (APISIX's escape_separator).
func escapeSeparator(s string) string {
	if strings.IndexByte(s, '?') < 0 {
		return s
	}
	return strings.ReplaceAll(s, "?", "%3F")
}

var (
	_ plugin.Rewriter = (*proxyRewrite)(nil)
	_ plugin.Config   = (*Config)(nil)
)
