package lua

import (
	"testing"

	"github.com/sluicegw/sluice/internal/pipeline"
	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

// benchAccess runs one access-phase serverless function per iteration over
// a reused context, as a gateway connection does: bind a pooled VM, run the
// function, release the VM after the log phase.
func benchAccess(b *testing.B, fn string) {
	e := newEnv(b)
	inst := e.build(b, "access", fn)
	ch := pipeline.NewChain(nil, []pipeline.Plugin{{Name: "serverless-pre-function", Instance: inst}})
	r := plugintest.NewRequest("GET", "/bench?key=k1").WithHeader("X-Api-Key", "secret").WithHeader("User-Agent", "bench")
	c := &plugin.Ctx{}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Reset(r)
		if ex := ch.Access(c); ex != nil && ex.Status != 200 {
			b.Fatalf("exit %d %s; logs:\n%s", ex.Status, ex.Body, e.logs.String())
		}
		ch.Log(c)
	}
}

func BenchmarkServerlessEmpty(b *testing.B) {
	benchAccess(b, `return function(conf, ctx) end`)
}

func BenchmarkServerlessHeaderRead(b *testing.B) {
	benchAccess(b, `return function(conf, ctx)
		local key = ngx.var.http_x_api_key
		if key ~= "secret" then return 401 end
	end`)
}

func BenchmarkServerlessSharedDictCounter(b *testing.B) {
	benchAccess(b, `local dict = ngx.shared.counters
	return function(conf, ctx)
		local n, err = dict:incr("hits", 1, 0)
		if not n then return 500, err end
	end`)
}

func BenchmarkFilterFunc(b *testing.B) {
	e := newEnv(b)
	f, err := CompileFilter(e.rt, `function(vars) return vars.arg_key == "k1" end`, nil)
	if err != nil {
		b.Fatal(err)
	}
	r := plugintest.NewRequest("GET", "/bench?key=k1")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !f.Match(r) {
			b.Fatal("no match")
		}
	}
}
