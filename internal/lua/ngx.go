package lua

import (
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	glua "github.com/yuin/gopher-lua"

	"github.com/sluicegw/sluice/plugin"
)

// OpenResty's return codes for ngx.exit.
const (
	ngxOK       = 0
	ngxError    = -1
	ngxDeclined = -5
)

// ngx.log levels, as lua-nginx-module numbers them.
const (
	levelStderr = iota
	levelEmerg
	levelAlert
	levelCrit
	levelErr
	levelWarn
	levelNotice
	levelInfo
	levelDebug
)

// maxBodyBytes bounds ngx.req.read_body; a larger body is not read into Lua
// (get_body_data returns nil, as when nginx buffers a body to a file).
const maxBodyBytes = 1 << 20

// methods maps ngx.HTTP_GET... to method names (ngx.req.set_method).
var methods = map[int]string{
	2: "GET", 4: "HEAD", 8: "POST", 16: "PUT", 32: "DELETE", 64: "MKCOL", 128: "COPY", 256: "MOVE",
	512: "OPTIONS", 1024: "PROPFIND", 2048: "PROPPATCH", 4096: "LOCK", 8192: "UNLOCK", 16384: "PATCH", 32768: "TRACE",
}

func itoa(n int) string { return strconv.Itoa(n) }

// openNgx installs the request-bound part of ngx. Functions are built once
// per VM and read the current request from vm, so a request binds nothing.
func (vm *VM) openNgx() {
	L := vm.L
	ngx := vm.ngx
	fn := func(name string, f glua.LGFunction) { ngx.RawSetString(name, L.NewFunction(f)) }

	// Values that change per request or phase are served by ngx's
	// metatable, as lua-nginx-module does for ngx.ctx and ngx.status.
	mt := L.NewTable()
	mt.RawSetString("__index", L.NewFunction(vm.ngxIndex))
	mt.RawSetString("__newindex", L.NewFunction(vm.ngxNewIndex))
	L.SetMetatable(ngx, mt)

	ngx.RawSetString("var", vm.proxy(vm.varIndex, vm.varNewIndex))
	ngx.RawSetString("header", vm.proxy(vm.headerIndex, vm.headerNewIndex))
	ngx.RawSetString("arg", vm.proxy(vm.argIndex, vm.argNewIndex))
	fn("say", func(L *glua.LState) int { return vm.output(L, "say", true) })
	fn("print", func(L *glua.LState) int { return vm.output(L, "print", false) })
	fn("flush", func(L *glua.LState) int { L.Push(glua.LNumber(1)); return 1 })
	fn("eof", func(L *glua.LState) int { L.Push(glua.LNumber(1)); return 1 })
	fn("exit", vm.ngxExit)
	fn("redirect", vm.ngxRedirect)
	fn("log", func(L *glua.LState) int {
		vm.logAt(L.CheckInt(1), L, 2)
		return 0
	})
	fn("get_phase", func(L *glua.LState) int {
		p := vm.phase.String()
		if vm.phase == phaseMatch {
			p = "access"
		}
		L.Push(glua.LString(p))
		return 1
	})
	fn("sleep", denied("ngx.sleep"))
	fn("location", denied("ngx.location"))
	fn("socket", denied("ngx.socket"))

	cfg := L.NewTable()
	cfg.RawSetString("subsystem", glua.LString("http"))
	cfg.RawSetString("debug", glua.LFalse)
	cfg.RawSetString("ngx_lua_version", glua.LNumber(10026))
	cfg.RawSetString("nginx_version", glua.LNumber(1025003))
	ngx.RawSetString("config", cfg)
	worker := L.NewTable()
	worker.RawSetString("id", L.NewFunction(func(L *glua.LState) int { L.Push(glua.LNumber(0)); return 1 }))
	worker.RawSetString("count", L.NewFunction(func(L *glua.LState) int { L.Push(glua.LNumber(1)); return 1 }))
	worker.RawSetString("exiting", L.NewFunction(func(L *glua.LState) int { L.Push(glua.LFalse); return 1 }))
	ngx.RawSetString("worker", worker)

	req := L.NewTable()
	rfn := func(name string, f glua.LGFunction) { req.RawSetString(name, L.NewFunction(f)) }
	rfn("get_method", func(L *glua.LState) int { L.Push(glua.LString(vm.request(L).Method())); return 1 })
	rfn("set_method", vm.reqSetMethod)
	rfn("get_uri_args", func(L *glua.LState) int {
		L.Push(vm.decodeArgs(L, vm.request(L).RawQuery(), L.OptInt(1, 100)))
		return 1
	})
	rfn("set_uri_args", vm.reqSetURIArgs)
	rfn("get_headers", vm.reqGetHeaders)
	rfn("set_header", vm.reqSetHeader)
	rfn("clear_header", func(L *glua.LState) int {
		vm.requestWritable(L, "clear_header").DelHeader(L.CheckString(1))
		return 0
	})
	rfn("read_body", func(L *glua.LState) int { vm.readBody(L); return 0 })
	rfn("discard_body", func(L *glua.LState) int { return 0 })
	rfn("get_body_data", func(L *glua.LState) int {
		if !vm.bodyRead || vm.bodyBig || len(vm.body) == 0 {
			L.Push(glua.LNil)
		} else {
			L.Push(glua.LString(vm.body))
		}
		return 1
	})
	rfn("get_body_file", func(L *glua.LState) int { L.Push(glua.LNil); return 1 })
	rfn("set_body_data", func(L *glua.LState) int {
		s := L.CheckString(1)
		if !vm.bodyRead {
			L.RaiseError("request body not read yet")
		}
		vm.requestWritable(L, "set_body_data").SetBody([]byte(s))
		vm.body, vm.bodyBig = []byte(s), false
		return 0
	})
	rfn("set_uri", vm.reqSetURI)
	rfn("get_post_args", vm.reqGetPostArgs)
	rfn("start_time", func(L *glua.LState) int {
		var t float64
		if vm.c != nil {
			t = float64(vm.c.Served.Start.UnixMicro()) / 1e6
		}
		L.Push(glua.LNumber(t))
		return 1
	})
	rfn("http_version", func(L *glua.LState) int {
		v, _ := vm.varLookup("server_protocol")
		switch v {
		case "HTTP/1.0":
			L.Push(glua.LNumber(1.0))
		case "HTTP/2.0":
			L.Push(glua.LNumber(2.0))
		default:
			L.Push(glua.LNumber(1.1))
		}
		return 1
	})
	rfn("is_internal", func(L *glua.LState) int { L.Push(glua.LFalse); return 1 })
	ngx.RawSetString("req", req)
}

