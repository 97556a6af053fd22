package cors

import (
	"slices"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

func TestPriority(t *testing.T) {
	d, ok := plugin.Lookup("cors")
	if !ok {
		t.Fatal("cors is not registered")
	}
	if d.Priority != 4000 { // apisix/plugins/cors.lua
		t.Errorf("priority = %d, want APISIX's 4000", d.Priority)
	}
}

// run runs inst like the gateway: request phases, then header_filter over
// the upstream response (200 with upstream) or over the exit a phase
// returned. It returns the exit (nil when proxied) and the final headers.
func run(t *testing.T, inst any, req *plugintest.Request, upstream ...plugin.Header) (*plugin.Exit, []plugin.Header) {
	t.Helper()
	res := plugintest.Run(inst, req, &plugintest.Response{Code: 200, Headers: slices.Clone(upstream)})
	if res.Exit == nil {
		return nil, res.Response.Headers
	}
	// plugintest.Run stops at an exit; the engines run header_filter on it.
	rsp := &plugintest.Response{Code: res.Exit.Status, Headers: slices.Clone(res.Exit.Headers)}
	res.Ctx.Response = rsp
	inst.(plugin.HeaderFilterer).HeaderFilter(res.Ctx)
	return res.Exit, rsp.Headers
}

// hdrs renders headers as "Name: value" lines, in order, for comparison.
func hdrs(hs []plugin.Header) string {
	var b strings.Builder
	for _, h := range hs {
		b.WriteString(h.Name + ": " + h.Value + "\n")
	}
	return b.String()
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := NewConfig()
	want := Config{AllowOrigins: "*", AllowMethods: "*", AllowHeaders: "*", MaxAge: 5}
	if c.AllowOrigins != want.AllowOrigins || c.AllowMethods != want.AllowMethods || c.AllowHeaders != want.AllowHeaders ||
		c.MaxAge != 5 || c.ExposeHeaders != "" || c.AllowCredential || c.AllowOriginsByRegex != nil ||
		c.AllowOriginsByMetadata != nil || c.TimingAllowOrigins != "" || c.TimingAllowOriginsByRegex != nil {
		t.Errorf("NewConfig() = %+v", c)
	}
	inst := plugintest.New(t, "cors", `{}`)
	exit, got := run(t, inst, plugintest.NewRequest("GET", "/x").WithHeader("Origin", "https://a.com"))
	if exit != nil {
		t.Fatalf("exit %+v", exit)
	}
	const wantH = "Access-Control-Allow-Origin: *\nAccess-Control-Allow-Methods: *\n" +
		"Access-Control-Max-Age: 5\nAccess-Control-Allow-Headers: *\n"
	if hdrs(got) != wantH {
		t.Errorf("headers:\n%swant:\n%s", hdrs(got), wantH)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	const rule = `must be "*", "**", "null" or comma-separated origins like "https://a.com,http://b.com:8080"`
	long := strings.Repeat("a", 4097)
	tests := []struct {
		desc, cfg, want string
	}{
		{"empty origins", `{"allow_origins":""}`, `allow_origins: ` + rule + `, got ""`},
		{"no scheme", `{"allow_origins":"a.com"}`, `allow_origins: ` + rule + `, got "a.com"`},
		{"space after comma", `{"allow_origins":"http://a.com, http://b.com"}`, `allow_origins: ` + rule + `, got "http://a.com, http://b.com"`},
		{"star in list", `{"allow_origins":"*,http://a.com"}`, `allow_origins: ` + rule + `, got "*,http://a.com"`},
		{"trailing comma", `{"allow_origins":"http://a.com,"}`, `allow_origins: ` + rule + `, got "http://a.com,"`},
		{"bad timing", `{"timing_allow_origins":"a.com"}`, `timing_allow_origins: ` + rule + `, got "a.com"`},
		{"credential origins", `{"allow_credential":true}`, `allow_origins: must not be "*" when allow_credential is true (use "**" to allow any)`},
		{"credential methods", `{"allow_credential":true,"allow_origins":"**"}`, `allow_methods: must not be "*" when allow_credential is true (use "**" to allow any)`},
		{"credential headers", `{"allow_credential":true,"allow_origins":"**","allow_methods":"GET"}`, `allow_headers: must not be "*" when allow_credential is true (use "**" to allow any)`},
		{"credential expose", `{"allow_credential":true,"allow_origins":"http://a.com","allow_methods":"**","allow_headers":"**","expose_headers":"*"}`, `expose_headers: must not be "*" when allow_credential is true (use "**" to allow any)`},
		{"credential timing", `{"allow_credential":true,"allow_origins":"**","allow_methods":"**","allow_headers":"X-A","timing_allow_origins":"*"}`, `timing_allow_origins: must not be "*" when allow_credential is true (use "**" to allow any)`},
		{"header injection", `{"allow_headers":"X-A\r\nSet-Cookie: a=b"}`, "allow_headers: must not contain control characters"},
		{"origin injection", `{"allow_origins":"http://a.com\r\nX: y"}`, "allow_origins: must not contain control characters"},
		{"empty regex list", `{"allow_origins_by_regex":[]}`, "allow_origins_by_regex: must not be empty"},
		{"empty regex", `{"allow_origins_by_regex":[""]}`, "allow_origins_by_regex[0]: must not be empty"},
		{"long regex", `{"allow_origins_by_regex":["` + long + `"]}`, "allow_origins_by_regex[0]: length must be at most 4096"},
		{"duplicate regex", `{"allow_origins_by_regex":["a","a"]}`, "allow_origins_by_regex[1]: duplicate of allow_origins_by_regex[0]"},
		{"bad regex", `{"allow_origins_by_regex":["(a"]}`, "allow_origins_by_regex[0]: invalid regular expression: error parsing regexp: missing closing ): `(a`"},
		{"bad timing regex", `{"timing_allow_origins_by_regex":["a++"]}`, "timing_allow_origins_by_regex[0]: invalid regular expression: error parsing regexp: invalid nested repetition operator: `++`"},
		{"metadata", `{"allow_origins_by_metadata":["EXAMPLE"]}`, "allow_origins_by_metadata: not supported: sluice has no plugin metadata yet"},
		{"max_age type", `{"max_age":"5"}`, "max_age: must be a number, got string"},
		{"credential type", `{"allow_credential":"true"}`, "allow_credential: must be a boolean, got string"},
		{"unknown field", `{"allow_origin":"*"}`, "allow_origin: unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			_, err := plugintest.Build("cors", tt.cfg)
			want := "plugins.cors: " + tt.want
			if err == nil || err.Error() != want {
				t.Errorf("Build(%s) error = %v, want %q", tt.cfg, err, want)
			}
		})
	}
	for _, ok := range []string{
		`{"allow_origins":"null"}`,
		`{"allow_origins":"**","allow_methods":"**","allow_headers":"**","allow_credential":true}`,
		`{"allow_origins":"http://a.com,https://b.com:8443","allow_methods":"GET,POST","allow_headers":"X-A","expose_headers":"X-B","allow_credential":true,"max_age":-1}`,
		`{"allow_origins_by_regex":[".*\\.test\\.com$"],"timing_allow_origins":"http://a.com","timing_allow_origins_by_regex":["a"]}`,
	} {
		if _, err := plugintest.Build("cors", ok); err != nil {
			t.Errorf("Build(%s): %v", ok, err)
		}
	}
}

func TestSimpleRequests(t *testing.T) {
	t.Parallel()
	const none = "\x00" // no Origin header
	const list = `{"allow_origins":"http://a.com,https://b.com:8443","allow_methods":"GET,POST","allow_headers":"X-A","max_age":60}`
	const listed = "Access-Control-Allow-Methods: GET,POST\nAccess-Control-Max-Age: 60\nAccess-Control-Allow-Headers: X-A\n"
	tests := []struct {
		desc, cfg, origin string
		want              string // headers after header_filter
	}{
		{"list first", list, "http://a.com", "Vary: Origin\nAccess-Control-Allow-Origin: http://a.com\n" + listed},
		{"list second", list, "https://b.com:8443", "Vary: Origin\nAccess-Control-Allow-Origin: https://b.com:8443\n" + listed},
		{"list miss", list, "https://b.com", "Vary: Origin\n"},
		{"list case sensitive", list, "http://A.com", "Vary: Origin\n"},
		{"list no origin", list, none, "Vary: Origin\n"},
		{"single hit", `{"allow_origins":"http://a.com"}`, "http://a.com", "Vary: Origin\nAccess-Control-Allow-Origin: http://a.com\nAccess-Control-Allow-Methods: *\nAccess-Control-Max-Age: 5\nAccess-Control-Allow-Headers: *\n"},
		{"single miss", `{"allow_origins":"http://a.com"}`, "http://evil.com", "Vary: Origin\n"},
		{"null origin", `{"allow_origins":"null"}`, "null", "Vary: Origin\nAccess-Control-Allow-Origin: null\nAccess-Control-Allow-Methods: *\nAccess-Control-Max-Age: 5\nAccess-Control-Allow-Headers: *\n"},
		{"star no origin", `{}`, none, "Access-Control-Allow-Origin: *\nAccess-Control-Allow-Methods: *\nAccess-Control-Max-Age: 5\nAccess-Control-Allow-Headers: *\n"},
		{"force echoes", `{"allow_origins":"**","allow_methods":"**"}`, "https://any.io", "Vary: Origin\nAccess-Control-Allow-Origin: https://any.io\nAccess-Control-Allow-Methods: " + allMethods + "\nAccess-Control-Max-Age: 5\nAccess-Control-Allow-Headers: *\n"},
		{"force no origin", `{"allow_origins":"**"}`, none, "Vary: Origin\nAccess-Control-Allow-Origin: *\nAccess-Control-Allow-Methods: *\nAccess-Control-Max-Age: 5\nAccess-Control-Allow-Headers: *\n"},
		{"expose and credential", `{"allow_origins":"http://a.com","allow_methods":"GET","allow_headers":"X-A","expose_headers":"X-Total,X-Page","allow_credential":true,"max_age":-1}`, "http://a.com",
			"Vary: Origin\nAccess-Control-Allow-Origin: http://a.com\nAccess-Control-Allow-Methods: GET\nAccess-Control-Max-Age: -1\nAccess-Control-Expose-Headers: X-Total,X-Page\nAccess-Control-Allow-Headers: X-A\nAccess-Control-Allow-Credentials: true\n"},
		{"regex hit", `{"allow_origins_by_regex":["^https://[a-z]+\\.test\\.com$"]}`, "https://app.test.com", "Vary: Origin\nAccess-Control-Allow-Origin: https://app.test.com\nAccess-Control-Allow-Methods: *\nAccess-Control-Max-Age: 5\nAccess-Control-Allow-Headers: *\n"},
		{"regex miss", `{"allow_origins_by_regex":["^https://[a-z]+\\.test\\.com$"]}`, "https://test.com", ""},
		{"regex unanchored", `{"allow_origins_by_regex":["test\\.com"]}`, "https://test.com.evil.io", "Vary: Origin\nAccess-Control-Allow-Origin: https://test.com.evil.io\nAccess-Control-Allow-Methods: *\nAccess-Control-Max-Age: 5\nAccess-Control-Allow-Headers: *\n"},
		{"regex second", `{"allow_origins_by_regex":["^http://a\\.com$","^http://b\\.com$"]}`, "http://b.com", "Vary: Origin\nAccess-Control-Allow-Origin: http://b.com\nAccess-Control-Allow-Methods: *\nAccess-Control-Max-Age: 5\nAccess-Control-Allow-Headers: *\n"},
		{"regex no origin", `{"allow_origins_by_regex":[".*"]}`, none, ""},
		{"regex replaces list", `{"allow_origins":"http://a.com","allow_origins_by_regex":["^http://b\\.com$"]}`, "http://a.com", "Vary: Origin\n"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			inst := plugintest.New(t, "cors", tt.cfg)
			req := plugintest.NewRequest("GET", "/x")
			if tt.origin != none {
				req.WithHeader("Origin", tt.origin)
			}
			exit, got := run(t, inst, req)
			if exit != nil {
				t.Fatalf("GET exited: %+v", exit)
			}
			if hdrs(got) != tt.want {
				t.Errorf("headers:\n%swant:\n%s", hdrs(got), tt.want)
			}
		})
	}
}

