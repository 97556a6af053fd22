package luangx

import (
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// benchFunc compiles src (a chunk returning a function) once in a VM with
// every library opened and returns a call that runs that function once.
func benchFunc(b *testing.B, src string) func() {
	b.Helper()
	var out strings.Builder
	L := newTestState(b, &out)
	b.Cleanup(L.Close)
	if err := L.DoString(src); err != nil {
		b.Fatal(err)
	}
	fn := L.Get(-1).(*lua.LFunction)
	L.Pop(1)
	p := lua.P{Fn: fn, NRet: 1, Protect: true}
	return func() {
		if err := L.CallByParam(p); err != nil {
			b.Fatal(err)
		}
		if L.Get(-1) == lua.LNil {
			b.Fatal("function returned nil")
		}
		L.Pop(1)
	}
}

// BenchmarkReMatchCached is ngx.re.match with "jo": the pattern comes from
// the per-VM cache, so this is the match plus the captures table.
func BenchmarkReMatchCached(b *testing.B) {
	call := benchFunc(b, `return function()
		return ngx.re.match("/api/v1/users/12345", [[^/api/v(\d+)/users/(?<id>\d+)$]], "jo")
	end`)
	b.ReportAllocs()
	for b.Loop() {
		call()
	}
}

// BenchmarkReMatchUncached is the same match without "o": the pattern is
// translated and compiled on every call, as OpenResty does.
func BenchmarkReMatchUncached(b *testing.B) {
	call := benchFunc(b, `return function()
		return ngx.re.match("/api/v1/users/12345", [[^/api/v(\d+)/users/(?<id>\d+)$]], "j")
	end`)
	b.ReportAllocs()
	for b.Loop() {
		call()
	}
}

func BenchmarkCJSONEncodeSmall(b *testing.B) {
	call := benchFunc(b, `local cjson = require "cjson"
	local t = {id = 12345, name = "alice", admin = false, tags = {"a", "b"}}
	return function() return cjson.encode(t) end`)
	b.ReportAllocs()
	for b.Loop() {
		call()
	}
}

func BenchmarkCJSONDecodeSmall(b *testing.B) {
	call := benchFunc(b, `local cjson = require "cjson"
	local s = '{"id":12345,"name":"alice","admin":false,"tags":["a","b"]}'
	return function() return cjson.decode(s) end`)
	b.ReportAllocs()
	for b.Loop() {
		call()
	}
}

// BenchmarkSharedIncr is the rate-limit counter idiom: incr with init.
func BenchmarkSharedIncr(b *testing.B) {
	call := benchFunc(b, `local dict = ngx.shared.dogs
	return function() return (dict:incr("counter", 1, 0)) end`)
	b.ReportAllocs()
	for b.Loop() {
		call()
	}
}
