package lua

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/sluicegw/sluice/internal/pipeline"
	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
	"github.com/sluicegw/sluice/plugin/shdict"
)

// syncBuf is a log destination safe for the tests' goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type env struct {
	rt   *Runtime
	logs *syncBuf
	deps plugin.Deps
}

func newEnv(t testing.TB) *env {
	t.Helper()
	logs := &syncBuf{}
	dicts := shdict.NewRegistry()
	if _, err := dicts.Define("counters", 1<<20); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	lasting := plugin.NewLasting(log)
	return &env{rt: Shared(lasting, dicts, log), logs: logs,
		deps: plugin.Deps{SharedDicts: dicts, Log: log, Lasting: lasting}}
}

// build makes a serverless instance running fns in phase.
func (e *env) build(t testing.TB, phase string, fns ...string) any {
	t.Helper()
	inst, err := e.tryBuild(phase, nil, fns...)
	if err != nil {
		t.Fatalf("building %s %q: %v", phase, fns, err)
	}
	return inst
}

func (e *env) tryBuild(phase string, attr map[string]any, fns ...string) (any, error) {
	cfg := &ServerlessConfig{Phase: phase, Functions: fns}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	deps := e.deps
	deps.Attr = attr
	return NewServerless("serverless-pre-function", cfg, deps)
}

func req(target string) *plugintest.Request { return plugintest.NewRequest("GET", target) }

func upstreamResp(body string) *plugintest.Response {
	return &plugintest.Response{Code: 200, Headers: []plugin.Header{{Name: "Content-Type", Value: "text/plain"}}, Body: []byte(body)}
}

// mustExit runs inst and requires an exit with status; it returns the
// response the client gets.
func mustExit(t *testing.T, inst any, r *plugintest.Request, status int) *plugintest.Response {
	t.Helper()
	res := plugintest.Run(inst, r, nil)
	if res.Exit == nil {
		t.Fatalf("no exit, want %d", status)
	}
	if res.Exit.Status != status {
		t.Fatalf("exit status %d (body %q), want %d", res.Exit.Status, res.Exit.Body, status)
	}
	return res.Response
}

func TestSandboxRejectsForbiddenThingsClearly(t *testing.T) {
	e := newEnv(t)
	cases := []struct{ code, want string }{
		{`os.execute("id")`, "os.execute is not allowed in the sluice Lua sandbox"},
		{`os.exit(1)`, "os.exit is not allowed"},
		{`return os.getenv("HOME")`, "os.getenv is not allowed"},
		{`os.remove("/tmp/x")`, "os.remove is not allowed"},
		{`io.open("/etc/passwd")`, "io.open is not allowed in the sluice Lua sandbox"},
		{`io.popen("id")`, "io.popen is not allowed"},
		{`debug.getinfo(1)`, "debug.getinfo is not allowed"},
		{`dofile("/etc/passwd")`, "dofile is not allowed"},
		{`loadfile("/etc/passwd")`, "loadfile is not allowed"},
		{`package.loadlib("libc.so.6", "system")`, "package.loadlib is not allowed"},
		{`loadstring("\27LuaQ\0")`, "loading binary (bytecode) chunks is not allowed"},
		{`string.dump(function() end)`, "string.dump is not allowed"},
		{`require("socket")`, "module 'socket' not found: the sluice Lua sandbox only provides built-in modules"},
		{`require("io")`, "module 'io' not found"},
		{`require("ffi")`, "module 'ffi' not found"},
		{`string.rep("x", 1e9)`, "string.rep: result larger than"},
		{`ngx.sleep(1)`, "ngx.sleep is not allowed"},
		{`local function f() return f() + 1 end f()`, "stack overflow"},
	}
	for _, tc := range cases {
		t.Run(tc.code, func(t *testing.T) {
			inst := e.build(t, "access", "return function() "+tc.code+" end")
			resp := mustExit(t, inst, req("/"), 500)
			if !bytes.Contains(resp.Body, []byte("500 Internal Server Error")) {
				t.Errorf("body %q", resp.Body)
			}
			if !strings.Contains(e.logs.String(), tc.want) {
				t.Errorf("log does not say %q:\n%s", tc.want, e.logs.String())
			}
		})
	}
}

