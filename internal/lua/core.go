package lua

import (
	"encoding/json"
	"math"
	"sort"
	"strconv"

	glua "github.com/yuin/gopher-lua"
)

// openCore builds the subset of APISIX's core module that serverless
// functions use (require("apisix.core")): log, response, request, json,
// table.
func (vm *VM) openCore(L *glua.LState) int {
	core := L.NewTable()
	set := func(t *glua.LTable, name string, f glua.LGFunction) { t.RawSetString(name, L.NewFunction(f)) }

	log := L.NewTable()
	for name, level := range map[string]int{"emerg": levelEmerg, "alert": levelAlert, "crit": levelCrit,
		"error": levelErr, "warn": levelWarn, "notice": levelNotice, "info": levelInfo, "debug": levelDebug} {
		set(log, name, func(L *glua.LState) int { vm.logAt(level, L, 1); return 0 })
	}
	core.RawSetString("log", log)

	resp := L.NewTable()
	set(resp, "exit", vm.coreExit)
	set(resp, "say", func(L *glua.LState) int {
		L.Insert(glua.LNil, 1)
		return vm.coreExit(L)
	})
	set(resp, "set_header", func(L *glua.LState) int { return vm.coreSetHeader(L, false) })
	set(resp, "add_header", func(L *glua.LState) int { return vm.coreSetHeader(L, true) })
	core.RawSetString("response", resp)

	req := L.NewTable()
	// APISIX's request functions take ctx first; it is optional in some.
	skipCtx := func(L *glua.LState) int {
		if _, ok := L.Get(1).(*glua.LTable); ok {
			return 2
		}
		return 1
	}
	set(req, "header", func(L *glua.LState) int {
		name := L.CheckString(skipCtx(L))
		if v := vm.request(L).Header(name); v != "" {
			L.Push(glua.LString(v))
		} else {
			L.Push(glua.LNil)
		}
		return 1
	})
	set(req, "headers", func(L *glua.LState) int {
		L.SetTop(0)
		return vm.reqGetHeaders(L)
	})
	set(req, "set_header", func(L *glua.LState) int {
		i := skipCtx(L)
		name := L.CheckString(i)
		r := vm.requestWritable(L, "set_header")
		if v := L.Get(i + 1); v == glua.LNil {
			r.DelHeader(name)
		} else {
			r.SetHeader(name, glua.LVAsString(v))
		}
		return 0
	})
	set(req, "add_header", func(L *glua.LState) int {
		i := skipCtx(L)
		vm.requestWritable(L, "add_header").AddHeader(L.CheckString(i), L.CheckString(i+1))
		return 0
	})
	set(req, "get_body", func(L *glua.LState) int {
		vm.readBody(L)
		switch {
		case vm.bodyBig:
			L.Push(glua.LNil)
			L.Push(glua.LString("request size exceeds the limit of " + strconv.Itoa(maxBodyBytes) + " bytes"))
			return 2
		case len(vm.body) == 0:
			L.Push(glua.LNil)
			return 1
		}
		L.Push(glua.LString(vm.body))
		return 1
	})
	set(req, "get_method", func(L *glua.LState) int { L.Push(glua.LString(vm.request(L).Method())); return 1 })
	set(req, "get_uri_args", func(L *glua.LState) int {
		L.Push(vm.decodeArgs(L, vm.request(L).RawQuery(), 100))
		return 1
	})
	set(req, "get_remote_client_ip", func(L *glua.LState) int {
		v, _ := vm.varLookup("remote_addr")
		L.Push(glua.LString(v))
		return 1
	})
	set(req, "get_host", func(L *glua.LState) int { L.Push(glua.LString(vm.request(L).Host())); return 1 })
	core.RawSetString("request", req)

	js := L.NewTable()
	set(js, "encode", func(L *glua.LState) int {
		s, err := vm.encodeJSON(L, L.Get(1))
		if err != nil {
			L.Push(glua.LNil)
			L.Push(glua.LString(err.Error()))
			return 2
		}
		L.Push(glua.LString(s))
		return 1
	})
	js.RawSetString("delay_encode", js.RawGetString("encode"))
	set(js, "decode", func(L *glua.LState) int {
		var v any
		if err := json.Unmarshal([]byte(L.CheckString(1)), &v); err != nil {
			L.Push(glua.LNil)
			L.Push(glua.LString(err.Error()))
			return 2
		}
		L.Push(goToLua(L, v))
		return 1
	})
	core.RawSetString("json", js)

	tbl := L.NewTable()
	tab := L.GetGlobal("table").(*glua.LTable)
	for _, name := range []string{"insert", "concat", "remove", "sort"} {
		tbl.RawSetString(name, tab.RawGetString(name))
	}
	set(tbl, "new", func(L *glua.LState) int { L.Push(L.NewTable()); return 1 })
	set(tbl, "clear", tableClear)
	set(tbl, "nkeys", tableNKeys)
	core.RawSetString("table", tbl)
	vm.openCoreSchema(L, core)
	L.Push(core)
	return 1
}

