package expr

import "net/netip"

// parseAddr parses an IPv4 or IPv6 address without a zone. It exists because
// netip.ParseAddr returns heap-allocated errors for invalid input, and a
// request variable compared with "ipmatch" may hold anything. It accepts the
// same syntax as netip.ParseAddr minus zones, which ipmatcher rejects too.
func parseAddr(s string) (netip.Addr, bool) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '.':
			b, ok := parse4(s)
			return netip.AddrFrom4(b), ok
		case ':':
			return parse6(s)
		}
	}
	return netip.Addr{}, false
}

// parse4 parses a dotted quad with decimal fields 0-255 and no leading zeros.
func parse4(s string) ([4]byte, bool) {
	var out [4]byte
	field, val, digits := 0, 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isDigit(c):
			if digits > 0 && val == 0 {
				return out, false // Leading zero: octal ambiguity.
			}
			val = val*10 + int(c-'0')
			digits++
			if val > 255 {
				return out, false
			}
		case c == '.' && digits > 0 && field < 3:
			out[field] = byte(val)
			field++
			val, digits = 0, 0
		default:
			return out, false
		}
	}
	if field != 3 || digits == 0 {
		return out, false
	}
	out[3] = byte(val)
	return out, true
}

// parse6 parses an IPv6 address with optional "::" and an optional trailing
// dotted-quad IPv4 part.
func parse6(s string) (netip.Addr, bool) {
	var ip [16]byte
	ellipsis := -1 // Byte index in ip where "::" was seen.
	if len(s) >= 2 && s[0] == ':' && s[1] == ':' {
		ellipsis = 0
		s = s[2:]
		if s == "" {
			return netip.AddrFrom16(ip), true
		}
	}
	i := 0
	for i < 16 {
		// Read up to four hex digits.
		off, acc := 0, 0
		for ; off < len(s); off++ {
			d, ok := hexDigit(s[off])
			if !ok {
				break
			}
			if off == 4 {
				return netip.Addr{}, false
			}
			acc = acc<<4 | int(d)
		}
		if off == 0 {
			return netip.Addr{}, false
		}
		if off < len(s) && s[off] == '.' {
			// Embedded IPv4 must be the last 4 bytes.
			if ellipsis < 0 && i != 12 || i+4 > 16 {
				return netip.Addr{}, false
			}
			b, ok := parse4(s)
			if !ok {
				return netip.Addr{}, false
			}
			copy(ip[i:], b[:])
			i += 4
			s = ""
			break
		}
		ip[i], ip[i+1] = byte(acc>>8), byte(acc)
		i += 2
		s = s[off:]
		if s == "" {
			break
		}
		if s[0] != ':' || len(s) == 1 {
			return netip.Addr{}, false
		}
		s = s[1:]
		if s[0] == ':' {
			if ellipsis >= 0 {
				return netip.Addr{}, false
			}
			ellipsis = i
			s = s[1:]
			if s == "" {
				break
			}
		}
	}
	if s != "" {
		return netip.Addr{}, false
	}
	if i < 16 {
		if ellipsis < 0 {
			return netip.Addr{}, false
		}
		n := 16 - i
		copy(ip[ellipsis+n:], ip[ellipsis:i])
		clear(ip[ellipsis : ellipsis+n])
	} else if ellipsis >= 0 {
		return netip.Addr{}, false // "::" must stand for at least one group.
	}
	return netip.AddrFrom16(ip), true
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case isDigit(c):
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