func TestSandboxAllowsSafeLibraries(t *testing.T) {
	e := newEnv(t)
	inst := e.build(t, "access", `return function()
		local t = {3, 1, 2}
		table.sort(t)
		local ok, err = pcall(error, "caught")
		local core = require("apisix.core")
		ngx.say(table.concat(t, ","), " ", string.upper("abc"), " ", math.floor(2.5), " ",
			type(os.time()), " ", type(os.clock()), " ", os.date("!%Y", 0), " ", tostring(ok), " ",
			type(core.log.info), " ", type(require("table.new")), " ", string.format("%05.1f", 3.14159))
		return ngx.exit(200)
	end`)
	resp := mustExit(t, inst, req("/"), 200)
	if got, want := string(resp.Body), "1,2,3 ABC 2 number number 1970 false function function 003.1\n"; got != want {
		t.Fatalf("body %q, want %q", got, want)
	}
}

func TestInfiniteLoopIsInterruptedAndVMReplaced(t *testing.T) {
	e := newEnv(t)
	inst, err := e.tryBuild("access", map[string]any{"time_limit": 0.05}, "return function(conf, ctx)\n  local n = 0\n  while true do n = n + 1 end\nend")
	if err != nil {
		t.Fatal(err)
	}
	s := inst.(*accessFns).serverless
	for i := 0; i < 3; i++ {
		mustExit(t, inst, req("/"), 500)
		if n := len(s.rt.pool); n != 0 {
			t.Fatalf("an interrupted VM went back to the pool (%d pooled)", n)
		}
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "functions[0]:3: time limit exceeded (50ms)") {
		t.Fatalf("log lacks the position and the limit:\n%s", logs)
	}
	// The gateway goes on: a healthy function on the same runtime works.
	ok := e.build(t, "access", `return function() return 200, "fine" end`)
	if resp := mustExit(t, ok, req("/"), 200); string(resp.Body) != "fine" {
		t.Fatalf("body %q", resp.Body)
	}
	if n := len(s.rt.pool); n != 1 {
		t.Fatalf("%d VMs pooled after a normal request, want 1", n)
	}
}

func TestErrorsCarryTheLineNumber(t *testing.T) {
	e := newEnv(t)
	inst := e.build(t, "rewrite", "return function()\n  local t = nil\n  return t.field\nend")
	mustExit(t, inst, req("/"), 500)
	if logs := e.logs.String(); !strings.Contains(logs, "functions[0]:3:") || !strings.Contains(logs, "phase=rewrite") {
		t.Fatalf("log:\n%s", logs)
	}
	e2 := newEnv(t)
	inst = e2.build(t, "header_filter", "return function()\n\n  error('boom')\nend")
	res := plugintest.Run(inst, req("/"), upstreamResp("x"))
	if res.Response.Code != 200 {
		t.Fatalf("a failing header_filter changed the status to %d", res.Response.Code)
	}
	if logs := e2.logs.String(); !strings.Contains(logs, "functions[0]:3: boom") {
		t.Fatalf("log:\n%s", logs)
	}
}

func TestValidationNamesFunctionAndLuaError(t *testing.T) {
	cfg := &ServerlessConfig{Phase: "access", Functions: []string{"return function() end", "return function(\n  x = = 1 end"}}
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "functions[1]: failed to compile:") || !strings.Contains(err.Error(), "line:2") {
		t.Fatalf("err = %v", err)
	}
	cfg = &ServerlessConfig{Phase: "content", Functions: []string{"return function() end"}}
	if err := cfg.Validate(); err == nil || !strings.HasPrefix(err.Error(), "phase: ") {
		t.Fatalf("err = %v", err)
	}
	cfg = &ServerlessConfig{Phase: "access"}
	if err := cfg.Validate(); err == nil || !strings.HasPrefix(err.Error(), "functions: ") {
		t.Fatalf("err = %v", err)
	}
	e := newEnv(t)
	for src, want := range map[string]string{
		"local count = 1\nprint(count)": "functions[0]: only accept Lua function, the input code type is nil",
		"return 42":                     "functions[0]: only accept Lua function, the input code type is number",
		"error('at load')":              "functions[0]: functions[0]:1: at load",
	} {
		if _, err := e.tryBuild("access", nil, src); err == nil || err.Error() != want {
			t.Errorf("%q: err = %v, want %q", src, err, want)
		}
	}
}

