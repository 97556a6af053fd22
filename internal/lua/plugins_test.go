package lua

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/internal/pipeline"
	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

// helloPlugin is a plugin written as APISIX plugins are: a schema with a
// default and a bound, check_schema through core.schema.check plus a rule
// of its own, and access and header_filter functions.
const helloPlugin = `local core = require("apisix.core")

local schema = {
    type = "object",
    properties = {
        header = {type = "string", default = "X-Hello"},
        value = {type = "string"},
        deny = {type = "string"},
        count = {type = "integer", minimum = 1, default = 1},
        tags = {type = "array", items = {type = "string"}, default = {}},
    },
    required = {"value"},
}

local _M = {version = 0.1, priority = 1234, name = "hello", schema = schema}

function _M.check_schema(conf)
    local ok, err = core.schema.check(schema, conf)
    if not ok then
        return false, err
    end
    if conf.value == "forbidden" then
        return false, "value must not be forbidden"
    end
    conf.checked = "yes"
    return true
end

function _M.access(conf, ctx)
    if conf.deny and ctx.var.arg_who == conf.deny then
        return 403, {message = "no " .. conf.deny}
    end
    core.request.set_header(ctx, conf.header, conf.value .. "/" .. conf.count .. "/" .. conf.checked .. "/" .. #conf.tags)
end

function _M.header_filter(conf, ctx)
    core.response.set_header("X-Hello-Resp", conf.value)
end

return _M
`

// pluginDir writes files (name → source) into a new directory.
func pluginDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		writePlugin(t, dir, name, src)
	}
	return dir
}

func writePlugin(t *testing.T, dir, name, src string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

// notBuiltin keeps the tests independent of which built-in plugins the
// test binary links.
var notBuiltin = PluginOptions{Builtin: func(name string) bool { return name == "key-auth" }}

func mustLoad(t *testing.T, dirs []string, prev *PluginSet) *PluginSet {
	t.Helper()
	set, _, errs := LoadPlugins(dirs, prev, notBuiltin)
	if len(errs) > 0 {
		t.Fatalf("load errors: %v", errs)
	}
	return set
}

// lookupIn resolves plugins from set, as the gateway's runtime does.
func lookupIn(set *PluginSet) pipeline.Enabled {
	return func(name string) (plugin.Descriptor, bool) {
		for _, d := range set.Descriptors() {
			if d.Name == name {
				return d, true
			}
		}
		return plugin.Descriptor{}, false
	}
}

func (e *env) buildCustom(t *testing.T, set *PluginSet, name, conf string) any {
	t.Helper()
	inst, err := e.tryBuildCustom(set, name, conf)
	if err != nil {
		t.Fatalf("building %s %s: %v", name, conf, err)
	}
	return inst
}

func (e *env) tryBuildCustom(set *PluginSet, name, conf string) (any, error) {
	var raw any
	if err := json.Unmarshal([]byte(conf), &raw); err != nil {
		return nil, err
	}
	ps, err := pipeline.Build(map[string]any{name: raw}, lookupIn(set), func(string) plugin.Deps { return e.deps })
	if err != nil {
		return nil, err
	}
	return ps[0].Instance, nil
}

func TestCustomPluginLoadsAndRuns(t *testing.T) {
	e := newEnv(t)
	set := mustLoad(t, []string{pluginDir(t, map[string]string{"hello.lua": helloPlugin, "README.md": "not a plugin"})}, nil)
	ds := set.Descriptors()
	if len(ds) != 1 || ds[0].Name != "hello" || ds[0].Priority != 1234 {
		t.Fatalf("descriptors %+v", ds)
	}
	inst := e.buildCustom(t, set, "hello", `{"value":"v1","deny":"bob"}`)

	res := plugintest.Run(inst, req("/?who=alice"), upstreamResp("ok"))
	if res.Exit != nil {
		t.Fatalf("unexpected exit %d %s; logs:\n%s", res.Exit.Status, res.Exit.Body, e.logs.String())
	}
	// Defaults (header, count, tags) and check_schema's change (checked)
	// reach the phase function's conf.
	if got := res.Ctx.Request.Header("X-Hello"); got != "v1/1/yes/0" {
		t.Fatalf("upstream header X-Hello = %q; logs:\n%s", got, e.logs.String())
	}
	if got := res.Response.Header("X-Hello-Resp"); got != "v1" {
		t.Fatalf("response header = %q", got)
	}

	r := mustExit(t, inst, req("/?who=bob"), 403)
	if string(r.Body) != `{"message":"no bob"}`+"\n" || r.Header("Content-Type") != "text/plain" && r.Header("X-Hello-Resp") != "v1" {
		t.Fatalf("403 response %+v", r)
	}

	// A module without header_filter does not implement the phase, so the
	// gateway keeps its header fast path.
	set2 := mustLoad(t, []string{pluginDir(t, map[string]string{"mini.lua": `return {priority = 1, access = function() end}`})}, nil)
	mini := e.buildCustom(t, set2, "mini", `{}`)
	if _, ok := mini.(plugin.HeaderFilterer); ok {
		t.Fatal("a module without header_filter must not be a HeaderFilterer")
	}
	if _, ok := inst.(plugin.HeaderFilterer); !ok {
		t.Fatal("a module with header_filter must be a HeaderFilterer")
	}
}

func TestCustomPluginConfigValidation(t *testing.T) {
	e := newEnv(t)
	set := mustLoad(t, []string{pluginDir(t, map[string]string{
		"hello.lua": helloPlugin,
		"raises.lua": `return {priority = 2, schema = {type = "object"},
  check_schema = function(conf)
    error("boom in check")
  end}`,
	})}, nil)
	tests := []struct {
		name, conf, want string
	}{
		{"hello", `{}`, "plugins.hello: missing property 'value'"},
		{"hello", `{"value":1}`, "plugins.hello: value: got number, want string"},
		{"hello", `{"value":"v","count":0}`, "plugins.hello: count: minimum: got 0, want 1"},
		{"hello", `{"value":"v","tags":["a",2]}`, "plugins.hello: tags[1]: got number, want string"},
		{"hello", `{"value":"forbidden"}`, "plugins.hello: value must not be forbidden"},
		{"hello", `[1]`, "plugins.hello: must be an object"},
		{"raises", `{}`, "plugins.raises: check_schema: "},
	}
	for _, tc := range tests {
		_, err := e.tryBuildCustom(set, tc.name, tc.conf)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s %s: err = %v, want prefix %q", tc.name, tc.conf, err, tc.want)
		}
	}
	_, err := e.tryBuildCustom(set, "raises", `{}`)
	if err == nil || !strings.Contains(err.Error(), "raises.lua:3: boom in check") {
		t.Errorf("check_schema error must carry file:line: %v", err)
	}
	if _, err := e.tryBuildCustom(set, "hello", `{"value":"ok","_meta":{"disable":false}}`); err != nil {
		t.Errorf("_meta must be accepted: %v", err)
	}
}

