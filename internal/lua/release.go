package lua

import (
	glua "github.com/yuin/gopher-lua"

	"github.com/sluicegw/sluice/plugin"
)

// A request keeps its VM from its first Lua phase to its log phase, so that
// ngx.ctx and the other per-request state reach later phases. Most request
// phase functions leave no such state, though, and holding their VM across
// the upstream round trip made the gateway need one VM per request in
// flight: with 50 connections, 50 VMs of ~230 KB each, switched between on
// every request, which cost more in cache misses than the Lua itself (the
// bench's key-check-and-count snippet: ~8 µs of Lua, ~16 µs added per
// request). releaseIdle gives such a VM back at once; a later Lua phase of
// the request takes a VM again and sees the same (empty) state.

// pendingKey keeps, in plugin.Ctx, the response headers a released VM's
// functions set with ngx.header (pendingHeaders adds them to the response).
const pendingKey = "lua.pendingHeaders"

// A pendingHeaderList is taken from its Runtime's pool and given back when
// the request finishes (plugin.Ctx.Finish): a fresh one per request was two
// of the key-check-and-count snippet's allocations.
type pendingHeaderList struct {
	rt *Runtime
	h  []plugin.Header
}

// Finish returns the list to its pool once the request is over.
func (p *pendingHeaderList) Finish() {
	clear(p.h)
	p.h = p.h[:0]
	p.rt.pending.Put(p)
}

var _ plugin.Finisher = (*pendingHeaderList)(nil)

// pendingList returns the list kept in c, or puts one from the pool there.
func (rt *Runtime) pendingList(c *plugin.Ctx) *pendingHeaderList {
	if v, ok := c.Get(pendingKey); ok && v != nil {
		if p, ok := v.(*pendingHeaderList); ok {
			return p
		}
	}
	p, _ := rt.pending.Get().(*pendingHeaderList)
	if p == nil {
		p = &pendingHeaderList{rt: rt}
	}
	c.Set(pendingKey, p)
	return p
}

// releaseIdle returns c's VM to the pool at the end of a request phase if
// nothing in it belongs to the request any more: no ngx.ctx, no field set
// on APISIX's ctx, no body read, no output, status or exit pending.
// Response headers set with ngx.header move to c.
func (rt *Runtime) releaseIdle(c *plugin.Ctx) {
	v, ok := c.Get(ctxKey)
	if !ok || v == nil {
		return
	}
	vm, ok := v.(*VM)
	if !ok || vm.ngxCtx != nil || vm.bodyRead || len(vm.out) > 0 || vm.status != 0 || vm.exiting {
		return
	}
	if t := vm.apiCtx; t != nil {
		if k, _ := t.Next(glua.LNil); k != glua.LNil {
			return
		}
	}
	if len(vm.exitHdrs) > 0 {
		p := rt.pendingList(c)
		p.h = append(p.h[:0], vm.exitHdrs...)
	}
	c.Set(ctxKey, nil)
	rt.put(vm)
}

// takePending moves headers a released VM left in c into vm.
func takePending(c *plugin.Ctx, vm *VM) {
	v, ok := c.Get(pendingKey)
	if !ok || v == nil {
		return
	}
	if p, ok := v.(*pendingHeaderList); ok {
		vm.exitHdrs = append(vm.exitHdrs, p.h...)
		// Emptied, not removed: it goes back to the pool when the
		// request finishes.
		clear(p.h)
		p.h = p.h[:0]
	}
}
