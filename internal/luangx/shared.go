package luangx

import (
	"strconv"
	"strings"
	"time"
	"unsafe"

	lua "github.com/yuin/gopher-lua"

	"github.com/sluicegw/sluice/plugin/shdict"
)

// OpenShared installs ngx.shared: ngx.shared.NAME is the dictionary NAME of
// dicts (nil when there is none), with OpenResty's methods and return values
// (get, get_stale, set, safe_set, add, safe_add, replace, delete, incr, ttl,
// expire, flush_all, flush_expired, get_keys, capacity, free_space, lpush,
// rpush, lpop, rpop, llen), called with method syntax: dict:get(k).
func OpenShared(L *lua.LState, ngx *lua.LTable, dicts *shdict.Registry) {
	methods := L.NewTable()
	L.SetFuncs(methods, sharedMethods)
	// get, per VM, with the VM's cache of boxed string values.
	box := &strBox{}
	methods.RawSetString("get", L.NewFunction(func(L *lua.LState) int { return shGet(L, box) }))
	mt := L.NewTable()
	mt.RawSetString("__index", methods)

	// One userdata per dictionary and VM, made on first use; it is remade
	// when the registry replaced the dictionary (a size change on reload).
	cache := map[string]*lua.LUserData{}
	shared := L.NewTable()
	smt := L.NewTable()
	smt.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
		name, ok := L.Get(2).(lua.LString)
		if !ok || dicts == nil {
			L.Push(lua.LNil)
			return 1
		}
		d, ok := dicts.Get(string(name))
		if !ok {
			L.Push(lua.LNil)
			return 1
		}
		ud := cache[string(name)]
		if ud == nil || ud.Value != d {
			ud = L.NewUserData()
			ud.Value = d
			ud.Metatable = mt
			cache[string(name)] = ud
		}
		L.Push(ud)
		return 1
	}))
	L.SetMetatable(shared, smt)
	ngx.RawSetString("shared", shared)
}

var sharedMethods = map[string]lua.LGFunction{
	"get":           func(L *lua.LState) int { return shGet(L, nil) }, // replaced per VM by OpenShared
	"get_stale":     shGetStale,
	"set":           func(L *lua.LState) int { return shStore(L, storeSet) },
	"safe_set":      func(L *lua.LState) int { return shStore(L, storeSafeSet) },
	"add":           func(L *lua.LState) int { return shStore(L, storeAdd) },
	"safe_add":      func(L *lua.LState) int { return shStore(L, storeSafeAdd) },
	"replace":       func(L *lua.LState) int { return shStore(L, storeReplace) },
	"delete":        shDelete,
	"incr":          shIncr,
	"ttl":           shTTL,
	"expire":        shExpire,
	"flush_all":     shFlushAll,
	"flush_expired": shFlushExpired,
	"get_keys":      shGetKeys,
	"capacity":      func(L *lua.LState) int { L.Push(lua.LNumber(zone(L).Capacity())); return 1 },
	"free_space":    func(L *lua.LState) int { L.Push(lua.LNumber(zone(L).FreeSpace())); return 1 },
	"lpush":         func(L *lua.LState) int { return shPush(L, true) },
	"rpush":         func(L *lua.LState) int { return shPush(L, false) },
	"lpop":          func(L *lua.LState) int { return shPop(L, true) },
	"rpop":          func(L *lua.LState) int { return shPop(L, false) },
	"llen":          shLLen,
}

// zone returns the dictionary a method was called on, raising OpenResty's
// error for dict.get(k) written instead of dict:get(k).
func zone(L *lua.LState) *shdict.Dict {
	if ud, ok := L.Get(1).(*lua.LUserData); ok {
		if d, ok := ud.Value.(*shdict.Dict); ok {
			return d
		}
	}
	L.RaiseError(`bad "zone" argument`)
	return nil
}

// key reads the key argument: nil is an error returned to the script, other
// values go through tostring. Empty and over-long keys are left to shdict,
// whose errors carry the same text as OpenResty's.
func key(L *lua.LState) (string, bool) {
	switch v := L.Get(2).(type) {
	case *lua.LNilType:
		L.Push(lua.LNil)
		L.Push(lua.LString("nil key"))
		return "", false
	case lua.LString:
		return string(v), true
	default:
		return L.ToStringMeta(v).String(), true
	}
}

// keyChecked is key plus the empty / too-long checks that OpenResty's
// readers (get, ttl...) make before looking.
func keyChecked(L *lua.LState) (string, bool) {
	k, ok := key(L)
	if !ok {
		return "", false
	}
	var err error
	switch {
	case k == "":
		err = shdict.ErrEmptyKey
	case len(k) > shdict.MaxKeyLen:
		err = shdict.ErrKeyTooLong
	}
	if err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString(err.Error()))
		return "", false
	}
	return k, true
}

