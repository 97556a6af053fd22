package proxy

import (
	"errors"
	"strings"
)

var errBadPath = errors.New("invalid request path")

// normalizePath turns a raw request path into nginx's $uri: percent-decoded,
// with "//" merged and "." and ".." segments resolved. Routing matches the
// normalized form so "/public/../admin" cannot slip past a route on "/admin".
// structural reports whether slashes or dot segments changed, in which case the
// normalized path (re-escaped) is what goes upstream; otherwise the raw path is
// forwarded byte for byte. A path that climbs above the root, holds an invalid
// escape or a decoded NUL is rejected (nginx answers 400 to both).
func normalizePath(raw string) (path string, structural bool, err error) {
	if raw == "" || raw[0] != '/' {
		if raw == "*" {
			return raw, false, nil
		}
		return "", false, errBadPath
	}
	if !needsNormalizing(raw) {
		return raw, false, nil
	}
	decoded, err := percentDecode(raw)
	if err != nil {
		return "", false, err
	}
	var b strings.Builder
	b.Grow(len(decoded))
	segs := make([]int, 0, 8) // start offsets of written segments, for ".."
	for i := 0; i < len(decoded); {
		// decoded[i] == '/'
		j := i + 1
		for j < len(decoded) && decoded[j] != '/' {
			j++
		}
		seg := decoded[i+1 : j]
		switch {
		case seg == "" && j < len(decoded):
			structural = true // "//" merged
		case seg == ".":
			structural = true
			if j == len(decoded) {
				b.WriteByte('/')
			}
		case seg == "..":
			structural = true
			if len(segs) == 0 {
				return "", false, errBadPath
			}
			s := b.String()[:segs[len(segs)-1]]
			segs = segs[:len(segs)-1]
			b.Reset()
			b.WriteString(s)
			if j == len(decoded) {
				b.WriteByte('/')
			}
		default:
			segs = append(segs, b.Len())
			b.WriteByte('/')
			b.WriteString(seg)
		}
		i = j
	}
	if b.Len() == 0 {
		b.WriteByte('/')
	}
	return b.String(), structural, nil
}

// needsNormalizing is the allocation-free fast check for the common clean path.
func needsNormalizing(p string) bool {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '%':
			return true
		case '/':
			if i+1 < len(p) && (p[i+1] == '/' || p[i+1] == '.') {
				return true
			}
		}
	}
	return false
}

func percentDecode(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 {
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b = append(b, c)
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return "", errBadPath
		}
		d := unhex(s[i+1])<<4 | unhex(s[i+2])
		if d == 0 {
			return "", errBadPath
		}
		b = append(b, d)
		i += 2
	}
	return string(b), nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// escapePath re-escapes a normalized path for the request line: everything but
// unreserved characters, sub-delims, ':', '@' and '/' is percent-encoded.
func escapePath(p string) string {
	const hexdigits = "0123456789ABCDEF"
	n := 0
	for i := 0; i < len(p); i++ {
		if !pathSafe(p[i]) {
			n++
		}
	}
	if n == 0 {
		return p
	}
	b := make([]byte, 0, len(p)+2*n)
	for i := 0; i < len(p); i++ {
		c := p[i]
		if pathSafe(c) {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hexdigits[c>>4], hexdigits[c&15])
	}
	return string(b)
}

func pathSafe(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', ':', '@', '/':
		return true
	}
	return false
}
