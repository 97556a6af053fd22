package lua

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	glua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"

	"github.com/sluicegw/sluice/plugin"
)

// Custom Lua plugins: a directory of <name>.lua files, each returning a
// module table as APISIX plugins do:
//
//	local core = require("apisix.core")
//	local schema = {type = "object", properties = {header = {type = "string", default = "X-Hello"}}}
//	local _M = {version = 0.1, priority = 1000, name = "hello", schema = schema}
//	function _M.check_schema(conf) return core.schema.check(schema, conf) end
//	function _M.access(conf, ctx) core.request.set_header(ctx, conf.header, "world") end
//	return _M
//
// LoadPlugins turns the files into plugin.Descriptors the gateway enables
// and configures like built-in plugins; docs/lua.md describes the rules.

// pluginPhases are the phase functions a module may define, in run order.
var pluginPhases = []phase{phaseRewrite, phaseAccess, phaseBeforeProxy, phaseHeaderFilter, phaseBodyFilter, phaseLog}

// validPluginName is what a custom plugin's file name (without .lua) may
// be: the names of APISIX plugins, and nothing a config path would need to
// quote.
var validPluginName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

// PluginOptions configure LoadPlugins.
type PluginOptions struct {
	// Runtime runs each module once at load time and runs check_schema when
	// a configuration is validated. It should see the gateway's shared dicts
	// (module-level code may reach ngx.shared). Nil: a private Runtime
	// without shared dicts.
	Runtime *Runtime
	// Builtin reports whether a name belongs to a built-in plugin; nil uses
	// plugin.Lookup.
	Builtin func(name string) bool
}

// PluginSet is the custom plugins loaded from a list of directories. It is
// immutable: a reload builds a new one.
type PluginSet struct {
	defs map[string]*pluginDef
}

// Descriptors returns the set's plugins, by name.
func (s *PluginSet) Descriptors() []plugin.Descriptor {
	if s == nil {
		return nil
	}
	out := make([]plugin.Descriptor, 0, len(s.defs))
	for _, name := range s.Names() {
		out = append(out, s.defs[name].descriptor())
	}
	return out
}

// Names returns the set's plugin names, sorted.
func (s *PluginSet) Names() []string {
	if s == nil {
		return nil
	}
	names := make([]string, 0, len(s.defs))
	for n := range s.defs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Path returns the file a plugin was loaded from.
func (s *PluginSet) Path(name string) (string, bool) {
	if s == nil {
		return "", false
	}
	d, ok := s.defs[name]
	if !ok {
		return "", false
	}
	return d.path, true
}

// PluginError is a file that could not be loaded. Msg starts with the
// file and, when known, the line: "/etc/sluice/plugins/x.lua:3: ...".
type PluginError struct {
	// Path is the file.
	Path string
	// Name is the plugin the file defines (its base name without .lua).
	Name string
	// Kept reports that the previous version of the plugin stays loaded.
	Kept bool
	// Msg is the error, positioned.
	Msg string
}

func (e *PluginError) Error() string { return e.Msg }

// LoadPlugins reads every <name>.lua in dirs and returns the plugins they
// define. prev is the set loaded before (nil at start): a file whose
// content did not change keeps its loaded plugin, and a file that fails to
// load keeps the previous version of its plugin (reported with Kept).
// Plugins whose file is gone are dropped. changed reports whether the set
// differs from prev. A directory that cannot be read is an error for each
// plugin it held.
func LoadPlugins(dirs []string, prev *PluginSet, opts PluginOptions) (set *PluginSet, changed bool, errs []error) {
	if opts.Runtime == nil {
		opts.Runtime = NewRuntime(nil, nil)
	}
	if opts.Builtin == nil {
		opts.Builtin = func(name string) bool { _, ok := plugin.Lookup(name); return ok }
	}
	set = &PluginSet{defs: map[string]*pluginDef{}}
	keep := func(name, path, msg string) {
		e := &PluginError{Path: path, Name: name, Msg: msg}
		if old, ok := prev.def(name); ok {
			set.defs[name] = old
			e.Kept = true
		}
		errs = append(errs, e)
	}
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("lua.plugin_dirs: %w", err))
			// The directory may be briefly unreadable: its plugins stay.
			for _, name := range prev.Names() {
				if old := prev.defs[name]; filepath.Dir(old.path) == filepath.Clean(dir) {
					set.defs[name] = old
				}
			}
			continue
		}
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".lua") {
				continue
			}
			path := filepath.Join(dir, e.Name())
			name := strings.TrimSuffix(e.Name(), ".lua")
			if !validPluginName.MatchString(name) {
				errs = append(errs, &PluginError{Path: path, Name: name,
					Msg: path + ": file name must be <plugin name>.lua with letters, digits, '-' and '_'"})
				continue
			}
			if other, dup := set.defs[name]; dup && other.path != path {
				errs = append(errs, &PluginError{Path: path, Name: name,
					Msg: fmt.Sprintf("%s: plugin %q is already defined by %s", path, name, other.path)})
				continue
			}
			if opts.Builtin(name) {
				errs = append(errs, &PluginError{Path: path, Name: name,
					Msg: fmt.Sprintf("%s: plugin name %q is taken by a built-in plugin", path, name)})
				continue
			}
			src, err := os.ReadFile(path)
			if err != nil {
				keep(name, path, path+": "+err.Error())
				continue
			}
			if old, ok := prev.def(name); ok && old.path == path && bytes.Equal(old.src, src) {
				set.defs[name] = old
				continue
			}
			d, err := loadPluginDef(name, path, src, opts.Runtime)
			if err != nil {
				keep(name, path, err.Error())
				continue
			}
			set.defs[name] = d
		}
	}
	return set, !set.same(prev), errs
}

