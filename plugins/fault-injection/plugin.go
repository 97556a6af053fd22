// Package faultinjection implements APISIX's fault-injection plugin: it
// delays requests and/or answers them with a given status, for a share of
// requests or those matching vars expressions.
package faultinjection

import (
	"encoding/json"
	"math/rand/v2"
	"time"

	"github.com/sluicegw/sluice/internal/expr"
	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/ngxtmpl"
)

// Name and Priority are APISIX's.
const (
	Name     = "fault-injection"
	Priority = 11000
)

func init() {
	plugin.Register(plugin.Descriptor{
		Name:      Name,
		Priority:  Priority,
		NewConfig: func() plugin.Config { return NewConfig() },
		New:       newFaultInjection,
	})
}

// fault is one compiled fault's trigger.
type fault struct {
	pct  int          // -1: every request
	vars []*expr.Expr // nil: every request; else any must match
}

func (f *fault) applies(r plugin.Request) bool {
	if f.vars != nil && !anyMatches(f.vars, r) {
		return false
	}
	return f.pct < 0 || rand.IntN(100) < f.pct
}

func anyMatches(es []*expr.Expr, r plugin.Request) bool {
	for _, e := range es {
		if e.Eval(r) {
			return true
		}
	}
	return false
}

// faultInjection is a built instance; it is immutable and shared.
type faultInjection struct {
	abort   *fault
	status  int
	body    *ngxtmpl.Template // nil: no body
	headers []ngxtmpl.Header
	delay   *fault
	sleep   time.Duration
}

func newFault(pct *int, path string, vars []json.RawMessage) (*fault, error) {
	f := &fault{pct: -1}
	if pct != nil {
		f.pct = *pct
	}
	var err error
	f.vars, err = compileVars(path, vars)
	return f, err
}

func newFaultInjection(cfg plugin.Config, _ plugin.Deps) (any, error) {
	c := cfg.(*Config)
	p := &faultInjection{}
	var err error
	if a := c.Abort; a != nil {
		if p.abort, err = newFault(a.Percentage, "abort", a.Vars); err != nil {
			return nil, err
		}
		p.status = a.HTTPStatus
		if a.Body != nil {
			t := ngxtmpl.Compile(*a.Body)
			p.body = &t
		}
		if a.Headers != nil {
			if p.headers, err = ngxtmpl.DecodeHeaders("abort.headers", a.Headers); err != nil {
				return nil, err
			}
		}
	}
	if d := c.Delay; d != nil {
		if p.delay, err = newFault(d.Percentage, "delay", d.Vars); err != nil {
			return nil, err
		}
		p.sleep = time.Duration(*d.Duration * float64(time.Second))
	}
	return p, nil
}

// Rewrite delays and/or aborts the request. The delay sleeps in the
// request's own goroutine: it holds that request only, never others.
func (p *faultInjection) Rewrite(c *plugin.Ctx) *plugin.Exit {
	r := c.Request
	if p.delay != nil && p.delay.applies(r) {
		time.Sleep(p.sleep)
	}
	if p.abort == nil || !p.abort.applies(r) {
		return nil
	}
	e := &plugin.Exit{Status: p.status}
	if len(p.headers) > 0 {
		e.Headers = make([]plugin.Header, len(p.headers))
		for i := range p.headers {
			e.Headers[i] = plugin.Header{Name: p.headers[i].Name, Value: p.headers[i].Value.Render(r)}
		}
	}
	if p.body != nil {
		e.Body = []byte(p.body.Render(r))
	}
	return e
}

var (
	_ plugin.Rewriter = (*faultInjection)(nil)
	_ plugin.Config   = (*Config)(nil)
)
