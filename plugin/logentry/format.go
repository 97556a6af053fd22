package logentry

import (
	"encoding/json"
	"sort"

	"github.com/sluicegw/sluice/plugin"
)

// maxFormatDepth is APISIX's limit on nested log_format objects; deeper
// objects are logged empty.
const maxFormatDepth = 5

// field is one compiled log_format entry.
type field struct {
	name    string
	varName string // the variable, without "$", when isVar
	isVar   bool
	literal []byte  // the JSON value of a constant
	nested  []field // an object's fields; literal is nil then
	object  bool
}

// compileFormat turns a log_format object into fields, sorted by name so
// entries come out the same every time.
func compileFormat(f map[string]any, depth int) []field {
	names := make([]string, 0, len(f))
	for k := range f {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make([]field, 0, len(names))
	for _, k := range names {
		fd := field{name: k}
		switch v := f[k].(type) {
		case string:
			if len(v) > 0 && v[0] == '$' {
				fd.isVar, fd.varName = true, v[1:]
			} else {
				fd.literal = appendString(nil, v)
			}
		case map[string]any:
			fd.object = true
			if depth < maxFormatDepth {
				fd.nested = compileFormat(v, depth+1)
			}
		default:
			b, err := json.Marshal(v)
			if err != nil {
				b = []byte("null")
			}
			fd.literal = b
		}
		out = append(out, fd)
	}
	return out
}

// appendFields writes fields as members of an object already opened; first
// says no member precedes them. It returns whether it is still first.
func (b *Builder) appendFields(dst []byte, fs []field, c *plugin.Ctx, first bool, skip func(string) bool) ([]byte, bool) {
	for i := range fs {
		f := &fs[i]
		if skip != nil && skip(f.name) {
			continue
		}
		switch {
		case f.isVar:
			if f.varName == "request_body" {
				body, ok := b.reqBody(c)
				if !ok {
					continue
				}
				dst = appendKey(dst, f.name, first)
				dst = appendString(dst, body)
				first = false
				continue
			}
			v, ok := c.Var(f.varName)
			if !ok {
				continue // a nil variable leaves the field out, as in APISIX
			}
			dst = appendKey(dst, f.name, first)
			dst = appendString(dst, v)
		case f.object:
			dst = appendKey(dst, f.name, first)
			dst = append(dst, '{')
			dst, _ = b.appendFields(dst, f.nested, c, true, nil)
			dst = append(dst, '}')
		default:
			dst = appendKey(dst, f.name, first)
			dst = append(dst, f.literal...)
		}
		first = false
	}
	return dst, first
}
