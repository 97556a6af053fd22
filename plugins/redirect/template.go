package redirect

import "github.com/sluicegw/sluice/plugin"

// uriTemplate is redirect's own `uri` syntax (it differs from
// proxy-rewrite's): `$name` and `${name}` with [A-Za-z0-9_] names are
// variables (unset ones render empty), `\$name` is kept literally with its
// backslash, and any other backslash is dropped, as APISIX's parse_uri does.
type uriTemplate struct {
	parts []uriPart
}

type uriPart struct {
	lit  string
	name string // variable name; "" for a literal
}

func isNameByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// nameEnd returns the end of the name starting at s[i].
func nameEnd(s string, i int) int {
	for i < len(s) && isNameByte(s[i]) {
		i++
	}
	return i
}

func compileURITemplate(s string) uriTemplate {
	var t uriTemplate
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			t.parts = append(t.parts, uriPart{lit: string(lit)})
			lit = nil
		}
	}
	for i := 0; i < len(s); {
		switch {
		case s[i] == '\\':
			if i+1 < len(s) && s[i+1] == '$' {
				if e := nameEnd(s, i+2); e > i+2 {
					lit = append(lit, s[i:e]...)
					i = e
					continue
				}
			}
			i++ // a stray backslash matches nothing in APISIX's pattern
		case s[i] == '$' && i+1 < len(s) && s[i+1] == '{':
			if e := nameEnd(s, i+2); e > i+2 && e < len(s) && s[e] == '}' {
				flush()
				t.parts = append(t.parts, uriPart{name: s[i+2 : e]})
				i = e + 1
				continue
			}
			lit = append(lit, '$')
			i++
		case s[i] == '$':
			if e := nameEnd(s, i+1); e > i+1 {
				flush()
				t.parts = append(t.parts, uriPart{name: s[i+1 : e]})
				i = e
				continue
			}
			lit = append(lit, '$')
			i++
		default:
			lit = append(lit, s[i])
			i++
		}
	}
	flush()
	return t
}

func (t *uriTemplate) render(r plugin.Request) string {
	if len(t.parts) == 1 && t.parts[0].name == "" {
		return t.parts[0].lit
	}
	var buf [256]byte
	b := buf[:0]
	for _, p := range t.parts {
		if p.name == "" {
			b = append(b, p.lit...)
			continue
		}
		v, _ := r.Var(p.name)
		b = append(b, v...)
	}
	return string(b)
}
