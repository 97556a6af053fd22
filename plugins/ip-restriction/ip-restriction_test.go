package iprestriction

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

func TestPriority(t *testing.T) {
	d, ok := plugin.Lookup("ip-restriction")
	if !ok {
		t.Fatal("ip-restriction is not registered")
	}
	if d.Priority != 3000 { // apisix/plugins/ip-restriction/init.lua
		t.Errorf("priority = %d, want APISIX's 3000", d.Priority)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := NewConfig()
	if c.Message != "Your IP address is not allowed" || c.ResponseCode != 403 || c.Whitelist != nil || c.Blacklist != nil {
		t.Errorf("NewConfig() = %+v", c)
	}
	inst := plugintest.New(t, "ip-restriction", `{"blacklist":["127.0.0.1"]}`)
	res := plugintest.Run(inst, plugintest.NewRequest("GET", "/x"), nil)
	checkExit(t, res.Exit, 403, `{"message":"Your IP address is not allowed"}`)
}

func TestValidate(t *testing.T) {
	t.Parallel()
	long := fmt.Sprintf(`{"whitelist":["1.1.1.1"],"message":"%01025d"}`, 0)
	tests := []struct {
		desc, cfg, want string
	}{
		{"no list", `{}`, "whitelist, blacklist: exactly one must be set"},
		{"null config", ``, "whitelist, blacklist: exactly one must be set"},
		{"both lists", `{"whitelist":["1.1.1.1"],"blacklist":["2.2.2.2"]}`, "whitelist, blacklist: exactly one must be set"},
		{"empty whitelist", `{"whitelist":[]}`, "whitelist: must not be empty"},
		{"empty blacklist", `{"blacklist":[]}`, "blacklist: must not be empty"},
		{"bad ipv4", `{"whitelist":["1.1.1.1","10.0.0.256"]}`, "whitelist[1]: invalid ip address: 10.0.0.256"},
		{"bad v4 mask", `{"blacklist":["10.0.0.0/33"]}`, "blacklist[0]: invalid ip address: 10.0.0.0/33"},
		{"bad v6 mask", `{"blacklist":["::1/129"]}`, "blacklist[0]: invalid ip address: ::1/129"},
		{"bad ipv6", `{"blacklist":["2001:db8::g"]}`, "blacklist[0]: invalid ip address: 2001:db8::g"},
		{"hostname", `{"whitelist":["localhost"]}`, "whitelist[0]: invalid ip address: localhost"},
		{"empty message", `{"whitelist":["1.1.1.1"],"message":""}`, "message: length must be between 1 and 1024"},
		{"long message", long, "message: length must be between 1 and 1024"},
		{"code 401", `{"whitelist":["1.1.1.1"],"response_code":401}`, "response_code: must be 403 or 404, got 401"},
		{"code 405", `{"whitelist":["1.1.1.1"],"response_code":405}`, "response_code: must be 403 or 404, got 405"},
		{"list type", `{"whitelist":"1.1.1.1"}`, "whitelist: must be an array, got string"},
		{"unknown field", `{"whitelist":["1.1.1.1"],"allowlist":["1.1.1.1"]}`, "allowlist: unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			_, err := plugintest.Build("ip-restriction", tt.cfg)
			want := "plugins.ip-restriction: " + tt.want
			if err == nil || err.Error() != want {
				t.Errorf("Build(%s) error = %v, want %q", tt.cfg, err, want)
			}
		})
	}
	ok := fmt.Sprintf(`{"whitelist":["1.1.1.1"],"message":"%01024d","response_code":404}`, 0)
	if _, err := plugintest.Build("ip-restriction", ok); err != nil {
		t.Errorf("1024-character message, code 404: %v", err)
	}
}

