package requestid

import (
	"regexp"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

func TestPriorityIsAPISIXs(t *testing.T) {
	t.Parallel()
	d, ok := plugin.Lookup("request-id")
	if !ok || d.Priority != 12015 {
		t.Fatalf("request-id registered=%v priority=%d, want 12015 (apisix/plugins/request-id.lua)", ok, d.Priority)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := NewConfig()
	want := Config{HeaderName: "X-Request-Id", IncludeInResponse: true, Algorithm: "uuid", RangeID: RangeID{Length: 16, CharSet: DefaultCharSet}}
	if *c != want {
		t.Fatalf("defaults %+v", c)
	}
	// A partial range_id keeps the other default.
	p := plugintest.New(t, Name, `{"algorithm":"range_id","range_id":{"length":8}}`).(*requestID)
	if id := p.gen(); len(id) != 8 || strings.Trim(id, DefaultCharSet) != "" {
		t.Fatalf("range_id %q", id)
	}
}

func TestValidation(t *testing.T) {
	t.Parallel()
	const pre = "plugins.request-id: "
	tests := []struct{ desc, cfg, err string }{
		{"empty header", `{"header_name":""}`, "header_name: must not be empty"},
		{"bad header", `{"header_name":"X Id"}`, `header_name: invalid character in header name "X Id"`},
		{"algorithm", `{"algorithm":"snowflake"}`, `algorithm: must be one of uuid, nanoid, range_id, ksuid, uuidv7, got "snowflake"`},
		{"short length", `{"range_id":{"length":5}}`, "range_id.length: must be >= 6, got 5"},
		{"short char set", `{"range_id":{"char_set":"abc"}}`, "range_id.char_set: must have at least 6 characters, got 3"},
		{"include type", `{"include_in_response":"yes"}`, "include_in_response: must be a boolean, got string"},
		// The gateway decoder names unknown nested fields without their parent.
		{"unknown", `{"range_id":{"size":6}}`, "size: unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			_, err := plugintest.Build(Name, tt.cfg)
			if err == nil || err.Error() != pre+tt.err {
				t.Fatalf("err = %v\nwant  %s", err, pre+tt.err)
			}
		})
	}
}

func TestAlgorithms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		algo string
		re   *regexp.Regexp
	}{
		{"uuid", regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)},
		{"uuidv7", regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)},
		{"nanoid", regexp.MustCompile(`^[-_0-9a-zA-Z]{21}$`)},
		{"range_id", regexp.MustCompile(`^[a-zA-Z0-9]{16}$`)},
		{"ksuid", regexp.MustCompile(`^[0-9A-Za-z]{27}$`)},
	}
	for _, tt := range tests {
		t.Run(tt.algo, func(t *testing.T) {
			t.Parallel()
			inst := plugintest.New(t, Name, `{"algorithm":"`+tt.algo+`"}`)
			seen := map[string]bool{}
			for range 200 {
				req := plugintest.NewRequest("GET", "/")
				res := plugintest.Run(inst, req, &plugintest.Response{Code: 200})
				id := req.Header("X-Request-Id")
				if !tt.re.MatchString(id) || seen[id] {
					t.Fatalf("id %q (duplicate %v)", id, seen[id])
				}
				seen[id] = true
				if got := res.Response.Header("X-Request-Id"); got != id {
					t.Fatalf("response id %q, request id %q", got, id)
				}
			}
		})
	}
}

func TestKSUIDSortsByTime(t *testing.T) {
	t.Parallel()
	// The first 6 base62 characters are dominated by the timestamp; two
	// IDs made within a second share most of them.
	a, b := ksuid(), ksuid()
	if a[:4] != b[:4] {
		t.Fatalf("ksuid prefixes differ: %s %s", a, b)
	}
}

func TestRangeIDCharSet(t *testing.T) {
	t.Parallel()
	p := plugintest.New(t, Name, `{"algorithm":"range_id","range_id":{"length":10,"char_set":"αβγδεζ"}}`).(*requestID)
	id := p.gen()
	if n := len([]rune(id)); n != 10 || strings.Trim(id, "αβγδεζ") != "" {
		t.Fatalf("range_id %q", id)
	}
}

func TestKeepsExistingAndResponseHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, cfg, reqID, respID string
		wantReq, wantResp        string
	}{
		{"request id kept", `{}`, "abc", "", "abc", "abc"},
		{"upstream response id kept", `{}`, "abc", "up", "abc", "up"},
		{"not in response", `{"include_in_response":false}`, "abc", "", "abc", ""},
		{"custom header", `{"header_name":"X-Trace"}`, "", "", "?", "?"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			inst := plugintest.New(t, Name, tt.cfg)
			name := NewConfig().HeaderName
			if strings.Contains(tt.cfg, "X-Trace") {
				name = "X-Trace"
			}
			req := plugintest.NewRequest("GET", "/")
			if tt.reqID != "" {
				req.WithHeader(name, tt.reqID)
			}
			resp := &plugintest.Response{Code: 200}
			if tt.respID != "" {
				resp.SetHeader(name, tt.respID)
			}
			plugintest.Run(inst, req, resp)
			gotReq, gotResp := req.Header(name), resp.Header(name)
			if tt.wantReq == "?" {
				if gotReq == "" || gotResp != gotReq {
					t.Fatalf("generated: request %q response %q", gotReq, gotResp)
				}
				return
			}
			if gotReq != tt.wantReq || gotResp != tt.wantResp {
				t.Fatalf("request %q response %q, want %q %q", gotReq, gotResp, tt.wantReq, tt.wantResp)
			}
		})
	}
}

func benchmark(b *testing.B, cfg string) {
	p := plugintest.New(b, Name, cfg).(*requestID)
	req := plugintest.NewRequest("GET", "/")
	resp := &plugintest.Response{Code: 200}
	c := &plugin.Ctx{}
	b.ReportAllocs()
	for b.Loop() {
		req.Headers, resp.Headers = req.Headers[:0], resp.Headers[:0]
		c.Reset(req)
		p.Rewrite(c)
		c.Response = resp
		p.HeaderFilter(c)
	}
}

func BenchmarkUUID(b *testing.B)    { benchmark(b, `{}`) }
func BenchmarkNanoID(b *testing.B)  { benchmark(b, `{"algorithm":"nanoid"}`) }
func BenchmarkRangeID(b *testing.B) { benchmark(b, `{"algorithm":"range_id"}`) }
func BenchmarkKSUID(b *testing.B)   { benchmark(b, `{"algorithm":"ksuid"}`) }
