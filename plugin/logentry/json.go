package logentry

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The entry is written by hand into a byte slice: encoding/json would need a
// map or struct per request plus reflection, and an entry is built on every
// request of a logged route.

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does.
func appendString[S string | []byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	dst = appendEscaped(dst, s)
	return append(dst, '"')
}

// appendEscaped appends s escaped for a JSON string, without quotes.
func appendEscaped[S string | []byte](dst []byte, s S) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
			}
			i++
			start = i
			continue
		}
		r, size := decodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}

func decodeRune[S string | []byte](s S) (rune, int) {
	// Only reached for non-ASCII bytes; a short prefix is enough to decode.
	var b [utf8.UTFMax]byte
	n := copy(b[:], s[:min(len(s), utf8.UTFMax)])
	return utf8.DecodeRune(b[:n])
}

// appendLower appends s lower-cased (ASCII) as a JSON string: header names,
// as ngx.req.get_headers() gives them. Names are tokens, so the usual case
// needs no escaping and no copy.
func appendLower(dst []byte, s string) []byte {
	mark := len(dst)
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z':
			dst = append(dst, c+'a'-'A')
		case c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf:
			// Not a token: lower-case a copy and escape it properly.
			return appendString(dst[:mark], []byte(strings.ToLower(s)))
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// appendMillis appends d (nanoseconds) as milliseconds with microsecond
// precision, the unit of APISIX's latency fields.
func appendMillis(dst []byte, ns int64) []byte {
	ms := math.Round(float64(ns)/1e3) / 1e3
	return strconv.AppendFloat(dst, ms, 'f', -1, 64)
}

// appendKey appends `"key":`, after a comma unless first.
func appendKey(dst []byte, key string, first bool) []byte {
	if !first {
		dst = append(dst, ',')
	}
	dst = appendString(dst, key)
	return append(dst, ':')
}
