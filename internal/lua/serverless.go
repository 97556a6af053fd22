package lua

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	glua "github.com/yuin/gopher-lua"

	"github.com/sluicegw/sluice/plugin"
)

// ServerlessConfig is the configuration of APISIX's serverless-pre-function
// and serverless-post-function.
type ServerlessConfig struct {
	// Phase is where the functions run: rewrite, access (default),
	// before_proxy, header_filter, body_filter or log.
	Phase string `json:"phase"`
	// Functions are Lua chunks that each return a function, called as
	// fn(conf, ctx) in order.
	Functions []string `json:"functions"`

	scripts []*Script // compiled by Validate
}

// NewServerlessConfig returns APISIX's defaults.
func NewServerlessConfig() *ServerlessConfig { return &ServerlessConfig{Phase: "access"} }

var phasesByName = map[string]phase{
	"rewrite": phaseRewrite, "access": phaseAccess, "before_proxy": phaseBeforeProxy,
	"header_filter": phaseHeaderFilter, "body_filter": phaseBodyFilter, "log": phaseLog,
	"balancer": phaseBeforeProxy, // APISIX's name before 2.12
}

// Validate checks the phase and compiles every function; a syntax error
// names the function and its line.
func (c *ServerlessConfig) Validate() error {
	if _, ok := phasesByName[c.Phase]; !ok {
		return fmt.Errorf("phase: must be one of rewrite, access, before_proxy, header_filter, body_filter, log; got %q", c.Phase)
	}
	if len(c.Functions) == 0 {
		return errors.New("functions: must have at least 1 item")
	}
	scripts := make([]*Script, len(c.Functions))
	for i, src := range c.Functions {
		name := fmt.Sprintf("functions[%d]", i)
		s, err := Compile(name, src)
		if err != nil {
			return fmt.Errorf("%s: failed to compile: %w", name, err)
		}
		scripts[i] = s
	}
	c.scripts = scripts
	return nil
}

// ServerlessSchema is the plugins' JSON Schema, as APISIX's.
func ServerlessSchema() map[string]any {
	return map[string]any{
		"type": "object",
		"properties": map[string]any{
			"phase": map[string]any{"type": "string", "default": "access",
				"enum": []any{"rewrite", "access", "header_filter", "body_filter", "log", "before_proxy"}},
			"functions": map[string]any{"type": "array", "minItems": 1, "items": map[string]any{"type": "string"}},
		},
		"required": []any{"functions"},
	}
}

// NewServerless builds a serverless plugin instance: it loads every
// function once in a VM (rejecting a chunk that fails or does not return a
// function) and returns a type implementing only the configured phase, so
// the gateway runs it nowhere else.
func NewServerless(name string, cfg plugin.Config, deps plugin.Deps) (any, error) {
	c := cfg.(*ServerlessConfig)
	if c.scripts == nil {
		if err := c.Validate(); err != nil {
			return nil, err
		}
	}
	limit, err := timeLimit(deps.Attr)
	if err != nil {
		return nil, err
	}
	rt := Shared(deps.Lasting, deps.SharedDicts, deps.Logger(name))
	for _, s := range c.scripts {
		if err := rt.CheckFunction(s, limit); err != nil {
			return nil, fmt.Errorf("%s: %w", s.Name, err)
		}
	}
	b := &serverless{rt: rt, scripts: c.scripts, limit: limit, log: deps.Logger(name),
		conf: map[string]any{"phase": c.Phase, "functions": c.Functions}}
	switch phasesByName[c.Phase] {
	case phaseRewrite:
		return &rewriteFns{b}, nil
	case phaseAccess:
		return &accessFns{b}, nil
	case phaseBeforeProxy:
		return &beforeProxyFns{b}, nil
	case phaseHeaderFilter:
		return &headerFilterFns{b}, nil
	case phaseBodyFilter:
		return &bodyFilterFns{b}, nil
	default:
		return &logFns{b}, nil
	}
}

