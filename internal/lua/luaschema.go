package lua

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	glua "github.com/yuin/gopher-lua"
)

// JSON Schema keywords whose value is an array. A Lua table cannot say
// whether it is an array or an object when it is empty (`required = {}`),
// so the keyword decides.
var schemaArrayKeys = map[string]bool{
	"required": true, "enum": true, "anyOf": true, "allOf": true, "oneOf": true, "examples": true,
}

// schemaFromLua converts a plugin's schema, a Lua table in JSON Schema
// form as APISIX plugins write it, into the JSON value the validator
// compiles. Errors name the path inside the schema.
func schemaFromLua(v glua.LValue) (map[string]any, error) {
	t, ok := v.(*glua.LTable)
	if !ok {
		return nil, fmt.Errorf("must be a table, got %s", v.Type())
	}
	out, err := luaSchemaValue(t, "", "", 0)
	if err != nil {
		return nil, err
	}
	m, ok := out.(map[string]any)
	if !ok {
		return nil, errors.New("must be a table with JSON Schema keywords, got an array")
	}
	return m, nil
}

// luaSchemaValue converts one value found under key (the keyword naming
// it) at path.
func luaSchemaValue(v glua.LValue, key, path string, depth int) (any, error) {
	if depth > 64 {
		return nil, fmt.Errorf("%s: nested too deeply", pathOr(path))
	}
	switch x := v.(type) {
	case glua.LBool:
		return bool(x), nil
	case glua.LNumber:
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%s: %v is not a JSON number", pathOr(path), f)
		}
		if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int64(f), nil
		}
		return f, nil
	case glua.LString:
		return string(x), nil
	case *glua.LTable:
		return luaSchemaTable(x, key, path, depth)
	case *glua.LUserData:
		// ngx.null (cjson.null) is a light userdata in OpenResty: JSON null.
		if x.Value == nil {
			return nil, nil
		}
	}
	return nil, fmt.Errorf("%s: a %s cannot be part of a JSON Schema", pathOr(path), v.Type())
}

func luaSchemaTable(t *glua.LTable, key, path string, depth int) (any, error) {
	n := t.Len()
	count := 0
	stringKeys := true
	t.ForEach(func(k, _ glua.LValue) {
		count++
		if _, ok := k.(glua.LString); !ok {
			stringKeys = false
		}
	})
	switch {
	case count == 0 && schemaArrayKeys[key]:
		return []any{}, nil
	case count == 0:
		return map[string]any{}, nil
	case n > 0 && count == n:
		arr := make([]any, n)
		for i := 1; i <= n; i++ {
			e, err := luaSchemaValue(t.RawGetInt(i), key, path+"["+strconv.Itoa(i-1)+"]", depth+1)
			if err != nil {
				return nil, err
			}
			arr[i-1] = e
		}
		return arr, nil
	case !stringKeys:
		return nil, fmt.Errorf("%s: a table mixing array items and named keys is not JSON", pathOr(path))
	}
	m := make(map[string]any, count)
	var err error
	t.ForEach(func(k, e glua.LValue) {
		if err != nil {
			return
		}
		ks := string(k.(glua.LString))
		var conv any
		conv, err = luaSchemaValue(e, ks, joinPath(path, ks), depth+1)
		m[ks] = conv
	})
	if err != nil {
		return nil, err
	}
	// `default = {}` for an array property is an empty array, not an
	// empty object: the default must validate against its own schema.
	if d, ok := m["default"].(map[string]any); ok && len(d) == 0 && m["type"] == "array" {
		m["default"] = []any{}
	}
	return m, nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func pathOr(path string) string {
	if path == "" {
		return "(root)"
	}
	return path
}

// confSchema is a compiled plugin schema: the JSON value (served by the
// Admin API, walked for defaults) and the validator.
type confSchema struct {
	doc      map[string]any
	compiled *jsonschema.Schema
}

// compileSchema compiles doc as draft 7 unless it names its draft with
// $schema (APISIX's validator reads draft 4 to 7; the keywords plugins use
// mean the same in all of them).
func compileSchema(doc map[string]any) (*confSchema, error) {
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	parsed, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	const url = "sluice:///plugin-schema.json"
	if err := c.AddResource(url, parsed); err != nil {
		return nil, err
	}
	s, err := c.Compile(url)
	if err != nil {
		var sve *jsonschema.SchemaValidationError
		var ve *jsonschema.ValidationError
		if errors.As(err, &sve) && errors.As(sve.Err, &ve) {
			// Not valid against the metaschema: name the keyword.
			return nil, fmt.Errorf("invalid JSON Schema: %w", schemaError(ve, doc))
		}
		return nil, fmt.Errorf("invalid JSON Schema: %s", oneLineError(err))
	}
	return &confSchema{doc: doc, compiled: s}, nil
}

// check fills in defaults and validates conf, as APISIX's validator does
// (it writes `default` values into the configuration it checks).
func (s *confSchema) check(conf map[string]any) error {
	applyDefaults(s.doc, conf, 0)
	// The validator wants JSON-decoded values (json.Number is accepted,
	// so are float64 and int64); conf is one already.
	if err := s.compiled.Validate(conf); err != nil {
		return schemaError(err, conf)
	}
	return nil
}

// applyDefaults writes the defaults of schema's properties that v (an
// object) lacks, recursively into objects and array items present.
func applyDefaults(schema map[string]any, v any, depth int) {
	if depth > 32 || schema == nil {
		return
	}
	switch x := v.(type) {
	case map[string]any:
		props, _ := schema["properties"].(map[string]any)
		for name, ps := range props {
			pm, ok := ps.(map[string]any)
			if !ok {
				continue
			}
			if _, has := x[name]; !has {
				if d, ok := pm["default"]; ok {
					x[name] = cloneJSON(d)
				}
			}
			if sub, has := x[name]; has {
				applyDefaults(pm, sub, depth+1)
			}
		}
	case []any:
		if items, ok := schema["items"].(map[string]any); ok {
			for _, e := range x {
				applyDefaults(items, e, depth+1)
			}
		}
	}
}

// cloneJSON copies a default so that configurations never share (and
// mutate) the schema's value.
func cloneJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = cloneJSON(e)
		}
		return m
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			a[i] = cloneJSON(e)
		}
		return a
	}
	return v
}