func TestNgxVarAndReq(t *testing.T) {
	e := newEnv(t)
	inst := e.build(t, "access", `return function(conf, ctx)
		local args = ngx.req.get_uri_args()
		local h = ngx.req.get_headers()
		ngx.say(ngx.var.uri, "|", ngx.var.arg_a, "|", ngx.var.http_x_token, "|", tostring(ngx.var.nope),
			"|", ngx.req.get_method(), "|", args.a, "|", tostring(args.flag), "|", table.concat(args.b, ","),
			"|", h["X-Token"], "|", h.x_token, "|", ctx.var.host, "|", conf.phase)
		ngx.exit(200)
	end`)
	r := plugintest.NewRequest("GET", "/p/q?a=1&flag&b=x&b=y+z").WithHeader("X-Token", "tok")
	resp := mustExit(t, inst, r, 200)
	if got, want := string(resp.Body), "/p/q|1|tok|nil|GET|1|true|x,y z|tok|tok|example.com|access\n"; got != want {
		t.Fatalf("body %q, want %q", got, want)
	}
}

func TestNgxReqChangesGoUpstream(t *testing.T) {
	e := newEnv(t)
	inst := e.build(t, "rewrite", `return function()
		ngx.req.set_header("X-Added", "yes")
		ngx.req.set_header("X-Multi", {"a", "b"})
		ngx.req.clear_header("X-Drop")
		ngx.req.set_uri_args({z = "1 2", a = true})
		ngx.req.set_uri("/new path")
		ngx.req.set_method(ngx.HTTP_POST or 8)
		ngx.req.read_body()
		local body = ngx.req.get_body_data()
		local post = ngx.req.get_post_args()
		ngx.req.set_body_data(body .. "&extra=1")
		ngx.var.my_var = "kept-" .. post.k
	end`)
	r := plugintest.NewRequest("GET", "/old").WithHeader("X-Drop", "1").
		WithHeader("Content-Type", "application/x-www-form-urlencoded").WithBody("k=v")
	res := plugintest.Run(inst, r, nil)
	if res.Exit != nil {
		t.Fatalf("exit %d %q; logs:\n%s", res.Exit.Status, res.Exit.Body, e.logs.String())
	}
	if r.Header("X-Added") != "yes" || r.Header("X-Drop") != "" || strings.Join(r.HeaderValues("X-Multi"), ",") != "a,b" {
		t.Errorf("headers %v", r.Headers)
	}
	if r.Q != "a&z=1%202" || r.P != "/new%20path" || r.M != "POST" {
		t.Errorf("query %q path %q method %q", r.Q, r.P, r.M)
	}
	if string(r.Body) != "k=v&extra=1" || !r.BodySet {
		t.Errorf("body %q", r.Body)
	}
	if v, _ := res.Ctx.Var("my_var"); v != "kept-v" {
		t.Errorf("my_var = %q", v)
	}
}