func TestCustomPluginSchemaConversion(t *testing.T) {
	set := mustLoad(t, []string{pluginDir(t, map[string]string{"conv.lua": `
local schema = {
    type = "object",
    properties = {
        mode = {type = "string", enum = {"a", "b"}, default = "a"},
        list = {type = "array", default = {}, minItems = 0},
        obj = {type = "object", properties = {}, required = {}},
        ratio = {type = "number", default = 0.5},
        any = {anyOf = {{type = "string"}, {type = "integer"}}},
    },
}
return {priority = 7, schema = schema}
`})}, nil)
	got := set.Descriptors()[0].Schema
	want := map[string]any{
		"type": "object",
		"properties": map[string]any{
			"mode":  map[string]any{"type": "string", "enum": []any{"a", "b"}, "default": "a"},
			"list":  map[string]any{"type": "array", "default": []any{}, "minItems": int64(0)},
			"obj":   map[string]any{"type": "object", "properties": map[string]any{}, "required": []any{}},
			"ratio": map[string]any{"type": "number", "default": 0.5},
			"any":   map[string]any{"anyOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}},
		},
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Fatalf("schema\n got %s\nwant %s", g, w)
	}
	// No schema: any object.
	set = mustLoad(t, []string{pluginDir(t, map[string]string{"none.lua": `return {priority = 1}`})}, nil)
	if s := set.Descriptors()[0].Schema; !reflect.DeepEqual(s, map[string]any{"type": "object"}) {
		t.Fatalf("default schema %v", s)
	}
}

func TestCustomPluginBadFiles(t *testing.T) {
	dir := pluginDir(t, map[string]string{
		"good.lua":       `return {priority = 1}`,
		"syntax.lua":     "local _M = {priority = 1}\n\nfunction _M.access(\n  x = = 1\nend\nreturn _M\n",
		"raise.lua":      "local x = 1\nlocal y = nil\nreturn {priority = y.z}\n",
		"nopriority.lua": `return {version = 0.1}`,
		"badprio.lua":    `return {priority = "high"}`,
		"wrongname.lua":  `return {priority = 1, name = "other"}`,
		"notable.lua":    `return function() end`,
		"key-auth.lua":   `return {priority = 1}`,
		"bad name.lua":   `return {priority = 1}`,
		"fnschema.lua":   `return {priority = 1, schema = {type = "object", default = function() end}}`,
		"badschema.lua":  `return {priority = 1, schema = {type = "objekt"}}`,
		"badphase.lua":   `return {priority = 1, access = "yes"}`,
		"sandbox.lua":    "local f = io.open('/etc/passwd')\nreturn {priority = 1}\n",
		"requires.lua":   "local s = require('socket')\nreturn {priority = 1}\n",
	})
	set, _, errs := LoadPlugins([]string{dir}, nil, notBuiltin)
	if names := set.Names(); !reflect.DeepEqual(names, []string{"good"}) {
		t.Fatalf("loaded %v, want only good", names)
	}
	msgs := map[string]string{}
	for _, err := range errs {
		var pe *PluginError
		if !errors.As(err, &pe) {
			t.Fatalf("error %v is not a *PluginError", err)
		}
		msgs[pe.Name] = pe.Msg
	}
	p := func(f string) string { return filepath.Join(dir, f) }
	want := map[string]string{
		"syntax":     p("syntax.lua") + ":4: near '='",
		"raise":      p("raise.lua") + ":3: attempt to index",
		"nopriority": p("nopriority.lua") + ": invalid plugin module: missing field: priority",
		"badprio":    p("badprio.lua") + ": priority: must be a number, got string",
		"wrongname":  p("wrongname.lua") + `: name: "other" does not match the file name (wrongname.lua)`,
		"notable":    p("notable.lua") + ": the file must return the plugin module (a table), got function",
		"key-auth":   p("key-auth.lua") + `: plugin name "key-auth" is taken by a built-in plugin`,
		"bad name":   p("bad name.lua") + ": file name must be",
		"fnschema":   p("fnschema.lua") + ": schema: default: a function cannot be part of a JSON Schema",
		"badschema":  p("badschema.lua") + ": schema: invalid JSON Schema: type: value must be one of",
		"badphase":   p("badphase.lua") + ": access: must be a function, got string",
		"sandbox":    p("sandbox.lua") + ":1: io.open is not allowed in the sluice Lua sandbox",
		"requires":   p("requires.lua") + ":1: module 'socket' not found",
	}
	for name, prefix := range want {
		if !strings.HasPrefix(msgs[name], prefix) {
			t.Errorf("%s: error %q, want prefix %q", name, msgs[name], prefix)
		}
	}
	if len(msgs) != len(want) {
		t.Errorf("%d errors, want %d: %v", len(msgs), len(want), msgs)
	}
	if !strings.Contains(msgs["syntax"], "(column") {
		t.Errorf("syntax error without column: %q", msgs["syntax"])
	}
}

func TestCustomPluginDuplicateAcrossDirs(t *testing.T) {
	a := pluginDir(t, map[string]string{"dup.lua": `return {priority = 1}`})
	b := pluginDir(t, map[string]string{"dup.lua": `return {priority = 2}`})
	set, _, errs := LoadPlugins([]string{a, b}, nil, notBuiltin)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), `plugin "dup" is already defined by `+filepath.Join(a, "dup.lua")) {
		t.Fatalf("errors %v", errs)
	}
	if d := set.Descriptors(); len(d) != 1 || d[0].Priority != 1 {
		t.Fatalf("the first directory must win: %+v", d)
	}
}

