package prometheus

import (
	"testing"

	"github.com/sluicegw/sluice/internal/metrics"
	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

func TestRegistered(t *testing.T) {
	t.Parallel()
	d, ok := plugin.Lookup(Name)
	if !ok {
		t.Fatal("not registered")
	}
	if d.Priority != 500 {
		t.Errorf("priority = %d, want APISIX's 500", d.Priority)
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, cfg, err string
		preferName     bool
	}{
		{"empty", `{}`, "", false},
		{"prefer_name", `{"prefer_name":true}`, "", true},
		{"prefer_name type", `{"prefer_name":"yes"}`, "plugins.prometheus: prefer_name: must be a boolean, got string", false},
		{"unknown field", `{"prefer":true}`, "plugins.prometheus: prefer: unknown field", false},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			inst, err := plugintest.Build(Name, tt.cfg)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.err {
				t.Fatalf("err = %q, want %q", got, tt.err)
			}
			if err != nil {
				return
			}
			rq, ok := inst.(metrics.Requester)
			if !ok {
				t.Fatal("instance does not ask for metrics: the runtime would not count the route")
			}
			if rq.MetricsOptions().PreferName != tt.preferName {
				t.Errorf("prefer_name = %v, want %v", rq.MetricsOptions().PreferName, tt.preferName)
			}
		})
	}
}

// The plugin runs no phase: counting is the engines' job, after the log
// phase, so a chain with only prometheus costs nothing per request.
func TestNoPhases(t *testing.T) {
	t.Parallel()
	inst := plugintest.New(t, Name, `{}`)
	switch inst.(type) {
	case plugin.Rewriter, plugin.Accessor, plugin.BeforeProxier, plugin.HeaderFilterer, plugin.BodyFilterer, plugin.Logger:
		t.Errorf("%T implements a phase", inst)
	}
}
