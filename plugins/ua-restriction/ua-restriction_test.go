package uarestriction

import (
	"fmt"
	"testing"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

func TestPriority(t *testing.T) {
	d, ok := plugin.Lookup("ua-restriction")
	if !ok {
		t.Fatal("ua-restriction is not registered")
	}
	if d.Priority != 2999 { // apisix/plugins/ua-restriction.lua
		t.Errorf("priority = %d, want APISIX's 2999", d.Priority)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := NewConfig()
	if c.Message != "Not allowed" || c.BypassMissing || c.AllowList != nil || c.DenyList != nil {
		t.Errorf("NewConfig() = %+v", c)
	}
	// bypass_missing defaults to false: no User-Agent is a rejection.
	inst := plugintest.New(t, "ua-restriction", `{"denylist":["bot"]}`)
	res := plugintest.Run(inst, plugintest.NewRequest("GET", "/x"), nil)
	checkExit(t, res.Exit, `{"message":"Not allowed"}`)
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, cfg, want string
	}{
		{"no list", `{}`, "allowlist, denylist: exactly one must be set"},
		{"both lists", `{"allowlist":["a"],"denylist":["b"]}`, "allowlist, denylist: exactly one must be set"},
		{"empty allowlist", `{"allowlist":[]}`, "allowlist: must not be empty"},
		{"empty denylist", `{"denylist":[]}`, "denylist: must not be empty"},
		{"empty item", `{"denylist":["bot",""]}`, "denylist[1]: must not be empty"},
		{"bad regex", `{"allowlist":["("]}`, "allowlist[0]: invalid regular expression: error parsing regexp: missing closing ): `(`"},
		{"pcre lookahead", `{"denylist":["curl(?!/8)"]}`, "denylist[0]: invalid regular expression: error parsing regexp: invalid or unsupported Perl syntax: `(?!`"},
		{"empty message", `{"denylist":["bot"],"message":""}`, "message: length must be between 1 and 1024"},
		{"long message", fmt.Sprintf(`{"denylist":["bot"],"message":"%01025d"}`, 0), "message: length must be between 1 and 1024"},
		{"apisix 2 name", `{"whitelist":["curl"]}`, "whitelist: unknown field"},
		{"item type", `{"denylist":[1]}`, "denylist: must be a string, got number"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			_, err := plugintest.Build("ua-restriction", tt.cfg)
			want := "plugins.ua-restriction: " + tt.want
			if err == nil || err.Error() != want {
				t.Errorf("Build(%s) error = %v, want %q", tt.cfg, err, want)
			}
		})
	}
}

func TestAccess(t *testing.T) {
	t.Parallel()
	const missing = "\x00" // no User-Agent header at all
	tests := []struct {
		desc, cfg, ua string
		allowed       bool
	}{
		{"allowlist hit", `{"allowlist":["^curl/"]}`, "curl/8.5.0", true},
		{"allowlist miss", `{"allowlist":["^curl/"]}`, "Mozilla/5.0", false},
		{"allowlist second rule", `{"allowlist":["^curl/","Firefox/\\d+"]}`, "Mozilla/5.0 Firefox/128.0", true},
		{"allowlist unanchored", `{"allowlist":["Chrome"]}`, "Mozilla/5.0 Chrome/126", true},
		{"denylist hit", `{"denylist":["(Baidu|Yandex)Spider"]}`, "YandexSpider/3.0", false},
		{"denylist miss", `{"denylist":["(Baidu|Yandex)Spider"]}`, "Googlebot", true},
		{"case sensitive", `{"denylist":["bot"]}`, "GoogleBot", true},
		{"inline case flag", `{"denylist":["(?i)bot"]}`, "GoogleBOT", false},
		{"flag stays in its item", `{"allowlist":["(?i)foo","^Bar$"]}`, "bar", false},
		{"trimmed before match", `{"allowlist":["^curl/7$"]}`, " \tcurl/7 \r", true},
		{"missing rejected", `{"allowlist":[".*"]}`, missing, false},
		{"missing bypassed", `{"denylist":[".*"],"bypass_missing":true}`, missing, true},
		{"empty is not missing", `{"denylist":["^$"],"bypass_missing":true}`, "", false},
		{"empty matches allowlist", `{"allowlist":["^$"]}`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			inst := plugintest.New(t, "ua-restriction", tt.cfg)
			req := plugintest.NewRequest("GET", "/x")
			if tt.ua != missing {
				req.WithHeader("User-Agent", tt.ua)
			}
			res := plugintest.Run(inst, req, nil)
			if tt.allowed && res.Exit != nil {
				t.Fatalf("%q rejected: %d %s", tt.ua, res.Exit.Status, res.Exit.Body)
			}
			if !tt.allowed {
				checkExit(t, res.Exit, `{"message":"Not allowed"}`)
			}
		})
	}
}

func TestMessage(t *testing.T) {
	t.Parallel()
	inst := plugintest.New(t, "ua-restriction", `{"denylist":["bot"],"message":"no \"bots\""}`)
	res := plugintest.Run(inst, plugintest.NewRequest("GET", "/x").WithHeader("User-Agent", "a bot"), nil)
	checkExit(t, res.Exit, `{"message":"no \"bots\""}`)
}

func checkExit(t *testing.T, e *plugin.Exit, body string) {
	t.Helper()
	if e == nil {
		t.Fatalf("request passed, want 403 %s", body)
	}
	if e.Status != 403 || string(e.Body) != body+"\n" {
		t.Errorf("exit = %d %q, want 403 %q", e.Status, e.Body, body+"\n")
	}
}
