// Package ngxtmpl implements the nginx and APISIX string conventions that
// several plugins share, so that they all behave alike: variable templates
// ($var, ${var}, ${var ?? default}, as APISIX's core.utils.resolve_var),
// ngx.re.sub/gsub replacements ($0, $N, ${N}, $$), nginx's URI escaping,
// and header values as APISIX's plugin schemas accept them.
//
// Everything is compiled once, when a plugin instance is built, and is then
// immutable and safe for concurrent use by requests.
package ngxtmpl

import (
	"strconv"
	"strings"
)

// VarSource answers nginx variables by name ("uri", "arg_name",
// "http_x_foo"...); ok is false when the variable is not set.
// plugin.Request satisfies it.
type VarSource interface {
	Var(name string) (value string, ok bool)
}

// Template is a string with nginx variables, compiled once: APISIX's
// core.utils.resolve_var. `$name` takes the longest run of [A-Za-z0-9_.];
// `${name}` and `${name ?? default}` allow any name and a fallback; a `$`
// right after a backslash is literal and keeps the backslash, as in APISIX.
// An unset variable without a default renders as "". The zero Template
// renders as "".
type Template struct {
	parts []varPart
}

type varPart struct {
	lit    string // literal text when name == ""
	name   string
	def    string
	hasDef bool
}

// Compile parses s into a Template. It never fails: text that is not a
// variable reference is kept literally, as APISIX does.
func Compile(s string) Template {
	var t Template
	lit := 0 // start of the pending literal
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || (i > 0 && s[i-1] == '\\') {
			continue
		}
		p, end, ok := parseVarRef(s, i)
		if !ok {
			continue
		}
		if lit < i {
			t.parts = append(t.parts, varPart{lit: s[lit:i]})
		}
		t.parts = append(t.parts, p)
		lit = end
		i = end - 1
	}
	if lit < len(s) {
		t.parts = append(t.parts, varPart{lit: s[lit:]})
	}
	return t
}

// parseVarRef parses the reference starting at s[i] == '$'.
func parseVarRef(s string, i int) (varPart, int, bool) {
	if i+1 < len(s) && s[i+1] == '{' {
		j := strings.IndexByte(s[i+2:], '}')
		if j >= 0 {
			inner := strings.TrimSpace(s[i+2 : i+2+j])
			if inner != "" {
				p := varPart{name: inner}
				if k := strings.Index(inner, "??"); k >= 0 {
					p.name = strings.TrimSpace(inner[:k])
					p.def, p.hasDef = strings.TrimSpace(inner[k+2:]), true
					if k2 := strings.Index(p.def, "??"); k2 >= 0 {
						p.def = strings.TrimSpace(p.def[:k2]) // APISIX uses the second segment only
					}
				}
				return p, i + 3 + j, true
			}
		}
	}
	j := i + 1
	for j < len(s) && isVarNameByte(s[j]) {
		j++
	}
	if j == i+1 {
		return varPart{}, 0, false
	}
	return varPart{name: s[i+1 : j]}, j, true
}

func isVarNameByte(c byte) bool {
	return c == '_' || c == '.' || ('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

// Literal reports whether t has no variables, and its text: a caller can
// then keep the string and skip rendering per request.
func (t *Template) Literal() (string, bool) {
	switch {
	case len(t.parts) == 0:
		return "", true
	case len(t.parts) == 1 && t.parts[0].name == "":
		return t.parts[0].lit, true
	}
	return "", false
}

// Append appends t, resolved against vars, to b and returns the extended
// buffer, so a caller can render into a stack buffer. escape, when not nil,
// is applied to each resolved value but not to the literal text (APISIX's
// escaper argument, e.g. to keep a '?' in a value out of the query string).
func (t *Template) Append(b []byte, vars VarSource, escape func(string) string) []byte {
	for i := range t.parts {
		p := &t.parts[i]
		if p.name == "" {
			b = append(b, p.lit...)
			continue
		}
		v, ok := vars.Var(p.name)
		if !ok {
			if !p.hasDef {
				continue
			}
			v = p.def
		}
		if escape != nil {
			v = escape(v)
		}
		b = append(b, v...)
	}
	return b
}

// Render returns t resolved against vars. A template without variables
// costs no allocation; otherwise only the result string is allocated.
func (t *Template) Render(vars VarSource) string {
	if s, ok := t.Literal(); ok {
		return s
	}
	var buf [128]byte // on the stack: only the final string is allocated
	return string(t.Append(buf[:0], vars, nil))
}

// FormatNumber renders a JSON number as Lua's tostring does ("%.14g"), so
// that a number in a plugin config reads as it does in APISIX (1e3 is
// "1000", 0.1 stays "0.1"). Text that is not a number is returned as is.
func FormatNumber(s string) string {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return s
	}
	return strconv.FormatFloat(f, 'g', 14, 64)
}
