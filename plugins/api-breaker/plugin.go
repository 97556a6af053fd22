// Package apibreaker implements APISIX's api-breaker plugin, a circuit
// breaker: after unhealthy.failures upstream answers with an unhealthy
// status, requests to the same host and URI are answered by the gateway
// for 2 seconds, then 4, 8... up to max_breaker_sec at each further trip,
// until healthy.successes healthy answers in a row reset it.
package apibreaker

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/ngxtmpl"
)

// Name and Priority are APISIX's.
const (
	Name     = "api-breaker"
	Priority = 1005
)

// lastingKey names the one state table in plugin.Lasting. It holds no
// config: like APISIX's shared dict, the state outlives any change of
// configuration, the plugin's own included.
const lastingKey = Name + " state"

func init() {
	plugin.Register(plugin.Descriptor{
		Name:      Name,
		Priority:  Priority,
		NewConfig: func() plugin.Config { return NewConfig() },
		New:       newAPIBreaker,
		Schema:    schema(),
	})
}

// apiBreaker is a built instance; immutable and shared by requests.
type apiBreaker struct {
	tbl       *table
	unhealthy statusSet
	healthy   statusSet
	failures  int64
	successes int64
	maxBreak  int64 // nanoseconds
	// exit is the break answer when it does not depend on the request;
	// otherwise nil and the answer is built from code, body and headers.
	exit    *plugin.Exit
	code    int
	body    []byte
	headers []header
	log     *slog.Logger
}

type header struct {
	name  string
	value ngxtmpl.Template
}

func newAPIBreaker(cfg plugin.Config, deps plugin.Deps) (any, error) {
	c := cfg.(*Config)
	o, err := deps.Lasting.Get(lastingKey, func() (any, error) { return newTable(deps.Logger(Name)), nil })
	if err != nil {
		return nil, err
	}
	tbl, _ := o.(*table)
	if tbl == nil {
		// A validation-only compile: the instance never serves, but a private
		// table keeps it usable (plugintest builds instances this way).
		tbl = newTable(deps.Logger(Name))
	}
	return build(c, tbl), nil
}

// build compiles c over the state table tbl.
func build(c *Config, tbl *table) *apiBreaker {
	p := &apiBreaker{
		tbl:       tbl,
		unhealthy: newStatusSet(c.Unhealthy.HTTPStatuses),
		healthy:   newStatusSet(c.Healthy.HTTPStatuses),
		failures:  int64(c.Unhealthy.Failures),
		successes: int64(c.Healthy.Successes),
		maxBreak:  int64(c.MaxBreakerSec) * int64(time.Second),
		code:      c.BreakResponseCode,
		log:       tbl.log.With("plugin", Name),
	}
	if c.BreakResponseBody == nil {
		// APISIX returns the bare status: nginx then sends its error page.
		p.exit = &plugin.Exit{Status: p.code}
		if page := nginxPage(p.code); page != nil {
			p.exit.Headers = []plugin.Header{{Name: "Content-Type", Value: "text/html"}}
			p.exit.Body = page
		}
		return p
	}
	p.body = []byte(*c.BreakResponseBody)
	literal := true
	for _, h := range c.BreakResponseHeaders {
		t := ngxtmpl.Compile(h.Value)
		if _, ok := t.Literal(); !ok {
			literal = false
		}
		p.headers = append(p.headers, header{name: h.Key, value: t})
	}
	if literal {
		p.exit = p.breakExit(nil)
	}
	return p
}

// breakExit builds the break answer; vars resolves header variables (nil
// when every header is literal).
func (p *apiBreaker) breakExit(vars ngxtmpl.VarSource) *plugin.Exit {
	e := &plugin.Exit{Status: p.code, Body: p.body}
	if len(p.headers) > 0 {
		e.Headers = make([]plugin.Header, len(p.headers))
		for i := range p.headers {
			var v string
			if vars == nil {
				v, _ = p.headers[i].value.Literal()
			} else {
				v = p.headers[i].value.Render(vars)
			}
			e.Headers[i] = plugin.Header{Name: p.headers[i].name, Value: v}
		}
	}
	return e
}

// Access answers for the upstream while the (host, uri) is broken.
func (p *apiBreaker) Access(c *plugin.Ctx) *plugin.Exit {
	if p.tbl.empty() {
		return nil
	}
	host, uri := c.Request.Host(), c.Request.Path()
	s := p.tbl.lookup(p.tbl.key(host, uri), host, uri)
	if s == nil {
		return nil
	}
	until := s.until.Load()
	if until == 0 || p.tbl.now() >= until {
		return nil
	}
	if p.exit != nil {
		return p.exit
	}
	// Ctx resolves $route_id and the like besides the request's variables.
	return p.breakExit(c)
}