func TestRequestPhaseEndings(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name, fn  string
		status    int
		body      string
		header    string // "Name: value" expected on the exit
		continues bool
	}{
		{name: "say+exit", fn: `ngx.say("hello ", 1, " ", true); ngx.exit(200)`, status: 200, body: "hello 1 true\n", header: "Content-Type: text/plain"},
		{name: "print+status", fn: `ngx.status = 201; ngx.print({"a", {"b"}})`, status: 201, body: "ab"},
		{name: "exit 403 page", fn: `ngx.exit(403)`, status: 403, body: "<center><h1>403 Forbidden</h1></center>", header: "Content-Type: text/html"},
		{name: "return code body", fn: `return 403, "denied"`, status: 403, body: "denied"},
		{name: "return table", fn: `return 401, {message = "no"}`, status: 401, body: `{"message":"no"}` + "\n"},
		{name: "core exit", fn: `local core = require("apisix.core"); core.response.set_header("X-A", "1"); core.response.exit(418, {ok = false})`,
			status: 418, body: `{"ok":false}` + "\n", header: "X-A: 1"},
		{name: "header with exit", fn: `ngx.header["X-Reason"] = "r"; ngx.header.content_type = "application/json"; ngx.say("{}"); return ngx.exit(409)`,
			status: 409, body: "{}\n", header: "Content-Type: application/json"},
		{name: "redirect", fn: `return ngx.redirect("/login", 301)`, status: 301, header: "Location: /login"},
		{name: "exit OK continues", fn: `ngx.exit(0); error("not reached")`, continues: true},
		{name: "pcall cannot catch exit", fn: `pcall(ngx.exit, 404); error("not reached")`, status: 404},
		{name: "exit ERROR", fn: `ngx.exit(-1)`, status: 500},
		{name: "nothing", fn: `local x = 1`, continues: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inst := e.build(t, "access", "return function() "+tc.fn+" end")
			res := plugintest.Run(inst, req("/"), nil)
			if tc.continues {
				if res.Exit != nil {
					t.Fatalf("exit %d %q", res.Exit.Status, res.Exit.Body)
				}
				return
			}
			if res.Exit == nil || res.Exit.Status != tc.status {
				t.Fatalf("exit %+v, want %d; logs:\n%s", res.Exit, tc.status, e.logs.String())
			}
			if !strings.Contains(string(res.Exit.Body), tc.body) {
				t.Errorf("body %q, want %q", res.Exit.Body, tc.body)
			}
			if tc.header != "" {
				name, value, _ := strings.Cut(tc.header, ": ")
				found := false
				for _, h := range res.Exit.Headers {
					found = found || (strings.EqualFold(h.Name, name) && h.Value == value)
				}
				if !found {
					t.Errorf("headers %v lack %q", res.Exit.Headers, tc.header)
				}
			}
		})
	}
}

func TestResponsePhases(t *testing.T) {
	e := newEnv(t)
	hf := e.build(t, "header_filter", `return function()
		ngx.header["X-Seen-Status"] = ngx.status
		ngx.header["X-Type"] = ngx.header.content_type
		ngx.header.content_type = nil
		if ngx.var.arg_teapot then ngx.status = 418 end
	end`)
	res := plugintest.Run(hf, req("/?teapot=1"), upstreamResp("body"))
	r := res.Response
	if r.Header("X-Seen-Status") != "200" || r.Header("X-Type") != "text/plain" || r.Header("Content-Type") != "" || r.Code != 418 {
		t.Fatalf("response %+v", r)
	}

	bf := e.build(t, "body_filter", `return function()
		local chunk, eof = ngx.arg[1], ngx.arg[2]
		ngx.arg[1] = string.upper(chunk) .. (eof and "|eof" or "")
	end`)
	res = plugintest.Run(bf, req("/"), upstreamResp("hello"))
	if got := string(res.Response.Body); got != "HELLO|eof" {
		t.Fatalf("body %q", got)
	}

	lg := e.build(t, "log", `return function()
		ngx.log(ngx.WARN or 5, "logged status=", ngx.var.status, " route=", ngx.var.route_id, " ", nil, " ", true)
		ngx.say("x")
	end`)
	r2 := req("/")
	c := &plugin.Ctx{}
	c.Reset(r2)
	c.RouteID = "r1"
	c.Served.Status = 204
	ch := pipeline.NewChain(nil, []pipeline.Plugin{{Name: "t", Instance: lg}})
	ch.Log(c)
	logs := e.logs.String()
	if !strings.Contains(logs, "logged status=204 route=r1 nil true") || !strings.Contains(logs, "level=WARN") {
		t.Fatalf("log:\n%s", logs)
	}
	if !strings.Contains(logs, "API disabled in the context of log (ngx.say)") {
		t.Fatalf("ngx.say in log was not refused:\n%s", logs)
	}
}

