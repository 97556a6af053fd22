package luangx

import (
	"errors"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// OpenRe installs ngx.re (match, find, gmatch, sub, gsub) in the ngx table,
// with OpenResty's return values and PCRE pattern syntax translated to Go's
// regexp (see translatePCRE for what cannot be). Patterns compiled with the
// "o" option are cached per VM in a bounded LRU.
func OpenRe(L *lua.LState, ngx *lua.LTable) {
	r := &reLib{cache: newReCache()}
	t := L.NewTable()
	L.SetFuncs(t, map[string]lua.LGFunction{
		"match":  r.match,
		"find":   r.find,
		"gmatch": r.gmatch,
		"sub":    func(L *lua.LState) int { return r.sub(L, false) },
		"gsub":   func(L *lua.LState) int { return r.sub(L, true) },
	})
	ngx.RawSetString("re", t)
}

type reLib struct {
	cache *reCache
}

// args reads (subject, regex, opts) at 1, 2 and optsIdx, compiling the
// pattern. The subject goes through tostring as in OpenResty; a bad options
// string raises an error.
func (r *reLib) args(L *lua.LState, optsIdx int) (string, *compiledRe, error) {
	subj := L.ToStringMeta(L.Get(1)).String()
	pat := L.CheckString(2)
	opts := ""
	if v := L.Get(optsIdx); v != lua.LNil {
		opts = L.CheckString(optsIdx)
	}
	c, err := r.cache.compile(pat, opts)
	var oe *optsError
	if errors.As(err, &oe) {
		L.RaiseError("%s", oe.msg)
	}
	return subj, c, err
}

// startPos reads ctx.pos (1-based) as a 0-based offset.
func startPos(ctx *lua.LTable) int {
	if ctx == nil {
		return 0
	}
	if n, ok := ctx.RawGetString("pos").(lua.LNumber); ok && n > 0 {
		return int(n) - 1
	}
	return 0
}

func optTable(L *lua.LState, n int) *lua.LTable {
	t, _ := L.Get(n).(*lua.LTable)
	return t
}

func (r *reLib) match(L *lua.LState) int {
	subj, c, err := r.args(L, 3)
	if err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString(err.Error()))
		return 2
	}
	ctx := optTable(L, 4)
	m, err := c.exec(subj, startPos(ctx))
	if err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString(err.Error()))
		return 2
	}
	if m == nil {
		L.Push(lua.LNil)
		return 1
	}
	if ctx != nil {
		ctx.RawSetString("pos", lua.LNumber(m[1]+1))
	}
	L.Push(c.captures(L, subj, m, optTable(L, 5)))
	return 1
}

func (r *reLib) find(L *lua.LState) int {
	subj, c, err := r.args(L, 3)
	if err != nil {
		return pushNilNilErr(L, err)
	}
	ctx := optTable(L, 4)
	nth := L.OptInt(5, 0)
	m, err := c.exec(subj, startPos(ctx))
	if err != nil {
		return pushNilNilErr(L, err)
	}
	if m == nil {
		L.Push(lua.LNil)
		return 1
	}
	if ctx != nil {
		ctx.RawSetString("pos", lua.LNumber(m[1]+1))
	}
	if nth < 0 {
		nth = 0
	}
	if nth > c.ncap {
		return pushNilNilErr(L, errors.New("nth out of bound"))
	}
	if (c.dfa && nth > 0) || m[2*nth] < 0 {
		L.Push(lua.LNil)
		L.Push(lua.LNil)
		return 2
	}
	L.Push(lua.LNumber(m[2*nth] + 1))
	L.Push(lua.LNumber(m[2*nth+1]))
	return 2
}

func pushNilNilErr(L *lua.LState, err error) int {
	L.Push(lua.LNil)
	L.Push(lua.LNil)
	L.Push(lua.LString(err.Error()))
	return 3
}

// captures builds the table ngx.re.match returns: [0] the whole match, [n]
// the groups (false when a group did not take part), and the named groups by
// name, or with the D option a list of the values each name matched. res,
// when given, is filled instead of a new table.
func (c *compiledRe) captures(L *lua.LState, s string, m []int, res *lua.LTable) *lua.LTable {
	if res == nil {
		res = L.CreateTable(c.ncap, c.nnames)
	}
	for i := 0; i <= c.ncap; i++ {
		res.RawSetInt(i, c.group(s, m, i))
	}
	for i, name := range c.names {
		if name == "" {
			continue
		}
		v := c.group(s, m, i)
		if !c.dupNames {
			res.RawSetString(name, v)
			continue
		}
		if v == lua.LFalse {
			continue
		}
		if old, ok := res.RawGetString(name).(*lua.LTable); ok {
			old.Append(v)
		} else {
			t := L.CreateTable(1, 0)
			t.Append(v)
			res.RawSetString(name, t)
		}
	}
	return res
}

// group returns capture i of a match as a Lua value.
func (c *compiledRe) group(s string, m []int, i int) lua.LValue {
	if (c.dfa && i > 0) || m[2*i] < 0 {
		return lua.LFalse
	}
	return lua.LString(s[m[2*i]:m[2*i+1]])
}