func TestPreflight(t *testing.T) {
	t.Parallel()
	const cfg = `{"allow_origins":"http://a.com","allow_methods":"GET,PUT","allow_headers":"**","allow_credential":true,"max_age":600}`
	inst := plugintest.New(t, "cors", cfg)
	req := plugintest.NewRequest("OPTIONS", "/x").WithHeader("Origin", "http://a.com").
		WithHeader("Access-Control-Request-Method", "PUT").WithHeader("Access-Control-Request-Headers", "X-Token,Content-Type")
	exit, got := run(t, inst, req)
	if exit == nil || exit.Status != 200 || len(exit.Body) != 0 || len(exit.Headers) != 0 {
		t.Fatalf("preflight exit = %+v, want a bare 200", exit)
	}
	want := "Vary: Origin\nAccess-Control-Allow-Origin: http://a.com\nAccess-Control-Allow-Methods: GET,PUT\n" +
		"Access-Control-Max-Age: 600\nAccess-Control-Allow-Headers: X-Token,Content-Type\nAccess-Control-Allow-Credentials: true\n"
	if hdrs(got) != want {
		t.Errorf("headers:\n%swant:\n%s", hdrs(got), want)
	}

	// A disallowed origin still gets the 200, without CORS headers.
	req = plugintest.NewRequest("OPTIONS", "/x").WithHeader("Origin", "http://b.com").WithHeader("Access-Control-Request-Method", "PUT")
	if exit, got = run(t, inst, req); exit == nil || exit.Status != 200 || hdrs(got) != "Vary: Origin\n" {
		t.Errorf("disallowed preflight = %+v, headers %q", exit, hdrs(got))
	}

	// APISIX answers every OPTIONS request, preflight or not.
	req = plugintest.NewRequest("OPTIONS", "/x")
	if exit, _ = run(t, plugintest.New(t, "cors", `{}`), req); exit == nil || exit.Status != 200 {
		t.Errorf("plain OPTIONS exit = %+v, want 200", exit)
	}
	// Other methods are proxied.
	for _, m := range []string{"GET", "POST", "PUT", "DELETE", "HEAD"} {
		if exit, _ = run(t, inst, plugintest.NewRequest(m, "/x").WithHeader("Origin", "http://a.com")); exit != nil {
			t.Errorf("%s exited: %+v", m, exit)
		}
	}
}

