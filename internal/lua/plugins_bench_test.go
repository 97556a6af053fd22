package lua

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicegw/sluice/internal/pipeline"
	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

// BenchmarkCustomPluginAccess runs a custom plugin's access function (a
// header check against its conf) per iteration, as benchAccess does for a
// serverless function: the cost of a custom plugin over a serverless one is
// the module lookup.
func BenchmarkCustomPluginAccess(b *testing.B) {
	e := newEnv(b)
	dir := b.TempDir()
	src := `local _M = {priority = 1, schema = {type = "object", properties = {key = {type = "string", default = "secret"}}}}
function _M.access(conf, ctx)
    if ctx.var.http_x_api_key ~= conf.key then return 401 end
end
return _M`
	if err := os.WriteFile(filepath.Join(dir, "bench.lua"), []byte(src), 0o644); err != nil {
		b.Fatal(err)
	}
	set, _, errs := LoadPlugins([]string{dir}, nil, notBuiltin)
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	ps, err := pipeline.Build(map[string]any{"bench": map[string]any{}}, lookupIn(set), func(string) plugin.Deps { return e.deps })
	if err != nil {
		b.Fatal(err)
	}
	ch := pipeline.NewChain(nil, ps)
	r := plugintest.NewRequest("GET", "/bench").WithHeader("X-Api-Key", "secret")
	c := &plugin.Ctx{}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Reset(r)
		if ex := ch.Access(c); ex != nil {
			b.Fatalf("exit %d %s; logs:\n%s", ex.Status, ex.Body, e.logs.String())
		}
		ch.Log(c)
	}
}