// timeLimit reads plugin_attr.<plugin>.time_limit (seconds).
func timeLimit(attr map[string]any) (time.Duration, error) {
	v, ok := attr["time_limit"]
	if !ok {
		return DefaultTimeLimit, nil
	}
	f, ok := v.(float64)
	if !ok || f <= 0 {
		return 0, fmt.Errorf("plugin_attr: time_limit: must be a positive number of seconds, got %v", v)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// serverless is what every phase type shares.
type serverless struct {
	rt      *Runtime
	scripts []*Script
	limit   time.Duration
	log     *slog.Logger
	conf    map[string]any
}

// run calls the functions in order in phase ph; the first that returns a
// code or a body stops the rest and its result is returned. err is a failed
// script (logged here).
func (s *serverless) run(c *plugin.Ctx, ph phase) (code, body glua.LValue, err error) {
	vm := s.rt.bind(c)
	vm.phase, vm.log = ph, s.log
	for _, sc := range s.scripts {
		fn, err := vm.function(sc, s.limit)
		if err != nil {
			s.fail(c, ph, err)
			return glua.LNil, glua.LNil, err
		}
		code, body, err = vm.call(fn, s.limit, vm.confTable(s), vm.requestAPICtx())
		if err != nil {
			s.fail(c, ph, err)
			return glua.LNil, glua.LNil, err
		}
		if vm.exiting || code != glua.LNil || body != glua.LNil {
			return code, body, nil
		}
	}
	return glua.LNil, glua.LNil, nil
}

func (s *serverless) fail(c *plugin.Ctx, ph phase, err error) {
	s.log.Error("lua function failed", "phase", ph.String(), "route_id", c.RouteID, "error", err.Error())
}

// confTable is the plugin's conf as a Lua table, built once per VM.
func (vm *VM) confTable(s *serverless) glua.LValue {
	if vm.memoOwner == s {
		return vm.memoConf
	}
	t, ok := vm.cache[s]
	if !ok {
		t = goToLua(vm.L, s.conf)
		vm.remember(s, t)
	}
	vm.memoOwner, vm.memoConf = s, t
	return t
}

// requestAPICtx is APISIX's ctx argument: per request, with ctx.var, and
// reachable as ngx.ctx.api_ctx.
func (vm *VM) requestAPICtx() glua.LValue {
	if vm.apiCtx != nil {
		return vm.apiCtx
	}
	// An empty table whose fields (var, route_id...) are served by a
	// per-VM metatable: setting them here took a Go map and most of a
	// short function's allocations. Fields a script sets are its own.
	t := vm.L.CreateTable(0, 0)
	vm.L.SetMetatable(t, vm.apiCtxMeta())
	vm.apiCtx = t
	return t
}

// apiCtxMeta is the metatable of the APISIX ctx, built once per VM.
func (vm *VM) apiCtxMeta() *glua.LTable {
	if mt := vm.apiMeta; mt != nil {
		return mt
	}
	L := vm.L
	mt := L.CreateTable(0, 1)
	mt.RawSetString("__index", L.NewFunction(func(L *glua.LState) int {
		var v glua.LValue = glua.LNil
		c := vm.c
		str := func(s string) {
			if s != "" {
				v = glua.LString(s)
			}
		}
		switch k, _ := L.Get(2).(glua.LString); k {
		case "var":
			v = vm.ngx.RawGetString("var")
		case "route_id":
			if c != nil {
				str(c.RouteID)
			}
		case "service_id":
			if c != nil {
				str(c.ServiceID)
			}
		case "route_name":
			if c != nil {
				str(c.RouteName)
			}
		case "consumer_name":
			if c != nil && c.Consumer != nil {
				str(c.Consumer.Username)
			}
		}
		L.Push(v)
		return 1
	}))
	// A field the script adds marks the table as used: reset then
	// drops it instead of keeping it for the next request.
	mt.RawSetString("__newindex", L.NewFunction(func(L *glua.LState) int {
		vm.apiCtxUsed = true
		L.RawSet(L.CheckTable(1), L.Get(2), L.Get(3))
		return 0
	}))
	vm.apiMeta = mt
	return mt
}

// requestPhase runs a request-side phase and turns what the functions did
// into an Exit: a returned code, ngx.exit with a status, ngx.redirect, or
// output from ngx.say/ngx.print. A failed script is a 500.
func (s *serverless) requestPhase(c *plugin.Ctx, ph phase) *plugin.Exit {
	code, body, err := s.run(c, ph)
	if err != nil {
		return internalError()
	}
	e, err := s.rt.bind(c).requestExit(code, body)
	if err != nil {
		s.fail(c, ph, err)
		return internalError()
	}
	if e == nil {
		s.rt.releaseIdle(c)
	}
	return e
}

// requestExit turns what a request-phase function did into an Exit: the
// code and body it returned, ngx.exit with a status, ngx.redirect, or
// output from ngx.say/ngx.print. nil: the request goes on. err is a body
// that could not be encoded.
func (vm *VM) requestExit(code, body glua.LValue) (*plugin.Exit, error) {
	status := 0
	if n, ok := code.(glua.LNumber); ok {
		// APISIX: core.response.exit(code, body).
		if err := vm.appendBody(vm.L, body); err != nil {
			return nil, err
		}
		status = int(n)
	} else if code != glua.LNil || body != glua.LNil {
		// A body without a code: printed, then the request ends with it.
		if code != glua.LNil {
			_ = vm.appendBody(vm.L, code)
		}
		if err := vm.appendBody(vm.L, body); err != nil {
			return nil, err
		}
	}
	if status == 0 && vm.exiting {
		vm.exiting = false
		switch {
		case vm.exitCode >= 200:
			status = vm.exitCode
		case vm.exitCode == ngxError:
			return internalError(), nil
		}
	}
	if status == 0 && len(vm.out) > 0 {
		// Output was sent: in nginx the response has begun, so the request
		// cannot go upstream any more.
		status = vm.status
		if status == 0 {
			status = 200
		}
	}
	if status == 0 {
		return nil, nil
	}
	return vm.exit(status), nil
}

// exit builds the response of an ended request from the buffered output and
// the headers set with ngx.header.
func (vm *VM) exit(status int) *plugin.Exit {
	e := &plugin.Exit{Status: status, Headers: append([]plugin.Header(nil), vm.exitHdrs...)}
	// Sent with this response: not again by pendingHeaders.
	clear(vm.exitHdrs)
	vm.exitHdrs = vm.exitHdrs[:0]
	hasType := false
	for _, h := range e.Headers {
		if strings.EqualFold(h.Name, "Content-Type") {
			hasType = true
		}
	}
	switch {
	case len(vm.out) > 0:
		// Copied: the VM, and its buffer, go back to the pool after the
		// log phase.
		e.Body = append([]byte(nil), vm.out...)
		if !hasType {
			e.Headers = append(e.Headers, plugin.Header{Name: "Content-Type", Value: "text/plain"})
		}
	case hasStatusPage(status):
		// nginx's own page for a status without a body.
		e.Body = statusPage(status)
		if !hasType {
			e.Headers = append(e.Headers, plugin.Header{Name: "Content-Type", Value: "text/html"})
		}
	}
	return e
}

func internalError() *plugin.Exit {
	return &plugin.Exit{Status: 500, Headers: []plugin.Header{{Name: "Content-Type", Value: "text/html"}}, Body: page500}
}

var page500 = statusPage(500)

// statusPage is nginx's default error page for status.
func statusPage(status int) []byte {
	title := fmt.Sprintf("%d %s", status, statusText(status))
	return []byte("<html>\r\n<head><title>" + title + "</title></head>\r\n<body>\r\n<center><h1>" + title +
		"</h1></center>\r\n<hr><center>sluice</center>\r\n</body>\r\n</html>\r\n")
}

// hasStatusPage reports the statuses nginx has an error page for
// (ngx_http_error_pages); for the others it sends no body.
func hasStatusPage(status int) bool {
	switch {
	case status >= 301 && status <= 308:
		return status != 304 && status != 305 && status != 306
	case status >= 400 && status <= 416:
		return status != 407
	case status == 421 || status == 429:
		return true
	case status >= 500 && status <= 507:
		return status != 506
	}
	return false
}

// statusText follows nginx's reason phrases where they differ from Go's.
func statusText(status int) string {
	switch status {
	case 302:
		return "Found"
	case 401:
		return "Authorization Required"
	case 405:
		return "Not Allowed"
	case 408:
		return "Request Time-out"
	case 413:
		return "Request Entity Too Large"
	case 414:
		return "Request-URI Too Large"
	case 416:
		return "Requested Range Not Satisfiable"
	case 503:
		return "Service Temporarily Unavailable"
	case 504:
		return "Gateway Time-out"
	}
	if t := httpStatusText(status); t != "" {
		return t
	}
	return "Unknown"
}

type rewriteFns struct{ *serverless }
type accessFns struct{ *serverless }
type beforeProxyFns struct{ *serverless }
type headerFilterFns struct{ *serverless }
type bodyFilterFns struct{ *serverless }
type logFns struct{ *serverless }

func (p *rewriteFns) Rewrite(c *plugin.Ctx) *plugin.Exit { return p.requestPhase(c, phaseRewrite) }
func (p *accessFns) Access(c *plugin.Ctx) *plugin.Exit   { return p.requestPhase(c, phaseAccess) }
func (p *beforeProxyFns) BeforeProxy(c *plugin.Ctx) *plugin.Exit {
	return p.requestPhase(c, phaseBeforeProxy)
}

// HeaderFilter of the request-phase types adds to the response the headers
// their functions set with ngx.header without ending the request: nginx
// keeps them in headers_out, so they go out with the upstream's response.
func (p *rewriteFns) HeaderFilter(c *plugin.Ctx)     { pendingHeaders(c) }
func (p *accessFns) HeaderFilter(c *plugin.Ctx)      { pendingHeaders(c) }
func (p *beforeProxyFns) HeaderFilter(c *plugin.Ctx) { pendingHeaders(c) }

// HeaderFilter runs the functions over c.Response; errors are logged and
// the response goes on (its head is being sent).
func (p *headerFilterFns) HeaderFilter(c *plugin.Ctx) {
	_, _, _ = p.run(c, phaseHeaderFilter)
	p.rt.bind(c).exiting = false
}

// BodyFilter runs the functions with ngx.arg[1] = chunk and ngx.arg[2] =
// eof; assigning ngx.arg[1] replaces the chunk, ngx.arg[2] = true ends the
// body there.
func (p *bodyFilterFns) BodyFilter(c *plugin.Ctx, chunk []byte, eof bool) []byte {
	return p.rt.bind(c).filterBody(chunk, eof, func() error {
		_, _, err := p.run(c, phaseBodyFilter)
		return err
	})
}

// filterBody runs one body_filter call (run) with ngx.arg[1] = chunk and
// ngx.arg[2] = eof, and returns what to send instead of chunk: the script's
// ngx.arg[1] when it assigned one, else chunk. Once a script ended the body
// (ngx.arg[2] = true), nothing more is sent. Serverless functions and
// custom plugins share it.
func (vm *VM) filterBody(chunk []byte, eof bool, run func() error) []byte {
	if vm.truncated {
		return nil
	}
	vm.chunk, vm.eof, vm.chunkSet = chunk, eof, false
	err := run()
	vm.exiting = false
	vm.chunk = nil
	if err != nil || !vm.chunkSet {
		return chunk
	}
	out := append([]byte(nil), vm.newChunk...)
	vm.newChunk, vm.chunkSet = vm.newChunk[:0], false
	return out
}

// WantsBody: the functions may change any response.
func (p *bodyFilterFns) WantsBody(*plugin.Ctx) bool { return true }

// Log runs the functions after the response was sent.
func (p *logFns) Log(c *plugin.Ctx) { _, _, _ = p.run(c, phaseLog) }

var (
	_ plugin.Rewriter       = (*rewriteFns)(nil)
	_ plugin.HeaderFilterer = (*rewriteFns)(nil)
	_ plugin.HeaderFilterer = (*accessFns)(nil)
	_ plugin.HeaderFilterer = (*beforeProxyFns)(nil)
	_ plugin.Accessor       = (*accessFns)(nil)
	_ plugin.BeforeProxier  = (*beforeProxyFns)(nil)
	_ plugin.HeaderFilterer = (*headerFilterFns)(nil)
	_ plugin.BodyFilterer   = (*bodyFilterFns)(nil)
	_ plugin.BodyWanter     = (*bodyFilterFns)(nil)
	_ plugin.Logger         = (*logFns)(nil)
)