// Log counts the upstream's answer. APISIX does this in its log phase from
// $upstream_status, so only what an upstream answered counts: not the
// breaker's own answers, nor other plugins' exits.
func (p *apiBreaker) Log(c *plugin.Ctx) {
	status := upstreamStatus(&c.Served)
	switch {
	case status == 0:
	case p.unhealthy.has(status):
		p.fail(c.Request.Host(), c.Request.Path())
	case p.healthy.has(status):
		p.succeed(c.Request.Host(), c.Request.Path())
	}
}

// upstreamStatus is nginx's $upstream_status: the last attempt's status,
// or, when an upstream was tried and none answered (connection refused,
// timeout), the gateway's own 502 or 504, as nginx records it.
func upstreamStatus(s *plugin.Served) int {
	if s.UpstreamStatus != 0 {
		return s.UpstreamStatus
	}
	if s.UpstreamAddr != "" {
		return s.Status
	}
	return 0
}

// fail counts one unhealthy status; every failures-th trips a break of
// 2^(trips) seconds, capped at max_breaker_sec.
func (p *apiBreaker) fail(host, uri string) {
	now := p.tbl.now()
	k := p.tbl.key(host, uri)
	s := p.tbl.track(k, host, uri, now)
	if s == nil {
		return
	}
	n := s.unhealthy.Add(1)
	// Write shared cache lines only when the value changes: under a storm of
	// failures every core would otherwise bounce them.
	if s.healthy.Load() != 0 {
		s.healthy.Store(0)
	}
	if now-s.lastBad.Load() > int64(time.Second) { // only eviction reads it, at minutes' scale
		s.lastBad.Store(now)
	}
	if n%p.failures != 0 {
		return
	}
	d := p.breakFor(n / p.failures)
	s.until.Store(now + d)
	p.log.Info("breaker open", "host", host, "uri", uri, "failures", n, "break", time.Duration(d))
}

// breakFor is the length of the trip-th break: 2^trip seconds, at most
// max_breaker_sec.
func (p *apiBreaker) breakFor(trip int64) int64 {
	if trip >= 40 { // 2^40 s is far past any cap and would overflow in ns
		return p.maxBreak
	}
	return min(int64(time.Second)<<trip, p.maxBreak)
}

// succeed counts one healthy status; successes of them in a row forget the
// (host, uri)'s failures.
func (p *apiBreaker) succeed(host, uri string) {
	if p.tbl.empty() {
		return
	}
	k := p.tbl.key(host, uri)
	s := p.tbl.lookup(k, host, uri)
	if s == nil || s.unhealthy.Load() == 0 {
		return
	}
	if s.healthy.Add(1) < p.successes {
		return
	}
	s.until.Store(0)
	s.unhealthy.Store(0)
	s.healthy.Store(0)
	p.tbl.forget(k, s)
	p.log.Info("breaker reset", "host", host, "uri", uri)
}

// statusSet is a set of HTTP statuses (0 to 639) as a bitmap.
type statusSet [10]uint64

func newStatusSet(codes []int) statusSet {
	var s statusSet
	for _, c := range codes {
		if c >= 0 && c < 640 {
			s[c/64] |= 1 << (c % 64)
		}
	}
	return s
}

func (s *statusSet) has(code int) bool {
	return code >= 0 && code < 640 && s[code/64]&(1<<(code%64)) != 0
}

// nginxPage is nginx's error page for status, as APISIX clients see it
// when a plugin returns a bare status; nil for a status nginx sends no page
// for (2xx, unknown codes).
func nginxPage(status int) []byte {
	text := http.StatusText(status)
	if status < 300 || text == "" {
		return nil
	}
	switch status { // nginx's reason phrases where Go's differ
	case http.StatusServiceUnavailable:
		text = "Service Temporarily Unavailable"
	case http.StatusGatewayTimeout:
		text = "Gateway Time-out"
	}
	title := strconv.Itoa(status) + " " + text
	return []byte("<html>\r\n<head><title>" + title + "</title></head>\r\n<body>\r\n<center><h1>" + title +
		"</h1></center>\r\n<hr><center>sluice</center>\r\n</body>\r\n</html>\r\n")
}

var (
	_ plugin.Accessor = (*apiBreaker)(nil)
	_ plugin.Logger   = (*apiBreaker)(nil)
	_ plugin.Config   = (*Config)(nil)
)
