package authutil

import "strings"

// ArgState says how an argument appears in a query string.
type ArgState int

// Argument states, in the terms of ngx.req.get_uri_args, which APISIX reads
// credentials from.
const (
	// ArgAbsent: the argument is not in the query.
	ArgAbsent ArgState = iota
	// ArgOne: the argument is present once as name=value (the value may be
	// empty); APISIX sees a string.
	ArgOne
	// ArgNotString: the argument is repeated, or present without '='.
	// APISIX sees a table or the boolean true, which matches no credential,
	// so it is present yet never valid.
	ArgNotString
)

// QueryArg finds the argument name in the raw query q as
// ngx.req.get_uri_args does: it splits on '&' and decodes '%XX' and '+' in
// names and values. It returns the decoded value of a single name=value
// occurrence with ArgOne, or "" with ArgAbsent or ArgNotString. It allocates
// only when the value is escaped, since it runs on every request.
func QueryArg(q, name string) (string, ArgState) {
	val, state := "", ArgAbsent
	for q != "" {
		var seg string
		seg, q, _ = strings.Cut(q, "&")
		k, v, hasEq := strings.Cut(seg, "=")
		if !unescapedEquals(k, name) {
			continue
		}
		if state != ArgAbsent || !hasEq {
			state = ArgNotString
			continue
		}
		val, state = Unescape(v), ArgOne
	}
	if state != ArgOne {
		val = ""
	}
	return val, state
}

// RemoveArg returns q without the arguments whose decoded name is name,
// keeping the others exactly as they were sent (hide_credentials). APISIX
// re-encodes the whole query instead (core.request.set_uri_args), which also
// reorders it; sluice leaves the rest of the client's query untouched so that
// an upstream verifying it (or a signature over it) still sees the original.
func RemoveArg(q, name string) string {
	var b strings.Builder
	for q != "" {
		var seg string
		seg, q, _ = strings.Cut(q, "&")
		k, _, _ := strings.Cut(seg, "=")
		if unescapedEquals(k, name) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(seg)
	}
	return b.String()
}

// unescapedEquals reports whether Unescape(s) == want without allocating in
// the common case of an unescaped s.
func unescapedEquals(s, want string) bool {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s == want
	}
	return Unescape(s) == want
}

// Unescape decodes '+' to a space and valid '%XX' escapes, leaving invalid
// escapes as they are, like nginx's ngx_http_lua_unescape_uri. Unlike
// net/url it never fails: a credential arrives as nginx decoded it, even from
// a malformed query. It returns s itself when there is nothing to decode.
func Unescape(s string) string {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == '+':
			b = append(b, ' ')
		case ch == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			b = append(b, ch)
		}
	}
	return string(b)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'f'
}

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return (c | 0x20) - 'a' + 10
}
