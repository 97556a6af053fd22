package luangx

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"hash/crc32"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// OpenCodec installs ngx's encoding and hashing functions in the ngx table:
// encode_base64, decode_base64, escape_uri, unescape_uri, encode_args,
// decode_args, md5, md5_bin, sha1_bin, hmac_sha1, crc32_short, crc32_long and
// quote_sql_str, with lua-nginx-module 0.10.23's argument handling.
func OpenCodec(L *lua.LState, ngx *lua.LTable) {
	L.SetFuncs(ngx, map[string]lua.LGFunction{
		"encode_base64": encodeBase64,
		"decode_base64": decodeBase64,
		"escape_uri":    escapeURILua,
		"unescape_uri":  unescapeURILua,
		"encode_args":   encodeArgs,
		"decode_args":   decodeArgs,
		"md5": func(L *lua.LState) int {
			sum := md5.Sum([]byte(optStr(L, 1)))
			L.Push(lua.LString(hex.EncodeToString(sum[:])))
			return 1
		},
		"md5_bin": func(L *lua.LState) int {
			sum := md5.Sum([]byte(optStr(L, 1)))
			L.Push(lua.LString(sum[:]))
			return 1
		},
		"sha1_bin": func(L *lua.LState) int {
			sum := sha1.Sum([]byte(optStr(L, 1)))
			L.Push(lua.LString(sum[:]))
			return 1
		},
		"hmac_sha1": func(L *lua.LState) int {
			m := hmac.New(sha1.New, []byte(L.CheckString(1)))
			m.Write([]byte(L.CheckString(2)))
			L.Push(lua.LString(m.Sum(nil)))
			return 1
		},
		"crc32_short":   crc32Lua,
		"crc32_long":    crc32Lua,
		"quote_sql_str": quoteSQLStr,
	})
}

// optStr reads argument n the way lua-nginx-module's string functions do:
// nil is the empty string, numbers are converted.
func optStr(L *lua.LState, n int) string {
	switch v := L.Get(n).(type) {
	case *lua.LNilType:
		return ""
	case lua.LString:
		return string(v)
	case lua.LNumber:
		return v.String()
	default:
		L.TypeError(n, lua.LTString)
		return ""
	}
}

func crc32Lua(L *lua.LState) int {
	L.Push(lua.LNumber(crc32.ChecksumIEEE([]byte(optStr(L, 1)))))
	return 1
}

func encodeBase64(L *lua.LState) int {
	s := optStr(L, 1)
	enc := base64.StdEncoding
	if lua.LVAsBool(L.Get(2)) {
		enc = base64.RawStdEncoding
	}
	L.Push(lua.LString(enc.EncodeToString([]byte(s))))
	return 1
}

// decodeBase64 follows nginx's ngx_decode_base64: the text up to the first
// "=" is decoded and anything after it ignored; a character outside the
// base64 alphabet before it, or a length that leaves one stray character,
// makes the input invalid (nil).
func decodeBase64(L *lua.LState) int {
	v, ok := L.Get(1).(lua.LString)
	if !ok {
		if n, isNum := L.Get(1).(lua.LNumber); isNum {
			v = lua.LString(n.String())
		} else {
			L.RaiseError("string argument only")
		}
	}
	s := string(v)
	n := 0
	for n < len(s) && s[n] != '=' {
		if !isBase64Char(s[n]) {
			L.Push(lua.LNil)
			return 1
		}
		n++
	}
	if n%4 == 1 {
		L.Push(lua.LNil)
		return 1
	}
	out, err := base64.RawStdEncoding.DecodeString(s[:n])
	if err != nil {
		L.Push(lua.LNil)
		return 1
	}
	L.Push(lua.LString(out))
	return 1
}

func isBase64Char(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/'
}

// escapeSets lists, for each ngx.escape_uri type (nginx's ngx_escape_uri
// types 0 to 6), the printable ASCII characters escaped besides space;
// escapeHigh says whether bytes 0x7f and above are escaped too. Control
// characters are always escaped. Established byte by byte against
// lua-nginx-module 0.10.23 (TestEscapeURIAllBytes).
var (
	escapeSets = [7]string{
		" #%?",
		" #%+?",
		" \"#$%&+,/:;<=>?@[\\]^`{|}",
		" \"#%'",
		" \"'",
		" %",
		" %",
	}
	escapeHigh = [7]bool{true, true, true, true, true, false, false}
	// escapeTables is built from escapeSets at init: a read-only lookup
	// table per type.
	escapeTables = func() (t [7][256]bool) {
		for typ, set := range escapeSets {
			for c := 0; c < 256; c++ {
				t[typ][c] = c < 0x20 || (c >= 0x7f && escapeHigh[typ]) || strings.IndexByte(set, byte(c)) >= 0
			}
		}
		return t
	}()
)

