package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/plugin"
)

// TestEnabledPluginsWithCustomPlugins: custom plugins join the enabled
// list by priority; a listed custom plugin whose file failed to load is
// left out without failing, and a name nothing defines is an error.
func TestEnabledPluginsWithCustomPlugins(t *testing.T) {
	custom := []plugin.Descriptor{{Name: "zz-custom-top", Priority: 1 << 30}, {Name: "zz-custom-bottom", Priority: -(1 << 30)}}
	all, err := enabledPlugins(&config.Gateway{}, custom, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(plugin.All())+2 || all[0] != "zz-custom-top" || all[len(all)-1] != "zz-custom-bottom" {
		t.Fatalf("enabled = %v", all)
	}
	listed, err := enabledPlugins(&config.Gateway{Plugins: []string{"zz-custom-bottom", "zz-broken"}}, custom,
		map[string]bool{"zz-broken": true})
	if err != nil || !reflect.DeepEqual(listed, []string{"zz-custom-bottom"}) {
		t.Fatalf("listed = %v, %v", listed, err)
	}
	if _, err := enabledPlugins(&config.Gateway{Plugins: []string{"zz-nowhere"}}, custom, nil); err == nil ||
		!strings.Contains(err.Error(), "unknown plugin(s) zz-nowhere") {
		t.Fatalf("unknown name: %v", err)
	}
}
