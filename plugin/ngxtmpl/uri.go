package ngxtmpl

// uriEscaped is the set nginx's ngx_escape_uri(NGX_ESCAPE_URI) escapes,
// which APISIX's core.utils.uri_safe_encode calls: controls, space, '#',
// '%', '?', DEL and every byte >= 0x80.
var uriEscaped = byteSet(func(c byte) bool {
	return c <= ' ' || c == '#' || c == '%' || c == '?' || c >= 0x7f
})

// controlEscaped is the control bytes: C0 controls and DEL.
var controlEscaped = byteSet(func(c byte) bool {
	return c < ' ' || c == 0x7f
})

// byteSet tabulates in once, so escaping tests a byte with one load.
func byteSet(in func(byte) bool) *[256]bool {
	var set [256]bool
	for c := range set {
		set[c] = in(byte(c))
	}
	return &set
}

// EscapeURI escapes a path as nginx's ngx_escape_uri(NGX_ESCAPE_URI) does,
// which APISIX's core.utils.uri_safe_encode calls: controls, space, '#',
// '%', '?', DEL and every byte >= 0x80 become upper-case %XX; everything
// else, '/' and reserved characters included, is kept. s is returned as is
// (not copied) when nothing needs escaping.
func EscapeURI(s string) string { return escape(s, uriEscaped) }

// EscapeControls percent-encodes control bytes (C0 and DEL) and nothing
// else, so that a value built from user input (such as a query string)
// cannot carry CR or LF into a request line. s is returned as is (not
// copied) when it has none.
func EscapeControls(s string) string { return escape(s, controlEscaped) }

const hexDigits = "0123456789ABCDEF"

// escape writes each byte of s in set as %XX. It counts first so that the
// result is allocated once, at its final size, and only when needed.
func escape(s string, set *[256]bool) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if set[s[i]] {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if set[c] {
			b = append(b, '%', hexDigits[c>>4], hexDigits[c&15])
		} else {
			b = append(b, c)
		}
	}
	return string(b)
}