// bigList returns n unrelated /32s plus extra, so the set uses its hashed form.
func bigList(extra ...string) string {
	s := ""
	for i := range linearMax + 4 {
		s += fmt.Sprintf(`"192.0.2.%d",`, i)
	}
	for _, e := range extra {
		s += `"` + e + `",`
	}
	return "[" + s[:len(s)-1] + "]"
}

func TestAccess(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, cfg, ip string
		allowed       bool
	}{
		{"whitelist exact hit", `{"whitelist":["10.0.0.1"]}`, "10.0.0.1", true},
		{"whitelist exact miss", `{"whitelist":["10.0.0.1"]}`, "10.0.0.2", false},
		{"blacklist exact hit", `{"blacklist":["10.0.0.1"]}`, "10.0.0.1", false},
		{"blacklist exact miss", `{"blacklist":["10.0.0.1"]}`, "10.0.0.2", true},
		{"cidr first address", `{"whitelist":["10.0.0.0/8"]}`, "10.0.0.0", true},
		{"cidr last address", `{"whitelist":["10.0.0.0/8"]}`, "10.255.255.255", true},
		{"cidr just above", `{"whitelist":["10.0.0.0/8"]}`, "11.0.0.0", false},
		{"cidr just below", `{"whitelist":["10.0.0.0/8"]}`, "9.255.255.255", false},
		{"cidr host bits set", `{"whitelist":["192.168.1.77/24"]}`, "192.168.1.1", true},
		{"cidr /32", `{"blacklist":["192.168.1.1/32"]}`, "192.168.1.2", true},
		{"cidr /0 v4", `{"whitelist":["0.0.0.0/0"]}`, "203.0.113.9", true},
		{"v4 /0 does not cover v6", `{"whitelist":["0.0.0.0/0"]}`, "2001:db8::1", false},
		{"ipv6 exact", `{"whitelist":["2001:db8::1"]}`, "2001:db8::1", true},
		{"ipv6 long form", `{"whitelist":["2001:0db8:0000:0000:0000:0000:0000:0001"]}`, "2001:db8::1", true},
		{"ipv6 miss", `{"whitelist":["2001:db8::1"]}`, "2001:db8::2", false},
		{"ipv6 cidr last", `{"blacklist":["2001:db8::/32"]}`, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", false},
		{"ipv6 cidr above", `{"blacklist":["2001:db8::/32"]}`, "2001:db9::", true},
		{"ipv6 /128", `{"blacklist":["::1/128"]}`, "::1", false},
		{"ipv6 ::/0", `{"whitelist":["::/0"]}`, "fe80::1", true},
		{"v6 ::/0 does not cover v4", `{"whitelist":["::/0"]}`, "127.0.0.1", false},
		{"mapped client matches v4", `{"whitelist":["10.0.0.0/8"]}`, "::ffff:10.1.2.3", true},
		{"mapped entry matches v4", `{"blacklist":["::ffff:10.0.0.1"]}`, "10.0.0.1", false},
		{"mixed list v6 hit", `{"whitelist":["10.0.0.0/8","fd00::/8"]}`, "fd12::5", true},
		{"big whitelist exact", `{"whitelist":` + bigList("10.0.0.1") + `}`, "10.0.0.1", true},
		{"big whitelist cidr edge", `{"whitelist":` + bigList("10.0.0.0/8") + `}`, "10.255.255.255", true},
		{"big whitelist cidr out", `{"whitelist":` + bigList("10.0.0.0/8") + `}`, "11.0.0.0", false},
		{"big whitelist v6 cidr", `{"whitelist":` + bigList("2001:db8::/48", "2001:db8:1::/64") + `}`, "2001:db8:1::9", true},
		{"big whitelist v6 out", `{"whitelist":` + bigList("2001:db8::/48") + `}`, "2001:db8:1::9", false},
		{"big blacklist mapped", `{"blacklist":` + bigList("172.16.0.0/12") + `}`, "::ffff:172.31.255.255", false},
		{"big blacklist miss", `{"blacklist":` + bigList("172.16.0.0/12") + `}`, "172.32.0.0", true},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			inst := plugintest.New(t, "ip-restriction", tt.cfg)
			res := plugintest.Run(inst, plugintest.NewRequest("GET", "/x").WithIP(tt.ip), nil)
			if tt.allowed && res.Exit != nil {
				t.Fatalf("%s rejected: %d %s", tt.ip, res.Exit.Status, res.Exit.Body)
			}
			if !tt.allowed {
				checkExit(t, res.Exit, 403, `{"message":"Your IP address is not allowed"}`)
			}
		})
	}
}

