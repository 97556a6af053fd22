package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serverlessRoute is a route body with serverless plugins; each plugin is
// given as phase and Lua functions.
func serverlessRoute(t *testing.T, uri string, extra map[string]any, plugins map[string][2]any) string {
	t.Helper()
	ps := map[string]any{}
	for name, p := range plugins {
		ps[name] = map[string]any{"phase": p[0], "functions": p[1]}
	}
	r := map[string]any{"uri": uri, "upstream_id": "u1", "plugins": ps}
	for k, v := range extra {
		r[k] = v
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func fns(src ...string) []string { return src }

// TestServerlessPhases drives serverless-pre-function and
// serverless-post-function through a real gateway and upstream, on both
// engines: each phase's effect is observed by the upstream or the client.
func TestServerlessPhases(t *testing.T) {
	for _, engine := range []string{"fast", "std"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			up := protoNewUpstream(t, nil)
			g := StartGateway(t, GatewayOptions{Store: "embedded", Engine: engine, Extra: `
shared_dicts:
  counters: 1m
plugin_attr:
  serverless-pre-function:
    time_limit: 0.2
`})
			mustAdmin(t, g, "PUT", "/apisix/admin/upstreams/u1", fmt.Sprintf(`{"nodes":{%q:1}}`, up.Addr))
			put := func(id, body string) { mustAdmin(t, g, "PUT", "/apisix/admin/routes/"+id, body) }
			pre, post := "serverless-pre-function", "serverless-post-function"

			put("rewrite", serverlessRoute(t, "/rewrite", nil, map[string][2]any{
				pre: {"rewrite", fns(`return function(conf, ctx) ngx.req.set_header("X-Lua", "v=" .. ngx.var.arg_v .. " m=" .. ngx.req.get_method()) end`)}}))
			put("deny", serverlessRoute(t, "/deny", nil, map[string][2]any{
				pre: {"access", fns(`return function(conf, ctx)
					if ngx.var.http_x_key ~= "open" then return 403, {message = "denied by lua"} end
				end`)}}))
			put("say", serverlessRoute(t, "/say", nil, map[string][2]any{
				pre: {"rewrite", fns(`return function() ngx.say("hello ", ngx.var.uri); ngx.exit(200) end`)}}))
			put("hf", serverlessRoute(t, "/hf", nil, map[string][2]any{
				post: {"header_filter", fns(`return function() ngx.header["X-Lua-Resp"] = "upstream said " .. ngx.status end`)}}))
			put("bf", serverlessRoute(t, "/bf", nil, map[string][2]any{
				post: {"body_filter", fns(`return function()
					ngx.ctx.buf = (ngx.ctx.buf or "") .. ngx.arg[1]
					if ngx.arg[2] then ngx.arg[1] = "<" .. string.upper(ngx.ctx.buf) .. ">" else ngx.arg[1] = nil end
				end`)}}))
			put("ctx", serverlessRoute(t, "/ctx", nil, map[string][2]any{
				pre:  {"rewrite", fns(`return function() ngx.ctx.from = "rewrite:" .. ngx.var.arg_id end`)},
				post: {"header_filter", fns(`return function() ngx.header["X-Ctx"] = ngx.ctx.from end`)}}))
			put("log", serverlessRoute(t, "/log", nil, map[string][2]any{
				post: {"log", fns(`return function() ngx.log(ngx.ERR, "lua-log-phase status=", ngx.var.status, " uri=", ngx.var.uri) end`)}}))
			put("count", serverlessRoute(t, "/count", nil, map[string][2]any{
				pre: {"access", fns(`local dict = ngx.shared.counters
				return function() local n = dict:incr("hits", 1, 0); return 200, "hits=" .. n end`)}}))
			put("loop", serverlessRoute(t, "/loop", nil, map[string][2]any{
				pre: {"access", fns("return function()\n  while true do end\nend")}}))
			// filter_func: the Lua route wins only when it returns true.
			put("ff", `{"uri":"/ff","priority":10,"upstream_id":"u1","filter_func":"function(vars) return vars.arg_x == \"1\" end",
				"plugins":{"serverless-pre-function":{"phase":"access","functions":["return function() return 200, \"filtered\" end"]}}}`)
			put("ff-fallback", `{"uri":"/ff","upstream_id":"u1"}`)
			waitServed(t, g.URL+"/say", 200, 3*time.Second)

			code, _, _ := do(t, "GET", g.URL+"/rewrite?v=42")
			if seen := up.Last(t); code != 200 || seen.Header.Get("X-Lua") != "v=42 m=GET" {
				t.Errorf("rewrite: %d, upstream saw X-Lua %q", code, seen.Header.Get("X-Lua"))
			}

			before := up.Requests()
			code, hdr, body := do(t, "GET", g.URL+"/deny")
			if code != 403 || body != `{"message":"denied by lua"}`+"\n" || up.Requests() != before {
				t.Errorf("deny: %d %q %v (upstream hit: %v)", code, body, hdr, up.Requests() != before)
			}
			if code, _, body = do(t, "GET", g.URL+"/deny", "X-Key", "open"); code != 200 || body != "ok" {
				t.Errorf("deny, open: %d %q", code, body)
			}

			before = up.Requests()
			code, hdr, body = do(t, "GET", g.URL+"/say")
			if code != 200 || body != "hello /say\n" || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") || up.Requests() != before {
				t.Errorf("say: %d %q %v", code, body, hdr)
			}

			if code, hdr, _ = do(t, "GET", g.URL+"/hf"); code != 200 || hdr.Get("X-Lua-Resp") != "upstream said 200" {
				t.Errorf("header_filter: %d %v", code, hdr)
			}
			if code, _, body = do(t, "GET", g.URL+"/bf"); code != 200 || body != "<OK>" {
				t.Errorf("body_filter: %d %q", code, body)
			}
			if code, hdr, _ = do(t, "GET", g.URL+"/ctx?id=7"); code != 200 || hdr.Get("X-Ctx") != "rewrite:7" {
				t.Errorf("ngx.ctx across phases: %d %q", code, hdr.Get("X-Ctx"))
			}
			// Each request has its own ngx.ctx.
			if code, hdr, _ = do(t, "GET", g.URL+"/ctx?id=8"); hdr.Get("X-Ctx") != "rewrite:8" {
				t.Errorf("ngx.ctx second request: %d %q", code, hdr.Get("X-Ctx"))
			}

			do(t, "GET", g.URL+"/log")
			g.WaitLog(t, "lua-log-phase status=200 uri=/log", 3*time.Second)

			for i := 1; i <= 3; i++ {
				if code, _, body = do(t, "GET", g.URL+"/count"); code != 200 || body != fmt.Sprintf("hits=%d", i) {
					t.Errorf("counter request %d: %d %q", i, code, body)
				}
			}

			start := time.Now()
			code, _, body = do(t, "GET", g.URL+"/loop")
			if code != 500 || !strings.Contains(body, "500 Internal Server Error") {
				t.Errorf("infinite loop: %d %q", code, body)
			}
			t.Logf("infinite loop answered 500 after %v (time_limit 0.2s)", time.Since(start).Round(time.Millisecond))
			g.WaitLog(t, "functions[0]:2: time limit exceeded (200ms)", 3*time.Second)
			if code, _, _ = do(t, "GET", g.URL+"/say"); code != 200 {
				t.Errorf("after the loop the gateway answered %d", code)
			}

			if _, _, body = do(t, "GET", g.URL+"/ff?x=1"); body != "filtered" {
				t.Errorf("filter_func true: %q", body)
			}
			if _, _, body = do(t, "GET", g.URL+"/ff?x=2"); body != "ok" {
				t.Errorf("filter_func false: %q (want the fallback route)", body)
			}
		})
	}
}

