// Package redirect implements APISIX's redirect plugin: it answers with a
// redirect (Location) instead of proxying, for HTTP to HTTPS upgrades or
// URI moves.
package redirect

import (
	"regexp"
	"strings"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/ngxtmpl"
)

// Name and Priority are APISIX's.
const (
	Name     = "redirect"
	Priority = 900
)

func init() {
	plugin.Register(plugin.Descriptor{
		Name:      Name,
		Priority:  Priority,
		NewConfig: func() plugin.Config { return NewConfig() },
		New:       newRedirect,
	})
}

// redirect is a built instance; it is immutable and shared.
type redirect struct {
	toHTTPS  bool
	uri      *uriTemplate
	regex    *regexp.Regexp
	repl     ngxtmpl.SubTemplate
	retCode  int
	encode   bool
	addQuery bool
}

// httpsTemplate is the Location of an HTTP to HTTPS redirect.
var httpsTemplate = compileURITemplate("https://$host$request_uri")

func newRedirect(cfg plugin.Config, _ plugin.Deps) (any, error) {
	c := cfg.(*Config)
	p := &redirect{
		toHTTPS:  c.HTTPToHTTPS != nil && *c.HTTPToHTTPS,
		retCode:  c.RetCode,
		encode:   c.EncodeURI,
		addQuery: c.AppendQueryString,
	}
	if c.URI != nil {
		t := compileURITemplate(*c.URI)
		p.uri = &t
	}
	var err error
	if p.regex, p.repl, err = compileRegexURI(c.RegexURI); err != nil {
		return nil, err
	}
	return p, nil
}

// Rewrite answers with the redirect, or lets the request go on when
// regex_uri does not match or the request is already HTTPS.
func (p *redirect) Rewrite(c *plugin.Ctx) *plugin.Exit {
	r := c.Request
	code, tmpl := p.retCode, p.uri
	if p.toHTTPS && scheme(r) != "https" {
		tmpl = &httpsTemplate
		code = 308 // RFC 9110 section 15.4.9: keeps the method and body
		if m := r.Method(); m == "GET" || m == "HEAD" {
			code = 301
		}
	}
	var loc string
	switch {
	case tmpl != nil:
		loc = tmpl.render(r)
	case p.regex != nil:
		var ok bool
		if loc, _, ok = ngxtmpl.Sub(p.regex, &p.repl, r.Path()); !ok {
			return nil
		}
	default:
		return nil
	}
	i := strings.IndexByte(loc, '?')
	if p.encode {
		if i >= 0 {
			loc = ngxtmpl.EscapeURI(loc[:i]) + loc[i:]
		} else {
			loc = ngxtmpl.EscapeURI(loc)
		}
		i = strings.IndexByte(loc, '?')
	}
	if q := r.RawQuery(); p.addQuery && q != "" {
		if i >= 0 {
			loc += "&" + q
		} else {
			loc += "?" + q
		}
	}
	return &plugin.Exit{Status: code, Headers: []plugin.Header{{Name: "Location", Value: loc}}}
}

// scheme is X-Forwarded-Proto when set, else the request's scheme.
func scheme(r plugin.Request) string {
	if s := r.Header("X-Forwarded-Proto"); s != "" {
		return s
	}
	s, _ := r.Var("scheme")
	return s
}

var (
	_ plugin.Rewriter = (*redirect)(nil)
	_ plugin.Config   = (*Config)(nil)
)
