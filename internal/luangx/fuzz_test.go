package luangx

import (
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// newFuzzState is a bare VM with the libraries a script would call.
func newFuzzState() (*lua.LState, *lua.LTable) {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	lua.OpenBase(L)
	lua.OpenPackage(L)
	ngx := L.NewTable()
	L.SetGlobal("ngx", ngx)
	OpenRe(L, ngx)
	OpenCJSON(L)
	return L, ngx
}

// FuzzCJSONDecode: any bytes given to cjson.safe.decode come back as a
// value or as (nil, err); decoding never panics the VM, and what decodes
// encodes again.
func FuzzCJSONDecode(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":null}]}`, `[1e400, -0, 0x10]`, `"\ud800"`, `[[[[[[]]]]]]`, `{"a":1,}`, ``} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		L, _ := newFuzzState()
		defer L.Close()
		L.SetGlobal("input", lua.LString(in))
		err := L.DoString(`
local cjson = require("cjson.safe")
local v, err = cjson.decode(input)
if v ~= nil then
	local s, eerr = cjson.encode(v)
	assert(s ~= nil or eerr ~= nil)
end`)
		if err != nil {
			t.Fatalf("decode of %q raised: %v", in, err)
		}
	})
}

// FuzzPCRETranslate: whatever the pattern (and the x option, which changes
// how it is translated), ngx.re.match and ngx.re.gsub answer with a match,
// nil, or (nil, err): the PCRE-to-RE2 translation never panics the VM.
func FuzzPCRETranslate(f *testing.F) {
	for _, s := range []string{`(?<y>\d{4})-(\d+)`, `a*?b+`, `[[:alpha:]]\w+`, `(?i)x|(?=y)`, `\Q.\E`, `(a)\1`, `[\]-]`} {
		f.Add(s, "2026-11 abc", false)
	}
	f.Fuzz(func(t *testing.T, pat, subject string, extended bool) {
		L, _ := newFuzzState()
		defer L.Close()
		L.SetGlobal("pat", lua.LString(pat))
		L.SetGlobal("subject", lua.LString(subject))
		opts := "jo"
		if extended {
			opts = "jox"
		}
		L.SetGlobal("opts", lua.LString(opts))
		if err := L.DoString(`local m, err = ngx.re.match(subject, pat, opts)
local s, n, err2 = ngx.re.gsub(subject, pat, "[$0]")`); err != nil {
			t.Fatalf("ngx.re on pattern %q raised: %v", pat, err)
		}
	})
}
