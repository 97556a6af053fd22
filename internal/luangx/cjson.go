package luangx

import (
	"math"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// OpenCJSON registers the preload modules "cjson" and "cjson.safe", which
// follow OpenResty's lua-cjson 2.1.0.x: cjson raises errors, cjson.safe
// returns nil, err. Both share the VM's null sentinel (ngx.null) and their
// own empty_array / empty_array_mt / array_mt markers.
func OpenCJSON(L *lua.LState) {
	m := &cjsonMarkers{
		null:         Null(L),
		emptyArray:   L.NewUserData(),
		emptyArrayMT: L.NewTable(),
		arrayMT:      L.NewTable(),
	}
	m.emptyArray.Metatable = L.NewTable()
	m.emptyArray.Metatable.(*lua.LTable).RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString("userdata: NULL"))
		return 1
	}))
	L.PreloadModule("cjson", func(L *lua.LState) int {
		L.Push(m.module(L, false))
		return 1
	})
	L.PreloadModule("cjson.safe", func(L *lua.LState) int {
		L.Push(m.module(L, true))
		return 1
	})
}

// cjsonMarkers are the sentinel values shared by every cjson instance of a
// VM, so that tables built with one instance encode the same with another.
type cjsonMarkers struct {
	null         *lua.LUserData
	emptyArray   *lua.LUserData
	emptyArrayMT *lua.LTable
	arrayMT      *lua.LTable
}

// cjsonConfig is one instance's settings, changed by the cjson.encode_* and
// cjson.decode_* functions; the defaults are lua-cjson's.
type cjsonConfig struct {
	sparseConvert     bool
	sparseRatio       int
	sparseSafe        int
	encodeMaxDepth    int
	decodeMaxDepth    int
	precision         int
	emptyAsObject     bool
	escapeSlash       bool
	decodeArrayWithMT bool
	encodeInvalidNum  int // 0 off, 1 on, 2 null
	decodeInvalidNum  bool
}

func defaultCJSONConfig() *cjsonConfig {
	return &cjsonConfig{
		sparseRatio: 2, sparseSafe: 10,
		encodeMaxDepth: 1000, decodeMaxDepth: 1000,
		precision: 14, emptyAsObject: true, escapeSlash: true,
		decodeInvalidNum: true,
	}
}

// module builds one cjson table with its own configuration.
func (m *cjsonMarkers) module(L *lua.LState, safe bool) *lua.LTable {
	cfg := defaultCJSONConfig()
	t := L.NewTable()
	name := "cjson"
	if safe {
		name = "cjson.safe"
	}
	t.RawSetString("_NAME", lua.LString(name))
	t.RawSetString("_VERSION", lua.LString("2.1.0.10"))
	t.RawSetString("null", m.null)
	t.RawSetString("empty_array", m.emptyArray)
	t.RawSetString("empty_array_mt", m.emptyArrayMT)
	t.RawSetString("array_mt", m.arrayMT)
	fail := func(L *lua.LState, msg string) int {
		if safe {
			L.Push(lua.LNil)
			L.Push(lua.LString(msg))
			return 2
		}
		L.Error(lua.LString(msg), 0)
		return 0
	}
	L.SetFuncs(t, map[string]lua.LGFunction{
		"encode": func(L *lua.LState) int {
			if L.GetTop() != 1 {
				L.RaiseError("bad argument #1 to 'encode' (expected 1 argument)")
			}
			e := cjsonEncoder{cfg: cfg, m: m}
			if err := e.encode(L.Get(1), 0); err != "" {
				return fail(L, err)
			}
			L.Push(lua.LString(e.b.String()))
			return 1
		},
		"decode": func(L *lua.LState) int {
			if L.GetTop() != 1 {
				L.RaiseError("bad argument #1 to 'decode' (expected 1 argument)")
			}
			s, ok := L.Get(1).(lua.LString)
			if !ok {
				if n, isNum := L.Get(1).(lua.LNumber); isNum {
					s = lua.LString(n.String())
				} else {
					L.TypeError(1, lua.LTString)
				}
			}
			d := cjsonDecoder{L: L, cfg: cfg, m: m, s: string(s)}
			v, err := d.decode()
			if err != "" {
				return fail(L, err)
			}
			L.Push(v)
			return 1
		},
		"new": func(L *lua.LState) int {
			L.Push(m.module(L, safe))
			return 1
		},
		"encode_sparse_array": func(L *lua.LState) int {
			if L.GetTop() >= 1 {
				cfg.sparseConvert = lua.LVAsBool(L.Get(1))
			}
			if L.GetTop() >= 2 {
				cfg.sparseRatio = L.CheckInt(2)
			}
			if L.GetTop() >= 3 {
				cfg.sparseSafe = L.CheckInt(3)
			}
			L.Push(lua.LBool(cfg.sparseConvert))
			L.Push(lua.LNumber(cfg.sparseRatio))
			L.Push(lua.LNumber(cfg.sparseSafe))
			return 3
		},
		"encode_max_depth":             intSetting(&cfg.encodeMaxDepth, 1, math.MaxInt32),
		"decode_max_depth":             intSetting(&cfg.decodeMaxDepth, 1, math.MaxInt32),
		"encode_number_precision":      intSetting(&cfg.precision, 1, 16),
		"encode_empty_table_as_object": boolSetting(&cfg.emptyAsObject),
		"encode_escape_forward_slash":  boolSetting(&cfg.escapeSlash),
		"decode_array_with_array_mt":   boolSetting(&cfg.decodeArrayWithMT),
		"decode_invalid_numbers":       boolSetting(&cfg.decodeInvalidNum),
		"encode_keep_buffer":           func(L *lua.LState) int { L.Push(lua.LTrue); return 1 },
		"encode_invalid_numbers":       encodeInvalidNumbers(cfg),
	})
	return t
}

