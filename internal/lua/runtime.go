// Package lua embeds Lua (gopher-lua) in sluice the way OpenResty embeds
// LuaJIT in nginx: scripts are compiled once per configuration, run in pooled
// and sandboxed VMs, and see the request through the ngx API (ngx.var,
// ngx.req, ngx.header, ngx.say, ngx.exit, ngx.ctx...) and a subset of
// APISIX's core module. The serverless plugins, route filter_func and custom
// Lua plugins (plugins.go) are built on it; docs/lua.md describes the model
// and its limits.
package lua

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	glua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/shdict"
)

// Limits a VM runs under. They are documented in docs/lua.md.
const (
	// DefaultTimeLimit bounds one call into Lua (one phase function, one
	// filter_func evaluation): a script that runs longer is interrupted,
	// the request answered 500 and the VM discarded.
	DefaultTimeLimit = time.Second
	// callStackSize bounds Lua call depth (runaway recursion fails with
	// "stack overflow" instead of growing memory).
	callStackSize = 200
	// registrySize and registryMaxSize bound the value stack of a VM
	// (16 bytes a slot): 1 M slots at most.
	registrySize    = 4 * 1024
	registryMaxSize = 1024 * 1024
	// MaxStringBytes bounds strings our libraries build (string.rep,
	// table.concat, ngx.say output, request bodies read into Lua).
	MaxStringBytes = 16 << 20
	// poolMin is the least number of idle VMs a Runtime keeps. A request
	// holds its VM from its first Lua phase to its log phase, upstream
	// round trip included, so the gateway needs about one VM per request
	// in flight, not per core: with a pool of 4 and 50 connections, most
	// requests paid for a VM (~230 µs) and the bench's empty function cost
	// ~10 µs per request instead of ~1. A VM is ~230 KB, so at most ~60 MB
	// idle.
	poolMin = 256
	// scriptCacheMax bounds the per-VM cache of loaded functions: old
	// configurations' scripts fall out when it is reset.
	scriptCacheMax = 4096
)

// Runtime is a pool of sandboxed VMs. One Runtime serves the whole gateway
// (it is kept in plugin.Lasting), so the VMs, their loaded functions and
// their per-VM state (upvalues, module-level locals) outlive configurations,
// as a worker's Lua state does in OpenResty.
type Runtime struct {
	dicts *shdict.Registry
	log   *slog.Logger
	pool  chan *VM
	// spare holds the VMs the pool has no room for. A request keeps its VM
	// from its first Lua phase to its log phase, upstream round trip
	// included, so the gateway needs about as many VMs as it has requests
	// in flight; building one costs ~230 µs and ~230 KB. Spare VMs are
	// reused under load and left to the garbage collector when idle.
	spare sync.Pool
	// pending holds the lists of response headers released VMs leave in
	// their requests (release.go).
	pending sync.Pool
	closed  atomic.Bool
	// wd enforces the time limit of calls (deadline.go).
	wd watchdog
}

// lastingKey names the gateway's Runtime in plugin.Lasting.
const lastingKey = "lua.runtime"