const upperHex = "0123456789ABCDEF"

// escapeURI percent-encodes s for escape type typ (0..6).
func escapeURI(s string, typ int) string {
	tbl := &escapeTables[typ]
	n := 0
	for i := 0; i < len(s); i++ {
		if tbl[s[i]] {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if tbl[c] {
			b = append(b, '%', upperHex[c>>4], upperHex[c&15])
		} else {
			b = append(b, c)
		}
	}
	return string(b)
}

func escapeURILua(L *lua.LState) int {
	s := optStr(L, 1)
	typ := 2
	switch v := L.Get(2).(type) {
	case *lua.LNilType:
	case lua.LNumber:
		typ = int(v)
		if typ < 0 || typ > 6 {
			L.RaiseError(`"type" %d out of range`, typ)
		}
	default:
		L.RaiseError(`"type" is not a number`)
	}
	L.Push(lua.LString(escapeURI(s, typ)))
	return 1
}

// unescapeURI decodes %XX sequences and turns '+' into a space, leaving
// malformed sequences as they are, like nginx's NGX_UNESCAPE_URI_COMPONENT
// as used by ngx.unescape_uri.
func unescapeURI(s string) string {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

func unescapeURILua(L *lua.LState) int {
	L.Push(lua.LString(unescapeURI(optStr(L, 1))))
	return 1
}

// encodeArgs implements ngx.encode_args: string keys; string and number
// values as key=value, true as a bare key, false skipped, and a list value
// repeats the key for each element. Keys and values are escaped like
// escape_uri type 2. Table order is the VM's iteration order, as in nginx.
func encodeArgs(L *lua.LState) int {
	t := L.CheckTable(1)
	var b strings.Builder
	sep := func() {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
	}
	pair := func(key string, v lua.LValue) {
		switch v := v.(type) {
		case lua.LString:
			sep()
			b.WriteString(escapeURI(key, 2) + "=" + escapeURI(string(v), 2))
		case lua.LNumber:
			sep()
			b.WriteString(escapeURI(key, 2) + "=" + escapeURI(v.String(), 2))
		case lua.LBool:
			if v {
				sep()
				b.WriteString(escapeURI(key, 2))
			}
		default:
			L.RaiseError("attempt to use %s as query arg value", v.Type().String())
		}
	}
	t.ForEach(func(k, v lua.LValue) {
		ks, ok := k.(lua.LString)
		if !ok {
			L.RaiseError(`attempt to use a non-string key in the "args" option table`)
		}
		if list, ok := v.(*lua.LTable); ok {
			list.ForEach(func(_, e lua.LValue) {
				if _, nested := e.(*lua.LTable); nested {
					L.RaiseError("attempt to use table as query arg value")
				}
				pair(string(ks), e)
			})
			return
		}
		pair(string(ks), v)
	})
	L.Push(lua.LString(b.String()))
	return 1
}

// decodeArgs implements ngx.decode_args(str, max_args): it returns a table
// where a repeated key maps to a list of its values and a key without "="
// to true; pairs with an empty key are dropped. max_args defaults to 100
// (0 or less: no limit); when there are more pairs it also returns
// "truncated".
func decodeArgs(L *lua.LState) int {
	s := L.CheckString(1)
	maxArgs := L.OptInt(2, 100)
	t := L.NewTable()
	n := 0
	truncated := false
	for len(s) > 0 {
		var part string
		part, s, _ = strings.Cut(s, "&")
		if part == "" {
			continue
		}
		if maxArgs > 0 && n >= maxArgs {
			truncated = true
			break
		}
		k, v, hasEq := strings.Cut(part, "=")
		key := unescapeURI(k)
		if key == "" {
			continue
		}
		n++
		var val lua.LValue = lua.LTrue
		if hasEq {
			val = lua.LString(unescapeURI(v))
		}
		switch old := t.RawGetString(key).(type) {
		case *lua.LNilType:
			t.RawSetString(key, val)
		case *lua.LTable:
			old.Append(val)
		default:
			list := L.CreateTable(2, 0)
			list.Append(old)
			list.Append(val)
			t.RawSetString(key, list)
		}
	}
	L.Push(t)
	if truncated {
		L.Push(lua.LString("truncated"))
		return 2
	}
	return 1
}

// quoteSQLStr implements ngx.quote_sql_str: MySQL string literal quoting.
func quoteSQLStr(L *lua.LState) int {
	s := L.CheckString(1)
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case 0:
			b.WriteString(`\0`)
		case '\b':
			b.WriteString(`\b`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case 0x1a:
			b.WriteString(`\Z`)
		case '"', '\'', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	L.Push(lua.LString(b.String()))
	return 1
}
