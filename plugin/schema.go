package plugin

import (
	"reflect"
	"strings"
)

// SchemaOf returns the JSON Schema of a plugin's configuration: the
// descriptor's own, or one derived from its Config struct (JSON field names,
// types, and the defaults NewConfig sets).
func SchemaOf(d Descriptor) map[string]any {
	if d.Schema != nil {
		return d.Schema
	}
	return schemaOfValue(reflect.ValueOf(d.NewConfig()))
}

// ConsumerSchemaOf is SchemaOf for the credentials an auth plugin keeps on
// consumers; nil for plugins that keep none.
func ConsumerSchemaOf(d Descriptor) map[string]any {
	if d.NewConsumerConfig == nil {
		return nil
	}
	return schemaOfValue(reflect.ValueOf(d.NewConsumerConfig()))
}

func schemaOfValue(v reflect.Value) map[string]any {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return schemaOfType(v.Type())
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return schemaOfType(v.Type())
	}
	props := map[string]any{}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fs := schemaOfValue(v.Field(i))
		if fv := v.Field(i); !fv.IsZero() && isScalarOrList(fv) {
			fs["default"] = fv.Interface()
		}
		props[name] = fs
	}
	return map[string]any{"type": "object", "properties": props}
}

func isScalarOrList(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Int32, reflect.Float64, reflect.Float32,
		reflect.Uint, reflect.Uint32, reflect.Uint64, reflect.Slice:
		return true
	}
	return false
}

func schemaOfType(t reflect.Type) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": schemaOfType(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object"}
	case reflect.Struct:
		return schemaOfValue(reflect.New(t).Elem())
	}
	return map[string]any{}
}