// gmatch returns an iterator over successive matches; after an empty match
// it moves on by one byte, as OpenResty does.
func (r *reLib) gmatch(L *lua.LState) int {
	subj, c, err := r.args(L, 3)
	if err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString(err.Error()))
		return 2
	}
	pos, done := 0, false
	next := L.NewFunction(func(L *lua.LState) int {
		if done {
			L.Push(lua.LNil)
			return 1
		}
		m, err := c.exec(subj, pos)
		if err != nil || m == nil {
			done = true
			L.Push(lua.LNil)
			if err != nil {
				L.Push(lua.LString(err.Error()))
				return 2
			}
			return 1
		}
		pos = m[1]
		if m[1] == m[0] {
			pos++
			done = pos > len(subj)
		}
		L.Push(c.captures(L, subj, m, nil))
		return 1
	})
	// Like OpenResty's, the iterator is a callable table (type "table").
	it := L.CreateTable(0, 0)
	mt := L.CreateTable(0, 1)
	mt.RawSetString("__call", next)
	L.SetMetatable(it, mt)
	L.Push(it)
	return 1
}

// sub implements ngx.re.sub (global false) and ngx.re.gsub: it returns the
// new string and the number of substitutions, or nil, nil, err.
func (r *reLib) sub(L *lua.LState, global bool) int {
	subj, c, err := r.args(L, 4)
	if err != nil {
		return pushNilNilErr(L, err)
	}
	fn, isFunc := L.Get(3).(*lua.LFunction)
	var tmpl []tmplPiece
	if !isFunc {
		if tmpl, err = parseTemplate(L.ToStringMeta(L.Get(3)).String()); err != nil {
			return pushNilNilErr(L, err)
		}
	}
	var b strings.Builder
	count, pos, cp := 0, 0, 0
	for {
		m, err := c.exec(subj, pos)
		if err != nil {
			return pushNilNilErr(L, err)
		}
		if m == nil {
			break
		}
		count++
		b.WriteString(subj[cp:m[0]])
		if isFunc {
			L.Push(fn)
			L.Push(c.captures(L, subj, m, nil))
			L.Call(1, 1)
			b.WriteString(L.ToStringMeta(L.Get(-1)).String())
			L.Pop(1)
		} else {
			c.expand(&b, tmpl, subj, m)
		}
		cp, pos = m[1], m[1]
		if m[1] == m[0] {
			pos++
			if pos > len(subj) {
				break
			}
		}
		if !global {
			break
		}
	}
	if count == 0 {
		L.Push(lua.LString(subj))
		L.Push(lua.LNumber(0))
		return 2
	}
	if cp < len(subj) {
		b.WriteString(subj[cp:])
	}
	L.Push(lua.LString(b.String()))
	L.Push(lua.LNumber(count))
	return 2
}

// tmplPiece is a literal (group < 0) or a capture reference of a
// replacement template.
type tmplPiece struct {
	lit   string
	group int
}

var errTemplate = errors.New("failed to compile the replacement template")

// parseTemplate parses a sub/gsub replacement: $N and ${N} insert capture N
// (any number of digits), $$ a dollar. lua-nginx-module supports no named
// references: ${name} and $name are errors, as is any other use of $.
func parseTemplate(s string) ([]tmplPiece, error) {
	var out []tmplPiece
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			out = append(out, tmplPiece{lit: lit.String(), group: -1})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		if s[i] != '$' {
			lit.WriteByte(s[i])
			i++
			continue
		}
		i++
		switch {
		case i < len(s) && s[i] == '$':
			lit.WriteByte('$')
			i++
		case i < len(s) && isDigit(s[i]):
			j := i
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			n, err := strconv.Atoi(s[i:j])
			if err != nil {
				return nil, errTemplate
			}
			flush()
			out = append(out, tmplPiece{group: n})
			i = j
		case i < len(s) && s[i] == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 2 {
				return nil, errTemplate
			}
			ds := s[i+1 : i+end]
			for k := 0; k < len(ds); k++ {
				if !isDigit(ds[k]) {
					return nil, errTemplate
				}
			}
			n, err := strconv.Atoi(ds)
			if err != nil {
				return nil, errTemplate
			}
			flush()
			out = append(out, tmplPiece{group: n})
			i += end + 1
		default:
			return nil, errTemplate
		}
	}
	flush()
	return out, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// expand writes a parsed template for one match; missing or unmatched
// groups expand to nothing.
func (c *compiledRe) expand(b *strings.Builder, tmpl []tmplPiece, s string, m []int) {
	for _, p := range tmpl {
		if p.group < 0 {
			b.WriteString(p.lit)
			continue
		}
		if p.group > c.ncap || (c.dfa && p.group > 0) || m[2*p.group] < 0 {
			continue
		}
		b.WriteString(s[m[2*p.group]:m[2*p.group+1]])
	}
}
