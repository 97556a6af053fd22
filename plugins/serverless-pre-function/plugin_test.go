package serverlesspre_test

import (
	"strings"
	"testing"

	_ "github.com/sluicegw/sluice/plugins/serverless-pre-function"

	"github.com/sluicegw/sluice/plugin/plugintest"
)

// TestDecodeAndRun goes through the gateway's own decoder: APISIX's default
// phase (access), strict fields, and the Lua checks with field paths.
func TestDecodeAndRun(t *testing.T) {
	inst := plugintest.New(t, "serverless-pre-function", `{"functions":["return function(conf) return 200, conf.phase end"]}`)
	res := plugintest.Run(inst, plugintest.NewRequest("GET", "/"), nil)
	if res.Exit == nil || res.Exit.Status != 200 || string(res.Exit.Body) != "access" {
		t.Fatalf("exit %+v", res.Exit)
	}
	for cfg, want := range map[string]string{
		`{"functions":["return 1"]}`:                                "functions[0]: only accept Lua function, the input code type is number",
		`{"functions":["return function( end"]}`:                    "functions[0]: failed to compile",
		`{"functions":[]}`:                                          "functions: must have at least 1 item",
		`{"functions":["return function() end"],"bogus":1}`:         "bogus",
		`{"phase":"content","functions":["return function() end"]}`: "phase: must be one of",
	} {
		if _, err := plugintest.Build("serverless-pre-function", cfg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", cfg, err, want)
		}
	}
}
