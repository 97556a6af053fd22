package csrf

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

// now is the test clock: 2023-11-14 22:13:20 UTC.
var now = time.Unix(1700000000, 0)

func build(t *testing.T, cfg string) *csrf {
	t.Helper()
	p := plugintest.New(t, Name, cfg).(*csrf)
	p.now = func() time.Time { return now }
	return p
}

// apisixToken builds a token the way APISIX's csrf.lua does, written out by
// hand from its format.
func apisixToken(key, random, expires string) string {
	sum := sha256.Sum256([]byte("{expires:" + expires + ",random:" + random + ",key:" + key + "}"))
	js := `{"expires":` + expires + `,"sign":"` + hex.EncodeToString(sum[:]) + `","random":` + random + `}`
	return base64.StdEncoding.EncodeToString([]byte(js))
}

func TestRegistered(t *testing.T) {
	t.Parallel()
	d, ok := plugin.Lookup(Name)
	if !ok {
		t.Fatal("not registered")
	}
	if d.Priority != 2980 {
		t.Errorf("priority = %d, want APISIX's 2980", d.Priority)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := NewConfig()
	if c.Expires != 7200 || c.Name != "apisix-csrf-token" || c.Key != "" {
		t.Errorf("defaults = %+v", *c)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct{ desc, cfg, err string }{
		{"key only", `{"key":"k"}`, ""},
		{"all fields", `{"key":"k","expires":60,"name":"x-csrf"}`, ""},
		{"missing key", `{}`, "plugins.csrf: key: must not be empty"},
		{"key type", `{"key":1}`, "plugins.csrf: key: must be a string, got number"},
		{"expires type", `{"key":"k","expires":"1"}`, "plugins.csrf: expires: must be a number, got string"},
		{"expires not integer", `{"key":"k","expires":1.5}`, "plugins.csrf: expires: must be a number, got number 1.5"},
		{"empty name", `{"key":"k","name":""}`, "plugins.csrf: name: must not be empty"},
		{"bad name", `{"key":"k","name":"a b"}`, "plugins.csrf: name: must be a valid header and cookie name"},
		{"unknown", `{"key":"k","secret":"s"}`, "plugins.csrf: secret: unknown field"},
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

func TestHeaderFilterSetsCookie(t *testing.T) {
	t.Parallel()
	p := build(t, `{"key":"secret"}`)
	for _, m := range []string{"GET", "POST"} {
		c := &plugin.Ctx{}
		c.Reset(plugintest.NewRequest(m, "/"))
		resp := &plugintest.Response{Code: 200, Headers: []plugin.Header{{Name: "Set-Cookie", Value: "other=1"}}}
		c.Response = resp
		p.HeaderFilter(c)
		var cookie string
		for _, h := range resp.Headers {
			if h.Name == "Set-Cookie" && strings.HasPrefix(h.Value, "apisix-csrf-token=") {
				cookie = h.Value
			}
		}
		if resp.Header("Set-Cookie") != "other=1" {
			t.Error("existing Set-Cookie replaced")
		}
		tok, attrs, _ := strings.Cut(strings.TrimPrefix(cookie, "apisix-csrf-token="), ";")
		if attrs != "path=/;SameSite=Lax;Expires=Wed, 15-Nov-23 00:13:20 GMT" {
			t.Errorf("%s: cookie attributes = %q", m, attrs)
		}
		raw, err := base64.StdEncoding.DecodeString(tok)
		if err != nil {
			t.Fatal(err)
		}
		var fields map[string]any
		if err := json.Unmarshal(raw, &fields); err != nil {
			t.Fatalf("token %s: %v", raw, err)
		}
		if fields["expires"] != 1700000000.0 {
			t.Errorf("expires = %v", fields["expires"])
		}
		if !p.verify(tok) {
			t.Errorf("own token %s does not verify", raw)
		}
	}
}

func TestCookieTime(t *testing.T) {
	t.Parallel()
	if got := cookieTime(time.Date(2010, 11, 18, 11, 27, 35, 0, time.UTC)); got != "Thu, 18-Nov-10 11:27:35 GMT" {
		t.Errorf("got %q", got)
	}
	if got := cookieTime(time.Date(2040, 1, 2, 3, 4, 5, 0, time.UTC)); got != "Mon, 02-Jan-2040 03:04:05 GMT" {
		t.Errorf("got %q", got)
	}
}

func TestAccess(t *testing.T) {
	t.Parallel()
	good := apisixToken("secret", "0.84018771676347", "1700000000")
	old := apisixToken("secret", "0.5", "1699990000")
	tests := []struct {
		desc, cfg, method string
		header, cookie    string
		want              string // "" = passes
	}{
		{desc: "GET passes", method: "GET"},
		{desc: "HEAD passes", method: "HEAD"},
		{desc: "OPTIONS passes", method: "OPTIONS"},
		{desc: "valid APISIX token", method: "POST", header: good, cookie: "a=b; apisix-csrf-token=" + good},
		{desc: "PUT checked", method: "PUT", want: "no csrf token in headers"},
		{desc: "DELETE checked", method: "DELETE", want: "no csrf token in headers"},
		{desc: "no cookie", method: "POST", header: good, want: "no csrf cookie"},
		{desc: "other cookie only", method: "POST", header: good, cookie: "apisix-csrf-tokenx=" + good, want: "no csrf cookie"},
		{desc: "mismatch", method: "POST", header: good, cookie: "apisix-csrf-token=" + old, want: "csrf token mismatch"},
		{desc: "wrong key", method: "POST", header: apisixToken("other", "0.5", "1700000000"), cookie: "apisix-csrf-token=" + apisixToken("other", "0.5", "1700000000"), want: "Failed to verify the csrf token signature"},
		{desc: "expired", method: "POST", header: old, cookie: "apisix-csrf-token=" + old, want: "Failed to verify the csrf token signature"},
		{desc: "no expiry check when expires is 0", cfg: `{"key":"secret","expires":0}`, method: "POST", header: old, cookie: "apisix-csrf-token=" + old},
		{desc: "not base64", method: "POST", header: "!!", cookie: "apisix-csrf-token=!!", want: "Failed to verify the csrf token signature"},
		{desc: "not json", method: "POST", header: "bm9wZQ", cookie: "apisix-csrf-token=bm9wZQ", want: "Failed to verify the csrf token signature"},
		{desc: "custom name", cfg: `{"key":"secret","name":"x-csrf"}`, method: "PATCH", header: good, cookie: "x-csrf=" + good},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			cfg := tt.cfg
			if cfg == "" {
				cfg = `{"key":"secret"}`
			}
			p := build(t, cfg)
			name := "apisix-csrf-token"
			if strings.Contains(cfg, "x-csrf") {
				name = "x-csrf"
			}
			req := plugintest.NewRequest(tt.method, "/")
			if tt.header != "" {
				req.WithHeader(name, tt.header)
			}
			if tt.cookie != "" {
				req.WithHeader("Cookie", tt.cookie)
			}
			c := &plugin.Ctx{}
			c.Reset(req)
			e := p.Access(c)
			if tt.want == "" {
				if e != nil {
					t.Fatalf("exit %d %s", e.Status, e.Body)
				}
				return
			}
			want := `{"error_msg":"` + tt.want + `"}` + "\n"
			if e == nil || e.Status != 401 || string(e.Body) != want {
				t.Fatalf("exit = %v, want 401 %s", e, want)
			}
		})
	}
}

func TestRoundTripThroughRun(t *testing.T) {
	t.Parallel()
	inst := plugintest.New(t, Name, `{"key":"secret"}`)
	resp := &plugintest.Response{Code: 200}
	plugintest.Run(inst, plugintest.NewRequest("GET", "/"), resp)
	tok, _, _ := strings.Cut(strings.TrimPrefix(resp.Header("Set-Cookie"), "apisix-csrf-token="), ";")
	req := plugintest.NewRequest("POST", "/").WithHeader("apisix-csrf-token", tok).WithHeader("Cookie", "apisix-csrf-token="+tok)
	if res := plugintest.Run(inst, req, nil); res.Exit != nil {
		t.Fatalf("exit %d %s", res.Exit.Status, res.Exit.Body)
	}
}

func TestCookieValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		h, want string
		ok      bool
	}{
		{"a=1; b=2", "2", true},
		{"b=2;a=1", "2", true},
		{"bb=2; b=3, c=4", "3", true},
		{"a=1", "", false},
		{"b=", "", true},
		{"b=1; b=2", "1", true},
	}
	for _, tt := range tests {
		if got, ok := cookieValue(tt.h, "b"); got != tt.want || ok != tt.ok {
			t.Errorf("cookieValue(%q) = %q %v", tt.h, got, ok)
		}
	}
}
