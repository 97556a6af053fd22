package lua

import (
	"sort"
	"strings"

	glua "github.com/yuin/gopher-lua"
)

// newVM builds a sandboxed state: the safe parts of the standard library,
// ngx, and the built-in modules. Nothing in it reaches files, processes,
// the network or the host's environment.
func newVM(rt *Runtime) *VM {
	L := glua.NewState(glua.Options{
		SkipOpenLibs:        true,
		CallStackSize:       callStackSize,
		RegistrySize:        registrySize,
		RegistryMaxSize:     registryMaxSize,
		MinimizeStackMemory: true,
	})
	vm := &VM{L: L, rt: rt, cache: make(map[any]glua.LValue)}
	vm.exitSentinel = L.NewUserData()
	for _, lib := range []struct {
		name string
		open glua.LGFunction
	}{
		{glua.BaseLibName, glua.OpenBase},
		{glua.TabLibName, glua.OpenTable},
		{glua.StringLibName, glua.OpenString},
		{glua.MathLibName, glua.OpenMath},
		{glua.CoroutineLibName, glua.OpenCoroutine},
		{glua.OsLibName, glua.OpenOs},
	} {
		L.Push(L.NewFunction(lib.open))
		L.Push(glua.LString(lib.name))
		L.Call(1, 0)
	}
	vm.restrictStdlib()
	vm.openPackage()
	vm.ngx = L.NewTable()
	L.SetGlobal("ngx", vm.ngx)
	openLibraries(L, vm.ngx, rt.dicts)
	vm.openNgx()
	vm.preload("apisix.core", vm.openCore)
	vm.preload("ngx.re", func(L *glua.LState) int {
		L.Push(L.GetField(vm.ngx, "re"))
		return 1
	})
	vm.preload("table.new", func(L *glua.LState) int {
		L.Push(L.NewFunction(func(L *glua.LState) int { L.Push(L.NewTable()); return 1 }))
		return 1
	})
	vm.preload("table.clear", func(L *glua.LState) int {
		L.Push(L.NewFunction(tableClear))
		return 1
	})
	vm.preload("table.nkeys", func(L *glua.LState) int {
		L.Push(L.NewFunction(tableNKeys))
		return 1
	})
	if enc, ok := vm.requireField("cjson.safe", "encode"); ok {
		vm.jsonEncode = enc
	}
	return vm
}

// denied is what a forbidden function does: fail with a message that says
// why, instead of Lua's "attempt to call a nil value".
func denied(what string) glua.LGFunction {
	return func(L *glua.LState) int {
		L.RaiseError("%s is not allowed in the sluice Lua sandbox", what)
		return 0
	}
}

// deniedTable is a stand-in for a forbidden library (io, debug): any field
// read fails with a clear error.
func deniedTable(L *glua.LState, lib string) *glua.LTable {
	t := L.NewTable()
	mt := L.NewTable()
	mt.RawSetString("__index", L.NewFunction(func(L *glua.LState) int {
		L.RaiseError("%s.%s is not allowed in the sluice Lua sandbox (no file, process or debug access)", lib, L.OptString(2, "?"))
		return 0
	}))
	mt.RawSetString("__newindex", mt.RawGetString("__index"))
	L.SetMetatable(t, mt)
	return t
}

func (vm *VM) restrictStdlib() {
	L := vm.L
	G := L.G.Global
	for _, name := range []string{"dofile", "loadfile", "module"} {
		G.RawSetString(name, L.NewFunction(denied(name)))
	}
	G.RawSetString("_printregs", glua.LNil)
	G.RawSetString("io", deniedTable(L, "io"))
	G.RawSetString("debug", deniedTable(L, "debug"))
	// gopher-lua cannot load bytecode at all; say so plainly rather than
	// with a syntax error.
	loadstring := G.RawGetString("loadstring").(*glua.LFunction)
	G.RawSetString("loadstring", L.NewFunction(func(L *glua.LState) int {
		if strings.HasPrefix(L.CheckString(1), "\x1bLua") {
			L.RaiseError("loading binary (bytecode) chunks is not allowed in the sluice Lua sandbox")
		}
		top := L.GetTop()
		L.Insert(loadstring, 1)
		L.Call(top, glua.MultRet)
		return L.GetTop()
	}))
	// collectgarbage("collect") would run a full Go GC per call.
	G.RawSetString("collectgarbage", L.NewFunction(func(L *glua.LState) int {
		L.Push(glua.LNumber(0))
		return 1
	}))
	// print goes to the error log at notice level, as in OpenResty.
	G.RawSetString("print", L.NewFunction(func(L *glua.LState) int {
		vm.logAt(levelNotice, L, 1)
		return 0
	}))
	// pcall and xpcall must not swallow ngx.exit, nor the time limit.
	pcall := G.RawGetString("pcall").(*glua.LFunction)
	xpcall := G.RawGetString("xpcall").(*glua.LFunction)
	G.RawSetString("pcall", L.NewFunction(vm.protect(pcall)))
	G.RawSetString("xpcall", L.NewFunction(vm.protect(xpcall)))

	os := L.GetGlobal("os").(*glua.LTable)
	for _, name := range []string{"execute", "exit", "getenv", "remove", "rename", "setenv", "setlocale", "tmpname"} {
		os.RawSetString(name, L.NewFunction(denied("os."+name)))
	}
	str := L.GetGlobal("string").(*glua.LTable)
	str.RawSetString("dump", L.NewFunction(denied("string.dump")))
	rep := str.RawGetString("rep").(*glua.LFunction)
	str.RawSetString("rep", L.NewFunction(func(L *glua.LState) int {
		s, n := L.CheckString(1), L.CheckInt(2)
		if n > 0 && int64(len(s))*int64(n) > MaxStringBytes {
			L.RaiseError("string.rep: result larger than %d bytes", MaxStringBytes)
		}
		top := L.GetTop()
		L.Insert(rep, 1)
		L.Call(top, 1)
		return 1
	}))
	tbl := L.GetGlobal("table").(*glua.LTable)
	concat := tbl.RawGetString("concat").(*glua.LFunction)
	tbl.RawSetString("concat", L.NewFunction(func(L *glua.LState) int {
		t := L.CheckTable(1)
		sepLen := len(L.OptString(2, ""))
		total := 0
		n := t.Len()
		for i := 1; i <= n; i++ {
			total += len(glua.LVAsString(t.RawGetInt(i))) + sepLen
			if total > MaxStringBytes {
				L.RaiseError("table.concat: result larger than %d bytes", MaxStringBytes)
			}
		}
		top := L.GetTop()
		L.Insert(concat, 1)
		L.Call(top, 1)
		return 1
	}))
}

