package uriblocker

import (
	"strings"
	"testing"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

func TestPriority(t *testing.T) {
	d, ok := plugin.Lookup("uri-blocker")
	if !ok {
		t.Fatal("uri-blocker is not registered")
	}
	if d.Priority != 2900 { // apisix/plugins/uri-blocker.lua
		t.Errorf("priority = %d, want APISIX's 2900", d.Priority)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := NewConfig()
	if c.RejectedCode != 403 || c.RejectedMsg != nil || c.CaseInsensitive || c.BlockRules != nil || c.Category != "security" {
		t.Errorf("NewConfig() = %+v", c)
	}
	inst := plugintest.New(t, "uri-blocker", `{"block_rules":["^/admin"]}`)
	res := plugintest.Run(inst, plugintest.NewRequest("GET", "/admin/x"), nil)
	if e := res.Exit; e == nil || e.Status != 403 || len(e.Body) != 0 || len(e.Headers) != 0 {
		t.Errorf("exit = %+v, want a bare 403", e)
	}
	// case_insensitive defaults to false.
	if res := plugintest.Run(inst, plugintest.NewRequest("GET", "/ADMIN/x"), nil); res.Exit != nil {
		t.Errorf("/ADMIN/x blocked by default")
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 4097)
	tests := []struct {
		desc, cfg, want string
	}{
		{"missing rules", `{}`, "block_rules: is required"},
		{"null rules", `{"block_rules":null}`, "block_rules: is required"},
		{"empty rule", `{"block_rules":["a",""]}`, "block_rules[1]: must not be empty"},
		{"long rule", `{"block_rules":["` + long + `"]}`, "block_rules[0]: length must be at most 4096"},
		{"duplicate", `{"block_rules":["a","b","a"]}`, "block_rules[2]: duplicate of block_rules[0]"},
		{"bad regex", `{"block_rules":["a","b["]}`, "block_rules[1]: invalid regular expression: error parsing regexp: missing closing ]: `[`"},
		{"pcre backreference", `{"block_rules":["(a)\\1"]}`, "block_rules[0]: invalid regular expression: error parsing regexp: invalid escape sequence: `\\1`"},
		{"code too low", `{"block_rules":["a"],"rejected_code":199}`, "rejected_code: must be between 200 and 599, got 199"},
		{"code too high", `{"block_rules":["a"],"rejected_code":600}`, "rejected_code: must be between 200 and 599, got 600"},
		{"code type", `{"block_rules":["a"],"rejected_code":"403"}`, "rejected_code: must be a number, got string"},
		{"empty msg", `{"block_rules":["a"],"rejected_msg":""}`, "rejected_msg: must not be empty"},
		{"unknown field", `{"block_rules":["a"],"rejected_message":"x"}`, "rejected_message: unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			_, err := plugintest.Build("uri-blocker", tt.cfg)
			want := "plugins.uri-blocker: " + tt.want
			if err == nil || err.Error() != want {
				t.Errorf("Build(%s) error = %v, want %q", tt.cfg, err, want)
			}
		})
	}
	if _, err := plugintest.Build("uri-blocker", `{"block_rules":["`+long[1:]+`"],"rejected_code":200,"category":"security"}`); err != nil {
		t.Errorf("4096-character rule, code 200: %v", err)
	}
}

func TestRewrite(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, cfg, target string
		requestURI        string // "" leaves request_uri to the path and query
		blocked           bool
	}{
		{"path hit", `{"block_rules":["root.exe","root.m+"]}`, "/root.exe", "", true},
		{"second rule", `{"block_rules":["root.exe","root.m+"]}`, "/a/rootmmm", "", true},
		{"miss", `{"block_rules":["root.exe","root.m+"]}`, "/root", "", false},
		{"unanchored", `{"block_rules":["\\.php"]}`, "/x/index.php/y", "", true},
		{"query is matched", `{"block_rules":["cmd="]}`, "/run?cmd=ls", "", true},
		{"query via request_uri", `{"block_rules":["cmd="]}`, "/run", "/run?cmd=ls", true},
		{"question mark is literal", `{"block_rules":["^/run\\?$"]}`, "/run", "/run?", true},
		{"not decoded", `{"block_rules":["\\.\\./"]}`, "/a/../b", "/a/%2e%2e/b", false},
		{"raw encoding matched", `{"block_rules":["%2e%2e"]}`, "/a/../b", "/a/%2e%2e/b", true},
		{"case sensitive", `{"block_rules":["^/admin"]}`, "/Admin", "", false},
		{"case insensitive", `{"block_rules":["^/admin"],"case_insensitive":true}`, "/Admin", "", true},
		{"case insensitive all rules", `{"block_rules":["^/x","^/admin"],"case_insensitive":true}`, "/ADMIN", "", true},
		{"inline flag stays in rule", `{"block_rules":["(?i)^/x","^/admin"]}`, "/ADMIN", "", false},
		{"anchors per rule", `{"block_rules":["^/a$","^/b$"]}`, "/b", "", true},
		{"empty list blocks all", `{"block_rules":[]}`, "/anything", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			inst := plugintest.New(t, "uri-blocker", tt.cfg)
			req := plugintest.NewRequest("GET", tt.target)
			if tt.requestURI != "" {
				req.Vars = map[string]string{"request_uri": tt.requestURI}
			}
			res := plugintest.Run(inst, req, nil)
			if blocked := res.Exit != nil; blocked != tt.blocked {
				t.Errorf("%s (request_uri %q): blocked = %v, want %v", tt.target, tt.requestURI, blocked, tt.blocked)
			}
		})
	}
}

func TestRejection(t *testing.T) {
	t.Parallel()
	inst := plugintest.New(t, "uri-blocker", `{"block_rules":["^/x"],"rejected_code":410,"rejected_msg":"access is \"not\" allowed"}`)
	res := plugintest.Run(inst, plugintest.NewRequest("GET", "/x"), nil)
	e := res.Exit
	if e == nil || e.Status != 410 || string(e.Body) != `{"error_msg":"access is \"not\" allowed"}`+"\n" {
		t.Fatalf("exit = %+v", e)
	}
	if len(e.Headers) != 1 || e.Headers[0] != (plugin.Header{Name: "Content-Type", Value: "application/json"}) {
		t.Errorf("headers = %v", e.Headers)
	}
}

func BenchmarkRewrite(b *testing.B) {
	inst := plugintest.New(b, "uri-blocker", `{"block_rules":["\\.php$","^/admin","root\\.exe","\\.\\./"],"case_insensitive":true}`).(plugin.Rewriter)
	req := plugintest.NewRequest("GET", "/api/v1/users/42")
	req.Vars = map[string]string{"request_uri": "/api/v1/users/42?fields=name,email"}
	c := &plugin.Ctx{}
	b.ReportAllocs()
	for b.Loop() {
		c.Reset(req)
		if inst.Rewrite(c) != nil {
			b.Fatal("blocked")
		}
	}
}