// proxy returns a table whose reads and writes go to Go (ngx.var,
// ngx.header, ngx.arg).
func (vm *VM) proxy(index, newindex glua.LGFunction) *glua.LTable {
	L := vm.L
	t := L.NewTable()
	mt := L.NewTable()
	mt.RawSetString("__index", L.NewFunction(index))
	mt.RawSetString("__newindex", L.NewFunction(newindex))
	L.SetMetatable(t, mt)
	return t
}

func (vm *VM) ngxIndex(L *glua.LState) int {
	switch L.CheckString(2) {
	case "ctx":
		L.Push(vm.requestCtx())
	case "status":
		L.Push(glua.LNumber(vm.currentStatus()))
	case "headers_sent":
		// nginx marks the header sent once the header filters are done:
		// header_filter_by_lua still sees false.
		L.Push(glua.LBool(vm.phase >= phaseBodyFilter && vm.phase != phaseMatch))
	case "is_subrequest":
		L.Push(glua.LFalse)
	default:
		L.Push(glua.LNil)
	}
	return 1
}

func (vm *VM) ngxNewIndex(L *glua.LState) int {
	switch k := L.CheckString(2); k {
	case "ctx":
		t, ok := L.Get(3).(*glua.LTable)
		if !ok {
			L.RaiseError("ngx.ctx must be a table")
		}
		vm.ngxCtx = t
	case "status":
		code := L.CheckInt(3)
		switch {
		case vm.c != nil && vm.c.Response != nil && vm.phase == phaseHeaderFilter:
			vm.c.Response.SetStatus(code)
		case vm.phase.requestPhase():
			vm.status = code
		default:
			L.RaiseError("attempt to set ngx.status after sending out response headers")
		}
	default:
		L.RawSet(L.CheckTable(1), glua.LString(k), L.Get(3))
	}
	return 0
}

