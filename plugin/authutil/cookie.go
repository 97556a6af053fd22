package authutil

import "strings"

// CookieValue returns the value of the first cookie named name (exactly, case
// sensitive) in a Cookie header, trimmed of white space, like resty.cookie
// and sluice's $cookie_* variables, so a plugin reads the cookie other
// plugins and the route's vars see.
func CookieValue(header, name string) (string, bool) {
	for header != "" {
		var part string
		part, header, _ = strings.Cut(header, ";")
		k, v, ok := strings.Cut(strings.TrimLeft(part, " \t"), "=")
		if ok && k == name {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// RemoveCookie returns the Cookie header without the cookies named name,
// keeping the others as sent, joined by "; " ("" when none is left: the
// caller then removes the header). APISIX rebuilds the header with a pattern
// that also truncates values holding characters other than [A-Za-z0-9._-];
// sluice keeps the other cookies intact, since the upstream may need them.
func RemoveCookie(header, name string) string {
	var b strings.Builder
	for header != "" {
		var part string
		part, header, _ = strings.Cut(header, ";")
		part = strings.TrimSpace(part)
		if k, _, _ := strings.Cut(part, "="); k == name || part == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(part)
	}
	return b.String()
}
