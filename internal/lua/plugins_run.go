package lua

import (
	"log/slog"
	"time"

	glua "github.com/yuin/gopher-lua"

	"github.com/sluicegw/sluice/plugin"
)

// customPlugin is a custom Lua plugin configured on a route: its phase
// functions are called as APISIX calls them, fn(conf, ctx). Phases the
// module has no function for return at once, without taking a VM.
type customPlugin struct {
	def   *pluginDef
	rt    *Runtime
	conf  map[string]any
	limit time.Duration
	log   *slog.Logger
}

// customPluginHF is a customPlugin whose module has a header_filter: only
// such plugins implement plugin.HeaderFilterer, so a route without one keeps
// the gateway's header fast path.
type customPluginHF struct{ *customPlugin }

// run calls the module's function for ph. err is a failed script (logged
// here); a module without the function returns nils.
func (p *customPlugin) run(c *plugin.Ctx, ph phase) (code, body glua.LValue, err error) {
	vm := p.rt.bind(c)
	vm.phase, vm.log = ph, p.log
	mod, err := vm.module(p.def, p.limit)
	if err != nil {
		p.fail(c, ph, err)
		return glua.LNil, glua.LNil, err
	}
	fn, ok := vm.L.GetField(mod, ph.String()).(*glua.LFunction)
	if !ok {
		return glua.LNil, glua.LNil, nil
	}
	code, body, err = vm.call(fn, p.limit, vm.customConf(p), vm.requestAPICtx())
	if err != nil {
		p.fail(c, ph, err)
	}
	return code, body, err
}

func (p *customPlugin) fail(c *plugin.Ctx, ph phase, err error) {
	p.log.Error("lua plugin failed", "phase", ph.String(), "route_id", c.RouteID, "error", err.Error())
}

// customConf is the plugin's conf as a Lua table, built once per VM (a
// plugin may cache things in it, as APISIX plugins do in their conf).
func (vm *VM) customConf(p *customPlugin) glua.LValue {
	if t, ok := vm.cache[p]; ok {
		return t
	}
	t := goToLua(vm.L, p.conf)
	vm.remember(p, t)
	return t
}

// requestPhase runs a request-side phase: returning code, body (or
// calling ngx.exit, core.response.exit, ngx.say) ends the request as in
// APISIX; a failed script is a 500.
func (p *customPlugin) requestPhase(c *plugin.Ctx, ph phase) *plugin.Exit {
	if !p.def.phases[ph] {
		return nil
	}
	code, body, err := p.run(c, ph)
	if err != nil {
		return internalError()
	}
	e, err := p.rt.bind(c).requestExit(code, body)
	if err != nil {
		p.fail(c, ph, err)
		return internalError()
	}
	return e
}

// Rewrite runs the module's rewrite function.
func (p *customPlugin) Rewrite(c *plugin.Ctx) *plugin.Exit { return p.requestPhase(c, phaseRewrite) }

// Access runs the module's access function.
func (p *customPlugin) Access(c *plugin.Ctx) *plugin.Exit { return p.requestPhase(c, phaseAccess) }

// BeforeProxy runs the module's before_proxy function.
func (p *customPlugin) BeforeProxy(c *plugin.Ctx) *plugin.Exit {
	return p.requestPhase(c, phaseBeforeProxy)
}

// HeaderFilter runs the module's header_filter; errors are logged and the
// response goes on.
func (p *customPluginHF) HeaderFilter(c *plugin.Ctx) {
	_, _, _ = p.run(c, phaseHeaderFilter)
	p.rt.bind(c).exiting = false
}

// WantsBody: only a module with a body_filter changes bodies.
func (p *customPlugin) WantsBody(*plugin.Ctx) bool { return p.def.phases[phaseBodyFilter] }

// BodyFilter runs the module's body_filter with ngx.arg[1] = chunk and
// ngx.arg[2] = eof, as serverless body filters do.
func (p *customPlugin) BodyFilter(c *plugin.Ctx, chunk []byte, eof bool) []byte {
	if !p.def.phases[phaseBodyFilter] {
		return chunk
	}
	return p.rt.bind(c).filterBody(chunk, eof, func() error {
		_, _, err := p.run(c, phaseBodyFilter)
		return err
	})
}

// Log runs the module's log function after the response was sent.
func (p *customPlugin) Log(c *plugin.Ctx) {
	if p.def.phases[phaseLog] {
		_, _, _ = p.run(c, phaseLog)
	}
}

var (
	_ plugin.Rewriter       = (*customPlugin)(nil)
	_ plugin.Accessor       = (*customPlugin)(nil)
	_ plugin.BeforeProxier  = (*customPlugin)(nil)
	_ plugin.BodyFilterer   = (*customPlugin)(nil)
	_ plugin.BodyWanter     = (*customPlugin)(nil)
	_ plugin.Logger         = (*customPlugin)(nil)
	_ plugin.HeaderFilterer = (*customPluginHF)(nil)
)
