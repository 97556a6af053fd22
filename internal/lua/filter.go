package lua

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	glua "github.com/yuin/gopher-lua"
)

func httpStatusText(code int) string { return http.StatusText(code) }

// Filter is a compiled route filter_func: "function(vars) ... end", an
// extra match condition that holds when the function returns a true value.
type Filter struct {
	rt     *Runtime
	script *Script
	limit  time.Duration
	log    *slog.Logger
}

// CompileFilter compiles a route's filter_func as APISIX does (the source
// prefixed with "return ") and checks, in a VM of rt, that it is a function.
func CompileFilter(rt *Runtime, src string, log *slog.Logger) (*Filter, error) {
	s, err := Compile("filter_func", "return "+src)
	if err != nil {
		return nil, err
	}
	if err := rt.CheckFunction(s, DefaultTimeLimit); err != nil {
		return nil, err
	}
	if log == nil {
		log = rt.log
	}
	return &Filter{rt: rt, script: s, limit: DefaultTimeLimit, log: log}, nil
}

// Match runs the filter with vars reading req's variables (req implements
// Var like router.Request). A failing filter does not match, and is logged.
func (f *Filter) Match(req interface {
	Var(string) (string, bool)
}) bool {
	vm := f.rt.get()
	defer f.rt.put(vm)
	vm.phase, vm.vars, vm.log = phaseMatch, req, f.log
	fn, err := vm.function(f.script, f.limit)
	var r glua.LValue = glua.LNil
	if err == nil {
		r, _, err = vm.call(fn, f.limit, vm.ngx.RawGetString("var"))
	}
	if err != nil {
		f.log.Error("route filter_func failed", "error", fmt.Sprint(err))
		return false
	}
	return glua.LVAsBool(r)
}
