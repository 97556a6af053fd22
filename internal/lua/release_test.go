package lua

import (
	"testing"

	"github.com/sluicegw/sluice/plugin"
)

// TestIdleVMReleasedAfterRequestPhase: a function that leaves no
// per-request state gives its VM back when its phase ends (not after the
// upstream round trip); one that uses ngx.ctx keeps it until the request
// finishes.
func TestIdleVMReleasedAfterRequestPhase(t *testing.T) {
	e := newEnv(t)
	idle := e.build(t, "access", `return function(conf, ctx) ngx.header["X-Set"] = ngx.var.arg_v end`).(*accessFns)
	c := &plugin.Ctx{}
	c.Reset(req("/?v=1"))
	if ex := idle.Access(c); ex != nil {
		t.Fatalf("exit %d", ex.Status)
	}
	if n := len(idle.rt.pool); n != 1 {
		t.Fatalf("%d VMs pooled after the access phase, want 1 (released)", n)
	}
	// The header it set still reaches the response.
	resp := upstreamResp("ok")
	c.Response = resp
	idle.HeaderFilter(c)
	if got := resp.Header("X-Set"); got != "1" {
		t.Fatalf("X-Set %q after release, want 1", got)
	}
	c.Finish()

	keep := e.build(t, "access", `return function(conf, ctx) ngx.ctx.user = "jack" end`).(*accessFns)
	c.Reset(req("/"))
	if ex := keep.Access(c); ex != nil {
		t.Fatalf("exit %d", ex.Status)
	}
	if n := len(keep.rt.pool); n != 0 {
		t.Fatalf("%d VMs pooled while the request's ngx.ctx lives, want 0", n)
	}
	c.Finish()
	if n := len(keep.rt.pool); n != 1 {
		t.Fatalf("%d VMs pooled after the request, want 1", n)
	}
}