func (s *PluginSet) def(name string) (*pluginDef, bool) {
	if s == nil {
		return nil, false
	}
	d, ok := s.defs[name]
	return d, ok
}

// same reports whether s holds exactly prev's loaded plugins.
func (s *PluginSet) same(prev *PluginSet) bool {
	n := 0
	if prev != nil {
		n = len(prev.defs)
	}
	if len(s.defs) != n {
		return false
	}
	for name, d := range s.defs {
		if old, ok := prev.def(name); !ok || old != d {
			return false
		}
	}
	return true
}

// pluginDef is one loaded plugin file.
type pluginDef struct {
	name     string
	path     string
	src      []byte
	script   *Script
	priority int
	version  string
	schema   *confSchema
	hasCheck bool
	// phases the module defines a function for.
	phases [len(phaseNames)]bool
	// rt runs check_schema.
	rt *Runtime
}

// loadPluginDef compiles a plugin file and runs it once in a VM of rt to
// read and check its module table. Errors carry the file and line.
func loadPluginDef(name, path string, src []byte, rt *Runtime) (*pluginDef, error) {
	chunk, err := parse.Parse(bytes.NewReader(src), path)
	if err != nil {
		return nil, errors.New(syntaxErrorAt(err.Error()))
	}
	proto, err := glua.Compile(chunk, path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	d := &pluginDef{name: name, path: path, src: src, script: &Script{Name: path, proto: proto}, rt: rt}
	vm := rt.get()
	defer rt.put(vm)
	vm.phase = phaseInit
	mod, err := vm.module(d, DefaultTimeLimit)
	if err != nil {
		return nil, err
	}
	if err := d.readModule(vm.L, mod); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// syntaxErrorAt rewrites gopher-lua's "<file> line:3(column:5) near 'x':
// syntax error" as "<file>:3: near 'x': syntax error (column 5)", the
// position format of every other Lua error.
var syntaxPos = regexp.MustCompile(`^(.*) line:(\d+)\(column:(\d+)\) (.*)$`)

func syntaxErrorAt(msg string) string {
	msg = strings.Join(strings.Fields(msg), " ")
	if m := syntaxPos.FindStringSubmatch(msg); m != nil {
		return m[1] + ":" + m[2] + ": " + m[4] + " (column " + m[3] + ")"
	}
	return msg
}

// readModule checks the module table's fields as APISIX's plugin loader
// does and converts its schema.
func (d *pluginDef) readModule(L *glua.LState, mod *glua.LTable) error {
	switch p := mod.RawGetString("priority").(type) {
	case glua.LNumber:
		if float64(p) != float64(int(p)) {
			return fmt.Errorf("priority: must be an integer, got %v", float64(p))
		}
		d.priority = int(p)
	case *glua.LNilType:
		return errors.New("invalid plugin module: missing field: priority")
	default:
		return fmt.Errorf("priority: must be a number, got %s", p.Type())
	}
	switch n := mod.RawGetString("name").(type) {
	case *glua.LNilType:
	case glua.LString:
		if string(n) != d.name {
			return fmt.Errorf("name: %q does not match the file name (%s.lua)", string(n), d.name)
		}
	default:
		return fmt.Errorf("name: must be a string, got %s", n.Type())
	}
	switch v := mod.RawGetString("version").(type) {
	case *glua.LNilType:
	case glua.LNumber, glua.LString:
		d.version = v.String()
	default:
		return fmt.Errorf("version: must be a number or a string, got %s", v.Type())
	}
	var doc map[string]any
	if sv := mod.RawGetString("schema"); sv == glua.LNil {
		doc = map[string]any{"type": "object"}
	} else {
		var err error
		if doc, err = schemaFromLua(sv); err != nil {
			return fmt.Errorf("schema: %w", err)
		}
	}
	cs, err := compileSchema(doc)
	if err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	d.schema = cs
	switch f := mod.RawGetString("check_schema").(type) {
	case *glua.LNilType:
	case *glua.LFunction:
		d.hasCheck = true
	default:
		return fmt.Errorf("check_schema: must be a function, got %s", f.Type())
	}
	for _, ph := range pluginPhases {
		switch f := mod.RawGetString(ph.String()).(type) {
		case *glua.LNilType:
		case *glua.LFunction:
			d.phases[ph] = true
		default:
			return fmt.Errorf("%s: must be a function, got %s", ph, f.Type())
		}
	}
	return nil
}

// module returns the plugin's module table in this VM, running its chunk
// (and the module's init function, as APISIX runs it per worker) on first
// use. The chunk runs in the init phase: no request API is available to
// module-level code.
func (vm *VM) module(d *pluginDef, limit time.Duration) (*glua.LTable, error) {
	if v, ok := vm.cache[d]; ok {
		return v.(*glua.LTable), nil
	}
	saved := vm.phase
	vm.phase = phaseInit
	defer func() { vm.phase = saved }()
	r, _, err := vm.call(vm.L.NewFunctionFromProto(d.script.proto), limit)
	if err != nil {
		return nil, err
	}
	mod, ok := r.(*glua.LTable)
	if !ok {
		return nil, fmt.Errorf("%s: the file must return the plugin module (a table), got %s", d.path, r.Type())
	}
	if init, ok := mod.RawGetString("init").(*glua.LFunction); ok {
		if _, _, err := vm.call(init, limit); err != nil {
			return nil, fmt.Errorf("init: %w", err)
		}
	}
	vm.remember(d, mod)
	return mod, nil
}

// descriptor presents the plugin to the gateway like a built-in one.
func (d *pluginDef) descriptor() plugin.Descriptor {
	return plugin.Descriptor{
		Name:      d.name,
		Priority:  d.priority,
		NewConfig: func() plugin.Config { return &customConfig{def: d} },
		New:       d.newInstance,
		Schema:    d.schema.doc,
	}
}

// customConfig is a custom plugin's configuration: the JSON object, with
// the schema's defaults filled in and whatever check_schema changed.
type customConfig struct {
	def  *pluginDef
	conf map[string]any
}

// UnmarshalJSON keeps the object as it is: the schema, not a Go struct,
// says which fields exist.
func (c *customConfig) UnmarshalJSON(b []byte) error {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return errors.New("must be an object")
	}
	c.conf = m
	return nil
}

// Validate checks the configuration against the plugin's schema, then
// calls its check_schema (if any), as APISIX does; a false result is the
// error check_schema returned.
func (c *customConfig) Validate() error {
	if c.conf == nil {
		c.conf = map[string]any{}
	}
	if err := c.def.schema.check(c.conf); err != nil {
		return err
	}
	if !c.def.hasCheck {
		return nil
	}
	conf, err := c.def.checkSchema(c.conf)
	if err != nil {
		return err
	}
	c.conf = conf
	return nil
}

// checkSchema runs the module's check_schema(conf) and returns conf as
// check_schema left it (plugins fill in defaults there).
func (d *pluginDef) checkSchema(conf map[string]any) (map[string]any, error) {
	vm := d.rt.get()
	defer d.rt.put(vm)
	vm.phase = phaseInit
	mod, err := vm.module(d, DefaultTimeLimit)
	if err != nil {
		return nil, err
	}
	fn, ok := mod.RawGetString("check_schema").(*glua.LFunction)
	if !ok {
		return conf, nil
	}
	t := goToLua(vm.L, conf)
	ok1, msg, err := vm.call(fn, DefaultTimeLimit, t)
	if err != nil {
		return nil, fmt.Errorf("check_schema: %w", err)
	}
	if !glua.LVAsBool(ok1) {
		if msg == glua.LNil {
			return nil, errors.New("check_schema: rejected the configuration")
		}
		return nil, errors.New(glua.LVAsString(msg))
	}
	out, ok := luaToGo(t, 0).(map[string]any)
	if !ok {
		out = map[string]any{} // the table was emptied
	}
	return out, nil
}

// newInstance builds a plugin instance for a route. Request phases run in
// the gateway's shared Runtime (the one serverless functions use), so a
// request's Lua plugins share one VM and ngx.ctx.
func (d *pluginDef) newInstance(cfg plugin.Config, deps plugin.Deps) (any, error) {
	c, ok := cfg.(*customConfig)
	if !ok {
		return nil, fmt.Errorf("lua plugin %s: unexpected config type %T", d.name, cfg)
	}
	limit, err := timeLimit(deps.Attr)
	if err != nil {
		return nil, err
	}
	rt := d.rt
	if deps.Lasting != nil {
		rt = Shared(deps.Lasting, deps.SharedDicts, deps.Log)
	}
	p := &customPlugin{def: d, rt: rt, conf: c.conf, limit: limit, log: deps.Logger(d.name)}
	if d.phases[phaseHeaderFilter] {
		return &customPluginHF{p}, nil
	}
	return p, nil
}

// LogPluginErrors logs LoadPlugins' errors, one record each.
func LogPluginErrors(log *slog.Logger, errs []error) {
	for _, err := range errs {
		var pe *PluginError
		if errors.As(err, &pe) && pe.Kept {
			log.Error("custom Lua plugin not reloaded; keeping the previous version", "plugin", pe.Name, "err", pe.Msg)
			continue
		}
		log.Error("custom Lua plugin not loaded", "err", err.Error())
	}
}
