// Package cors implements APISIX's cors plugin: it answers CORS preflight
// requests itself and adds the CORS response headers to every response.
package cors

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/sluicegw/sluice/plugin"
)

// Priority is APISIX's priority for cors.
const Priority = 4000

func init() {
	plugin.Register(plugin.Descriptor{
		Name:      "cors",
		Priority:  Priority,
		NewConfig: func() plugin.Config { return NewConfig() },
		New:       newCORS,
	})
}

// allMethods is what allow_methods "**" stands for, as in APISIX.
const allMethods = "GET,POST,PUT,DELETE,PATCH,HEAD,OPTIONS,CONNECT,TRACE"

// originKey is the Ctx key under which Rewrite keeps the request's Origin
// for HeaderFilter: a later plugin (proxy-rewrite) may change the header
// sent upstream, and CORS must answer the client's own Origin.
const originKey = "cors.origin"

// cors is a built cors instance. It is immutable.
type cors struct {
	origins originRule
	timing  *originRule // nil: no Timing-Allow-Origin
	// vary adds "Vary: Origin" to every response, as APISIX does whenever
	// allow_origins is not "*".
	vary        bool
	methods     string
	headers     string
	echoHeaders bool // allow_headers "**"
	expose      string
	maxAge      string
	credential  bool
	// known maps the origins named in the config to themselves as `any`,
	// so that Rewrite can keep them in the Ctx without allocating.
	known map[string]any
	// anyOrigin is set when an origin not named in the config may still be
	// echoed ("**" or a regex), so Rewrite must keep it.
	anyOrigin bool
	// needOrigin is false when no answer depends on the Origin (the default
	// "*" and no timing rule), so Rewrite need not keep it.
	needOrigin bool
	preflight  *plugin.Exit
}

func newCORS(cfg plugin.Config, _ plugin.Deps) (any, error) {
	c := cfg.(*Config)
	p := &cors{
		vary:        c.AllowOrigins != "*",
		methods:     c.AllowMethods,
		headers:     c.AllowHeaders,
		echoHeaders: c.AllowHeaders == "**",
		expose:      c.ExposeHeaders,
		maxAge:      strconv.Itoa(c.MaxAge),
		credential:  c.AllowCredential,
		known:       map[string]any{},
		// The gateway answers a preflight through the header_filter phase,
		// which adds the CORS headers, as nginx does for APISIX.
		preflight: &plugin.Exit{Status: 200},
	}
	if p.methods == "**" {
		p.methods = allMethods
	}
	var err error
	if p.origins, err = newOriginRule(c.AllowOrigins, c.AllowOriginsByRegex); err != nil {
		return nil, err
	}
	if c.TimingAllowOrigins != "" || c.TimingAllowOriginsByRegex != nil {
		t, err := newOriginRule(c.TimingAllowOrigins, c.TimingAllowOriginsByRegex)
		if err != nil {
			return nil, err
		}
		p.timing = &t
	}
	for _, r := range []*originRule{&p.origins, p.timing} {
		if r == nil {
			continue
		}
		for o := range r.set {
			p.known[o] = o
		}
		p.anyOrigin = p.anyOrigin || r.force || r.regexps != nil
	}
	p.needOrigin = !p.origins.star || p.timing != nil
	return p, nil
}

// Rewrite keeps the client's Origin for HeaderFilter and answers every
// OPTIONS request with 200 and no body, as APISIX does: preflight or not,
// the request never reaches the upstream.
func (p *cors) Rewrite(c *plugin.Ctx) *plugin.Exit {
	if p.needOrigin {
		p.keepOrigin(c)
	}
	if c.Request.Method() == "OPTIONS" {
		return p.preflight
	}
	return nil
}

// keepOrigin stores the request's Origin in c without allocating when the
// config names it.
func (p *cors) keepOrigin(c *plugin.Ctx) {
	if origin := c.Request.Header("Origin"); origin == "" {
		c.Set(originKey, "")
	} else if v, ok := p.known[origin]; ok {
		c.Set(originKey, v)
	} else if p.anyOrigin {
		c.Set(originKey, origin)
	} else {
		// Not echoed by any rule: "" gives the same answer.
		c.Set(originKey, "")
	}
}

// HeaderFilter adds the CORS headers when the request's Origin is allowed.
func (p *cors) HeaderFilter(c *plugin.Ctx) {
	origin := p.requestOrigin(c)
	allow := p.origins.allow(origin)
	rsp := c.Response
	// An echoed origin makes the response depend on Origin; APISIX omits
	// Vary when a regex echoes it while allow_origins is "*", which lets a
	// shared cache serve one origin's answer to another.
	if p.vary || (allow != "" && allow != "*") {
		rsp.AddHeader("Vary", "Origin")
	}
	if allow != "" {
		rsp.SetHeader("Access-Control-Allow-Origin", allow)
		rsp.SetHeader("Access-Control-Allow-Methods", p.methods)
		rsp.SetHeader("Access-Control-Max-Age", p.maxAge)
		if p.expose != "" {
			rsp.SetHeader("Access-Control-Expose-Headers", p.expose)
		}
		if !p.echoHeaders {
			rsp.SetHeader("Access-Control-Allow-Headers", p.headers)
		} else if h := c.Request.Header("Access-Control-Request-Headers"); h != "" {
			rsp.SetHeader("Access-Control-Allow-Headers", h)
		} else {
			rsp.DelHeader("Access-Control-Allow-Headers")
		}
		if p.credential {
			rsp.SetHeader("Access-Control-Allow-Credentials", "true")
		}
	}
	if p.timing != nil {
		if t := p.timing.allow(origin); t != "" {
			rsp.SetHeader("Timing-Allow-Origin", t)
		}
	}
}

// requestOrigin is the Origin the client sent, as Rewrite kept it; the
// current header when Rewrite did not run (a _meta.filter that only
// matched later).
func (p *cors) requestOrigin(c *plugin.Ctx) string {
	if v, ok := c.Get(originKey); ok {
		if s, ok := v.(string); ok {
			return s
		}
	}
	return c.Request.Header("Origin")
}

// originRule decides an Access-Control-Allow-Origin (or Timing-Allow-Origin)
// value from the request's Origin, following APISIX's header_filter.
type originRule struct {
	star    bool                // "*"
	force   bool                // "**"
	set     map[string]struct{} // listed origins, matched exactly
	regexps []*regexp.Regexp    // by_regex; replaces the rest
}

func newOriginRule(origins string, byRegex []string) (originRule, error) {
	var r originRule
	if byRegex != nil {
		for _, expr := range byRegex {
			re, err := regexp.Compile(expr)
			if err != nil {
				return r, err
			}
			r.regexps = append(r.regexps, re)
		}
		return r, nil
	}
	switch origins {
	case "*":
		r.star = true
	case "**":
		r.force = true
	default:
		r.set = map[string]struct{}{}
		for o := range strings.SplitSeq(origins, ",") {
			r.set[o] = struct{}{}
		}
	}
	return r, nil
}

// allow returns the header value for a request from origin ("" when the
// request has none), or "" when the origin is not allowed.
func (r *originRule) allow(origin string) string {
	switch {
	case r.regexps != nil:
		if origin != "" {
			for _, re := range r.regexps {
				if re.MatchString(origin) {
					return origin
				}
			}
		}
		return ""
	case r.star:
		return "*"
	case r.force:
		if origin == "" {
			return "*"
		}
		return origin
	}
	if _, ok := r.set[origin]; ok {
		return origin
	}
	return ""
}

var (
	_ plugin.Rewriter       = (*cors)(nil)
	_ plugin.HeaderFilterer = (*cors)(nil)
)
