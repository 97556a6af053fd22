package pipeline_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/internal/pipeline"
	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

// recorder is a test plugin that appends its name to the request's "trace"
// value in every phase, and exits when its config says so.
type recorderConfig struct {
	Exit int    `json:"exit"`
	Tag  string `json:"tag"`
}

func (c *recorderConfig) Validate() error {
	if c.Exit != 0 && (c.Exit < 200 || c.Exit > 599) {
		return errors.New("exit: must be between 200 and 599")
	}
	return nil
}

type recorder struct {
	name string
	cfg  *recorderConfig
}

func (r *recorder) trace(c *plugin.Ctx, phase string) {
	v, _ := c.Get("trace")
	s, _ := v.(string)
	c.Set("trace", s+r.name+r.cfg.Tag+":"+phase+" ")
}

func (r *recorder) Rewrite(c *plugin.Ctx) *plugin.Exit { r.trace(c, "rewrite"); return nil }
func (r *recorder) Access(c *plugin.Ctx) *plugin.Exit {
	r.trace(c, "access")
	if r.cfg.Exit != 0 {
		return plugin.MessageExit(r.cfg.Exit, "stopped by "+r.name)
	}
	return nil
}
func (r *recorder) HeaderFilter(c *plugin.Ctx) { r.trace(c, "header") }
func (r *recorder) Log(c *plugin.Ctx)          { r.trace(c, "log") }

func init() {
	for _, d := range []struct {
		name     string
		priority int
	}{{"test-high", 3000}, {"test-mid", 2000}, {"test-low", 1000}} {
		plugin.Register(plugin.Descriptor{
			Name: d.name, Priority: d.priority,
			NewConfig: func() plugin.Config { return &recorderConfig{} },
			New: func(cfg plugin.Config, _ plugin.Deps) (any, error) {
				return &recorder{name: d.name, cfg: cfg.(*recorderConfig)}, nil
			},
		})
	}
}