// TestServerlessAdminRejectsBadLua: the Admin API refuses functions that do
// not compile, that do not return a function, and a bad filter_func, with
// the field path and the Lua error; nothing is stored.
func TestServerlessAdminRejectsBadLua(t *testing.T) {
	t.Parallel()
	g, _ := pluginGateway(t, "fast")
	cases := []struct{ body, want string }{
		{serverlessRoute(t, "/a", nil, map[string][2]any{"serverless-pre-function": {"access",
			fns("return function() end", "return function(\n  x = = 1\nend")}}),
			"plugins.serverless-pre-function: functions[1]: failed to compile: functions[1] line:2"},
		{serverlessRoute(t, "/a", nil, map[string][2]any{"serverless-post-function": {"access", fns("local n = 1")}}),
			"functions[0]: only accept Lua function, the input code type is nil"},
		{serverlessRoute(t, "/a", nil, map[string][2]any{"serverless-pre-function": {"content", fns("return function() end")}}),
			"phase: must be one of"},
		{`{"uri":"/a","upstream_id":"u1","filter_func":"function(vars) return vars.x == end"}`, "filter_func: "},
	}
	for _, tc := range cases {
		code, out := adminDo(t, g, "PUT", "/apisix/admin/routes/bad", tc.body)
		if code != http.StatusBadRequest || !strings.Contains(out, tc.want) {
			t.Errorf("PUT %s: %d %s, want 400 with %q", tc.body, code, out, tc.want)
		}
	}
	if code, _ := adminDo(t, g, "GET", "/apisix/admin/routes/bad", ""); code != http.StatusNotFound {
		t.Errorf("a rejected route was stored: GET answered %d", code)
	}
}
