package mocking

import (
	"encoding/json"
	"encoding/xml"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// generate makes a random body from a JSON schema's object, as APISIX's
// gen_object does: strings, numbers, integers and booleans use the
// property's `example` when it has the right type; arrays get 1 to 3 items;
// properties of other or missing types are left out.
func generate(schema map[string]any, asXML bool) []byte {
	v := genObject(schema)
	if asXML {
		var b strings.Builder
		b.WriteString("<data>")
		writeXML(&b, v)
		b.WriteString("</data>")
		return []byte(b.String())
	}
	out, _ := json.Marshal(v) // maps of plain values always marshal
	return out
}

func genObject(schema map[string]any) map[string]any {
	out := map[string]any{}
	props, _ := schema["properties"].(map[string]any)
	for k, v := range props {
		if prop, ok := v.(map[string]any); ok {
			if g, ok := genProperty(prop); ok {
				out[k] = g
			}
		}
	}
	return out
}

func genProperty(prop map[string]any) (any, bool) {
	typ, _ := prop["type"].(string)
	example := prop["example"]
	switch strings.ToLower(typ) {
	case "object":
		return genObject(prop), true
	case "array":
		items, ok := prop["items"].(map[string]any)
		if !ok {
			return nil, false
		}
		out := []any{}
		for range 1 + rand.IntN(3) {
			if g, ok := genProperty(items); ok {
				out = append(out, g)
			}
		}
		return out, true
	case "string":
		if s, ok := example.(string); ok {
			return s, true
		}
		b := make([]byte, 1+rand.IntN(10))
		for i := range b {
			b[i] = byte('a' + rand.IntN(26))
		}
		return string(b), true
	case "number":
		if f, ok := example.(float64); ok {
			return f, true
		}
		return rand.Float64() * 10000, true
	case "integer":
		if f, ok := example.(float64); ok {
			return int64(math.Floor(f)), true
		}
		return 1 + rand.IntN(10000), true
	case "boolean":
		if b, ok := example.(bool); ok {
			return b, true
		}
		return rand.IntN(2) == 1, true
	}
	return nil, false
}

// writeXML writes v as elements: object keys (sorted) become elements,
// arrays repeat their parent's element.
func writeXML(b *strings.Builder, v any) {
	obj, ok := v.(map[string]any)
	if !ok {
		writeScalar(b, v)
		return
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		items, isList := obj[k].([]any)
		if !isList {
			items = []any{obj[k]}
		}
		for _, it := range items {
			b.WriteString("<" + k + ">")
			writeXML(b, it)
			b.WriteString("</" + k + ">")
		}
	}
}

func writeScalar(b *strings.Builder, v any) {
	switch x := v.(type) {
	case string:
		_ = xml.EscapeText(b, []byte(x))
	case float64:
		b.WriteString(strconv.FormatFloat(x, 'g', 14, 64))
	case int:
		b.WriteString(strconv.Itoa(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case bool:
		b.WriteString(strconv.FormatBool(x))
	}
}
