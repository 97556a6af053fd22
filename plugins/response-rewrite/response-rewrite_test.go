package responserewrite

import (
	"bytes"
	"compress/gzip"
	"slices"
	"testing"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

func TestPriorityIsAPISIXs(t *testing.T) {
	t.Parallel()
	d, ok := plugin.Lookup("response-rewrite")
	if !ok || d.Priority != 899 {
		t.Fatalf("response-rewrite registered=%v priority=%d, want 899 (apisix/plugins/response-rewrite.lua)", ok, d.Priority)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := NewConfig()
	if c.MaxRespBodySize != 67108864 || c.BodyBase64 || c.Body != nil || c.StatusCode != nil {
		t.Fatalf("defaults: %+v", c)
	}
	inst := plugintest.New(t, Name, `{"filters":[{"regex":"a","replace":"b"}]}`)
	p := inst.(*responseRewrite)
	if len(p.filters) != 1 || p.filters[0].global {
		t.Fatalf("filter scope default is not once: %+v", p.filters)
	}
}

func TestValidation(t *testing.T) {
	t.Parallel()
	const pre = "plugins.response-rewrite: "
	tests := []struct {
		desc, cfg, err string
	}{
		{"status low", `{"status_code":199}`, "status_code: must be between 200 and 598, got 199"},
		{"status high", `{"status_code":599}`, "status_code: must be between 200 and 598, got 599"},
		{"max size", `{"max_resp_body_size":0}`, "max_resp_body_size: must be >= 1, got 0"},
		{"body and filters", `{"body":"x","filters":[{"regex":"a","replace":"b"}]}`, "body: must not be set together with filters"},
		{"base64 without body", `{"body_base64":true}`, "body: invalid base64 content"},
		{"bad base64", `{"body":"!!!","body_base64":true}`, "body: invalid base64 content"},
		{"vars", `{"vars":[["status","=~",200]]}`, `vars[0][1]: unknown operator "=~"`},
		{"filters empty", `{"filters":[]}`, "filters: must have at least 1 item"},
		{"filters type", `{"filters":"a"}`, "filters: must be an array"},
		{"filter regex type", `{"filters":[{"regex":1,"replace":"b"}]}`, "filters[0].regex: must be a string"},
		{"filter replace type", `{"filters":[{"regex":"a","replace":1}]}`, "filters[0].replace: must be a string"},
		{"filter no regex", `{"filters":[{"replace":"b"}]}`, "filters[0].regex: must not be empty"},
		{"filter no replace", `{"filters":[{"regex":"a"}]}`, "filters[0].replace: is required"},
		{"filter scope", `{"filters":[{"regex":"a","replace":"b","scope":"all"}]}`, `filters[0].scope: must be one of once, global, got "all"`},
		{"filter bad regex", `{"filters":[{"regex":"(a","replace":"b"}]}`, "filters[0].regex: regex \"(a\" validation failed: error parsing regexp: missing closing ): `(a`"},
		{"filter option x", `{"filters":[{"regex":"a","replace":"b","options":"jox"}]}`, `filters[0].regex: regex "a" validation failed: option "x" (extended syntax) is not supported`},
		{"filter unknown field", `{"filters":[{"regex":"a","replace":"b","flags":"i"}]}`, `filters[0].flags: unknown field`},
		{"filter bad replace", `{"filters":[{"regex":"a","replace":"$x"}]}`, `filters[0].replace: invalid capturing variable name in "$x"`},
		{"headers legacy type", `{"headers":{"X-A":true}}`, "headers.X-A: must be a string or a number"},
		{"headers add format", `{"headers":{"add":["X-A"]}}`, `headers.add[0]: must be "Name: value" (no ':' in the value, not ending with '/'), got "X-A"`},
		{"headers add slash", `{"headers":{"add":["Link: /a/"]}}`, `headers.add[0]: must be "Name: value" (no ':' in the value, not ending with '/'), got "Link: /a/"`},
		{"headers set type", `{"headers":{"set":{"X-A":[1]}}}`, "headers.set.X-A: must be a string or a number"},
		{"headers remove type", `{"headers":{"remove":"X-A","set":{"a":"b"}}}`, "headers.remove: must be an array of strings"},
		{"headers mixed", `{"headers":{"set":{"a":"b"},"X-B":"c"}}`, "headers.X-B: unknown field (with add, set or remove, headers takes only those)"},
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

func TestRewrite(t *testing.T) {
	t.Parallel()
	upstream := func() *plugintest.Response {
		return &plugintest.Response{Code: 200, Body: []byte("hello world"), Headers: hs(
			"Content-Length", "11", "ETag", `"e1"`, "X-Up", "1", "Content-Type", "text/plain")}
	}
	tests := []struct {
		desc, cfg, target string
		code              int
		body              string
		headers           []plugin.Header
	}{
		{
			"status only", `{"status_code":201}`, "/",
			201, "hello world", hs("Content-Length", "11", "ETag", `"e1"`, "X-Up", "1", "Content-Type", "text/plain"),
		},
		{
			"body replaced", `{"body":"{\"ok\":true}\n","headers":{"set":{"Content-Type":"application/json"}}}`, "/",
			200, "{\"ok\":true}\n", hs("X-Up", "1", "Content-Type", "application/json"),
		},
		{
			"base64 body", `{"body":"aGk=","body_base64":true}`, "/",
			200, "hi", hs("X-Up", "1", "Content-Type", "text/plain"),
		},
		{
			"unpadded base64 body", `{"body":"aGk","body_base64":true}`, "/",
			200, "hi", hs("X-Up", "1", "Content-Type", "text/plain"),
		},
		{
			"headers add set remove with variables", `{"headers":{"add":["X-Add: $arg_a"],"set":{"X-Up":"$status-${http_x_none ?? d}","X-N":1},"remove":["ETag"]}}`, "/?a=7",
			200, "hello world", hs("Content-Length", "11", "Content-Type", "text/plain", "X-Add", "7", "X-N", "1", "X-Up", "200-d"),
		},
		{
			"legacy headers", `{"headers":{"X-Up":"2","X-New":"$uri"}}`, "/p",
			200, "hello world", hs("Content-Length", "11", "ETag", `"e1"`, "Content-Type", "text/plain", "X-New", "/p", "X-Up", "2"),
		},
		{
			"vars match", `{"vars":[["status","==",200],["arg_x","==","1"]],"status_code":500,"body":"err"}`, "/?x=1",
			500, "err", hs("X-Up", "1", "Content-Type", "text/plain"),
		},
		{
			"vars do not match", `{"vars":[["arg_x","==","1"]],"status_code":500,"body":"err","headers":{"X-A":"1"}}`, "/?x=2",
			200, "hello world", hs("Content-Length", "11", "ETag", `"e1"`, "X-Up", "1", "Content-Type", "text/plain"),
		},
		{
			"vars on response header", `{"vars":[["upstream_http_x_up","==","1"]],"body":"matched"}`, "/",
			200, "matched", hs("X-Up", "1", "Content-Type", "text/plain"),
		},
		{
			"filter once", `{"filters":[{"regex":"o","replace":"0"}]}`, "/",
			200, "hell0 world", hs("X-Up", "1", "Content-Type", "text/plain"),
		},
		{
			"filter global with groups", `{"filters":[{"regex":"(\\w+) (\\w+)","replace":"$2 $1 $$","scope":"global"},{"regex":"O","replace":"0","scope":"global","options":"i"}]}`, "/",
			200, "w0rld hell0 $", hs("X-Up", "1", "Content-Type", "text/plain"),
		},
		{
			"filter without match", `{"filters":[{"regex":"nope","replace":"x"}]}`, "/",
			200, "hello world", hs("X-Up", "1", "Content-Type", "text/plain"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			inst := plugintest.New(t, Name, tt.cfg)
			res := plugintest.Run(inst, plugintest.NewRequest("GET", tt.target), upstream())
			if res.Response.Code != tt.code || string(res.Response.Body) != tt.body {
				t.Fatalf("got %d %q, want %d %q", res.Response.Code, res.Response.Body, tt.code, tt.body)
			}
			if !slices.Equal(res.Response.Headers, tt.headers) {
				t.Fatalf("headers %v\nwant    %v", res.Response.Headers, tt.headers)
			}
		})
	}
}

// run drives the phases by hand to send the body in several chunks.
func run(t *testing.T, cfg string, resp *plugintest.Response, chunks ...string) string {
	t.Helper()
	p := plugintest.New(t, Name, cfg).(*responseRewrite)
	c := &plugin.Ctx{}
	c.Reset(plugintest.NewRequest("GET", "/"))
	c.Response = resp
	p.HeaderFilter(c)
	var out []byte
	for i, ch := range chunks {
		out = append(out, p.BodyFilter(c, []byte(ch), i == len(chunks)-1)...)
	}
	return string(out)
}

func TestChunkedBody(t *testing.T) {
	t.Parallel()
	resp := func() *plugintest.Response { return &plugintest.Response{Code: 200} }
	if got := run(t, `{"body":"new"}`, resp(), "a", "b", ""); got != "new" {
		t.Fatalf("body over chunks: %q", got)
	}
	// A match that spans two chunks is found: the body is filtered whole.
	if got := run(t, `{"filters":[{"regex":"world","replace":"there"}]}`, resp(), "hello wo", "rld", ""); got != "hello there" {
		t.Fatalf("filter over chunks: %q", got)
	}
	// Past max_resp_body_size the body is truncated, filtered, and the rest
	// is dropped.
	if got := run(t, `{"max_resp_body_size":8,"filters":[{"regex":"a","replace":"A","scope":"global"}]}`, resp(), "aaaa", "aaaa", "aaaa", ""); got != "AAAAAAAA" {
		t.Fatalf("truncation: %q", got)
	}
}

func TestGzipBody(t *testing.T) {
	t.Parallel()
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	_, _ = zw.Write([]byte("hello world"))
	_ = zw.Close()
	resp := &plugintest.Response{Code: 200, Headers: hs("Content-Encoding", "gzip", "Content-Length", "31")}
	z := zb.String()
	got := run(t, `{"filters":[{"regex":"world","replace":"gzip"}]}`, resp, z[:5], z[5:])
	if got != "hello gzip" || len(resp.Headers) != 0 {
		t.Fatalf("got %q headers %v", got, resp.Headers)
	}
	// An encoding sluice cannot decode is left alone, headers included.
	resp = &plugintest.Response{Code: 200, Headers: hs("Content-Encoding", "br")}
	if got := run(t, `{"filters":[{"regex":"a","replace":"b"}]}`, resp, "aa", "a"); got != "aaa" || resp.Header("Content-Encoding") != "br" {
		t.Fatalf("br: got %q headers %v", got, resp.Headers)
	}
}

// hs builds headers from name, value pairs.
func hs(kv ...string) []plugin.Header {
	out := make([]plugin.Header, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, plugin.Header{Name: kv[i], Value: kv[i+1]})
	}
	return out
}