// requestCtx is ngx.ctx: one table per request, created on first use. Its
// api_ctx (APISIX's ctx) is served by a per-VM metatable, so a request
// whose scripts never touch ngx.ctx does not build it.
func (vm *VM) requestCtx() *glua.LTable {
	if vm.ngxCtx == nil {
		vm.ngxCtx = vm.L.CreateTable(0, 4)
		vm.L.SetMetatable(vm.ngxCtx, vm.ngxCtxMeta())
	}
	return vm.ngxCtx
}

func (vm *VM) ngxCtxMeta() *glua.LTable {
	if mt := vm.ngxCtxMT; mt != nil {
		return mt
	}
	L := vm.L
	mt := L.CreateTable(0, 1)
	mt.RawSetString("__index", L.NewFunction(func(L *glua.LState) int {
		if k, _ := L.Get(2).(glua.LString); k == "api_ctx" {
			L.Push(vm.requestAPICtx())
			return 1
		}
		L.Push(glua.LNil)
		return 1
	}))
	vm.ngxCtxMT = mt
	return mt
}

func (vm *VM) currentStatus() int {
	switch {
	case vm.c == nil:
		return 0
	case vm.phase == phaseLog:
		return vm.c.Served.Status
	case vm.c.Response != nil:
		return vm.c.Response.Status()
	}
	return vm.status
}

func (vm *VM) request(L *glua.LState) plugin.Request {
	if vm.c == nil || vm.c.Request == nil {
		L.RaiseError("no request in this context (%s)", vm.phase)
	}
	return vm.c.Request
}

// requestWritable is request for the functions that change the request:
// after it went upstream they only fail.
func (vm *VM) requestWritable(L *glua.LState, api string) plugin.Request {
	if !vm.phase.requestPhase() {
		L.RaiseError("API disabled in the context of %s (ngx.req.%s)", vm.phase, api)
	}
	return vm.request(L)
}

// ngx.var

func (vm *VM) varIndex(L *glua.LState) int {
	name := L.CheckString(2)
	if v, ok := vm.varLookup(name); ok {
		L.Push(glua.LString(v))
	} else {
		L.Push(glua.LNil)
	}
	return 1
}

func (vm *VM) varNewIndex(L *glua.LState) int {
	name := L.CheckString(2)
	if vm.c == nil {
		L.RaiseError("ngx.var.%s cannot be set here (%s)", name, vm.phase)
	}
	v := L.Get(3)
	val := ""
	if v != glua.LNil {
		val = glua.LVAsString(v)
	}
	switch name {
	case "args", "query_string":
		vm.requestWritable(L, "var.args").SetRawQuery(val)
	case "uri", "request_uri", "host", "remote_addr", "request_method", "scheme", "server_port", "status",
		"upstream_addr", "request_body":
		L.RaiseError("variable \"%s\" not changeable", name)
	default:
		// A user variable, readable by later phases and by log_format.
		vm.c.Set(name, val)
	}
	return 0
}

// ngx.header

// headerName turns ngx.header's Lua keys into header names: underscores
// become hyphens (ngx.header.content_type).
func headerName(k string) string {
	if strings.IndexByte(k, '_') < 0 {
		return k
	}
	return strings.ReplaceAll(k, "_", "-")
}

func (vm *VM) headerIndex(L *glua.LState) int {
	name := headerName(L.CheckString(2))
	var v string
	switch {
	case vm.c != nil && vm.c.Response != nil && vm.phase != phaseLog:
		// A repeated header reads as an array, as in OpenResty.
		if hl, ok := vm.c.Response.(headerLister); ok {
			L.Push(headerValue(L, hl, name))
			return 1
		}
		v = vm.c.Response.Header(name)
	case vm.phase == phaseLog && vm.c != nil:
		v, _ = vm.c.Var("sent_http_" + strings.ToLower(strings.ReplaceAll(name, "-", "_")))
	default:
		for _, h := range vm.exitHdrs {
			if strings.EqualFold(h.Name, name) {
				v = h.Value
				break
			}
		}
	}
	if v == "" {
		L.Push(glua.LNil)
	} else {
		L.Push(glua.LString(v))
	}
	return 1
}