func TestCustomPluginReload(t *testing.T) {
	e := newEnv(t)
	dir := pluginDir(t, map[string]string{"ver.lua": `return {priority = 5, access = function() return 200, "v1" end}`})
	v1 := mustLoad(t, []string{dir}, nil)
	body := func(set *PluginSet) string {
		t.Helper()
		return string(mustExit(t, e.buildCustom(t, set, "ver", `{}`), req("/"), 200).Body)
	}
	if got := body(v1); got != "v1" {
		t.Fatalf("v1 body %q", got)
	}

	// Nothing changed on disk: the same set, and nothing to recompile.
	same, changed, errs := LoadPlugins([]string{dir}, v1, notBuiltin)
	if changed || len(errs) > 0 || same.defs["ver"] != v1.defs["ver"] {
		t.Fatalf("unchanged reload: changed=%v errs=%v", changed, errs)
	}

	writePlugin(t, dir, "ver.lua", `return {priority = 5, access = function() return 200, "v2" end}`)
	v2, changed, errs := LoadPlugins([]string{dir}, v1, notBuiltin)
	if !changed || len(errs) > 0 || body(v2) != "v2" {
		t.Fatalf("edited reload: changed=%v errs=%v", changed, errs)
	}
	// Instances built from the old set keep their module.
	if got := body(v1); got != "v1" {
		t.Fatalf("old instance now answers %q", got)
	}

	writePlugin(t, dir, "ver.lua", "return {priority = 5,\n  access = function() return 200, \"v3\" end\n  oops\n}")
	v3, changed, errs := LoadPlugins([]string{dir}, v2, notBuiltin)
	var pe *PluginError
	if changed || len(errs) != 1 || !errors.As(errs[0], &pe) || !pe.Kept || !strings.HasPrefix(pe.Msg, filepath.Join(dir, "ver.lua")+":3:") {
		t.Fatalf("broken edit: changed=%v errs=%v", changed, errs)
	}
	if got := body(v3); got != "v2" {
		t.Fatalf("broken edit must keep v2, got %q", got)
	}

	if err := os.Remove(filepath.Join(dir, "ver.lua")); err != nil {
		t.Fatal(err)
	}
	v4, changed, errs := LoadPlugins([]string{dir}, v3, notBuiltin)
	if !changed || len(errs) > 0 || len(v4.Names()) != 0 {
		t.Fatalf("removed file: changed=%v errs=%v names=%v", changed, errs, v4.Names())
	}
	if _, err := e.tryBuildCustom(v4, "ver", `{}`); err == nil || !strings.Contains(err.Error(), "unknown plugin [ver]") {
		t.Fatalf("a removed plugin must be unknown: %v", err)
	}
}