func intSetting(p *int, lo, hi int) lua.LGFunction {
	return func(L *lua.LState) int {
		if L.GetTop() >= 1 {
			n := L.CheckInt(1)
			if n < lo || n > hi {
				L.ArgError(1, "expected integer between "+strconv.Itoa(lo)+" and "+strconv.Itoa(hi))
			}
			*p = n
		}
		L.Push(lua.LNumber(*p))
		return 1
	}
}

func boolSetting(p *bool) lua.LGFunction {
	return func(L *lua.LState) int {
		if L.GetTop() >= 1 {
			switch v := L.Get(1).(type) {
			case lua.LBool:
				*p = bool(v)
			case lua.LString:
				*p = v == "on"
			default:
				*p = lua.LVAsBool(v)
			}
		}
		L.Push(lua.LBool(*p))
		return 1
	}
}

func encodeInvalidNumbers(cfg *cjsonConfig) lua.LGFunction {
	return func(L *lua.LState) int {
		if L.GetTop() >= 1 {
			switch v := L.Get(1); {
			case v == lua.LTrue || v == lua.LString("on"):
				cfg.encodeInvalidNum = 1
			case v == lua.LString("null"):
				cfg.encodeInvalidNum = 2
			default:
				cfg.encodeInvalidNum = 0
			}
		}
		switch cfg.encodeInvalidNum {
		case 1:
			L.Push(lua.LTrue)
		case 2:
			L.Push(lua.LString("null"))
		default:
			L.Push(lua.LFalse)
		}
		return 1
	}
}

type cjsonEncoder struct {
	cfg *cjsonConfig
	m   *cjsonMarkers
	b   strings.Builder
}

// encode appends v's JSON; a non-empty result is lua-cjson's error text.
func (e *cjsonEncoder) encode(v lua.LValue, depth int) string {
	switch v := v.(type) {
	case *lua.LNilType:
		e.b.WriteString("null")
	case lua.LBool:
		if v {
			e.b.WriteString("true")
		} else {
			e.b.WriteString("false")
		}
	case lua.LNumber:
		return e.number(float64(v))
	case lua.LString:
		e.str(string(v))
	case *lua.LUserData:
		switch v {
		case e.m.null:
			e.b.WriteString("null")
		case e.m.emptyArray:
			e.b.WriteString("[]")
		default:
			return "Cannot serialise userdata: type not supported"
		}
	case *lua.LTable:
		return e.table(v, depth+1)
	default:
		return "Cannot serialise " + v.Type().String() + ": type not supported"
	}
	return ""
}

