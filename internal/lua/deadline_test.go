package lua

import (
	"strings"
	"testing"
	"time"
)

// TestTimeLimitStopsCoroutines: a loop inside a coroutine created by an
// earlier call (at chunk load) and resumed now is stopped too; its context
// derives from the VM's.
func TestTimeLimitStopsCoroutines(t *testing.T) {
	e := newEnv(t)
	inst, err := e.tryBuild("access", map[string]any{"time_limit": 0.05}, `local co = coroutine.create(function() while true do end end)
return function(conf, ctx)
  local ok, err = coroutine.resume(co)
  return 200, "resumed: " .. tostring(ok) .. " " .. tostring(err)
end`)
	if err != nil {
		t.Fatal(err)
	}
	mustExit(t, inst, req("/"), 500)
	if logs := e.logs.String(); !strings.Contains(logs, "time limit exceeded (50ms)") {
		t.Fatalf("log lacks the time limit:\n%s", logs)
	}
}

// TestTimeLimitNotCaughtByPcall: pcall cannot swallow the time limit.
func TestTimeLimitNotCaughtByPcall(t *testing.T) {
	e := newEnv(t)
	inst, err := e.tryBuild("access", map[string]any{"time_limit": 0.05}, `return function(conf, ctx)
  for i = 1, 3 do pcall(function() while true do end end) end
  return 200, "escaped"
end`)
	if err != nil {
		t.Fatal(err)
	}
	mustExit(t, inst, req("/"), 500)
}

// TestVMWithManyCoroutinesIsRetired: gopher-lua never cancels a coroutine's
// context, so a VM keeps one cancel function per coroutine it created; past
// maxDerived the VM is closed rather than pooled, and the request is fine.
func TestVMWithManyCoroutinesIsRetired(t *testing.T) {
	e := newEnv(t)
	inst := e.build(t, "access", `return function(conf, ctx)
  local n = 0
  for i = 1, 1100 do
    local co = coroutine.wrap(function() return i end)
    n = n + co()
  end
  return 200, tostring(n)
end`)
	s := inst.(*accessFns).serverless
	if resp := mustExit(t, inst, req("/"), 200); string(resp.Body) != "605550" {
		t.Fatalf("body %q", resp.Body)
	}
	if n := len(s.rt.pool); n != 0 {
		t.Fatalf("a VM holding %d+ coroutine contexts was pooled (%d pooled)", maxDerived, n)
	}
	// A VM with a few coroutines stays.
	few := e.build(t, "access", `return function() local co = coroutine.wrap(function() return 1 end); return 200, tostring(co()) end`)
	mustExit(t, few, req("/"), 200)
	if n := len(s.rt.pool); n != 1 {
		t.Fatalf("%d VMs pooled, want 1", n)
	}
}

// TestWatchdogLeavesWhenIdle: the watchdog goroutine exists only while
// calls run (and shortly after), so a Runtime nobody uses holds none.
func TestWatchdogLeavesWhenIdle(t *testing.T) {
	e := newEnv(t)
	inst := e.build(t, "access", `return function() return 200, "ok" end`)
	mustExit(t, inst, req("/"), 200)
	wd := &inst.(*accessFns).rt.wd
	deadline := time.Now().Add(10 * time.Second)
	for {
		if !wd.running.Load() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the watchdog goroutine is still running 10 s after the last call")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