// protect wraps pcall/xpcall: an ngx.exit, or the time limit, raised inside
// them propagates instead of being caught.
func (vm *VM) protect(orig *glua.LFunction) glua.LGFunction {
	return func(L *glua.LState) int {
		top := L.GetTop()
		L.Insert(orig, 1)
		L.Call(top, glua.MultRet)
		n := L.GetTop()
		if n >= 2 && L.Get(1) == glua.LFalse {
			if L.Get(2) == vm.exitSentinel {
				L.Error(vm.exitSentinel, 0)
			}
			if ctx := L.Context(); ctx != nil && ctx.Err() != nil {
				L.RaiseError("%s", L.Get(2).String())
			}
		}
		return n
	}
}

// openPackage installs a package table and a require that only resolve the
// built-in modules: nothing is loaded from files, and package.loadlib
// (native code) is refused.
func (vm *VM) openPackage() {
	L := vm.L
	pkg := L.NewTable()
	loaded := L.NewTable()
	preload := L.NewTable()
	pkg.RawSetString("loaded", loaded)
	pkg.RawSetString("preload", preload)
	pkg.RawSetString("loadlib", L.NewFunction(denied("package.loadlib")))
	pkg.RawSetString("path", glua.LString(""))
	pkg.RawSetString("cpath", glua.LString(""))
	L.SetGlobal("package", pkg)
	for _, lib := range []string{"string", "table", "math", "os", "coroutine"} {
		loaded.RawSetString(lib, L.GetGlobal(lib))
	}
	loaded.RawSetString("_G", L.G.Global)
	L.SetGlobal("require", L.NewFunction(func(L *glua.LState) int {
		name := L.CheckString(1)
		if v := loaded.RawGetString(name); v != glua.LNil {
			L.Push(v)
			return 1
		}
		loader, ok := preload.RawGetString(name).(*glua.LFunction)
		if !ok {
			L.RaiseError("module '%s' not found: the sluice Lua sandbox only provides built-in modules (%s)",
				name, strings.Join(builtinModules(preload), ", "))
		}
		L.Push(loader)
		L.Push(glua.LString(name))
		L.Call(1, 1)
		v := L.Get(-1)
		if v == glua.LNil {
			v = glua.LTrue
		}
		loaded.RawSetString(name, v)
		L.Push(v)
		return 1
	}))
}

func builtinModules(preload *glua.LTable) []string {
	var names []string
	preload.ForEach(func(k, _ glua.LValue) { names = append(names, k.String()) })
	sort.Strings(names)
	return names
}

func (vm *VM) preload(name string, loader glua.LGFunction) {
	preload := vm.L.GetField(vm.L.GetGlobal("package"), "preload").(*glua.LTable)
	preload.RawSetString(name, vm.L.NewFunction(loader))
}

// requireField loads a built-in module at VM setup and returns one of its
// functions.
func (vm *VM) requireField(module, field string) (*glua.LFunction, bool) {
	L := vm.L
	if err := L.CallByParam(glua.P{Fn: L.GetGlobal("require"), NRet: 1, Protect: true}, glua.LString(module)); err != nil {
		return nil, false
	}
	m := L.Get(-1)
	L.Pop(1)
	t, ok := m.(*glua.LTable)
	if !ok {
		return nil, false
	}
	fn, ok := t.RawGetString(field).(*glua.LFunction)
	return fn, ok
}

func tableClear(L *glua.LState) int {
	t := L.CheckTable(1)
	var keys []glua.LValue
	t.ForEach(func(k, _ glua.LValue) { keys = append(keys, k) })
	for _, k := range keys {
		t.RawSet(k, glua.LNil)
	}
	return 0
}

func tableNKeys(L *glua.LState) int {
	n := 0
	L.CheckTable(1).ForEach(func(_, _ glua.LValue) { n++ })
	L.Push(glua.LNumber(n))
	return 1
}