var schemaPrinter = message.NewPrinter(language.English)

// schemaError reduces a validation failure to one line naming the field:
// `count: minimum: got 0, want 1`, `missing property 'header'`.
func schemaError(err error, inst any) error {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	leaf := ve
	for len(leaf.Causes) > 0 {
		leaf = leaf.Causes[0]
	}
	msg := leaf.ErrorKind.LocalizedString(schemaPrinter)
	if p := instancePath(leaf.InstanceLocation, inst); p != "" {
		msg = p + ": " + msg
	}
	return errors.New(msg)
}

// instancePath writes a location the way sluice names fields:
// `headers[0].name`.
func instancePath(loc []string, inst any) string {
	var b strings.Builder
	for _, seg := range loc {
		switch v := inst.(type) {
		case []any:
			b.WriteString("[" + seg + "]")
			if i, err := strconv.Atoi(seg); err == nil && i < len(v) {
				inst = v[i]
			}
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(seg)
			if m, ok := v.(map[string]any); ok {
				inst = m[seg]
			}
		}
	}
	return b.String()
}

func oneLineError(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// APISIX's core.schema.TYPE_* constants (check_schema's second argument).
const (
	schemaTypeConsumer = 2
	schemaTypeMetadata = 3
)

// openCoreSchema adds core.schema to APISIX's core module: check(schema,
// conf) validates a Lua table against a schema table and fills in its
// defaults, as custom plugins' check_schema functions call it.
func (vm *VM) openCoreSchema(L *glua.LState, core *glua.LTable) {
	t := L.NewTable()
	t.RawSetString("TYPE_CONSUMER", glua.LNumber(schemaTypeConsumer))
	t.RawSetString("TYPE_METADATA", glua.LNumber(schemaTypeMetadata))
	t.RawSetString("check", L.NewFunction(vm.coreSchemaCheck))
	core.RawSetString("schema", t)
}

// schemaCacheKey keys a compiled schema in the VM's cache by its table:
// plugins keep their schema in a module-level local, so one compile per
// VM serves every check.
type schemaCacheKey struct{ t *glua.LTable }

func (vm *VM) coreSchemaCheck(L *glua.LState) int {
	st := L.CheckTable(1)
	conf := L.CheckTable(2)
	var cs *confSchema
	if v, ok := vm.cache[schemaCacheKey{st}].(*glua.LUserData); ok {
		cs, _ = v.Value.(*confSchema)
	}
	if cs == nil {
		doc, err := schemaFromLua(st)
		if err == nil {
			cs, err = compileSchema(doc)
		}
		if err != nil {
			L.Push(glua.LFalse)
			L.Push(glua.LString("invalid schema: " + err.Error()))
			return 2
		}
		ud := L.NewUserData()
		ud.Value = cs
		vm.remember(schemaCacheKey{st}, ud)
	}
	goConf, _ := luaToGo(conf, 0).(map[string]any)
	if goConf == nil {
		goConf = map[string]any{} // an empty table
	}
	emptyArrays(cs.doc, goConf, 0)
	if err := cs.check(goConf); err != nil {
		L.Push(glua.LFalse)
		L.Push(glua.LString(err.Error()))
		return 2
	}
	// Write the defaults back into the caller's table, as APISIX's
	// validator does.
	fillDefaults(L, conf, goConf)
	L.Push(glua.LTrue)
	return 1
}

// fillDefaults sets, in t, the keys of filled (t after applyDefaults)
// that t lacks, and descends into tables both have.
func fillDefaults(L *glua.LState, t *glua.LTable, filled map[string]any) {
	keys := make([]string, 0, len(filled))
	for k := range filled {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cur := t.RawGetString(k)
		switch sub := cur.(type) {
		case *glua.LNilType:
			t.RawSetString(k, goToLua(L, filled[k]))
		case *glua.LTable:
			if m, ok := filled[k].(map[string]any); ok {
				fillDefaults(L, sub, m)
			}
		}
	}
}

// emptyArrays turns empty objects into empty arrays where the schema wants
// an array: an empty Lua table is both, and APISIX's validator accepts it
// as either.
func emptyArrays(schema map[string]any, v any, depth int) {
	if depth > 32 || schema == nil {
		return
	}
	switch x := v.(type) {
	case map[string]any:
		props, _ := schema["properties"].(map[string]any)
		for name, ps := range props {
			pm, ok := ps.(map[string]any)
			if !ok {
				continue
			}
			if m, ok := x[name].(map[string]any); ok && len(m) == 0 && pm["type"] == "array" {
				x[name] = []any{}
				continue
			}
			emptyArrays(pm, x[name], depth+1)
		}
	case []any:
		if items, ok := schema["items"].(map[string]any); ok {
			for _, e := range x {
				emptyArrays(items, e, depth+1)
			}
		}
	}
}