func obj(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func run(t *testing.T, ch *pipeline.Chain, req *plugintest.Request) (string, *plugin.Exit) {
	t.Helper()
	c := &plugin.Ctx{}
	c.Reset(req)
	e := ch.Rewrite(c)
	if e == nil {
		e = ch.Access(c)
	}
	if e == nil {
		c.Response = &plugintest.Response{Code: 200}
		ch.HeaderFilter(c)
	}
	ch.Log(c)
	v, _ := c.Get("trace")
	s, _ := v.(string)
	return strings.TrimSpace(s), e
}

func TestChainOrderGlobalFirstThenPriority(t *testing.T) {
	global, err := pipeline.Build(obj(t, `{"test-low":{"tag":"G"}}`), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	route, err := pipeline.Build(obj(t, `{"test-low":{},"test-high":{},"test-mid":{}}`), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	trace, e := run(t, pipeline.NewChain(global, route), plugintest.NewRequest("GET", "/"))
	want := "test-lowG:rewrite test-high:rewrite test-mid:rewrite test-low:rewrite " +
		"test-lowG:access test-high:access test-mid:access test-low:access " +
		"test-lowG:header test-high:header test-mid:header test-low:header " +
		"test-lowG:log test-high:log test-mid:log test-low:log"
	if e != nil || trace != want {
		t.Fatalf("trace:\n%s\nwant:\n%s", trace, want)
	}
}

func TestMeta(t *testing.T) {
	tests := []struct {
		desc, plugins, path, want string
		status                    int
		body                      string
	}{
		{desc: "disable", plugins: `{"test-high":{"_meta":{"disable":true}},"test-low":{}}`, path: "/",
			want: "test-low:rewrite test-low:access test-low:header test-low:log"},
		{desc: "priority override", plugins: `{"test-high":{},"test-low":{"_meta":{"priority":5000}}}`, path: "/",
			want: "test-low:rewrite test-high:rewrite test-low:access test-high:access test-low:header test-high:header test-low:log test-high:log"},
		{desc: "filter skips", plugins: `{"test-high":{"_meta":{"filter":[["uri","==","/only"]]}},"test-low":{}}`, path: "/other",
			want: "test-low:rewrite test-low:access test-low:header test-low:log"},
		{desc: "filter runs", plugins: `{"test-high":{"_meta":{"filter":[["uri","==","/only"]]}}}`, path: "/only",
			want: "test-high:rewrite test-high:access test-high:header test-high:log"},
		{desc: "exit stops the phase and skips header filters of nobody", plugins: `{"test-high":{"exit":403},"test-low":{}}`, path: "/",
			want: "test-high:rewrite test-low:rewrite test-high:access test-high:log test-low:log", status: 403,
			body: `{"message":"stopped by test-high"}`},
		{desc: "error_response replaces the body", plugins: `{"test-high":{"exit":401,"_meta":{"error_response":{"code":"nope"}}}}`, path: "/",
			want: "test-high:rewrite test-high:access test-high:log", status: 401, body: `{"code":"nope"}`},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			built, err := pipeline.Build(obj(t, tc.plugins), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			trace, e := run(t, pipeline.NewChain(nil, built), plugintest.NewRequest("GET", tc.path))
			if trace != tc.want {
				t.Errorf("trace:\n%s\nwant:\n%s", trace, tc.want)
			}
			if tc.status == 0 {
				if e != nil {
					t.Errorf("unexpected exit %d", e.Status)
				}
				return
			}
			if e == nil || e.Status != tc.status || strings.TrimSpace(string(e.Body)) != tc.body {
				t.Errorf("exit %+v, want %d %s", e, tc.status, tc.body)
			}
		})
	}
}

func TestBuildErrorsNameThePlugin(t *testing.T) {
	tests := []struct{ plugins, want string }{
		{`{"no-such":{}}`, "plugins.no-such: unknown plugin [no-such]"},
		{`{"test-high":{"exit":"x"}}`, "plugins.test-high: exit: must be a number"},
		{`{"test-high":{"bogus":1}}`, "plugins.test-high: bogus: unknown field"},
		{`{"test-high":{"exit":7}}`, "plugins.test-high: exit: must be between 200 and 599"},
		{`{"test-high":{"_meta":{"filter":[["uri","=~","x"]]}}}`, "plugins.test-high: _meta.filter:"},
		{`{"test-high":{"_meta":{"colour":1}}}`, "plugins.test-high: _meta:"},
		{`{"test-high":3}`, "plugins.test-high: must be an object"},
	}
	for _, tc := range tests {
		_, err := pipeline.Build(obj(t, tc.plugins), nil, nil)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("pipeline.Build(%s) = %v, want prefix %q", tc.plugins, err, tc.want)
		}
	}
	_, err := pipeline.Build(obj(t, `{"test-high":{}}`), func(string) (plugin.Descriptor, bool) { return plugin.Descriptor{}, false }, nil)
	if err == nil || !strings.Contains(err.Error(), "unknown plugin [test-high]") {
		t.Errorf("a plugin not enabled must be refused: %v", err)
	}
}

func TestMergePrecedence(t *testing.T) {
	route := map[string]any{"a": "route"}
	pc := map[string]any{"a": "pc", "b": "pc"}
	svc := map[string]any{"a": "svc", "b": "svc", "c": "svc"}
	got := pipeline.Merge(route, pc, svc)
	if got["a"] != "route" || got["b"] != "pc" || got["c"] != "svc" || len(got) != 3 {
		t.Fatalf("Merge = %v", got)
	}
	if pipeline.Merge(nil, nil) != nil {
		t.Fatal("merging nothing must give nil")
	}
}

func TestNilChainRunsNothing(t *testing.T) {
	var ch *pipeline.Chain
	if pipeline.NewChain(nil, nil) != nil {
		t.Fatal("an empty chain must be nil")
	}
	c := &plugin.Ctx{}
	if ch.Rewrite(c) != nil || ch.Access(c) != nil || ch.BeforeProxy(c) != nil || ch.HasHeaderFilter() || ch.HasBodyFilter() {
		t.Fatal("nil chain did something")
	}
}

// nop is a plugin with every phase and no work, to measure the runner alone.
type nop struct{}

func (nop) Rewrite(*plugin.Ctx) *plugin.Exit                  { return nil }
func (nop) Access(*plugin.Ctx) *plugin.Exit                   { return nil }
func (nop) BeforeProxy(*plugin.Ctx) *plugin.Exit              { return nil }
func (nop) HeaderFilter(*plugin.Ctx)                          {}
func (nop) BodyFilter(_ *plugin.Ctx, b []byte, _ bool) []byte { return b }
func (nop) Log(*plugin.Ctx)                                   {}

func init() {
	for i, name := range []string{"test-nop-a", "test-nop-b", "test-nop-c"} {
		plugin.Register(plugin.Descriptor{
			Name: name, Priority: 100 + i,
			NewConfig: func() plugin.Config { return &recorderConfig{} },
			New:       func(plugin.Config, plugin.Deps) (any, error) { return nop{}, nil },
		})
	}
}

// BenchmarkChainRunner walks a three-plugin chain (one with a _meta.filter)
// through every phase: the runner itself must not allocate.
func BenchmarkChainRunner(b *testing.B) {
	var plugins map[string]any
	_ = json.Unmarshal([]byte(`{"test-nop-a":{},"test-nop-b":{},"test-nop-c":{"_meta":{"filter":[["uri","==","/"]]}}}`), &plugins)
	built, err := pipeline.Build(plugins, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	ch := pipeline.NewChain(nil, built)
	req := plugintest.NewRequest("GET", "/")
	resp := &plugintest.Response{Code: 200}
	chunk := []byte("body")
	c := &plugin.Ctx{}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c.Reset(req)
		ch.Rewrite(c)
		ch.Access(c)
		ch.BeforeProxy(c)
		c.Response = resp
		ch.HeaderFilter(c)
		ch.BodyFilter(c, chunk, true)
		ch.Log(c)
	}
}
