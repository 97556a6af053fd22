package refererrestriction

import (
	"fmt"
	"testing"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

func TestPriority(t *testing.T) {
	d, ok := plugin.Lookup("referer-restriction")
	if !ok {
		t.Fatal("referer-restriction is not registered")
	}
	if d.Priority != 2990 { // apisix/plugins/referer-restriction.lua
		t.Errorf("priority = %d, want APISIX's 2990", d.Priority)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := NewConfig()
	if c.Message != "Your referer host is not allowed" || c.BypassMissing || c.Category != "security" || c.Whitelist != nil || c.Blacklist != nil {
		t.Errorf("NewConfig() = %+v", c)
	}
	inst := plugintest.New(t, "referer-restriction", `{"whitelist":["example.com"]}`)
	res := plugintest.Run(inst, plugintest.NewRequest("GET", "/x"), nil)
	checkExit(t, res.Exit, `{"message":"Your referer host is not allowed"}`)
}

func TestValidate(t *testing.T) {
	t.Parallel()
	const hostRule = `must be "*" or a host name of letters, digits and "-._[]:", optionally starting with "*"`
	tests := []struct {
		desc, cfg, want string
	}{
		{"no list", `{}`, "whitelist, blacklist: exactly one must be set"},
		{"both lists", `{"whitelist":["a.com"],"blacklist":["b.com"]}`, "whitelist, blacklist: exactly one must be set"},
		{"empty whitelist", `{"whitelist":[]}`, "whitelist: must not be empty"},
		{"empty blacklist", `{"blacklist":[]}`, "blacklist: must not be empty"},
		{"empty host", `{"whitelist":["a.com",""]}`, `whitelist[1]: invalid host "": ` + hostRule},
		{"double star", `{"blacklist":["**"]}`, `blacklist[0]: invalid host "**": ` + hostRule},
		{"star inside", `{"whitelist":["a.*.com"]}`, `whitelist[0]: invalid host "a.*.com": ` + hostRule},
		{"with scheme", `{"whitelist":["https://a.com"]}`, `whitelist[0]: invalid host "https://a.com": ` + hostRule},
		{"with path", `{"whitelist":["a.com/x"]}`, `whitelist[0]: invalid host "a.com/x": ` + hostRule},
		{"empty message", `{"whitelist":["a.com"],"message":""}`, "message: length must be between 1 and 1024"},
		{"long message", fmt.Sprintf(`{"whitelist":["a.com"],"message":"%01025d"}`, 0), "message: length must be between 1 and 1024"},
		{"unknown field", `{"whitelist":["a.com"],"allowlist":["a.com"]}`, "allowlist: unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			_, err := plugintest.Build("referer-restriction", tt.cfg)
			want := "plugins.referer-restriction: " + tt.want
			if err == nil || err.Error() != want {
				t.Errorf("Build(%s) error = %v, want %q", tt.cfg, err, want)
			}
		})
	}
	for _, ok := range []string{
		`{"whitelist":["*"]}`,
		`{"whitelist":["*.example.com","example.com","10.0.0.1:8080","[::1]","my_host-1.local"],"category":"security"}`,
	} {
		if _, err := plugintest.Build("referer-restriction", ok); err != nil {
			t.Errorf("Build(%s): %v", ok, err)
		}
	}
}

func TestAccess(t *testing.T) {
	t.Parallel()
	const missing = "\x00" // no Referer header at all
	const wl = `{"whitelist":["example.com","*.example.org","[::1]"]}`
	const bl = `{"blacklist":["bad.com","*.evil.net"]}`
	tests := []struct {
		desc, cfg, referer string
		allowed            bool
	}{
		{"exact host", wl, "https://example.com/page", true},
		{"exact host with port", wl, "http://example.com:8080/page?q=1", true},
		{"exact is not suffix", wl, "http://www.example.com/", false},
		{"exact is case sensitive", wl, "http://Example.com/", false},
		{"wildcard subdomain", wl, "https://a.example.org/", true},
		{"wildcard deep subdomain", wl, "https://a.b.example.org", true},
		{"wildcard excludes apex", wl, "https://example.org/", false},
		{"wildcard suffix only", wl, "https://notexample.org/", false},
		{"scheme-less", wl, "//example.com/x", true},
		{"ipv6 literal", wl, "http://[::1]:9080/x", true},
		{"host before query", wl, "http://example.com?x=1", true},
		{"userinfo is not stripped", wl, "http://user@example.com/", false},
		{"other scheme is malformed", wl, "ftp://example.com/", false},
		{"upper-case scheme is malformed", wl, "HTTP://example.com/", false},
		{"no host is malformed", wl, "http:///x", false},
		{"relative is malformed", wl, "/page", false},
		{"empty is missing", wl, "", false},
		{"missing", wl, missing, false},
		{"blacklist exact", bl, "http://bad.com/", false},
		{"blacklist wildcard", bl, "https://x.evil.net/", false},
		{"blacklist other", bl, "https://good.com/", true},
		{"blacklist missing rejected", bl, missing, false},
		{"star matches all", `{"whitelist":["*"]}`, "https://anything.example/", true},
		{"star prefix without dot", `{"whitelist":["*example.com"]}`, "https://badexample.com/", true},
		{"bypass missing", `{"whitelist":["a.com"],"bypass_missing":true}`, missing, true},
		{"bypass malformed", `{"whitelist":["a.com"],"bypass_missing":true}`, "not a url", true},
		{"bypass does not pass others", `{"whitelist":["a.com"],"bypass_missing":true}`, "http://b.com", false},
		{"bypass blacklist still blocks", `{"blacklist":["a.com"],"bypass_missing":true}`, "http://a.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			inst := plugintest.New(t, "referer-restriction", tt.cfg)
			req := plugintest.NewRequest("GET", "/x")
			if tt.referer != missing {
				req.WithHeader("Referer", tt.referer)
			}
			res := plugintest.Run(inst, req, nil)
			if tt.allowed && res.Exit != nil {
				t.Fatalf("%q rejected: %d %s", tt.referer, res.Exit.Status, res.Exit.Body)
			}
			if !tt.allowed {
				checkExit(t, res.Exit, `{"message":"Your referer host is not allowed"}`)
			}
		})
	}
}

func TestRefererHost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, host string
		ok       bool
	}{
		{"http://a.com", "a.com", true},
		{"https://a.com:443/p", "a.com", true},
		{"//a.com/p", "a.com", true},
		{"http://a.com#frag", "a.com#frag", true},
		{"http://[2001:db8::1]/p", "[2001:db8::1]", true},
		{"http://[]/p", "", false},
		{"http://[x", "", false},
		{"http://:80/", "", false},
		{"http:/a.com", "", false},
		{"a.com", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		host, ok := refererHost(tt.in)
		if host != tt.host || ok != tt.ok {
			t.Errorf("refererHost(%q) = %q, %v; want %q, %v", tt.in, host, ok, tt.host, tt.ok)
		}
	}
}

func TestMessage(t *testing.T) {
	t.Parallel()
	inst := plugintest.New(t, "referer-restriction", `{"blacklist":["a.com"],"message":"hotlinking is not allowed"}`)
	res := plugintest.Run(inst, plugintest.NewRequest("GET", "/x").WithHeader("Referer", "http://a.com/"), nil)
	checkExit(t, res.Exit, `{"message":"hotlinking is not allowed"}`)
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