// NewRuntime returns a Runtime whose VMs see dicts as ngx.shared (nil: no
// shared dicts) and log through log (nil: discard).
func NewRuntime(dicts *shdict.Registry, log *slog.Logger) *Runtime {
	if dicts == nil {
		dicts = shdict.NewRegistry()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runtime{dicts: dicts, log: log, pool: make(chan *VM, max(poolMin, 4*runtime.GOMAXPROCS(0))), wd: watchdog{epoch: time.Now()}}
}

// Shared returns the gateway's Runtime kept in l, or a private one when l is
// nil (validation-only compiles, tests).
func Shared(l *plugin.Lasting, dicts *shdict.Registry, log *slog.Logger) *Runtime {
	o, err := l.Get(lastingKey, func() (any, error) { return NewRuntime(dicts, log), nil })
	if err != nil || o == nil {
		return NewRuntime(dicts, log)
	}
	return o.(*Runtime)
}

// Close drops the pooled VMs. VMs in use are closed when released.
func (rt *Runtime) Close() error {
	rt.closed.Store(true)
	for {
		select {
		case vm := <-rt.pool:
			vm.L.Close()
		default:
			return nil
		}
	}
}

// get takes a VM from the pool or builds one.
func (rt *Runtime) get() *VM {
	select {
	case vm := <-rt.pool:
		return vm
	default:
		if vm, ok := rt.spare.Get().(*VM); ok {
			return vm
		}
		return newVM(rt)
	}
}

// put returns a VM to the pool, or to the spares when the pool is full; a
// broken VM (interrupted, or hit by a Go panic) is closed instead.
func (rt *Runtime) put(vm *VM) {
	vm.reset()
	if vm.broken || rt.closed.Load() {
		vm.L.Close()
		return
	}
	select {
	case rt.pool <- vm:
	default:
		rt.spare.Put(vm)
	}
}

// Script is Lua source compiled once: a chunk that returns a function (a
// serverless function, a filter_func). Each VM runs the chunk once, on first
// use, and keeps the function it returned.
type Script struct {
	// Name is the chunk name, shown in error positions ("functions[1]:3:").
	Name  string
	proto *glua.FunctionProto
}

// Compile parses and compiles src. The error is the Lua syntax error, with
// its line.
func Compile(name, src string) (*Script, error) {
	chunk, err := parse.Parse(strings.NewReader(src), name)
	if err != nil {
		return nil, errors.New(cleanSyntaxError(err.Error()))
	}
	proto, err := glua.Compile(chunk, name)
	if err != nil {
		return nil, err
	}
	return &Script{Name: name, proto: proto}, nil
}

// cleanSyntaxError shortens gopher-lua's parse errors ("<name> line:3(column:5)
// near 'x':   syntax error") to one line.
func cleanSyntaxError(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return s
}

// CheckFunction runs the script's chunk once in a VM of rt and checks that
// it returns a function, as APISIX checks serverless functions: a chunk that
// fails or returns anything else is an error naming the type.
func (rt *Runtime) CheckFunction(s *Script, limit time.Duration) error {
	vm := rt.get()
	defer rt.put(vm)
	vm.phase = phaseInit
	_, err := vm.function(s, limit)
	return err
}

// Error is a failed call into Lua: the Lua error with its position, and
// whether the time limit interrupted it.
type Error struct {
	Msg      string
	TimedOut bool
}

func (e *Error) Error() string { return e.Msg }

// call runs fn with args under the time limit and returns its first two
// results. ngx.exit unwinds with the VM's exit sentinel, which is not an
// error.
func (vm *VM) call(fn *glua.LFunction, limit time.Duration, args ...glua.LValue) (r1, r2 glua.LValue, err error) {
	L := vm.L
	L.SetTop(0)
	L.Push(fn)
	for _, a := range args {
		L.Push(a)
	}
	if limit <= 0 {
		limit = DefaultTimeLimit
	}
	if vm.dl == nil {
		// One context for the VM's life; the watchdog stops it.
		vm.dl = &vmContext{done: make(chan struct{})}
		L.SetContext(vm.dl)
		vm.rt.wd.register(vm.dl)
	}
	vm.rt.wd.begin(vm.dl, limit)
	err = vm.pcall(len(args))
	timedOut := vm.rt.wd.end(vm.dl)
	if vm.dl.derived() > maxDerived {
		vm.broken = true // retired: see maxDerived
	}
	if timedOut {
		// The interrupted script may have left its state half-updated;
		// the VM is not reused.
		vm.broken = true
	}
	if err != nil {
		L.SetTop(0)
		var ae *glua.ApiError
		if errors.As(err, &ae) {
			if ae.Object == vm.exitSentinel {
				return glua.LNil, glua.LNil, nil
			}
			if ae.Type == glua.ApiErrorPanic {
				vm.broken = true
			}
			msg := ae.Object.String()
			if timedOut {
				msg = strings.Replace(msg, context.DeadlineExceeded.Error(), "time limit exceeded ("+limit.String()+")", 1)
			}
			return glua.LNil, glua.LNil, &Error{Msg: msg, TimedOut: timedOut}
		}
		return glua.LNil, glua.LNil, &Error{Msg: err.Error(), TimedOut: timedOut}
	}
	r1, r2 = L.Get(1), L.Get(2)
	L.SetTop(0)
	return r1, r2, nil
}

// pcall is L.PCall that also turns a Go panic escaping gopher-lua into an
// error (and marks the VM broken), so a script can never crash the gateway.
func (vm *VM) pcall(nargs int) (err error) {
	defer func() {
		if r := recover(); r != nil {
			vm.broken = true
			err = fmt.Errorf("lua: panic: %v", r)
		}
	}()
	return vm.L.PCall(nargs, 2, nil)
}

// function returns the function s's chunk returned in this VM, running the
// chunk on first use.
func (vm *VM) function(s *Script, limit time.Duration) (*glua.LFunction, error) {
	if vm.memoScript == s {
		return vm.memoFn, nil
	}
	if v, ok := vm.cache[s]; ok {
		fn := v.(*glua.LFunction)
		vm.memoScript, vm.memoFn = s, fn
		return fn, nil
	}
	chunk := vm.L.NewFunctionFromProto(s.proto)
	r, _, err := vm.call(chunk, limit)
	if err != nil {
		return nil, err
	}
	fn, ok := r.(*glua.LFunction)
	if !ok {
		return nil, fmt.Errorf("only accept Lua function, the input code type is %s", r.Type().String())
	}
	vm.remember(s, fn)
	vm.memoScript, vm.memoFn = s, fn
	return fn, nil
}

// remember caches v under key, resetting the cache when it is full (old
// configurations' scripts are never asked for again).
func (vm *VM) remember(key any, v glua.LValue) {
	if len(vm.cache) >= scriptCacheMax {
		clear(vm.cache)
	}
	vm.cache[key] = v
}
