package proxyrewrite

import (
	"maps"
	"slices"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/ngxtmpl"
)

// headerOps are the compiled header actions, run in APISIX's order: add,
// set, remove. Names are sorted so the order is deterministic.
type headerOps struct {
	add, set []headerOp
	remove   []string
}

type headerOp struct {
	name   string
	values []headerValue
}

// headerValue is one header value: a literal, a variable template, or (when
// it refers to regex_uri groups with $N) a string resolved per request in
// two steps as APISIX does: groups first, then variables.
type headerValue struct {
	lit      string
	tmpl     *ngxtmpl.Template // variables, no groups
	captured string            // raw value with group references
}

func compileHeaders(h *Headers) headerOps {
	var ops headerOps
	for _, name := range slices.Sorted(maps.Keys(h.Add)) {
		ops.add = append(ops.add, headerOp{name: name, values: compileValues(h.Add[name])})
	}
	for _, name := range slices.Sorted(maps.Keys(h.Set)) {
		ops.set = append(ops.set, headerOp{name: name, values: compileValues(h.Set[name])})
	}
	ops.remove = h.Remove
	return ops
}

func compileValues(vs []string) []headerValue {
	out := make([]headerValue, len(vs))
	for i, v := range vs {
		switch {
		case hasGroupRef(v):
			out[i] = headerValue{captured: v}
		default:
			t := ngxtmpl.Compile(v)
			if s, ok := t.Literal(); ok {
				out[i] = headerValue{lit: s}
			} else {
				out[i] = headerValue{tmpl: &t}
			}
		}
	}
	return out
}

// hasGroupRef reports whether s has an unescaped $N or ${N}.
func hasGroupRef(s string) bool {
	for i := 0; i+1 < len(s); i++ {
		if s[i] != '$' || (i > 0 && s[i-1] == '\\') {
			continue
		}
		j := i + 1
		if s[j] == '{' {
			j++
		}
		if j < len(s) && '0' <= s[j] && s[j] <= '9' {
			return true
		}
	}
	return false
}

// resolveGroups replaces $N, ${N}, ${N and $N} with regex_uri group N, ""
// when absent (APISIX's resolve_var_with_captures).
func resolveGroups(s string, m *match) string {
	b := make([]byte, 0, len(s)+16)
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || (i > 0 && s[i-1] == '\\') {
			b = append(b, s[i])
			continue
		}
		j := i + 1
		if j < len(s) && s[j] == '{' {
			j++
		}
		n, k := 0, j
		for k < len(s) && '0' <= s[k] && s[k] <= '9' && n < 1<<20 {
			n = n*10 + int(s[k]-'0')
			k++
		}
		if k == j {
			b = append(b, s[i])
			continue
		}
		if k < len(s) && s[k] == '}' {
			k++
		}
		b = append(b, m.group(n)...)
		i = k - 1
	}
	return string(b)
}

func (v *headerValue) resolve(r plugin.Request, m *match) string {
	switch {
	case v.tmpl != nil:
		return v.tmpl.Render(r)
	case v.captured != "":
		t := ngxtmpl.Compile(resolveGroups(v.captured, m))
		return t.Render(r)
	}
	return v.lit
}

func (ops *headerOps) apply(r plugin.Request, m *match) {
	for i := range ops.add {
		op := &ops.add[i]
		for j := range op.values {
			r.AddHeader(op.name, op.values[j].resolve(r, m))
		}
	}
	for i := range ops.set {
		op := &ops.set[i]
		r.SetHeader(op.name, op.values[0].resolve(r, m))
		for j := 1; j < len(op.values); j++ {
			r.AddHeader(op.name, op.values[j].resolve(r, m))
		}
	}
	for _, name := range ops.remove {
		r.DelHeader(name)
	}
}
