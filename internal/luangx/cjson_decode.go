package luangx

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	lua "github.com/yuin/gopher-lua"
)

// cjsonTok is a lua-cjson token type; its name appears in parse errors.
type cjsonTok uint8

const (
	tObjBegin cjsonTok = iota
	tObjEnd
	tArrBegin
	tArrEnd
	tString
	tNumber
	tBoolean
	tNull
	tColon
	tComma
	tEnd
	tError
)

var cjsonTokNames = [...]string{"T_OBJ_BEGIN", "T_OBJ_END", "T_ARR_BEGIN", "T_ARR_END", "T_STRING", "T_NUMBER", "T_BOOLEAN", "T_NULL", "T_COLON", "T_COMMA", "T_END", "T_ERROR"}

type cjsonToken struct {
	typ   cjsonTok
	index int // byte offset of the token
	str   string
	num   float64
	b     bool
	err   string // for tError: what was wrong
}

// cjsonDecoder is a recursive-descent parser with lua-cjson's tokens and
// error messages ("Expected value but found T_END at character 1").
type cjsonDecoder struct {
	L     *lua.LState
	cfg   *cjsonConfig
	m     *cjsonMarkers
	s     string
	pos   int
	depth int
}

// decode parses the whole text; a non-empty string is the error.
func (d *cjsonDecoder) decode() (lua.LValue, string) {
	tok := d.next()
	v, err := d.value(tok)
	if err != "" {
		return nil, err
	}
	if tok = d.next(); tok.typ != tEnd {
		return nil, parseError("the end", tok)
	}
	return v, ""
}

func parseError(expected string, tok cjsonToken) string {
	found := cjsonTokNames[tok.typ]
	if tok.typ == tError {
		found = tok.err
	}
	return "Expected " + expected + " but found " + found + " at character " + strconv.Itoa(tok.index+1)
}

func (d *cjsonDecoder) value(tok cjsonToken) (lua.LValue, string) {
	switch tok.typ {
	case tString:
		return lua.LString(tok.str), ""
	case tNumber:
		return lua.LNumber(tok.num), ""
	case tBoolean:
		return lua.LBool(tok.b), ""
	case tNull:
		return d.m.null, ""
	case tObjBegin:
		return d.object(tok)
	case tArrBegin:
		return d.array(tok)
	}
	return nil, parseError("value", tok)
}

func (d *cjsonDecoder) enter(tok cjsonToken) string {
	d.depth++
	if d.depth > d.cfg.decodeMaxDepth {
		return "Found too many nested data structures (" + strconv.Itoa(d.depth) + ") at character " + strconv.Itoa(tok.index+1)
	}
	return ""
}

func (d *cjsonDecoder) object(open cjsonToken) (lua.LValue, string) {
	if err := d.enter(open); err != "" {
		return nil, err
	}
	t := d.L.NewTable()
	tok := d.next()
	if tok.typ == tObjEnd {
		d.depth--
		return t, ""
	}
	for {
		if tok.typ != tString {
			return nil, parseError("object key string", tok)
		}
		key := tok.str
		if tok = d.next(); tok.typ != tColon {
			return nil, parseError("colon", tok)
		}
		v, err := d.value(d.next())
		if err != "" {
			return nil, err
		}
		t.RawSetString(key, v)
		tok = d.next()
		if tok.typ == tObjEnd {
			d.depth--
			return t, ""
		}
		if tok.typ != tComma {
			return nil, parseError("comma or object end", tok)
		}
		tok = d.next()
	}
}

func (d *cjsonDecoder) array(open cjsonToken) (lua.LValue, string) {
	if err := d.enter(open); err != "" {
		return nil, err
	}
	t := d.L.NewTable()
	if d.cfg.decodeArrayWithMT {
		t.Metatable = d.m.arrayMT
	}
	tok := d.next()
	if tok.typ == tArrEnd {
		d.depth--
		return t, ""
	}
	for i := 1; ; i++ {
		v, err := d.value(tok)
		if err != "" {
			return nil, err
		}
		t.RawSetInt(i, v)
		tok = d.next()
		if tok.typ == tArrEnd {
			d.depth--
			return t, ""
		}
		if tok.typ != tComma {
			return nil, parseError("comma or array end", tok)
		}
		tok = d.next()
	}
}

// next scans the next token.
func (d *cjsonDecoder) next() cjsonToken {
	for d.pos < len(d.s) {
		c := d.s[d.pos]
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			break
		}
		d.pos++
	}
	tok := cjsonToken{index: d.pos}
	if d.pos >= len(d.s) {
		tok.typ = tEnd
		return tok
	}
	c := d.s[d.pos]
	if t, ok := simpleToken(c); ok {
		d.pos++
		tok.typ = t
		return tok
	}
	switch {
	case c == '"':
		return d.str(tok)
	case c == '-' || (c >= '0' && c <= '9') || (d.cfg.decodeInvalidNum && (c == 'i' || c == 'I' || c == 'n' || c == 'N')):
		if t, ok := d.number(tok); ok {
			return t
		}
	}
	for _, lit := range []struct {
		word string
		typ  cjsonTok
		b    bool
	}{{"true", tBoolean, true}, {"false", tBoolean, false}, {"null", tNull, false}} {
		if strings.HasPrefix(d.s[d.pos:], lit.word) {
			d.pos += len(lit.word)
			tok.typ, tok.b = lit.typ, lit.b
			return tok
		}
	}
	tok.typ, tok.err = tError, "invalid token"
	return tok
}