func (vm *VM) headerNewIndex(L *glua.LState) int {
	name := headerName(L.CheckString(2))
	vm.setResponseHeader(L, name, L.Get(3), false)
	return 0
}

// setResponseHeader implements ngx.header[name] = value (and
// core.response.set_header/add_header): nil removes, a table sets several
// values.
func (vm *VM) setResponseHeader(L *glua.LState, name string, v glua.LValue, add bool) {
	var values []string
	switch t := v.(type) {
	case *glua.LNilType:
	case *glua.LTable:
		for i := 1; i <= t.Len(); i++ {
			values = append(values, luaString(t.RawGetInt(i)))
		}
	default:
		values = []string{luaString(v)}
	}
	switch {
	case vm.c != nil && vm.c.Response != nil && vm.phase == phaseHeaderFilter:
		r := vm.c.Response
		if !add {
			r.DelHeader(name)
		}
		for _, s := range values {
			r.AddHeader(name, s)
		}
	case vm.phase.requestPhase():
		if !add {
			out := vm.exitHdrs[:0]
			for _, h := range vm.exitHdrs {
				if !strings.EqualFold(h.Name, name) {
					out = append(out, h)
				}
			}
			vm.exitHdrs = out
		}
		for _, s := range values {
			vm.exitHdrs = append(vm.exitHdrs, plugin.Header{Name: name, Value: s})
		}
	default:
		L.RaiseError("attempt to set ngx.header.HEADER after sending out response headers")
	}
}

// pendingHeaders adds to c.Response the headers request-phase functions set
// with ngx.header while the request went on, once (every Lua plugin of the
// request shares the VM). As in nginx, where they sit in headers_out before
// the upstream's fields are appended, the script's values come first and
// the response's own follow, except Content-Type, where the response's
// value wins.
func pendingHeaders(c *plugin.Ctx) {
	if c.Response == nil {
		return
	}
	var hs []plugin.Header
	var vm *VM
	if v, ok := c.Get(ctxKey); ok && v != nil {
		vm, _ = v.(*VM)
	}
	if vm != nil {
		hs = vm.exitHdrs
	} else if v, ok := c.Get(pendingKey); ok && v != nil {
		// Left by a VM released after its request phase (release.go);
		// emptied below, kept in c until the request finishes.
		if p, ok := v.(*pendingHeaderList); ok {
			hs = p.h
			defer func() { clear(p.h); p.h = p.h[:0] }()
		}
	}
	if len(hs) == 0 {
		return
	}
	r := c.Response
	for i, h := range hs {
		if seenBefore(hs[:i], h.Name) {
			continue // added with the first field of its name
		}
		if strings.EqualFold(h.Name, "Content-Type") && r.Header("Content-Type") != "" {
			continue
		}
		var up []string
		if r.Header(h.Name) != "" {
			if hl, ok := r.(headerLister); ok {
				hl.EachHeader(func(n, v string) {
					if strings.EqualFold(n, h.Name) {
						up = append(up, v)
					}
				})
			} else {
				up = []string{r.Header(h.Name)}
			}
			r.DelHeader(h.Name)
		}
		for _, o := range hs[i:] {
			if strings.EqualFold(o.Name, h.Name) {
				r.AddHeader(o.Name, o.Value)
			}
		}
		for _, v := range up {
			r.AddHeader(h.Name, v)
		}
	}
	if vm != nil {
		clear(vm.exitHdrs)
		vm.exitHdrs = vm.exitHdrs[:0]
	}
}

func seenBefore(hs []plugin.Header, name string) bool {
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) {
			return true
		}
	}
	return false
}

// ngx.arg (body_filter)

