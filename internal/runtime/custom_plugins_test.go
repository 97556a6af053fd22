package runtime

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/internal/store"
	"github.com/sluicegw/sluice/plugin"
)

type customCfg struct {
	Value string `json:"value"`
}

func (customCfg) Validate() error { return nil }

type customInst struct{ value string }

// TestCustomPluginsResolveThroughTheRuntime: a descriptor set at run time
// (as the custom Lua plugin loader does) is usable by configurations while
// enabled, is listed with the built-in plugins, and is unknown once removed.
func TestCustomPluginsResolveThroughTheRuntime(t *testing.T) {
	rt := New(nil, Defaults{Timeouts: DefaultTimeouts()}, slog.New(slog.DiscardHandler))
	d := plugin.Descriptor{
		Name: "runtime-custom-test", Priority: 77,
		NewConfig: func() plugin.Config { return &customCfg{} },
		New: func(cfg plugin.Config, _ plugin.Deps) (any, error) {
			return &customInst{value: cfg.(*customCfg).Value}, nil
		},
	}
	if _, ok := plugin.Lookup(d.Name); ok {
		t.Fatal("the test plugin must not be a built-in one")
	}
	listing := store.Listing{Revision: 1, Items: []store.Item{
		{Kind: store.Routes, ID: "r1", Value: []byte(`{"uri":"/x","upstream":{"nodes":{"127.0.0.1:1":1}},"plugins":{"runtime-custom-test":{"value":"v"}}}`)},
	}}
	if err := rt.ValidateListing(listing); err == nil || !strings.Contains(err.Error(), "unknown plugin [runtime-custom-test]") {
		t.Fatalf("a custom plugin must be unknown before it is set: %v", err)
	}
	rt.SetCustomPlugins([]plugin.Descriptor{d})
	if err := rt.ValidateListing(listing); err != nil {
		t.Fatalf("with the custom plugin set: %v", err)
	}
	if got, ok := rt.LookupPlugin(d.Name); !ok || got.Priority != 77 {
		t.Fatalf("LookupPlugin = %+v, %v", got, ok)
	}
	found := false
	for _, p := range rt.Plugins() {
		found = found || p.Name == d.Name
	}
	if !found {
		t.Fatal("Plugins() does not list the custom plugin")
	}

	// The plugin list applies to custom plugins too.
	rt.SetEnabledPlugins([]string{"some-other"})
	if _, ok := rt.LookupPlugin(d.Name); ok {
		t.Fatal("a custom plugin left out of the plugin list must be disabled")
	}
	rt.SetEnabledPlugins(nil)

	rt.SetCustomPlugins(nil)
	if err := rt.ValidateListing(listing); err == nil || !strings.Contains(err.Error(), "unknown plugin [runtime-custom-test]") {
		t.Fatalf("a removed custom plugin must be unknown: %v", err)
	}
}
