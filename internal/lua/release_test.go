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

// TestAPICtxReusedOnlyWhenUntouched: as APISIX's tablepool does, the ctx
// table of a request that added nothing to it serves the VM's next request;
// one a script wrote to (ctx.k = v, or rawset) is not reused, so nothing
// leaks between requests. The function counts its calls to show the same
// VM served them.
func TestAPICtxReusedOnlyWhenUntouched(t *testing.T) {
	e := newEnv(t)
	inst := e.build(t, "access", `local n, last = 0, nil
return function(conf, ctx)
  n = n + 1
  local same = rawequal(last, ctx)
  last = ctx
  local prev = tostring(rawget(ctx, "mark")) .. "," .. tostring(rawget(ctx, "raw"))
  local q = ngx.var.arg_w
  if q == "field" then ctx.mark = "set" elseif q == "raw" then rawset(ctx, "raw", 1) end
  return 200, n .. " " .. tostring(same) .. " " .. prev
end`)
	for i, tc := range []struct{ target, want string }{
		{"/?w=no", "1 false nil,nil"},
		{"/?w=no", "2 true nil,nil"},    // untouched: the same table again
		{"/?w=field", "3 true nil,nil"}, // written to: dropped after this request
		{"/?w=raw", "4 false nil,nil"},  // a new table, no field from before
		{"/?w=no", "5 false nil,nil"},
		{"/?w=no", "6 true nil,nil"},
	} {
		if got := string(mustExit(t, inst, req(tc.target), 200).Body); got != tc.want {
			t.Fatalf("request %d (%s): body %q, want %q", i+1, tc.target, got, tc.want)
		}
	}
}