func (vm *VM) argIndex(L *glua.LState) int {
	if vm.phase != phaseBodyFilter {
		L.Push(glua.LNil)
		return 1
	}
	switch L.CheckInt(2) {
	case 1:
		if vm.chunkSet {
			L.Push(glua.LString(vm.newChunk))
		} else {
			L.Push(glua.LString(vm.chunk))
		}
	case 2:
		L.Push(glua.LBool(vm.eof))
	default:
		L.Push(glua.LNil)
	}
	return 1
}

func (vm *VM) argNewIndex(L *glua.LState) int {
	if vm.phase != phaseBodyFilter {
		L.RaiseError("ngx.arg can only be set in body_filter")
	}
	switch L.CheckInt(2) {
	case 1:
		v := L.Get(3)
		vm.chunkSet = true
		switch t := v.(type) {
		case *glua.LNilType:
			vm.newChunk = vm.newChunk[:0]
		case *glua.LTable:
			vm.newChunk = appendOutput(L, vm.newChunk[:0], t, 3)
		default:
			vm.newChunk = append(vm.newChunk[:0], glua.LVAsString(v)...)
		}
	case 2:
		if glua.LVAsBool(L.Get(3)) {
			vm.eof, vm.truncated = true, true
		}
	default:
		L.RaiseError("ngx.arg: bad index")
	}
	return 0
}

// ngx.say / ngx.print

func (vm *VM) output(L *glua.LState, api string, newline bool) int {
	if !vm.phase.requestPhase() {
		L.RaiseError("API disabled in the context of %s (ngx.%s)", vm.phase, api)
	}
	for i := 1; i <= L.GetTop(); i++ {
		vm.out = appendOutput(L, vm.out, L.Get(i), i)
	}
	if newline {
		vm.out = append(vm.out, '\n')
	}
	if len(vm.out) > MaxStringBytes {
		L.RaiseError("ngx.%s: response body larger than %d bytes", api, MaxStringBytes)
	}
	L.Push(glua.LNumber(1))
	return 1
}

