package realip

import (
	"net/netip"
	"testing"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

func TestRegistered(t *testing.T) {
	t.Parallel()
	d, ok := plugin.Lookup(Name)
	if !ok {
		t.Fatal("not registered")
	}
	if d.Priority != 23000 {
		t.Errorf("priority = %d, want APISIX's 23000", d.Priority)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := NewConfig()
	if c.Recursive || c.TrustedAddresses != nil || c.Source != "" {
		t.Errorf("defaults = %+v", *c)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct{ desc, cfg, err string }{
		{"minimal", `{"source":"http_x_real_ip"}`, ""},
		{"all fields", `{"source":"http_x_forwarded_for","trusted_addresses":["10.0.0.0/8","::1","192.168.1.1"],"recursive":true}`, ""},
		{"missing source", `{}`, "plugins.real-ip: source: must not be empty"},
		{"empty source", `{"source":""}`, "plugins.real-ip: source: must not be empty"},
		{"source type", `{"source":1}`, "plugins.real-ip: source: must be a string, got number"},
		{"empty trusted", `{"source":"arg_ip","trusted_addresses":[]}`, "plugins.real-ip: trusted_addresses: must not be empty"},
		{"bad trusted", `{"source":"arg_ip","trusted_addresses":["10.0.0.0/8","10.0.0.256"]}`, "plugins.real-ip: trusted_addresses[1]: invalid ip address: 10.0.0.256"},
		{"bad cidr", `{"source":"arg_ip","trusted_addresses":["10.0.0.0/33"]}`, "plugins.real-ip: trusted_addresses[0]: invalid ip address: 10.0.0.0/33"},
		{"recursive type", `{"source":"arg_ip","recursive":"yes"}`, "plugins.real-ip: recursive: must be a boolean, got string"},
		{"unknown field", `{"source":"arg_ip","from":"x"}`, "plugins.real-ip: from: unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			_, err := plugintest.Build(Name, tt.cfg)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.err {
				t.Errorf("error = %q, want %q", got, tt.err)
			}
		})
	}
}

func TestRewrite(t *testing.T) {
	t.Parallel()
	const trusted = `,"trusted_addresses":["127.0.0.1","10.0.0.0/8","fd00::/8"]`
	tests := []struct {
		desc, cfg, target, peer string
		headers                 [][2]string
		want                    string // "" = unchanged
		wantPort                uint16
	}{
		{desc: "x-real-ip", cfg: `{"source":"http_x_real_ip"}`, headers: [][2]string{{"X-Real-IP", "1.2.3.4"}}, want: "1.2.3.4"},
		{desc: "x-real-ip with port", cfg: `{"source":"http_x_real_ip"}`, headers: [][2]string{{"X-Real-IP", "1.2.3.4:8080"}}, want: "1.2.3.4", wantPort: 8080},
		{desc: "ipv6", cfg: `{"source":"http_x_real_ip"}`, headers: [][2]string{{"X-Real-IP", "2001:db8::68"}}, want: "2001:db8::68"},
		{desc: "bracketed ipv6", cfg: `{"source":"http_x_real_ip"}`, headers: [][2]string{{"X-Real-IP", "[2001:db8::68]"}}, want: "2001:db8::68"},
		{desc: "bracketed ipv6 with port", cfg: `{"source":"http_x_real_ip"}`, headers: [][2]string{{"X-Real-IP", "[::1]:81"}}, want: "::1", wantPort: 81},
		{desc: "query argument", cfg: `{"source":"arg_realip"}`, target: "/?realip=5.6.7.8:9", want: "5.6.7.8", wantPort: 9},
		{desc: "missing source", cfg: `{"source":"http_x_real_ip"}`},
		{desc: "empty value", cfg: `{"source":"arg_realip"}`, target: "/?realip="},
		{desc: "hostname", cfg: `{"source":"http_x_real_ip"}`, headers: [][2]string{{"X-Real-IP", "localhost"}}},
		{desc: "bad ip", cfg: `{"source":"http_x_real_ip"}`, headers: [][2]string{{"X-Real-IP", "1.2.3.256"}}},
		{desc: "port zero", cfg: `{"source":"http_x_real_ip"}`, headers: [][2]string{{"X-Real-IP", "1.2.3.4:0"}}},
		{desc: "port too big", cfg: `{"source":"http_x_real_ip"}`, headers: [][2]string{{"X-Real-IP", "1.2.3.4:65536"}}},
		{desc: "port not a number", cfg: `{"source":"http_x_real_ip"}`, headers: [][2]string{{"X-Real-IP", "1.2.3.4:http"}}},
		{desc: "unbracketed ipv6 with port", cfg: `{"source":"http_x_real_ip"}`, headers: [][2]string{{"X-Real-IP", "2001:db8::68:80:x"}}},
		{desc: "bracketed ipv4", cfg: `{"source":"http_x_real_ip"}`, headers: [][2]string{{"X-Real-IP", "[1.2.3.4]:80"}}},
		{desc: "xff single", cfg: `{"source":"http_x_forwarded_for"}`, headers: [][2]string{{"X-Forwarded-For", "1.1.1.1"}}, want: "1.1.1.1"},
		{desc: "xff takes the last", cfg: `{"source":"http_x_forwarded_for"}`, headers: [][2]string{{"X-Forwarded-For", "1.1.1.1, 2.2.2.2,   3.3.3.3"}}, want: "3.3.3.3"},
		{desc: "xff last is bad", cfg: `{"source":"http_x_forwarded_for"}`, headers: [][2]string{{"X-Forwarded-For", "1.1.1.1, junk"}}},
		{desc: "xff absent", cfg: `{"source":"http_x_forwarded_for"}`},
		{desc: "trusted peer", cfg: `{"source":"http_x_real_ip"` + trusted + `}`, peer: "10.1.2.3", headers: [][2]string{{"X-Real-IP", "1.2.3.4"}}, want: "1.2.3.4"},
		{desc: "untrusted peer", cfg: `{"source":"http_x_real_ip"` + trusted + `}`, peer: "192.0.2.1", headers: [][2]string{{"X-Real-IP", "1.2.3.4"}}},
		{desc: "trusted ipv6 peer", cfg: `{"source":"http_x_real_ip"` + trusted + `}`, peer: "fd12::1", headers: [][2]string{{"X-Real-IP", "1.2.3.4"}}, want: "1.2.3.4"},
		{desc: "not recursive takes the last even if trusted", cfg: `{"source":"http_x_forwarded_for"` + trusted + `}`, headers: [][2]string{{"X-Forwarded-For", "1.1.1.1, 10.0.0.2"}}, want: "10.0.0.2"},
		{desc: "recursive skips trusted", cfg: `{"source":"http_x_forwarded_for","recursive":true` + trusted + `}`, headers: [][2]string{{"X-Forwarded-For", "1.1.1.1, 2.2.2.2, 10.0.0.2,10.0.0.3"}}, want: "2.2.2.2"},
		{desc: "recursive all trusted takes the first", cfg: `{"source":"http_x_forwarded_for","recursive":true` + trusted + `}`, headers: [][2]string{{"X-Forwarded-For", "10.0.0.1, 10.0.0.2, 127.0.0.1"}}, want: "10.0.0.1"},
		{desc: "recursive stops at junk", cfg: `{"source":"http_x_forwarded_for","recursive":true` + trusted + `}`, headers: [][2]string{{"X-Forwarded-For", "1.1.1.1, junk, 10.0.0.2"}}},
		{desc: "recursive single", cfg: `{"source":"http_x_forwarded_for","recursive":true` + trusted + `}`, headers: [][2]string{{"X-Forwarded-For", "10.0.0.9"}}, want: "10.0.0.9"},
		{desc: "recursive needs trusted_addresses", cfg: `{"source":"http_x_forwarded_for","recursive":true}`, headers: [][2]string{{"X-Forwarded-For", "1.1.1.1, 10.0.0.2"}}, want: "10.0.0.2"},
		{desc: "recursive from untrusted peer", cfg: `{"source":"http_x_forwarded_for","recursive":true` + trusted + `}`, peer: "8.8.8.8", headers: [][2]string{{"X-Forwarded-For", "1.1.1.1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			inst := plugintest.New(t, Name, tt.cfg)
			target := tt.target
			if target == "" {
				target = "/"
			}
			req := plugintest.NewRequest("GET", target)
			if tt.peer != "" {
				req.WithIP(tt.peer)
			}
			for _, h := range tt.headers {
				req.WithHeader(h[0], h[1])
			}
			res := plugintest.Run(inst, req, nil)
			if res.Exit != nil {
				t.Fatalf("exit %d", res.Exit.Status)
			}
			got, ok := Addr(res.Ctx)
			switch {
			case tt.want == "" && ok:
				t.Errorf("address set to %v, want unchanged", got)
			case tt.want != "" && got != netip.MustParseAddr(tt.want):
				t.Errorf("address = %v (%v), want %s", got, ok, tt.want)
			}
			port, _ := res.Ctx.Get(CtxPortKey)
			if p, _ := port.(uint16); p != tt.wantPort {
				t.Errorf("port = %v, want %d", port, tt.wantPort)
			}
		})
	}
}

func BenchmarkRecursive(b *testing.B) {
	inst := plugintest.New(b, Name, `{"source":"http_x_forwarded_for","recursive":true,"trusted_addresses":["10.0.0.0/8"]}`).(*realIP)
	req := plugintest.NewRequest("GET", "/").WithIP("10.0.0.1").WithHeader("X-Forwarded-For", "1.1.1.1, 2.2.2.2, 10.0.0.2")
	c := &plugin.Ctx{}
	b.ReportAllocs()
	for b.Loop() {
		c.Reset(req)
		inst.Rewrite(c)
	}
}
