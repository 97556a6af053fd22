package lua

import (
	"log/slog"

	glua "github.com/yuin/gopher-lua"

	"github.com/sluicegw/sluice/plugin"
)

// phase is where a VM is running: it decides which ngx functions are
// allowed and what ngx.header and ngx.status mean.
type phase uint8

const (
	phaseInit phase = iota // loading a chunk, no request
	phaseRewrite
	phaseAccess
	phaseBeforeProxy
	phaseHeaderFilter
	phaseBodyFilter
	phaseLog
	phaseMatch // route filter_func
)

var phaseNames = [...]string{"init", "rewrite", "access", "before_proxy", "header_filter", "body_filter", "log", "filter_func"}

func (p phase) String() string { return phaseNames[p] }

// requestPhase reports phases that may still answer the request
// (ngx.say, ngx.exit with a status, ngx.redirect).
func (p phase) requestPhase() bool {
	return p == phaseRewrite || p == phaseAccess || p == phaseBeforeProxy
}

// varSource reads request variables: a plugin.Ctx during phases, the
// router's request view in filter_func.
type varSource interface {
	Var(name string) (string, bool)
}

// VM is one pooled Lua state and what it knows of the request it serves. A
// request keeps the same VM across its phases (ngx.ctx lives in it) and
// gives it back after the log phase (plugin.Ctx.Finish).
type VM struct {
	L  *glua.LState
	rt *Runtime
	// cache holds, per Script, the function its chunk returned in this VM,
	// and per plugin instance its conf table.
	cache map[any]glua.LValue
	// broken VMs are closed instead of pooled.
	broken bool
	// dl is the VM's context, stopped when a call overruns its time limit.
	dl *vmContext

	// Built once per VM.
	ngx *glua.LTable
	// Per-VM metatables, kept out of cache: looking them up there hashed
	// an interface key on every request.
	apiMeta, ngxCtxMT, headersMetaListed, headersMetaLookup *glua.LTable
	// memo is the last Script run in this VM and the function it
	// returned, memoConf the last serverless instance and its conf
	// table: a route's functions are asked for on every request, and the
	// cache map's interface-keyed lookup was a share of a short function's
	// cost. Both also stay in cache.
	memoScript   *Script
	memoFn       *glua.LFunction
	memoOwner    *serverless
	memoConf     glua.LValue
	exitSentinel *glua.LUserData
	jsonEncode   *glua.LFunction // cjson.safe.encode, when luangx provides it

	// Per request.
	c        *plugin.Ctx
	vars     varSource
	phase    phase
	log      *slog.Logger
	out      []byte // ngx.say / ngx.print output, answered with the exit
	status   int    // ngx.status before header_filter
	exitHdrs []plugin.Header
	exiting  bool
	exitCode int
	ngxCtx   *glua.LTable // ngx.ctx
	apiCtx   *glua.LTable // APISIX's ctx argument
	// apiCtxUsed: a field was added to apiCtx (its __newindex ran).
	apiCtxUsed bool
	body       []byte // ngx.req.read_body
	bodyRead   bool
	bodyBig    bool
	// body_filter
	chunk     []byte
	eof       bool
	newChunk  []byte
	chunkSet  bool
	truncated bool
}

// ctxKey stores the request's VM in plugin.Ctx.
const ctxKey = "lua.vm"

// Finish gives the VM back to its Runtime; the gateway calls it through
// plugin.Ctx.Finish once the log phase has run.
func (vm *VM) Finish() { vm.rt.put(vm) }

var _ plugin.Finisher = (*VM)(nil)

// bind returns the request's VM, taking one from rt at the request's first
// Lua phase. Every Lua plugin of the request shares it (and so ngx.ctx).
func (rt *Runtime) bind(c *plugin.Ctx) *VM {
	if v, ok := c.Get(ctxKey); ok && v != nil {
		if vm, ok := v.(*VM); ok {
			return vm
		}
	}
	vm := rt.get()
	vm.c, vm.vars = c, c
	c.Set(ctxKey, vm)
	takePending(c, vm) // left by a released VM (release.go)
	return vm
}

// reset clears the per-request state before the VM goes back to the pool.
func (vm *VM) reset() {
	vm.c, vm.vars, vm.log = nil, nil, nil
	vm.phase = phaseInit
	vm.out = vm.out[:0]
	if cap(vm.out) > 64<<10 {
		vm.out = nil // do not keep a large response buffer per pooled VM
	}
	vm.status = 0
	clear(vm.exitHdrs)
	vm.exitHdrs = vm.exitHdrs[:0]
	vm.exiting, vm.exitCode = false, 0
	vm.ngxCtx = nil
	// APISIX pools its ctx tables too (tablepool "api_ctx", released
	// after the log phase): a ctx the request left as it was given, empty
	// and with its metatable, serves the next request instead of a new
	// table per request. One the script wrote to is dropped (a rawset
	// bypasses __newindex; the emptiness check catches what it left).
	if t := vm.apiCtx; t != nil {
		if k, _ := t.Next(glua.LNil); vm.apiCtxUsed || k != glua.LNil || t.Metatable != vm.apiMeta {
			vm.apiCtx = nil
		}
	}
	vm.apiCtxUsed = false
	vm.body, vm.bodyRead, vm.bodyBig = nil, false, false
	vm.chunk, vm.eof, vm.newChunk, vm.chunkSet, vm.truncated = nil, false, nil, false, false
	vm.L.SetTop(0)
}

// varLookup reads a variable as ngx.var does in the current phase.
func (vm *VM) varLookup(name string) (string, bool) {
	if vm.c != nil {
		if name == "status" && vm.c.Response != nil && vm.phase < phaseLog {
			return itoa(vm.c.Response.Status()), true
		}
		return vm.c.Var(name)
	}
	if vm.vars != nil {
		return vm.vars.Var(name)
	}
	return "", false
}

// logger is where ngx.log and errors go.
func (vm *VM) logger() *slog.Logger {
	if vm.log != nil {
		return vm.log
	}
	return vm.rt.log
}