func TestAllowHeadersEcho(t *testing.T) {
	t.Parallel()
	inst := plugintest.New(t, "cors", `{"allow_headers":"**"}`)
	req := plugintest.NewRequest("GET", "/x").WithHeader("Origin", "http://a.com")
	// Without Access-Control-Request-Headers the header is removed, even
	// when the upstream sent one (APISIX sets it to nil).
	_, got := run(t, inst, req, plugin.Header{Name: "Access-Control-Allow-Headers", Value: "X-Upstream"})
	if v := (&plugintest.Response{Headers: got}).Header("Access-Control-Allow-Headers"); v != "" {
		t.Errorf("Access-Control-Allow-Headers = %q, want none", v)
	}
}

func TestOverridesUpstream(t *testing.T) {
	t.Parallel()
	inst := plugintest.New(t, "cors", `{"allow_origins":"http://a.com"}`)
	req := plugintest.NewRequest("GET", "/x").WithHeader("Origin", "http://a.com")
	_, got := run(t, inst, req,
		plugin.Header{Name: "Access-Control-Allow-Origin", Value: "*"},
		plugin.Header{Name: "Vary", Value: "Accept-Encoding"})
	rsp := &plugintest.Response{Headers: got}
	if v := rsp.Header("Access-Control-Allow-Origin"); v != "http://a.com" {
		t.Errorf("Access-Control-Allow-Origin = %q", v)
	}
	var vary []string
	for _, h := range got {
		if h.Name == "Vary" {
			vary = append(vary, h.Value)
		}
	}
	if !slices.Equal(vary, []string{"Accept-Encoding", "Origin"}) {
		t.Errorf("Vary = %q, want the upstream's and Origin", vary)
	}
}