// appendOutput formats a value as ngx.print does: strings and numbers as
// such, nil/true/false/ngx.null by name, arrays element by element.
func appendOutput(L *glua.LState, b []byte, v glua.LValue, arg int) []byte {
	switch t := v.(type) {
	case glua.LString:
		return append(b, t...)
	case glua.LNumber:
		return appendNumber(b, t)
	case *glua.LNilType:
		return append(b, "nil"...)
	case glua.LBool:
		if t {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	case *glua.LTable:
		n := t.Len()
		count := 0
		t.ForEach(func(_, _ glua.LValue) { count++ })
		if count != n {
			L.ArgError(arg, "non-array table found")
		}
		for i := 1; i <= n; i++ {
			b = appendOutput(L, b, t.RawGetInt(i), arg)
		}
		return b
	}
	if v == null(L) {
		return append(b, "null"...)
	}
	L.ArgError(arg, "string, number, boolean, nil, ngx.null, or array table expected, got "+v.Type().String())
	return b
}

// null is ngx.null (set by luangx), or nil when it is not installed.
func null(L *glua.LState) glua.LValue {
	ngx, ok := L.GetGlobal("ngx").(*glua.LTable)
	if !ok {
		return nil
	}
	if v := ngx.RawGetString("null"); v != glua.LNil {
		return v
	}
	return nil
}

// ngx.exit / ngx.redirect

func (vm *VM) ngxExit(L *glua.LState) int {
	code := L.CheckInt(1)
	switch {
	case vm.phase.requestPhase():
	case vm.phase == phaseHeaderFilter || vm.phase == phaseBodyFilter:
		// Filters cannot yield in lua-nginx-module: ngx.exit records the
		// code and returns, and the script goes on (the response too).
		vm.exiting, vm.exitCode = true, code
		return 0
	default:
		L.RaiseError("API disabled in the context of %s (ngx.exit)", vm.phase)
	}
	vm.exiting, vm.exitCode = true, code
	L.Error(vm.exitSentinel, 0)
	return 0
}

func (vm *VM) ngxRedirect(L *glua.LState) int {
	if !vm.phase.requestPhase() {
		L.RaiseError("API disabled in the context of %s (ngx.redirect)", vm.phase)
	}
	uri := L.CheckString(1)
	code := L.OptInt(2, http.StatusFound)
	switch code {
	case 301, 302, 303, 307, 308:
	default:
		L.RaiseError("only ngx.HTTP_MOVED_TEMPORARILY, ngx.HTTP_MOVED_PERMANENTLY, ngx.HTTP_PERMANENT_REDIRECT, ngx.HTTP_SEE_OTHER, and ngx.HTTP_TEMPORARY_REDIRECT are allowed")
	}
	vm.setResponseHeader(L, "Location", glua.LString(uri), false)
	vm.exiting, vm.exitCode = true, code
	L.Error(vm.exitSentinel, 0)
	return 0
}

// ngx.log

// logAt logs the arguments from index first on, concatenated as ngx.log
// does, with the script position.
func (vm *VM) logAt(level int, L *glua.LState, first int) {
	log := vm.logger()
	var sb strings.Builder
	for i := first; i <= L.GetTop(); i++ {
		v := L.Get(i)
		if v == null(L) {
			sb.WriteString("null")
			continue
		}
		if n, ok := v.(glua.LNumber); ok {
			sb.Write(appendNumber(nil, n))
			continue
		}
		sb.WriteString(glua.LVAsString(L.ToStringMeta(v)))
	}
	where := strings.TrimSuffix(L.Where(1), ":")
	msg := sb.String()
	switch {
	case level <= levelErr:
		log.Error(msg, "lua", where)
	case level == levelWarn:
		log.Warn(msg, "lua", where)
	case level == levelDebug:
		log.Debug(msg, "lua", where)
	default:
		log.Info(msg, "lua", where)
	}
}

// ngx.req

func (vm *VM) reqSetMethod(L *glua.LState) int {
	m, ok := methods[L.CheckInt(1)]
	if !ok {
		L.ArgError(1, "unsupported HTTP method: "+L.Get(1).String())
	}
	vm.requestWritable(L, "set_method").SetMethod(m)
	return 0
}

func (vm *VM) reqSetURIArgs(L *glua.LState) int {
	r := vm.requestWritable(L, "set_uri_args")
	switch v := L.Get(1).(type) {
	case glua.LString:
		r.SetRawQuery(string(v))
	case *glua.LTable:
		r.SetRawQuery(encodeArgs(v))
	default:
		L.ArgError(1, "string or table expected")
	}
	return 0
}

func (vm *VM) reqSetURI(L *glua.LState) int {
	uri := L.CheckString(1)
	if uri == "" {
		L.ArgError(1, "uri must not be empty")
	}
	if L.OptBool(2, false) {
		L.RaiseError("ngx.req.set_uri: jump is not supported by sluice (routes are not re-matched)")
	}
	r := vm.requestWritable(L, "set_uri")
	r.SetPath((&url.URL{Path: uri}).EscapedPath())
	return 0
}

func (vm *VM) readBody(L *glua.LState) {
	r := vm.requestWritable(L, "read_body")
	if vm.bodyRead {
		return
	}
	b, err := r.ReadBody(maxBodyBytes)
	vm.bodyRead = true
	if err == plugin.ErrBodyTooLarge {
		vm.bodyBig = true
		return
	}
	if err != nil {
		L.RaiseError("failed to read request body: %s", err.Error())
	}
	vm.body = b
}

func (vm *VM) reqGetPostArgs(L *glua.LState) int {
	if !vm.bodyRead {
		L.RaiseError("request body not read yet: call ngx.req.read_body() first")
	}
	if vm.bodyBig {
		L.Push(glua.LNil)
		L.Push(glua.LString("request body in temp file not supported"))
		return 2
	}
	ct := vm.request(L).Header("Content-Type")
	if !strings.HasPrefix(strings.ToLower(ct), "application/x-www-form-urlencoded") {
		L.Push(L.NewTable())
		return 1
	}
	L.Push(vm.decodeArgs(L, string(vm.body), L.OptInt(1, 100)))
	return 1
}

func (vm *VM) reqSetHeader(L *glua.LState) int {
	r := vm.requestWritable(L, "set_header")
	name := L.CheckString(1)
	switch v := L.Get(2).(type) {
	case *glua.LNilType:
		r.DelHeader(name)
	case *glua.LTable:
		r.DelHeader(name)
		for i := 1; i <= v.Len(); i++ {
			r.AddHeader(name, luaString(v.RawGetInt(i)))
		}
	default:
		r.SetHeader(name, luaString(v))
	}
	return 0
}

// headerLister is implemented by the engines' requests and responses
// (internal/proxy's EachHeader): every field in order, as plugins left it.
// Without it, ngx.req.get_headers returns a table that answers lookups by
// name but cannot be iterated.
type headerLister interface {
	EachHeader(fn func(name, value string))
}

// headerValue is a response header as ngx.header reads it: nil, a string,
// or an array when the field is repeated.
func headerValue(L *glua.LState, hl headerLister, name string) glua.LValue {
	var v glua.LValue = glua.LNil
	hl.EachHeader(func(n, val string) {
		if !strings.EqualFold(n, name) {
			return
		}
		switch old := v.(type) {
		case *glua.LNilType:
			v = glua.LString(val)
		case *glua.LTable:
			old.Append(glua.LString(val))
		default:
			arr := L.CreateTable(2, 0)
			arr.Append(old)
			arr.Append(glua.LString(val))
			v = arr
		}
	})
	return v
}

// reqGetHeaders is ngx.req.get_headers([max_headers[, raw]]): a table of
// the request's fields, keys lower-cased (as sent with raw), repeated
// fields as arrays, at most max_headers fields (default 100, 0: all) with
// "truncated" as second result when some were left out.
func (vm *VM) reqGetHeaders(L *glua.LState) int {
	r := vm.request(L)
	max := L.OptInt(1, 100)
	raw := L.OptBool(2, false)
	t := L.CreateTable(0, 8)
	hl, listed := r.(headerLister)
	truncated := false
	if listed {
		n := 0
		hl.EachHeader(func(name, value string) {
			if max > 0 && n >= max {
				truncated = true
				return
			}
			n++
			if !raw {
				name = strings.ToLower(name)
			}
			k := glua.LString(name)
			switch old := t.RawGet(k).(type) {
			case *glua.LNilType:
				t.RawSet(k, glua.LString(value))
			case *glua.LTable:
				old.Append(glua.LString(value))
			default:
				arr := L.CreateTable(2, 0)
				arr.Append(old)
				arr.Append(glua.LString(value))
				t.RawSet(k, arr)
			}
		})
	}
	if !raw {
		// Lookups by any case, with underscores for hyphens, as OpenResty's
		// metamethod allows (headers["Content-Type"], headers.user_agent).
		L.SetMetatable(t, vm.headersMeta(listed))
	}
	L.Push(t)
	if truncated {
		L.Push(glua.LString("truncated"))
		return 2
	}
	return 1
}

// headersMeta returns the metatable of get_headers' tables, built once per
// VM: __index normalises the key; for a request that cannot list its
// headers it also asks the request.
func (vm *VM) headersMeta(listed bool) *glua.LTable {
	slot := &vm.headersMetaListed
	if !listed {
		slot = &vm.headersMetaLookup
	}
	if mt := *slot; mt != nil {
		return mt
	}
	L := vm.L
	mt := L.CreateTable(0, 1)
	mt.RawSetString("__index", L.NewFunction(func(L *glua.LState) int {
		k, ok := L.Get(2).(glua.LString)
		if !ok {
			L.Push(glua.LNil)
			return 1
		}
		name := strings.ToLower(strings.ReplaceAll(string(k), "_", "-"))
		if v := L.CheckTable(1).RawGetString(name); v != glua.LNil || listed {
			L.Push(v)
			return 1
		}
		if vm.c == nil || vm.c.Request == nil {
			L.Push(glua.LNil)
			return 1
		}
		switch vals := vm.c.Request.HeaderValues(name); len(vals) {
		case 0:
			L.Push(glua.LNil)
		case 1:
			L.Push(glua.LString(vals[0]))
		default:
			arr := L.CreateTable(len(vals), 0)
			for _, s := range vals {
				arr.Append(glua.LString(s))
			}
			L.Push(arr)
		}
		return 1
	}))
	*slot = mt
	return mt
}

// luaString converts a value as Lua's tostring would, numbers formatted as
// LuaJIT does (%.14g) rather than as gopher-lua does.
func luaString(v glua.LValue) string {
	if n, ok := v.(glua.LNumber); ok {
		// Integers (most header values) straight to a string: one
		// allocation, none below 100, where appendNumber takes two.
		if f := float64(n); f == math.Trunc(f) && math.Abs(f) < 1e14 {
			return strconv.FormatInt(int64(f), 10)
		}
		return string(appendNumber(nil, n))
	}
	return glua.LVAsString(v)
}

// appendNumber formats n as LuaJIT's tostring: "%.14g", inf and nan by
// those names (1e15 is "1e+15", 1/3 is "0.33333333333333").
func appendNumber(b []byte, n glua.LNumber) []byte {
	f := float64(n)
	switch {
	case math.IsInf(f, 1):
		return append(b, "inf"...)
	case math.IsInf(f, -1):
		return append(b, "-inf"...)
	case math.IsNaN(f):
		return append(b, "nan"...)
	case f == math.Trunc(f) && math.Abs(f) < 1e14:
		return strconv.AppendInt(b, int64(f), 10)
	}
	return strconv.AppendFloat(b, f, 'g', 14, 64)
}

// decodeArgs parses a query string as ngx.req.get_uri_args does: "+" is a
// space, a key without "=" is true, repeated keys make an array; at most max
// arguments (0: no limit).
func (vm *VM) decodeArgs(L *glua.LState, q string, max int) *glua.LTable {
	t := L.CreateTable(0, 4)
	n := 0
	for q != "" {
		var part string
		part, q, _ = strings.Cut(q, "&")
		if part == "" {
			continue
		}
		if max > 0 && n >= max {
			break
		}
		n++
		k, v, hasEq := strings.Cut(part, "=")
		key := glua.LString(unescapeArg(k))
		var val glua.LValue = glua.LTrue
		if hasEq {
			val = glua.LString(unescapeArg(v))
		}
		if key == "" {
			continue
		}
		switch old := t.RawGet(key).(type) {
		case *glua.LNilType:
			t.RawSet(key, val)
		case *glua.LTable:
			old.Append(val)
		default:
			arr := L.NewTable()
			arr.Append(old)
			arr.Append(val)
			t.RawSet(key, arr)
		}
	}
	return t
}

func unescapeArg(s string) string {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s
	}
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return strings.ReplaceAll(s, "+", " ")
}