func TestCustomPluginPhasesAndSandbox(t *testing.T) {
	e := newEnv(t)
	set := mustLoad(t, []string{pluginDir(t, map[string]string{
		"phases.lua": `local core = require("apisix.core")
local _M = {priority = 10}
local loads = 0
function _M.init() loads = loads + 1 end
function _M.rewrite(conf, ctx) ngx.ctx.trail = "rw" end
function _M.before_proxy(conf, ctx) ngx.req.set_header("X-Trail", ngx.ctx.trail .. ",bp,init=" .. loads) end
function _M.body_filter(conf, ctx)
    ngx.arg[1] = string.upper(ngx.arg[1])
end
function _M.log(conf, ctx) core.log.warn("phases logged ", ngx.var.uri) end
return _M
`,
		"escape.lua": `return {priority = 1, access = function() os.execute("true") end}`,
		"shared.lua": `local dict = ngx.shared.counters
return {priority = 1, access = function(conf) return 200, "n=" .. dict:incr(conf.key, 1, 0) end,
  schema = {type = "object", properties = {key = {type = "string", default = "k"}}}}`,
	})}, nil)

	inst := e.buildCustom(t, set, "phases", `{}`)
	res := plugintest.Run(inst, req("/p"), upstreamResp("body"))
	if got := res.Ctx.Request.Header("X-Trail"); got != "rw,bp,init=1" {
		t.Fatalf("X-Trail = %q; logs:\n%s", got, e.logs.String())
	}
	if got := string(res.Response.Body); got != "BODY" {
		t.Fatalf("body %q", got)
	}
	if !strings.Contains(e.logs.String(), "phases logged /p") {
		t.Fatalf("log phase did not run:\n%s", e.logs.String())
	}

	mustExit(t, e.buildCustom(t, set, "escape", `{}`), req("/"), 500)
	if !strings.Contains(e.logs.String(), "escape.lua:1: os.execute is not allowed in the sluice Lua sandbox") {
		t.Fatalf("sandbox error not logged with its position:\n%s", e.logs.String())
	}

	sh := e.buildCustom(t, set, "shared", `{}`)
	mustExit(t, sh, req("/"), 200)
	if got := string(mustExit(t, sh, req("/"), 200).Body); got != "n=2" {
		t.Fatalf("shared dict counter %q", got)
	}
}

// TestCustomPluginSharesRequestVMWithServerless: a custom plugin and a
// serverless function on one route see the same ngx.ctx and APISIX ctx.
func TestCustomPluginSharesRequestVMWithServerless(t *testing.T) {
	e := newEnv(t)
	set := mustLoad(t, []string{pluginDir(t, map[string]string{
		"tagger.lua": `return {priority = 20000, rewrite = function(conf, ctx) ngx.ctx.tag = "custom"; ctx.who = "custom" end}`,
	})}, nil)
	custom := e.buildCustom(t, set, "tagger", `{}`)
	post := e.build(t, "access", `return function(conf, ctx) return 200, ngx.ctx.tag .. "+" .. ctx.who end`)
	ch := pipeline.NewChain(nil, []pipeline.Plugin{
		{Name: "tagger", Priority: 20000, Instance: custom},
		{Name: "serverless-pre-function", Priority: 10000, Instance: post},
	})
	c := &plugin.Ctx{}
	c.Reset(req("/"))
	if ex := ch.Rewrite(c); ex != nil {
		t.Fatalf("rewrite exit %d", ex.Status)
	}
	ex := ch.Access(c)
	if ex == nil || string(ex.Body) != "custom+custom" {
		t.Fatalf("access exit %+v; logs:\n%s", ex, e.logs.String())
	}
	ch.Log(c)
}