func pushValue(L *lua.LState, v shdict.Value) {
	switch v.Kind {
	case shdict.KindString:
		L.Push(lua.LString(v.Str))
	case shdict.KindNumber:
		L.Push(lua.LNumber(v.Num))
	case shdict.KindBool:
		L.Push(lua.LBool(v.Bool))
	default:
		L.Push(lua.LNil)
	}
}

// strBox caches, per VM, the Lua values of strings read from dictionaries:
// turning a Go string into a Lua value allocates, and a dictionary hands
// out the same string (the one it stored) on every read of an unchanged
// entry, as in a key-to-consumer lookup table read on every request.
// Strings are immutable and shdict copies what it stores, so the same data
// pointer and length are the same string. Direct-mapped; only short
// strings, so that the cache keeps little memory alive.
type strBox struct {
	ent [16]struct {
		p *byte
		n int
		v lua.LValue
	}
}

const strBoxMax = 256

func (b *strBox) value(s string) lua.LValue {
	if b == nil || len(s) == 0 || len(s) > strBoxMax {
		return lua.LString(s)
	}
	p := unsafe.StringData(s)
	e := &b.ent[(uintptr(unsafe.Pointer(p))>>4)&uintptr(len(b.ent)-1)]
	if e.p == p && e.n == len(s) {
		return e.v
	}
	v := lua.LValue(lua.LString(s))
	e.p, e.n, e.v = p, len(s), v
	return v
}

func shGet(L *lua.LState, box *strBox) int {
	d := zone(L)
	k, ok := keyChecked(L)
	if !ok {
		return 2
	}
	v, flags, found := d.Get(k)
	if !found {
		L.Push(lua.LNil)
		return 1
	}
	if v.Kind == shdict.KindList {
		L.Push(lua.LNil)
		L.Push(lua.LString("value is a list"))
		return 2
	}
	if v.Kind == shdict.KindString {
		L.Push(box.value(v.Str))
	} else {
		pushValue(L, v)
	}
	if flags != 0 {
		L.Push(lua.LNumber(flags))
		return 2
	}
	return 1
}

func shGetStale(L *lua.LState) int {
	d := zone(L)
	k, ok := keyChecked(L)
	if !ok {
		return 2
	}
	v, flags, stale, found := d.GetStale(k)
	if !found {
		L.Push(lua.LNil)
		return 1
	}
	if v.Kind == shdict.KindList {
		L.Push(lua.LNil)
		L.Push(lua.LString("value is a list"))
		return 2
	}
	pushValue(L, v)
	if flags != 0 {
		L.Push(lua.LNumber(flags))
	} else {
		L.Push(lua.LNil)
	}
	L.Push(lua.LBool(stale))
	return 3
}

// seconds converts an OpenResty expiry in seconds to a duration the way its
// FFI does: whole milliseconds, so 0.0001 means "never expires".
func seconds(n lua.LNumber) time.Duration {
	return time.Duration(int64(float64(n)*1000)) * time.Millisecond
}

type storeKind uint8

const (
	storeSet storeKind = iota
	storeSafeSet
	storeAdd
	storeSafeAdd
	storeReplace
)

// shStore implements set, safe_set, add, safe_add and replace: it returns
// true, nil, forcible on success and false, err, forcible on failure.
func shStore(L *lua.LState, kind storeKind) int {
	d := zone(L)
	var ttl time.Duration
	switch e := L.Get(4).(type) {
	case *lua.LNilType:
	case lua.LNumber:
		if e < 0 {
			L.RaiseError(`bad "exptime" argument`)
		}
		ttl = seconds(e)
	default:
		L.RaiseError(`bad "exptime" argument`)
	}
	flags := uint32(L.OptNumber(5, 0))
	k, ok := key(L)
	if !ok {
		return 2
	}
	if k == "" || len(k) > shdict.MaxKeyLen {
		_, _ = keyChecked(L)
		return 2
	}
	var v shdict.Value
	switch val := L.Get(3).(type) {
	case lua.LString:
		v = shdict.String(string(val))
	case lua.LNumber:
		v = shdict.Number(float64(val))
	case lua.LBool:
		v = shdict.Bool(bool(val))
	case *lua.LNilType:
	default:
		L.Push(lua.LNil)
		L.Push(lua.LString("bad value type"))
		return 2
	}
	var forcible bool
	var err error
	switch kind {
	case storeSet:
		forcible, err = d.Set(k, v, ttl, flags)
	case storeSafeSet:
		err = d.SafeSet(k, v, ttl, flags)
	case storeAdd:
		forcible, err = d.Add(k, v, ttl, flags)
	case storeSafeAdd:
		err = d.SafeAdd(k, v, ttl, flags)
	case storeReplace:
		forcible, err = d.Replace(k, v, ttl, flags)
	}
	if err != nil {
		L.Push(lua.LFalse)
		L.Push(lua.LString(err.Error()))
		L.Push(lua.LBool(forcible))
		return 3
	}
	L.Push(lua.LTrue)
	L.Push(lua.LNil)
	L.Push(lua.LBool(forcible))
	return 3
}

func shDelete(L *lua.LState) int {
	L.SetTop(2)
	return shStore(L, storeSet)
}