// encodeArgs is ngx.encode_args for ngx.req.set_uri_args: keys sorted for a
// stable result, true as a bare key, false omitted, arrays repeated.
func encodeArgs(t *glua.LTable) string {
	type pair struct{ k, v string }
	var ps []pair
	add := func(k string, v glua.LValue) {
		switch x := v.(type) {
		case glua.LBool:
			if x {
				ps = append(ps, pair{escapeArg(k), ""})
			}
		default:
			ps = append(ps, pair{escapeArg(k), "=" + escapeArg(glua.LVAsString(v))})
		}
	}
	t.ForEach(func(k, v glua.LValue) {
		ks := glua.LVAsString(k)
		if arr, ok := v.(*glua.LTable); ok {
			for i := 1; i <= arr.Len(); i++ {
				add(ks, arr.RawGetInt(i))
			}
			return
		}
		add(ks, v)
	})
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].k < ps[j].k })
	var sb strings.Builder
	for i, p := range ps {
		if i > 0 {
			sb.WriteByte('&')
		}
		sb.WriteString(p.k)
		sb.WriteString(p.v)
	}
	return sb.String()
}

// escapeArg escapes as ngx.escape_uri: everything but letters, digits and
// "-._~".
func escapeArg(s string) string {
	const hex = "0123456789ABCDEF"
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			if b != nil {
				b = append(b, c)
			}
			continue
		}
		if b == nil {
			b = append(make([]byte, 0, len(s)+8), s[:i]...)
		}
		b = append(b, '%', hex[c>>4], hex[c&15])
	}
	if b == nil {
		return s
	}
	return string(b)
}
