package requestvalidation

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// message turns a validation error into the message APISIX's validator
// (api7/jsonschema) gives for the same failure, e.g.
// `property "id" validation failed: wrong type: expected integer, got string`.
// Where several checks fail, one is reported.
func (c *compiled) message(err error, inst any) string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err.Error()
	}
	leaf := firstLeaf(ve)
	return prefix(leaf.InstanceLocation, inst) + c.describe(leaf)
}

// firstLeaf descends to the first error that is not a grouping of others;
// anyOf and oneOf are reported as themselves, as api7/jsonschema does.
func firstLeaf(e *jsonschema.ValidationError) *jsonschema.ValidationError {
	for len(e.Causes) > 0 {
		switch e.ErrorKind.(type) {
		case *kind.AnyOf, *kind.OneOf:
			return e
		}
		e = e.Causes[0]
	}
	return e
}

// prefix writes the path to the failing value: `property "a" validation
// failed: ` per object level and `failed to validate item N: ` per array
// level (N from 1).
func prefix(loc []string, inst any) string {
	var b strings.Builder
	for _, seg := range loc {
		switch v := inst.(type) {
		case map[string]any:
			b.WriteString("property " + luaQuote(seg) + " validation failed: ")
			inst = v[seg]
		case []any:
			i, _ := strconv.Atoi(seg)
			fmt.Fprintf(&b, "failed to validate item %d: ", i+1)
			if i < len(v) {
				inst = v[i]
			}
		}
	}
	return b.String()
}

func (c *compiled) describe(e *jsonschema.ValidationError) string {
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		return "property " + luaQuote(k.Missing[0]) + " is required"
	case *kind.Dependency:
		return "property " + luaQuote(k.Missing[0]) + " is required when " + luaQuote(k.Prop) + " is set"
	case *kind.DependentRequired:
		return "property " + luaQuote(k.Missing[0]) + " is required when " + luaQuote(k.Prop) + " is set"
	case *kind.Type:
		if len(k.Want) == 1 {
			return "wrong type: expected " + k.Want[0] + ", got " + luaType(k.Got)
		}
		return "wrong type: expected one of " + strings.Join(k.Want, ", ") + ", got " + luaType(k.Got)
	case *kind.MinLength:
		return fmt.Sprintf("string too short, expected at least %d, got %d", k.Want, k.Got)
	case *kind.MaxLength:
		return fmt.Sprintf("string too long, expected at most %d, got %d", k.Want, k.Got)
	case *kind.Minimum:
		return "expected " + ratString(k.Got) + " to be at least " + ratString(k.Want)
	case *kind.Maximum:
		return "expected " + ratString(k.Got) + " to be at most " + ratString(k.Want)
	case *kind.ExclusiveMinimum:
		return "expected " + ratString(k.Got) + " to be greater than " + ratString(k.Want)
	case *kind.ExclusiveMaximum:
		return "expected " + ratString(k.Got) + " to be smaller than " + ratString(k.Want)
	case *kind.MultipleOf:
		return "expected " + ratString(k.Got) + " to be a multiple of " + ratString(k.Want)
	case *kind.Enum:
		return "matches none of the enum values"
	case *kind.Const:
		return "failed to check const value"
	case *kind.Pattern:
		return "failed to match pattern " + luaQuote(k.Want) + " with " + luaQuote(k.Got)
	case *kind.AdditionalProperties:
		return "additional properties forbidden, found " + k.Properties[0]
	case *kind.MinItems:
		return fmt.Sprintf("expect array to have at least %d items", k.Want)
	case *kind.MaxItems:
		return fmt.Sprintf("expect array to have at most %d items", k.Want)
	case *kind.UniqueItems:
		return fmt.Sprintf("expected unique items but items %d and %d are equal", k.Duplicates[0]+1, k.Duplicates[1]+1)
	case *kind.MinProperties:
		return fmt.Sprintf("expect object to have at least %d properties", k.Want)
	case *kind.MaxProperties:
		return fmt.Sprintf("expect object to have at most %d properties", k.Want)
	case *kind.AnyOf:
		return "object matches none of the required" + c.anyOfRequires(e.SchemaURL)
	case *kind.OneOf:
		if len(k.Subschemas) >= 2 {
			return fmt.Sprintf("value should match only one schema, but matches both schemas %d and %d", k.Subschemas[0]+1, k.Subschemas[1]+1)
		}
		return "value should match only one schema, but matches none"
	case *kind.Not:
		return "value wasn't supposed to match schema"
	case *kind.FalseSchema:
		return "expect false always"
	case *kind.Format:
		got, _ := k.Got.(string)
		return "expect valid " + k.Want + " format but got: " + got
	}
	return e.Error()
}

// anyOfRequires lists the `required` arrays of an anyOf's subschemas as
// api7/jsonschema does: `: "[\"a\"] or [\"b\"]"`, or "" when none has one.
func (c *compiled) anyOfRequires(schemaURL string) string {
	_, ptr, _ := strings.Cut(schemaURL, "#")
	node := c.doc
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		if tok == "" {
			continue
		}
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch n := node.(type) {
		case map[string]any:
			node = n[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i >= len(n) {
				return ""
			}
			node = n[i]
		default:
			return ""
		}
	}
	// schemaURL locates the schema holding the anyOf, not the keyword.
	m, _ := node.(map[string]any)
	subs, ok := m["anyOf"].([]any)
	if !ok {
		return ""
	}
	var reqs []string
	for _, s := range subs {
		m, _ := s.(map[string]any)
		if r, ok := m["required"]; ok {
			b, _ := json.Marshal(r)
			reqs = append(reqs, string(b))
		}
	}
	if len(reqs) == 0 {
		return ""
	}
	return ": " + luaQuote(strings.Join(reqs, " or "))
}

// luaType names a JSON type as Lua's type() does on the decoded value.
func luaType(t string) string {
	switch t {
	case "object", "array":
		return "table"
	case "null":
		return "userdata"
	case "integer":
		return "number"
	}
	return t
}

// ratString writes a number as Lua's tostring does (%.14g).
func ratString(r *big.Rat) string {
	if r == nil {
		return "nil"
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', 14, 64)
}

// luaQuote quotes s like Lua's %q for printable text: in double quotes,
// with '"' and '\' escaped.
func luaQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; ch {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(ch)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case 0:
			b.WriteString(`\0`)
		default:
			b.WriteByte(ch)
		}
	}
	b.WriteByte('"')
	return b.String()
}