// coreExit is core.response.exit(code, ...): a non-number code is body,
// tables are JSON-encoded (with a newline), and a code ends the request.
func (vm *VM) coreExit(L *glua.LState) int {
	code := L.Get(1)
	if !vm.phase.requestPhase() {
		L.RaiseError("API disabled in the context of %s (core.response.exit)", vm.phase)
	}
	first := 2
	if _, ok := code.(glua.LNumber); !ok && code != glua.LNil {
		first = 1
		code = glua.LNil
	}
	for i := first; i <= L.GetTop(); i++ {
		if err := vm.appendBody(L, L.Get(i)); err != nil {
			L.RaiseError("failed to encode data: %s", err.Error())
		}
	}
	if n, ok := code.(glua.LNumber); ok {
		vm.status = int(n)
		vm.exiting, vm.exitCode = true, int(n)
		L.Error(vm.exitSentinel, 0)
	}
	return 0
}

// appendBody adds one body value to the output as APISIX does: tables as
// JSON plus a newline, other values as text, nil skipped.
func (vm *VM) appendBody(L *glua.LState, v glua.LValue) error {
	switch v.(type) {
	case *glua.LNilType:
		return nil
	case *glua.LTable:
		s, err := vm.encodeJSON(L, v)
		if err != nil {
			return err
		}
		vm.out = append(append(vm.out, s...), '\n')
		return nil
	}
	vm.out = append(vm.out, glua.LVAsString(v)...)
	return nil
}

func (vm *VM) coreSetHeader(L *glua.LState, add bool) int {
	if L.GetTop() == 1 {
		if t, ok := L.Get(1).(*glua.LTable); ok {
			t.ForEach(func(k, v glua.LValue) { vm.setResponseHeader(L, glua.LVAsString(k), v, add) })
			return 0
		}
		vm.setResponseHeader(L, L.CheckString(1), glua.LNil, false)
		return 0
	}
	for i := 1; i <= L.GetTop(); i += 2 {
		vm.setResponseHeader(L, L.CheckString(i), L.Get(i+1), add)
	}
	return 0
}

// encodeJSON encodes v with cjson (luangx) when available, so the rules
// for empty tables, sparse arrays and ngx.null are cjson's; otherwise with a
// small built-in encoder.
func (vm *VM) encodeJSON(L *glua.LState, v glua.LValue) (string, error) {
	if vm.jsonEncode != nil {
		if err := L.CallByParam(glua.P{Fn: vm.jsonEncode, NRet: 2, Protect: true}, v); err != nil {
			return "", err
		}
		s, e := L.Get(-2), L.Get(-1)
		L.Pop(2)
		if s == glua.LNil {
			return "", errorString(glua.LVAsString(e))
		}
		return glua.LVAsString(s), nil
	}
	b, err := json.Marshal(luaToGo(v, 0))
	return string(b), err
}

type errorString string

func (e errorString) Error() string { return string(e) }

// goToLua converts decoded JSON (or a plugin config) into Lua values.
func goToLua(L *glua.LState, v any) glua.LValue {
	switch x := v.(type) {
	case nil:
		if n := null(L); n != nil {
			return n
		}
		return glua.LNil
	case bool:
		return glua.LBool(x)
	case float64:
		return glua.LNumber(x)
	case int:
		return glua.LNumber(x)
	case int64: // luaToGo's integers (a custom plugin's conf after check_schema)
		return glua.LNumber(x)
	case string:
		return glua.LString(x)
	case []any:
		t := L.CreateTable(len(x), 0)
		for _, e := range x {
			t.Append(goToLua(L, e))
		}
		return t
	case []string:
		t := L.CreateTable(len(x), 0)
		for _, e := range x {
			t.Append(glua.LString(e))
		}
		return t
	case map[string]any:
		t := L.CreateTable(0, len(x))
		for k, e := range x {
			t.RawSetString(k, goToLua(L, e))
		}
		return t
	}
	return glua.LNil
}

// luaToGo converts a Lua value for the fallback JSON encoder: a table with
// keys 1..n is an array, an empty table an object (cjson's default).
func luaToGo(v glua.LValue, depth int) any {
	if depth > 100 {
		return nil
	}
	switch x := v.(type) {
	case glua.LBool:
		return bool(x)
	case glua.LNumber:
		f := float64(x)
		if f == math.Trunc(f) && math.Abs(f) < 1e15 {
			return int64(f)
		}
		return f
	case glua.LString:
		return string(x)
	case *glua.LTable:
		n := x.Len()
		count := 0
		x.ForEach(func(_, _ glua.LValue) { count++ })
		if n > 0 && count == n {
			arr := make([]any, n)
			for i := 1; i <= n; i++ {
				arr[i-1] = luaToGo(x.RawGetInt(i), depth+1)
			}
			return arr
		}
		m := make(map[string]any, count)
		keys := make([]string, 0, count)
		x.ForEach(func(k, e glua.LValue) {
			ks := glua.LVAsString(k)
			keys = append(keys, ks)
			m[ks] = luaToGo(e, depth+1)
		})
		sort.Strings(keys)
		return m
	}
	return nil
}