func (e *cjsonEncoder) number(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		switch e.cfg.encodeInvalidNum {
		case 0:
			return "Cannot serialise number: must not be NaN or Inf"
		case 2:
			e.b.WriteString("null")
			return ""
		}
		switch {
		case math.IsNaN(f):
			e.b.WriteString("nan")
		case f > 0:
			e.b.WriteString("inf")
		default:
			e.b.WriteString("-inf")
		}
		return ""
	}
	e.b.WriteString(formatG(f, e.cfg.precision))
	return ""
}

// formatG is C's "%.<prec>g", which lua-cjson uses for numbers.
func formatG(f float64, prec int) string {
	if f == math.Trunc(f) && math.Abs(f) < math.Pow10(prec) {
		// Fast path for integers that %g prints in full.
		if f == 0 && math.Signbit(f) {
			return "-0"
		}
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', prec, 64)
}

func (e *cjsonEncoder) str(s string) {
	const hexd = "0123456789abcdef"
	e.b.WriteByte('"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		var esc string
		switch {
		case c == '"':
			esc = `\"`
		case c == '\\':
			esc = `\\`
		case c == '/' && e.cfg.escapeSlash:
			esc = `\/`
		case c == '\b':
			esc = `\b`
		case c == '\f':
			esc = `\f`
		case c == '\n':
			esc = `\n`
		case c == '\r':
			esc = `\r`
		case c == '\t':
			esc = `\t`
		case c < 0x20 || c == 0x7f:
			esc = `\u00` + string([]byte{hexd[c>>4], hexd[c&15]})
		default:
			continue
		}
		e.b.WriteString(s[start:i])
		e.b.WriteString(esc)
		start = i + 1
	}
	e.b.WriteString(s[start:])
	e.b.WriteByte('"')
}

// arrayLength returns the length of t as a JSON array, or -1 when t must be
// an object (a key that is not a positive integer, or an excessively sparse
// array with conversion on). A sparse array without conversion is an error.
func (e *cjsonEncoder) arrayLength(t *lua.LTable) (int, string) {
	maxKey, items := 0, 0
	isArray := true
	t.ForEach(func(k, _ lua.LValue) {
		if !isArray {
			return
		}
		n, ok := k.(lua.LNumber)
		if !ok || n < 1 || float64(n) != math.Floor(float64(n)) {
			isArray = false
			return
		}
		if int(n) > maxKey {
			maxKey = int(n)
		}
		items++
	})
	if !isArray {
		return -1, ""
	}
	if e.cfg.sparseRatio > 0 && maxKey > items*e.cfg.sparseRatio && maxKey > e.cfg.sparseSafe {
		if !e.cfg.sparseConvert {
			return 0, "Cannot serialise table: excessively sparse array"
		}
		return -1, ""
	}
	return maxKey, ""
}

func (e *cjsonEncoder) table(t *lua.LTable, depth int) string {
	if depth > e.cfg.encodeMaxDepth {
		return "Cannot serialise, excessive nesting (" + strconv.Itoa(depth) + ")"
	}
	mt, _ := t.Metatable.(*lua.LTable)
	var n int
	if mt != nil && mt == e.m.arrayMT {
		n = t.Len()
	} else {
		var err string
		n, err = e.arrayLength(t)
		if err != "" {
			return err
		}
		if n == 0 && e.cfg.emptyAsObject && (mt == nil || mt != e.m.emptyArrayMT) {
			n = -1
		}
	}
	if n >= 0 {
		e.b.WriteByte('[')
		for i := 1; i <= n; i++ {
			if i > 1 {
				e.b.WriteByte(',')
			}
			if err := e.encode(t.RawGetInt(i), depth); err != "" {
				return err
			}
		}
		e.b.WriteByte(']')
		return ""
	}
	e.b.WriteByte('{')
	first := true
	var err string
	t.ForEach(func(k, v lua.LValue) {
		if err != "" {
			return
		}
		if !first {
			e.b.WriteByte(',')
		}
		first = false
		switch k := k.(type) {
		case lua.LString:
			e.str(string(k))
		case lua.LNumber:
			e.b.WriteByte('"')
			e.b.WriteString(formatG(float64(k), e.cfg.precision))
			e.b.WriteByte('"')
		default:
			err = "Cannot serialise " + k.Type().String() + ": table key must be a number or string"
			return
		}
		e.b.WriteByte(':')
		err = e.encode(v, depth)
	})
	if err != "" {
		return err
	}
	e.b.WriteByte('}')
	return ""
}