func simpleToken(c byte) (cjsonTok, bool) {
	switch c {
	case '{':
		return tObjBegin, true
	case '}':
		return tObjEnd, true
	case '[':
		return tArrBegin, true
	case ']':
		return tArrEnd, true
	case ':':
		return tColon, true
	case ',':
		return tComma, true
	}
	return 0, false
}

// number scans a number like lua-cjson (strtod with its checks: no leading
// zeros, no hexadecimal); with decode_invalid_numbers, inf and nan too.
func (d *cjsonDecoder) number(tok cjsonToken) (cjsonToken, bool) {
	rest := d.s[d.pos:]
	for _, w := range []string{"-infinity", "infinity", "-inf", "inf", "-nan", "nan"} {
		if len(rest) >= len(w) && strings.EqualFold(rest[:len(w)], w) {
			if !d.cfg.decodeInvalidNum {
				break
			}
			d.pos += len(w)
			tok.typ = tNumber
			switch {
			case strings.Contains(w, "nan"):
				tok.num = math.NaN()
			case w[0] == '-':
				tok.num = math.Inf(-1)
			default:
				tok.num = math.Inf(1)
			}
			return tok, true
		}
	}
	if rest[0] != '-' && (rest[0] < '0' || rest[0] > '9') {
		return tok, false
	}
	if d.cfg.decodeInvalidNum {
		if f, n, ok := hexNumber(rest); ok {
			d.pos += n
			tok.typ, tok.num = tNumber, f
			return tok, true
		}
	}
	i := 0
	if i < len(rest) && rest[i] == '-' {
		i++
	}
	digits := i
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	if i == digits {
		return d.badNumber(tok), true
	}
	if i-digits > 1 && rest[digits] == '0' && !d.cfg.decodeInvalidNum {
		// Leading zeros are only refused with decode_invalid_numbers off.
		return d.badNumber(tok), true
	}
	if i < len(rest) && rest[i] == '.' {
		i++
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
	}
	if i < len(rest) && (rest[i] == 'e' || rest[i] == 'E') {
		j := i + 1
		if j < len(rest) && (rest[j] == '+' || rest[j] == '-') {
			j++
		}
		k := j
		for k < len(rest) && rest[k] >= '0' && rest[k] <= '9' {
			k++
		}
		if k > j {
			i = k
		}
	}
	f, err := strconv.ParseFloat(rest[:i], 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); !ok || ne.Err != strconv.ErrRange {
			return d.badNumber(tok), true
		}
	}
	d.pos += i
	tok.typ, tok.num = tNumber, f
	return tok, true
}

// hexNumber reads an optionally negative 0x number, which strtod (and so
// lua-cjson with decode_invalid_numbers on) accepts.
func hexNumber(s string) (float64, int, bool) {
	i := 0
	if s[0] == '-' {
		i++
	}
	if len(s) < i+3 || s[i] != '0' || (s[i+1] != 'x' && s[i+1] != 'X') {
		return 0, 0, false
	}
	j := i + 2
	for j < len(s) && isHex(s[j]) {
		j++
	}
	if j == i+2 {
		return 0, 0, false
	}
	u, err := strconv.ParseUint(s[i+2:j], 16, 64)
	if err != nil {
		return 0, 0, false
	}
	f := float64(u)
	if i == 1 {
		f = -f
	}
	return f, j, true
}

func (d *cjsonDecoder) badNumber(tok cjsonToken) cjsonToken {
	tok.typ, tok.err = tError, "invalid number"
	return tok
}

func (d *cjsonDecoder) str(tok cjsonToken) cjsonToken {
	var b strings.Builder
	i := d.pos + 1
	start := i
	for {
		if i >= len(d.s) {
			tok.typ, tok.err, tok.index = tError, "unexpected end of string", i
			return tok
		}
		c := d.s[i]
		if c == '"' {
			break
		}
		if c != '\\' {
			i++
			continue
		}
		b.WriteString(d.s[start:i])
		if i+1 >= len(d.s) {
			tok.typ, tok.err, tok.index = tError, "unexpected end of string", i
			return tok
		}
		esc := d.s[i+1]
		switch esc {
		case '"', '\\', '/':
			b.WriteByte(esc)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, n := d.unicodeEscape(i)
			if n == 0 {
				tok.typ, tok.err, tok.index = tError, "invalid unicode escape code", i
				return tok
			}
			b.WriteRune(r)
			i += n
			start = i
			continue
		default:
			tok.typ, tok.err, tok.index = tError, "invalid escape code", i
			return tok
		}
		i += 2
		start = i
	}
	b.WriteString(d.s[start:i])
	d.pos = i + 1
	tok.typ, tok.str = tString, b.String()
	return tok
}

// unicodeEscape decodes \uXXXX (with a following low surrogate when XXXX
// is a high one) at s[i]; n is the bytes consumed, 0 when invalid.
func (d *cjsonDecoder) unicodeEscape(i int) (rune, int) {
	hex4 := func(j int) (rune, bool) {
		if j+4 > len(d.s) {
			return 0, false
		}
		v, err := strconv.ParseUint(d.s[j:j+4], 16, 32)
		return rune(v), err == nil
	}
	r, ok := hex4(i + 2)
	if !ok {
		return 0, 0
	}
	switch {
	case r >= 0xDC00 && r <= 0xDFFF:
		return 0, 0
	case r >= 0xD800 && r <= 0xDBFF:
		if i+12 > len(d.s) || d.s[i+6] != '\\' || d.s[i+7] != 'u' {
			return 0, 0
		}
		lo, ok := hex4(i + 8)
		if !ok || lo < 0xDC00 || lo > 0xDFFF {
			return 0, 0
		}
		return 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00), 12
	}
	if !utf8.ValidRune(r) && r != 0 {
		return 0, 0
	}
	return r, 6
}
