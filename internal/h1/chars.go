package h1

import "encoding/binary"

// Bit sets over ASCII, one bit per byte value (lo: 0-63, hi: 64-127).
// They are constants so the package holds no mutable state.
const (
	// tchar (RFC 9110 §5.6.2): "!#$%&'*+-.^_`|~" DIGIT ALPHA.
	tcharLo uint64 = 0x03ff6cfa00000000
	tcharHi uint64 = 0x57ffffffc7fffffe
	// unreserved / sub-delims (RFC 3986 §2.2, §2.3), the reg-name alphabet
	// without pct-encoded.
	regNameLo uint64 = 0x2bff7fd200000000
	regNameHi uint64 = 0x47fffffe87fffffe
)

func inSet(c byte, lo, hi uint64) bool {
	m := lo
	if c >= 64 {
		m = hi
	}
	return c < 128 && m>>(c&63)&1 != 0
}

// isTchar reports whether c may appear in a token (RFC 9110 §5.6.2).
func isTchar(c byte) bool { return inSet(c, tcharLo, tcharHi) }

func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !isTchar(c) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// unhex returns the value of a HEXDIG, or -1.
func unhex(c byte) int64 {
	switch {
	case '0' <= c && c <= '9':
		return int64(c - '0')
	case 'a' <= c && c <= 'f':
		return int64(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int64(c - 'A' + 10)
	}
	return -1
}

// validFieldValue reports whether v contains only field-vchar, SP and HTAB
// (RFC 9110 §5.5): no NUL, CR, LF, other CTLs or DEL. obs-text is allowed.
// It tests eight bytes at a time; this is the hottest loop of head parsing.
func validFieldValue(v []byte) bool {
	for len(v) >= 8 {
		x := binary.LittleEndian.Uint64(v)
		// hasLess(x, 0x20) | hasZero(x ^ 0x7f...): exact as a yes/no answer
		// (bytes >= 0x80 are masked off by ^x).
		y := x ^ 0x7f7f7f7f7f7f7f7f
		if ((x-0x2020202020202020)&^x|(y-0x0101010101010101)&^y)&0x8080808080808080 != 0 {
			if !validFieldBytes(v[:8]) {
				return false
			}
		}
		v = v[8:]
	}
	return validFieldBytes(v)
}

func validFieldBytes(v []byte) bool {
	for _, c := range v {
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func isOWS(c byte) bool { return c == ' ' || c == '\t' }

// trimOWS removes leading and trailing SP/HTAB (RFC 9110 §5.6.3).
func trimOWS(b []byte) []byte {
	for len(b) > 0 && isOWS(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isOWS(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// EqualFold reports whether b and s are equal under ASCII case folding.
// It is the allocation-free comparison used for field names and tokens,
// which are case-insensitive ASCII (RFC 9110 §5.1).
func EqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if b[i] != s[i] && lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

// nextListElem splits the first element off a comma-separated list
// (RFC 9110 §5.6.1) and returns it trimmed of OWS, plus the remainder.
// more is false when v had no comma left.
func nextListElem(v []byte) (elem, rest []byte, more bool) {
	for i, c := range v {
		if c == ',' {
			return trimOWS(v[:i]), v[i+1:], true
		}
	}
	return trimOWS(v), nil, false
}

// validAuthority reports whether b is uri-host [ ":" port ] (RFC 3986
// §3.2.2, §3.2.3), the grammar of Host (RFC 9110 §7.2) and of an
// absolute-form authority without userinfo (RFC 9110 §4.2.4). The host part
// must be non-empty.
func validAuthority(b []byte) bool {
	i := 0
	if len(b) > 0 && b[0] == '[' {
		// IP-literal: brackets around an IPv6 address or IPvFuture.
		j := 1
		for j < len(b) && b[j] != ']' {
			if c := b[j]; c != ':' && !inSet(c, regNameLo, regNameHi) {
				return false
			}
			j++
		}
		if j == len(b) || j == 1 {
			return false
		}
		i = j + 1
	} else {
		for i < len(b) && b[i] != ':' {
			c := b[i]
			// RFC 3986 lets a reg-name carry pct-encoded octets, but no
			// real host name needs them, and decoding them or not would
			// make "ex%61mple.com" and "example.com" route differently
			// between peers: reject them (found by FuzzReadRequest against
			// net/http, which decodes them).
			if c == '%' {
				return false
			}
			if !inSet(c, regNameLo, regNameHi) {
				return false
			}
			i++
		}
		if i == 0 {
			return false
		}
	}
	if i == len(b) {
		return true
	}
	if b[i] != ':' {
		return false
	}
	for _, c := range b[i+1:] {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

// parseDecimal parses 1*DIGIT into a non-negative int64, rejecting signs,
// spaces, and overflow (RFC 9110 §8.6).
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		d := int64(c - '0')
		if n > (maxInt64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

const maxInt64 = 1<<63 - 1