func TestTimingAllowOrigin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, cfg, origin, want string
	}{
		{"list hit", `{"timing_allow_origins":"http://a.com,http://b.com"}`, "http://b.com", "http://b.com"},
		{"list miss", `{"timing_allow_origins":"http://a.com,http://b.com"}`, "http://c.com", ""},
		{"star", `{"timing_allow_origins":"*"}`, "http://c.com", "*"},
		{"force", `{"timing_allow_origins":"**"}`, "http://c.com", "http://c.com"},
		{"regex hit", `{"timing_allow_origins_by_regex":["\\.test\\.com$"]}`, "http://a.test.com", "http://a.test.com"},
		{"regex replaces list", `{"timing_allow_origins":"http://c.com","timing_allow_origins_by_regex":["\\.test\\.com$"]}`, "http://c.com", ""},
		{"independent of allow_origins", `{"allow_origins":"http://a.com","timing_allow_origins":"http://c.com"}`, "http://c.com", "http://c.com"},
		{"unset", `{}`, "http://c.com", ""},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			inst := plugintest.New(t, "cors", tt.cfg)
			_, got := run(t, inst, plugintest.NewRequest("GET", "/x").WithHeader("Origin", tt.origin))
			if v := (&plugintest.Response{Headers: got}).Header("Timing-Allow-Origin"); v != tt.want {
				t.Errorf("Timing-Allow-Origin = %q, want %q", v, tt.want)
			}
		})
	}
}