// TestNgxCtxAcrossPhasesAndPlugins runs a pre-function in rewrite and a
// post-function in header_filter and log over one request: they share the
// request's VM, hence ngx.ctx, and the VM is pooled again afterwards.
func TestNgxCtxAcrossPhasesAndPlugins(t *testing.T) {
	e := newEnv(t)
	pre := e.build(t, "rewrite", `return function(conf, ctx) ngx.ctx.n = 1; ctx.seen = "pre" end`)
	post := e.build(t, "header_filter", `return function(conf, ctx)
		ngx.ctx.n = ngx.ctx.n + 1
		ngx.header["X-N"] = ngx.ctx.n .. ctx.seen .. tostring(ngx.ctx.api_ctx == ctx)
	end`)
	ch := pipeline.NewChain(nil, []pipeline.Plugin{
		{Name: "serverless-pre-function", Priority: 10000, Instance: pre},
		{Name: "serverless-post-function", Priority: -2000, Instance: post},
	})
	rt := pre.(*rewriteFns).rt
	for i := 0; i < 3; i++ {
		c := &plugin.Ctx{}
		c.Reset(req("/"))
		if ex := ch.Rewrite(c); ex != nil {
			t.Fatal(ex.Status)
		}
		resp := upstreamResp("")
		c.Response = resp
		ch.HeaderFilter(c)
		if got := resp.Header("X-N"); got != "2pretrue" {
			t.Fatalf("X-N = %q (ngx.ctx not shared); logs:\n%s", got, e.logs.String())
		}
		ch.Log(c)
		if n := len(rt.pool); n != 1 {
			t.Fatalf("%d VMs pooled after the request, want 1 (released after log)", n)
		}
	}
}

func TestVMReleasedWhenLogPhaseSkipped(t *testing.T) {
	e := newEnv(t)
	inst := e.build(t, "access", `return function() ngx.ctx.x = 1 end`)
	rt := inst.(*accessFns).rt
	c := &plugin.Ctx{}
	c.Reset(req("/"))
	ch := pipeline.NewChain(nil, []pipeline.Plugin{{Name: "t", Instance: inst}})
	ch.Access(c)
	if n := len(rt.pool); n != 0 {
		t.Fatalf("pooled while in use: %d", n)
	}
	c.Reset(req("/next")) // the next request on the connection
	if n := len(rt.pool); n != 1 {
		t.Fatalf("%d VMs pooled after Reset, want 1", n)
	}
}

func TestFilterFunc(t *testing.T) {
	e := newEnv(t)
	f, err := CompileFilter(e.rt, `function(vars) return vars.arg_name == "json" and vars.http_x == "1" end`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Match(plugintest.NewRequest("GET", "/?name=json").WithHeader("X", "1")) {
		t.Error("did not match")
	}
	if f.Match(plugintest.NewRequest("GET", "/?name=xml").WithHeader("X", "1")) {
		t.Error("matched")
	}
	bad, err := CompileFilter(e.rt, `function(vars) error("oops") end`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bad.Match(req("/")) || !strings.Contains(e.logs.String(), "filter_func:1: oops") {
		t.Fatalf("failing filter matched or was not logged:\n%s", e.logs.String())
	}
	for _, src := range []string{`function(vars) return end end`, `42`} {
		if _, err := CompileFilter(e.rt, src, nil); err == nil {
			t.Errorf("%q compiled", src)
		}
	}
}

func TestConcurrentRequests(t *testing.T) {
	e := newEnv(t)
	inst := e.build(t, "access", `local n = 0
	return function() n = n + 1; ngx.ctx.v = ngx.var.arg_v; return 200, ngx.ctx.v end`)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				v := string(rune('a' + g))
				res := plugintest.Run(inst, req("/?v="+v), nil)
				if res.Exit == nil || string(res.Exit.Body) != v {
					t.Errorf("got %+v, want body %q", res.Exit, v)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}
