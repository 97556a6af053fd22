package pipeline

import (
	"encoding/json"
	"slices"
	"sort"

	"github.com/sluicegw/sluice/internal/expr"
	"github.com/sluicegw/sluice/plugin"
)

// step is one plugin in one phase, with what its _meta resolved to.
type step[T any] struct {
	name   string
	impl   T
	filter *expr.Expr // nil: always runs
	errRsp []byte     // _meta.error_response as a JSON body; nil: none
}

// Chain is a route's compiled plugins, per phase, in run order: global rules
// first, then the route's own, each by descending priority. It is immutable
// and shared by every request on the route; a nil *Chain runs nothing.
type Chain struct {
	rewrite      []step[plugin.Rewriter]
	access       []step[plugin.Accessor]
	beforeProxy  []step[plugin.BeforeProxier]
	headerFilter []step[plugin.HeaderFilterer]
	bodyFilter   []step[plugin.BodyFilterer]
	log          []step[plugin.Logger]
	// names lists every plugin of the chain in run order, for introspection.
	names []string
}

// NewChain compiles global-rule plugins and route plugins into a Chain, or
// nil when there is nothing to run.
func NewChain(global, route []Plugin) *Chain {
	if len(global)+len(route) == 0 {
		return nil
	}
	ch := &Chain{}
	for _, group := range [][]Plugin{sorted(global), sorted(route)} {
		for _, p := range group {
			ch.names = append(ch.names, p.Name)
			base := step[struct{}]{name: p.Name}
			if len(p.Meta.Filter) > 0 && string(p.Meta.Filter) != "null" {
				base.filter, _ = expr.Compile(p.Meta.Filter) // validated in Decode
			}
			if p.Meta.ErrorResponse != nil {
				base.errRsp, _ = json.Marshal(p.Meta.ErrorResponse)
			}
			ch.rewrite = addStep(ch.rewrite, p.Instance, base)
			ch.access = addStep(ch.access, p.Instance, base)
			ch.beforeProxy = addStep(ch.beforeProxy, p.Instance, base)
			ch.headerFilter = addStep(ch.headerFilter, p.Instance, base)
			ch.bodyFilter = addStep(ch.bodyFilter, p.Instance, base)
			ch.log = addStep(ch.log, p.Instance, base)
		}
	}
	return ch
}

func addStep[T any](steps []step[T], inst any, base step[struct{}]) []step[T] {
	impl, ok := inst.(T)
	if !ok {
		return steps
	}
	return append(steps, step[T]{name: base.name, impl: impl, filter: base.filter, errRsp: base.errRsp})
}

func sorted(ps []Plugin) []Plugin {
	out := append([]Plugin(nil), ps...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Priority != out[j].Priority {
			return out[i].Priority > out[j].Priority
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Names returns the chain's plugins in run order (global rules first, then
// the route's own, each by descending priority); nil for a nil Chain. A
// plugin set both by a global rule and by the route appears twice.
func (ch *Chain) Names() []string {
	if ch == nil {
		return nil
	}
	return slices.Clone(ch.names)
}

// runs reports whether a step applies to this request.
func runs[T any](s *step[T], c *plugin.Ctx) bool {
	return s.filter == nil || s.filter.Eval(c.Request)
}

// exit applies _meta.error_response to a plugin's rejection.
func exit[T any](s *step[T], e *plugin.Exit) *plugin.Exit {
	if e == nil || s.errRsp == nil || e.Status < 400 {
		return e
	}
	return &plugin.Exit{Status: e.Status, Headers: []plugin.Header{{Name: "Content-Type", Value: "application/json"}}, Body: s.errRsp}
}

// Rewrite runs the rewrite phase; a non-nil Exit ends the request.
func (ch *Chain) Rewrite(c *plugin.Ctx) *plugin.Exit {
	if ch == nil {
		return nil
	}
	for i := range ch.rewrite {
		s := &ch.rewrite[i]
		if runs(s, c) {
			if e := s.impl.Rewrite(c); e != nil {
				return exit(s, e)
			}
		}
	}
	return nil
}

// Access runs the access phase.
func (ch *Chain) Access(c *plugin.Ctx) *plugin.Exit {
	if ch == nil {
		return nil
	}
	for i := range ch.access {
		s := &ch.access[i]
		if runs(s, c) {
			if e := s.impl.Access(c); e != nil {
				return exit(s, e)
			}
		}
	}
	return nil
}

// BeforeProxy runs the before_proxy phase.
func (ch *Chain) BeforeProxy(c *plugin.Ctx) *plugin.Exit {
	if ch == nil {
		return nil
	}
	for i := range ch.beforeProxy {
		s := &ch.beforeProxy[i]
		if runs(s, c) {
			if e := s.impl.BeforeProxy(c); e != nil {
				return exit(s, e)
			}
		}
	}
	return nil
}

// HasHeaderFilter and HasBodyFilter let engines skip work for routes without
// response plugins.
func (ch *Chain) HasHeaderFilter() bool { return ch != nil && len(ch.headerFilter) > 0 }

// HasBodyFilter reports whether any plugin filters the response body, in
// which case the engine streams the body through BodyFilter (and drops the
// upstream's Content-Length, since the length may change).
func (ch *Chain) HasBodyFilter() bool { return ch != nil && len(ch.bodyFilter) > 0 }

// HeaderFilter runs the header_filter phase over c.Response.
func (ch *Chain) HeaderFilter(c *plugin.Ctx) {
	if ch == nil {
		return
	}
	for i := range ch.headerFilter {
		s := &ch.headerFilter[i]
		if runs(s, c) {
			s.impl.HeaderFilter(c)
		}
	}
}

// FiltersBody reports, after header_filter, whether this response goes
// through the body filters: some body filter applies to the request and,
// if it is a BodyWanter, wants the body.
func (ch *Chain) FiltersBody(c *plugin.Ctx) bool {
	if ch == nil {
		return false
	}
	for i := range ch.bodyFilter {
		s := &ch.bodyFilter[i]
		if !runs(s, c) {
			continue
		}
		if w, ok := s.impl.(plugin.BodyWanter); !ok || w.WantsBody(c) {
			return true
		}
	}
	return false
}

// BodyFilter passes one chunk through every body filter in turn.
func (ch *Chain) BodyFilter(c *plugin.Ctx, chunk []byte, eof bool) []byte {
	if ch == nil {
		return chunk
	}
	for i := range ch.bodyFilter {
		s := &ch.bodyFilter[i]
		if runs(s, c) {
			chunk = s.impl.BodyFilter(c, chunk, eof)
		}
	}
	return chunk
}

// Log runs the log phase.
func (ch *Chain) Log(c *plugin.Ctx) {
	if ch == nil {
		return
	}
	for i := range ch.log {
		s := &ch.log[i]
		if runs(s, c) {
			s.impl.Log(c)
		}
	}
	// The request is over: give back what plugins held for it (Lua VMs).
	c.Finish()
}