// TestOriginalOrigin checks that a later change to the request's Origin
// (proxy-rewrite) does not change the CORS answer, as in APISIX.
func TestOriginalOrigin(t *testing.T) {
	t.Parallel()
	for _, cfg := range []string{`{"allow_origins":"http://a.com"}`, `{"allow_origins":"**"}`, `{"allow_origins_by_regex":["a\\.com"]}`} {
		inst := plugintest.New(t, "cors", cfg)
		req := plugintest.NewRequest("GET", "/x").WithHeader("Origin", "http://a.com")
		c := &plugin.Ctx{}
		c.Reset(req)
		if e := inst.(plugin.Rewriter).Rewrite(c); e != nil {
			t.Fatalf("%s: exit %+v", cfg, e)
		}
		req.SetHeader("Origin", "http://upstream.internal")
		rsp := &plugintest.Response{Code: 200}
		c.Response = rsp
		inst.(plugin.HeaderFilterer).HeaderFilter(c)
		if v := rsp.Header("Access-Control-Allow-Origin"); v != "http://a.com" {
			t.Errorf("%s: Access-Control-Allow-Origin = %q, want the client's origin", cfg, v)
		}
	}
}

// benchCORS runs rewrite and header_filter as the gateway does per request,
// reusing the request, response and Ctx as the engines do.
func benchCORS(b *testing.B, cfg string, req *plugintest.Request, wantACAO string) {
	inst := plugintest.New(b, "cors", cfg)
	rw, hf := inst.(plugin.Rewriter), inst.(plugin.HeaderFilterer)
	rsp := &plugintest.Response{Headers: make([]plugin.Header, 0, 16)}
	c := &plugin.Ctx{}
	b.ReportAllocs()
	for b.Loop() {
		c.Reset(req)
		e := rw.Rewrite(c)
		rsp.Code, rsp.Headers = 200, rsp.Headers[:0]
		if e != nil {
			rsp.Code = e.Status
		}
		c.Response = rsp
		hf.HeaderFilter(c)
	}
	if got := rsp.Header("Access-Control-Allow-Origin"); got != wantACAO {
		b.Fatalf("Access-Control-Allow-Origin = %q, want %q", got, wantACAO)
	}
}

func BenchmarkCORS(b *testing.B) {
	simple := func(origin string) *plugintest.Request {
		return plugintest.NewRequest("GET", "/x").WithHeader("Origin", origin)
	}
	b.Run("default-simple", func(b *testing.B) {
		benchCORS(b, `{}`, simple("http://a.com"), "*")
	})
	b.Run("list-simple-allow", func(b *testing.B) {
		benchCORS(b, `{"allow_origins":"http://a.com,https://b.com,https://c.com","allow_credential":true,"allow_methods":"GET,POST","allow_headers":"X-A"}`, simple("https://b.com"), "https://b.com")
	})
	b.Run("list-simple-reject", func(b *testing.B) {
		benchCORS(b, `{"allow_origins":"http://a.com,https://b.com,https://c.com"}`, simple("https://evil.com"), "")
	})
	b.Run("list-preflight", func(b *testing.B) {
		req := plugintest.NewRequest("OPTIONS", "/x").WithHeader("Origin", "https://b.com").WithHeader("Access-Control-Request-Method", "PUT")
		benchCORS(b, `{"allow_origins":"http://a.com,https://b.com"}`, req, "https://b.com")
	})
	b.Run("regex-simple-allow", func(b *testing.B) {
		benchCORS(b, `{"allow_origins_by_regex":["^https://[a-z]+\\.test\\.com$"]}`, simple("https://app.test.com"), "https://app.test.com")
	})
}