func TestRejection(t *testing.T) {
	t.Parallel()
	inst := plugintest.New(t, "ip-restriction", `{"whitelist":["10.0.0.1"],"message":"go \"away\" <now>","response_code":404}`)
	res := plugintest.Run(inst, plugintest.NewRequest("GET", "/x").WithIP("10.0.0.2"), nil)
	checkExit(t, res.Exit, 404, `{"message":"go \"away\" \u003cnow\u003e"}`)
}

func TestNoClientAddress(t *testing.T) {
	t.Parallel()
	req := plugintest.NewRequest("GET", "/x")
	req.IP = netip.Addr{}
	if res := plugintest.Run(plugintest.New(t, "ip-restriction", `{"whitelist":["0.0.0.0/0","::/0"]}`), req, nil); res.Exit == nil {
		t.Error("whitelist let a client without an address through")
	}
	if res := plugintest.Run(plugintest.New(t, "ip-restriction", `{"blacklist":["0.0.0.0/0","::/0"]}`), req, nil); res.Exit != nil {
		t.Error("blacklist rejected a client without an address")
	}
}

func checkExit(t *testing.T, e *plugin.Exit, status int, body string) {
	t.Helper()
	if e == nil {
		t.Fatalf("request passed, want %d %s", status, body)
	}
	if e.Status != status || string(e.Body) != body+"\n" {
		t.Errorf("exit = %d %q, want %d %q", e.Status, e.Body, status, body+"\n")
	}
	if len(e.Headers) != 1 || e.Headers[0] != (plugin.Header{Name: "Content-Type", Value: "application/json"}) {
		t.Errorf("exit headers = %v", e.Headers)
	}
}

func benchAccess(b *testing.B, cfg, ip string, wantExit bool) {
	inst := plugintest.New(b, "ip-restriction", cfg).(plugin.Accessor)
	req := plugintest.NewRequest("GET", "/x").WithIP(ip)
	c := &plugin.Ctx{}
	b.ReportAllocs()
	for b.Loop() {
		c.Reset(req)
		if (inst.Access(c) != nil) != wantExit {
			b.Fatal("unexpected result")
		}
	}
}

func BenchmarkAccess(b *testing.B) {
	b.Run("whitelist-allow-4", func(b *testing.B) {
		benchAccess(b, `{"whitelist":["192.0.2.0/24","198.51.100.7","2001:db8::/32","10.0.0.0/8"]}`, "10.1.2.3", false)
	})
	b.Run("whitelist-reject-4", func(b *testing.B) {
		benchAccess(b, `{"whitelist":["192.0.2.0/24","198.51.100.7","2001:db8::/32","10.0.0.0/8"]}`, "11.1.2.3", true)
	})
	b.Run("blacklist-allow-v6-4", func(b *testing.B) {
		benchAccess(b, `{"blacklist":["192.0.2.0/24","198.51.100.7","2001:db8::/32","10.0.0.0/8"]}`, "2001:db9::1", false)
	})
	b.Run("blacklist-allow-1000", func(b *testing.B) {
		s := ""
		for i := range 1000 {
			s += fmt.Sprintf(`"10.%d.%d.0/24",`, i/256, i%256)
		}
		benchAccess(b, `{"blacklist":[`+s+`"172.16.0.0/12","192.0.2.1"]}`, "203.0.113.5", false)
	})
}
