package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// luaHelloPlugin is a custom plugin as APISIX plugins are written; version
// is what the upstream header carries, so a reload shows.
func luaHelloPlugin(version string) string {
	return `local core = require("apisix.core")

local schema = {
    type = "object",
    properties = {
        header = {type = "string", default = "X-Hello"},
        value = {type = "string", minLength = 1},
        deny = {type = "string"},
    },
    required = {"value"},
}

local _M = {version = 0.1, priority = 2500, name = "lua-hello", schema = schema}

function _M.check_schema(conf)
    local ok, err = core.schema.check(schema, conf)
    if not ok then
        return false, err
    end
    if conf.value == "forbidden" then
        return false, "value must not be forbidden"
    end
    return true
end

function _M.access(conf, ctx)
    if conf.deny and ctx.var.http_x_user == conf.deny then
        return 403, {message = "denied by lua-hello"}
    end
    core.request.set_header(ctx, conf.header, "` + version + `:" .. conf.value)
end

function _M.header_filter(conf, ctx)
    core.response.set_header("X-Lua-Hello", "` + version + `")
end

return _M
`
}

// TestLuaPluginsCustomPlugin runs a gateway with a custom Lua plugin
// directory, on both engines: the Admin API lists the plugin with its
// schema and validates route configs against it, the plugin acts on
// requests, an edit on disk plus PUT /apisix/admin/plugins/reload changes
// its behaviour without a restart, a broken edit keeps the previous version,
// and a removed plugin can no longer be configured while the last good
// configuration keeps serving.
func TestLuaPluginsCustomPlugin(t *testing.T) {
	for _, engine := range []string{"fast", "std"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			file := filepath.Join(dir, "lua-hello.lua")
			if err := os.WriteFile(file, []byte(luaHelloPlugin("v1")), 0o644); err != nil {
				t.Fatal(err)
			}
			up := protoNewUpstream(t, func(w http.ResponseWriter, r *http.Request, _ *protoSeen) {
				io.WriteString(w, "hello="+r.Header.Get("X-Hello")+" custom="+r.Header.Get("X-Custom"))
			})
			g := StartGateway(t, GatewayOptions{Store: "embedded", Engine: engine,
				Extra: fmt.Sprintf("lua:\n  plugin_dirs: [%q]\n", dir)})

			// Listed, with the schema converted from the Lua table.
			if list := mustAdmin(t, g, "GET", "/apisix/admin/plugins/list", ""); !strings.Contains(list, `"lua-hello"`) {
				t.Fatalf("plugins/list = %s", list)
			}
			schema := mustAdmin(t, g, "GET", "/apisix/admin/plugins/lua-hello", "")
			if !strings.Contains(schema, `"required":["value"]`) || !strings.Contains(schema, `"default":"X-Hello"`) {
				t.Fatalf("schema = %s", schema)
			}

			mustAdmin(t, g, "PUT", "/apisix/admin/upstreams/u1", fmt.Sprintf(`{"nodes":{%q:1}}`, up.Addr))
			for _, bad := range []struct{ conf, want string }{
				{`{}`, `plugins.lua-hello: missing property 'value'`},
				{`{"value":5}`, `plugins.lua-hello: value: got number, want string`},
				{`{"value":""}`, `plugins.lua-hello: value: minLength`},
				{`{"value":"forbidden"}`, `plugins.lua-hello: value must not be forbidden`},
			} {
				code, out := adminDo(t, g, "PUT", "/apisix/admin/routes/r1",
					`{"uri":"/hello","upstream_id":"u1","plugins":{"lua-hello":`+bad.conf+`}}`)
				if code != http.StatusBadRequest || !strings.Contains(out, bad.want) {
					t.Fatalf("config %s: %d %s, want 400 with %q", bad.conf, code, out, bad.want)
				}
			}
			mustAdmin(t, g, "PUT", "/apisix/admin/routes/r1",
				`{"uri":"/hello","upstream_id":"u1","plugins":{"lua-hello":{"value":"abc","deny":"mallory"}}}`)
			mustAdmin(t, g, "PUT", "/apisix/admin/routes/r2",
				`{"uri":"/custom","upstream_id":"u1","plugins":{"lua-hello":{"value":"xyz","header":"X-Custom"}}}`)

			want := func(path, body, version string) {
				t.Helper()
				deadline := time.Now().Add(5 * time.Second)
				for {
					code, hdr, got := do(t, "GET", g.URL+path)
					if code == 200 && got == body && hdr.Get("X-Lua-Hello") == version {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("GET %s = %d %q (X-Lua-Hello %q), want 200 %q (%s)\nstderr:\n%s",
							path, code, got, hdr.Get("X-Lua-Hello"), body, version, tail(g.Stderr.String(), 3000))
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			want("/hello", "hello=v1:abc custom=", "v1")
			want("/custom", "hello= custom=v1:xyz", "v1")

			before := up.Requests()
			code, hdr, body := do(t, "GET", g.URL+"/hello", "X-User", "mallory")
			if code != 403 || body != `{"message":"denied by lua-hello"}`+"\n" || hdr.Get("X-Lua-Hello") != "v1" {
				t.Fatalf("deny: %d %q %v", code, body, hdr)
			}
			if up.Requests() != before {
				t.Fatal("a request the plugin denied reached the upstream")
			}

			// Edit on disk + reload: the new version serves, no restart.
			if err := os.WriteFile(file, []byte(luaHelloPlugin("v2")), 0o644); err != nil {
				t.Fatal(err)
			}
			if out := mustAdmin(t, g, "PUT", "/apisix/admin/plugins/reload", ""); out != "done" {
				t.Fatalf("reload answered %q", out)
			}
			want("/hello", "hello=v2:abc custom=", "v2")
			want("/custom", "hello= custom=v2:xyz", "v2")

			// A broken edit is logged with file:line and v2 keeps serving.
			broken := strings.Replace(luaHelloPlugin("v3"), "function _M.access(conf, ctx)", "function _M.access(conf, ctx) local = 1", 1)
			if err := os.WriteFile(file, []byte(broken), 0o644); err != nil {
				t.Fatal(err)
			}
			mustAdmin(t, g, "PUT", "/apisix/admin/plugins/reload", "")
			g.WaitLog(t, file+":26:", 5*time.Second)
			if !strings.Contains(g.Stderr.String(), "keeping the previous version") {
				t.Fatalf("broken edit not reported:\n%s", tail(g.Stderr.String(), 3000))
			}
			for range 5 {
				want("/hello", "hello=v2:abc custom=", "v2")
			}
			// The kept version still validates new configurations.
			mustAdmin(t, g, "PUT", "/apisix/admin/routes/r3",
				`{"uri":"/kept","upstream_id":"u1","plugins":{"lua-hello":{"value":"k"}}}`)
			want("/kept", "hello=v2:k custom=", "v2")

			// Removed: configurations can no longer use it; the last good
			// configuration keeps serving.
			if err := os.Remove(file); err != nil {
				t.Fatal(err)
			}
			mustAdmin(t, g, "PUT", "/apisix/admin/plugins/reload", "")
			deadline := time.Now().Add(5 * time.Second)
			for {
				code, out := adminDo(t, g, "PUT", "/apisix/admin/routes/r4",
					`{"uri":"/gone","upstream_id":"u1","plugins":{"lua-hello":{"value":"g"}}}`)
				if code == http.StatusBadRequest && strings.Contains(out, "unknown plugin [lua-hello]") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("a removed plugin is still accepted: %d %s", code, out)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if code, _ := adminDo(t, g, "GET", "/apisix/admin/plugins/lua-hello", ""); code != http.StatusNotFound {
				t.Fatalf("GET a removed plugin: %d, want 404", code)
			}
			want("/hello", "hello=v2:abc custom=", "v2")
		})
	}
}