// toNumber is Lua's tonumber for the numeric arguments of incr.
func toNumber(v lua.LValue) (float64, bool) {
	switch v := v.(type) {
	case lua.LNumber:
		return float64(v), true
	case lua.LString:
		s := strings.TrimSpace(string(v))
		if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
			u, err := strconv.ParseUint(s[2:], 16, 64)
			return float64(u), err == nil
		}
		f, err := strconv.ParseFloat(s, 64)
		return f, err == nil
	}
	return 0, false
}

func shIncr(L *lua.LState) int {
	d := zone(L)
	k, ok := keyChecked(L)
	if !ok {
		return 2
	}
	delta, ok := toNumber(L.Get(3))
	if !ok {
		L.RaiseError("cannot convert '%s' to 'double'", L.Get(3).Type().String())
	}
	var init *float64
	if iv := L.Get(4); iv != lua.LNil && iv != lua.LFalse {
		n, ok := toNumber(iv)
		if !ok {
			L.RaiseError("bad init arg: number expected, got %s", iv.Type().String())
		}
		init = &n
	}
	var initTTL time.Duration
	if tv := L.Get(5); tv != lua.LNil {
		n, ok := toNumber(tv)
		if !ok {
			L.RaiseError("bad init_ttl arg: number expected, got %s", tv.Type().String())
		}
		if n < 0 {
			L.RaiseError(`bad "init_ttl" argument`)
		}
		if init == nil {
			L.RaiseError(`must provide "init" when providing "init_ttl"`)
		}
		initTTL = seconds(lua.LNumber(n))
	}
	v, forcible, err := d.Incr(k, delta, init, initTTL)
	if err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString(err.Error()))
		return 2
	}
	L.Push(lua.LNumber(v))
	if init == nil {
		return 1
	}
	L.Push(lua.LNil)
	L.Push(lua.LBool(forcible))
	return 3
}

func shTTL(L *lua.LState) int {
	d := zone(L)
	k, ok := keyChecked(L)
	if !ok {
		return 2
	}
	ttl, err := d.TTL(k)
	if err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString(err.Error()))
		return 2
	}
	L.Push(lua.LNumber(float64(ttl.Milliseconds()) / 1000))
	return 1
}

func shExpire(L *lua.LState) int {
	d := zone(L)
	e, isNum := L.Get(3).(lua.LNumber)
	if !isNum || e < 0 {
		L.RaiseError(`bad "exptime" argument`)
	}
	k, ok := keyChecked(L)
	if !ok {
		return 2
	}
	if err := d.Expire(k, seconds(e)); err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString(err.Error()))
		return 2
	}
	L.Push(lua.LTrue)
	return 1
}

// flushAllFreed is how many entries nginx's flush_all frees right away after
// marking every entry expired (its expire pass frees up to three), so
// get_stale and flush_expired see what they see in OpenResty.
const flushAllFreed = 3

func shFlushAll(L *lua.LState) int {
	d := zone(L)
	d.FlushAll()
	d.FlushExpired(flushAllFreed)
	return 0
}

func shFlushExpired(L *lua.LState) int {
	d := zone(L)
	L.Push(lua.LNumber(d.FlushExpired(L.OptInt(2, 0))))
	return 1
}

func shGetKeys(L *lua.LState) int {
	d := zone(L)
	keys := d.Keys(L.OptInt(2, 1024))
	t := L.CreateTable(len(keys), 0)
	for _, k := range keys {
		t.Append(lua.LString(k))
	}
	L.Push(t)
	return 1
}

func shPush(L *lua.LState, left bool) int {
	d := zone(L)
	k, ok := key(L)
	if !ok {
		return 2
	}
	var v shdict.Value
	switch val := L.Get(3).(type) {
	case lua.LString:
		v = shdict.String(string(val))
	case lua.LNumber:
		v = shdict.Number(float64(val))
	default:
		L.Push(lua.LNil)
		L.Push(lua.LString("bad value type"))
		return 2
	}
	var n int
	var err error
	if left {
		n, err = d.LPush(k, v)
	} else {
		n, err = d.RPush(k, v)
	}
	if err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString(err.Error()))
		return 2
	}
	L.Push(lua.LNumber(n))
	return 1
}

func shPop(L *lua.LState, left bool) int {
	d := zone(L)
	k, ok := key(L)
	if !ok {
		return 2
	}
	var v shdict.Value
	var found bool
	var err error
	if left {
		v, found, err = d.LPop(k)
	} else {
		v, found, err = d.RPop(k)
	}
	if err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString(err.Error()))
		return 2
	}
	if !found {
		L.Push(lua.LNil)
		return 1
	}
	pushValue(L, v)
	return 1
}

func shLLen(L *lua.LState) int {
	d := zone(L)
	k, ok := key(L)
	if !ok {
		return 2
	}
	n, err := d.LLen(k)
	if err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString(err.Error()))
		return 2
	}
	L.Push(lua.LNumber(n))
	return 1
}
