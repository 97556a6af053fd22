package expr

import (
	"math"
	"strconv"
	"strings"
)

// toNumber converts s the way LuaJIT's tonumber converts a string: surrounding
// whitespace is ignored, an optional sign is allowed, and the rest must be a
// decimal number (with optional fraction and exponent), a hexadecimal integer
// ("0x1F"), or "inf", "infinity" or "nan" in any case.
//
// The syntax is checked here first so that strconv.ParseFloat only sees valid
// input: its error values are heap-allocated, and Eval must not allocate.
func toNumber(s string) (float64, bool) {
	s = strings.Trim(s, " \t\n\v\f\r")
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" {
		return 0, false
	}
	var f float64
	switch {
	case len(s) <= 15 && allDigits(s):
		// Fast path for the common case: integers below 10^15 are exact in
		// a float64 and need no ParseFloat.
		for i := 0; i < len(s); i++ {
			f = f*10 + float64(s[i]-'0')
		}
	case len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'):
		v, ok := parseHex(s[2:])
		if !ok {
			return 0, false
		}
		f = v
	case isDigit(s[0]) || s[0] == '.':
		mag, ok := decimalMagnitude(s)
		if !ok {
			return 0, false
		}
		switch {
		case mag > 309:
			// At least 1e309, beyond float64: LuaJIT yields inf. Short-cut it
			// because ParseFloat would report the overflow with an
			// allocated error.
			f = math.Inf(1)
		case mag < -400:
			f = 0
		default:
			// Only values in [1e308, 1e309) can still overflow here, and
			// then ParseFloat's result is the correct ±Inf anyway.
			f, _ = strconv.ParseFloat(s, 64)
		}
	default:
		// EqualFold, unlike ToLower, never allocates.
		switch {
		case strings.EqualFold(s, "inf"), strings.EqualFold(s, "infinity"):
			f = math.Inf(1)
		case strings.EqualFold(s, "nan"):
			f = math.NaN()
		default:
			return 0, false
		}
	}
	if neg {
		f = -f
	}
	return f, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// parseHex parses hexadecimal digits into a float64, which, like LuaJIT,
// rounds values beyond 2^53 and never fails on overflow.
func parseHex(s string) (float64, bool) {
	var f float64
	for i := 0; i < len(s); i++ {
		c := s[i]
		var d byte
		switch {
		case isDigit(c):
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		f = f*16 + float64(d)
	}
	return f, true
}

// decimalMagnitude validates digits[.digits][(e|E)[sign]digits] (at least one
// mantissa digit) and returns the decimal exponent of the leading significant
// digit plus one, i.e. v is in [10^(mag-1), 10^mag). It returns a very small
// magnitude for zero.
func decimalMagnitude(s string) (int, bool) {
	i, digits, intDigits, leadZeros := 0, 0, 0, 0
	significant := false
	for ; i < len(s) && isDigit(s[i]); i++ {
		digits++
		if s[i] != '0' {
			significant = true
		}
		if significant {
			intDigits++
		}
	}
	if i < len(s) && s[i] == '.' {
		i++
		for ; i < len(s) && isDigit(s[i]); i++ {
			digits++
			if !significant {
				if s[i] != '0' {
					significant = true
				} else {
					leadZeros++
				}
			}
		}
	}
	if digits == 0 {
		return 0, false
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			eneg = s[i] == '-'
			i++
		}
		start := i
		for ; i < len(s) && isDigit(s[i]); i++ {
			if exp < 100000 { // Saturate: anything this large is inf or 0.
				exp = exp*10 + int(s[i]-'0')
			}
		}
		if i == start {
			return 0, false
		}
		if eneg {
			exp = -exp
		}
	}
	if i != len(s) {
		return 0, false
	}
	if !significant {
		return -1 << 20, true
	}
	if intDigits > 0 {
		return intDigits + exp, true
	}
	return -leadZeros + exp, true
}
