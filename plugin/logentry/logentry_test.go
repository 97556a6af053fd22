package logentry

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

// listing adds EachHeader to the test kit's request and response, as an
// engine that can list headers would.
type listingRequest struct{ *plugintest.Request }

func (r listingRequest) EachHeader(fn func(name, value string)) {
	for _, h := range r.Headers {
		fn(h.Name, h.Value)
	}
}

type listingResponse struct{ *plugintest.Response }

func (r listingResponse) EachHeader(fn func(name, value string)) {
	for _, h := range r.Headers {
		fn(h.Name, h.Value)
	}
}

var start = time.Date(2026, 8, 21, 10, 0, 0, 123e6, time.UTC)

// served returns a request context as the gateway hands it to the log phase.
func served(req plugin.Request, resp plugin.Response) *plugin.Ctx {
	c := &plugin.Ctx{}
	c.Reset(req)
	c.Response = resp
	c.RouteID, c.ServiceID = "r1", "s1"
	c.Consumer = &plugin.Consumer{Username: "jack"}
	c.Served = plugin.Served{
		Start: start, Status: 201, BodyBytesSent: 5, BytesSent: 120, RequestLength: 87,
		Latency: 12500 * time.Microsecond, UpstreamAddr: "10.0.0.7:8080", UpstreamStatus: 201,
		UpstreamStart: start.Add(time.Millisecond), UpstreamLatency: 10 * time.Millisecond,
	}
	return c
}

func testRequest() *plugintest.Request {
	r := plugintest.NewRequest("POST", "/orders?x=1&y=a+b&flag&x=2&e=")
	r.H = "api.example.com"
	r.Vars = map[string]string{"scheme": "http", "server_port": "9080", "request_uri": "/orders?x=1&y=a+b&flag&x=2&e=",
		"remote_addr": "192.0.2.9"}
	r.WithHeader("Host", "api.example.com").WithHeader("User-Agent", "curl/8").
		WithHeader("X-Tag", "a").WithHeader("x-tag", `b"c`)
	return r
}

func testResponse() *plugintest.Response {
	return &plugintest.Response{Code: 201, Headers: []plugin.Header{
		{Name: "Content-Type", Value: "application/json"}, {Name: "Set-Cookie", Value: "a=1"}, {Name: "Set-Cookie", Value: "b=2"}}}
}

func build(t *testing.T, o Options) *Builder {
	t.Helper()
	if o.MaxReqBodyBytes == 0 {
		o.MaxReqBodyBytes, o.MaxRespBodyBytes = DefaultMaxBodyBytes, DefaultMaxBodyBytes
	}
	if err := o.Settings.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decode parses an entry, failing on invalid JSON.
func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("entry is not valid JSON: %v\n%s", err, b)
	}
	return m
}

func jsonEq(t *testing.T, got []byte, want string) {
	t.Helper()
	g := decode(t, got)
	var w map[string]any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("entry\n%s\nwant\n%s", got, want)
	}
}

func TestDefaultEntryFields(t *testing.T) {
	t.Parallel()
	b := build(t, Options{Plugin: "test"})
	c := served(listingRequest{testRequest()}, listingResponse{testResponse()})
	got := b.Append(nil, c)
	jsonEq(t, got, fmt.Sprintf(`{
		"request": {
			"url": "http://api.example.com:9080/orders?x=1&y=a+b&flag&x=2&e=",
			"uri": "/orders?x=1&y=a+b&flag&x=2&e=",
			"method": "POST",
			"headers": {"host": "api.example.com", "user-agent": "curl/8", "x-tag": ["a", "b\"c"]},
			"querystring": {"x": ["1", "2"], "y": "a b", "flag": true, "e": ""},
			"size": 87
		},
		"response": {
			"status": 201,
			"headers": {"content-type": "application/json", "set-cookie": ["a=1", "b=2"]},
			"size": 120
		},
		"server": {"hostname": %q, "version": %q},
		"upstream": "10.0.0.7:8080",
		"service_id": "s1",
		"route_id": "r1",
		"consumer": {"username": "jack"},
		"client_ip": "192.0.2.9",
		"start_time": %d,
		"latency": 12.5,
		"upstream_latency": 10,
		"apisix_latency": 2.5
	}`, hostname, version, start.UnixMilli()))
}

func TestDefaultEntryWithoutUpstreamOrConsumer(t *testing.T) {
	t.Parallel()
	b := build(t, Options{Plugin: "test", RouteIDFallback: "no-matched"})
	c := served(testRequest(), testResponse())
	c.Consumer, c.RouteID, c.ServiceID = nil, "", ""
	c.Served.UpstreamAddr = ""
	m := decode(t, b.Append(nil, c))
	for _, k := range []string{"upstream", "upstream_latency", "consumer"} {
		if _, ok := m[k]; ok {
			t.Errorf("%s present without an upstream/consumer: %v", k, m[k])
		}
	}
	if m["apisix_latency"] != 12.5 || m["route_id"] != "no-matched" || m["service_id"] != "" {
		t.Fatalf("apisix_latency=%v route_id=%v service_id=%v", m["apisix_latency"], m["route_id"], m["service_id"])
	}
	// Without EachHeader only the common fields can be read.
	hs := m["request"].(map[string]any)["headers"].(map[string]any)
	if !reflect.DeepEqual(hs, map[string]any{"host": "api.example.com", "user-agent": "curl/8"}) {
		t.Fatalf("request headers %v", hs)
	}
}

func TestClientIPFromRealIP(t *testing.T) {
	t.Parallel()
	b := build(t, Options{Plugin: "test"})
	c := served(testRequest(), testResponse())
	c.Set("real_ip", netip.MustParseAddr("203.0.113.5"))
	if m := decode(t, b.Append(nil, c)); m["client_ip"] != "203.0.113.5" {
		t.Fatalf("client_ip %v, want the address real-ip set", m["client_ip"])
	}
}

func TestLogFormatVariables(t *testing.T) {
	t.Parallel()
	var f map[string]any
	json.Unmarshal([]byte(`{"host": "$host", "client": "$remote_addr", "st": "$status", "ua": "$http_user_agent",
		"lit": "fixed", "num": 5, "missing": "$http_x_absent", "route_id": "$host",
		"nested": {"rt": "$request_time", "up": "$upstream_addr", "deep": {"a": {"b": {"c": {"d": "x"}}}}}}`), &f)
	b := build(t, Options{Plugin: "test", Settings: Settings{LogFormat: f}})
	got := b.Append(nil, served(testRequest(), testResponse()))
	jsonEq(t, got, `{"host": "api.example.com", "client": "192.0.2.9", "st": "201", "ua": "curl/8",
		"lit": "fixed", "num": 5,
		"nested": {"rt": "0.013", "up": "10.0.0.7:8080", "deep": {"a": {"b": {"c": {}}}}},
		"route_id": "r1", "service_id": "s1"}`)
}

func TestLogFormatFromMetadata(t *testing.T) {
	t.Parallel()
	meta := map[string]any{"log_format": map[string]any{"m": "$host"}}
	b := build(t, Options{Plugin: "test", Metadata: meta})
	jsonEq(t, b.Append(nil, served(testRequest(), testResponse())), `{"m": "api.example.com", "route_id": "r1", "service_id": "s1"}`)
	// The plugin's own log_format wins.
	b = build(t, Options{Plugin: "test", Metadata: meta, Settings: Settings{LogFormat: map[string]any{"own": "$request_method"}}})
	jsonEq(t, b.Append(nil, served(testRequest(), testResponse())), `{"own": "POST", "route_id": "r1", "service_id": "s1"}`)
}

func TestLogFormatExtraAddsWithoutOverriding(t *testing.T) {
	t.Parallel()
	b := build(t, Options{Plugin: "test", Settings: Settings{LogFormatExtra: map[string]any{"env": "prod", "route_id": "x", "ua": "$http_user_agent"}}})
	m := decode(t, b.Append(nil, served(testRequest(), testResponse())))
	if m["env"] != "prod" || m["ua"] != "curl/8" || m["route_id"] != "r1" {
		t.Fatalf("env=%v ua=%v route_id=%v", m["env"], m["ua"], m["route_id"])
	}
}

func TestRequestBodyCapsAndExpr(t *testing.T) {
	t.Parallel()
	run := func(s Settings, body string) map[string]any {
		s.MaxRespBodyBytes = DefaultMaxBodyBytes
		if s.MaxReqBodyBytes == 0 {
			s.MaxReqBodyBytes = DefaultMaxBodyBytes
		}
		b := build(t, Options{Plugin: "test", Settings: s})
		req := testRequest().WithBody(body).WithHeader("Content-Length", fmt.Sprint(len(body)))
		inst := b.Instance(func(*plugin.Ctx) {})
		c := served(req, testResponse())
		inst.(plugin.Accessor).Access(c)
		return decode(t, b.Append(nil, c))["request"].(map[string]any)
	}
	if got := run(Settings{IncludeReqBody: true}, `{"a":1}`)["body"]; got != `{"a":1}` {
		t.Fatalf("body %v", got)
	}
	// A body over max_req_body_bytes is not read, so not logged.
	if got, ok := run(Settings{IncludeReqBody: true, MaxReqBodyBytes: 4}, "hello world")["body"]; ok {
		t.Fatalf("body %v logged over the cap", got)
	}
	if got, ok := run(Settings{IncludeReqBody: true, MaxReqBodyBytes: 11}, "hello world")["body"]; !ok || got != "hello world" {
		t.Fatalf("body at the cap: %v", got)
	}
	expr := json.RawMessage(`[["arg_flag", "==", "never"]]`)
	if got, ok := run(Settings{IncludeReqBody: true, IncludeReqBodyExpr: expr}, "x")["body"]; ok {
		t.Fatalf("body %v logged though include_req_body_expr did not match", got)
	}
	expr = json.RawMessage(`[["request_method", "==", "POST"]]`)
	if got := run(Settings{IncludeReqBody: true, IncludeReqBodyExpr: expr}, "x")["body"]; got != "x" {
		t.Fatalf("body %v, include_req_body_expr matched", got)
	}
}

func TestResponseBodyCapturedUnchangedAndCapped(t *testing.T) {
	t.Parallel()
	s := NewSettings()
	s.IncludeRespBody, s.MaxRespBodyBytes = true, 4
	b := build(t, Options{Plugin: "test", Settings: s})
	inst := b.Instance(func(*plugin.Ctx) {})
	if _, ok := inst.(plugin.Accessor); ok {
		t.Fatal("an access phase without include_req_body")
	}
	bf := inst.(plugin.BodyFilterer)
	c := served(testRequest(), testResponse())
	if !inst.(plugin.BodyWanter).WantsBody(c) {
		t.Fatal("WantsBody false with include_resp_body")
	}
	for _, chunk := range []string{"abc", "def", ""} {
		if out := bf.BodyFilter(c, []byte(chunk), chunk == ""); string(out) != chunk {
			t.Fatalf("body filter changed %q into %q", chunk, out)
		}
	}
	if got := decode(t, b.Append(nil, c))["response"].(map[string]any)["body"]; got != "abcd" {
		t.Fatalf("response body %v, want the first 4 bytes", got)
	}
	// include_resp_body_expr sees the response status.
	s.IncludeRespBodyExpr = json.RawMessage(`[["status", "==", 500]]`)
	b = build(t, Options{Plugin: "test", Settings: s})
	c = served(testRequest(), testResponse())
	if b.Instance(func(*plugin.Ctx) {}).(plugin.BodyWanter).WantsBody(c) {
		t.Fatal("WantsBody true for a 201 with include_resp_body_expr status == 500")
	}
	if _, ok := decode(t, b.Append(nil, c))["response"].(map[string]any)["body"]; ok {
		t.Fatal("response body logged though the expression did not match")
	}
}

func TestInstanceWithoutBodyOptionsOnlyLogs(t *testing.T) {
	t.Parallel()
	inst := build(t, Options{Plugin: "test"}).Instance(func(*plugin.Ctx) {})
	if _, ok := inst.(plugin.Logger); !ok {
		t.Fatal("not a Logger")
	}
	if _, ok := inst.(plugin.Accessor); ok {
		t.Fatal("has an access phase")
	}
	if _, ok := inst.(plugin.BodyFilterer); ok {
		t.Fatal("has a body filter (would make every response chunked)")
	}
}

func TestJSONEscaping(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`plain`:            `"plain"`,
		"q\"b\\s":          `"q\"b\\s"`,
		"nl\n\r\t\x01":     `"nl\n\r\t\u0001"`,
		"caf\u00e9 \u2603": "\"caf\u00e9 \u2603\"",
		"bad\xffutf8":      `"bad\ufffdutf8"`,
	} {
		if got := string(appendString(nil, in)); got != want {
			t.Errorf("appendString(%q) = %s, want %s", in, got, want)
		}
		var back string
		if err := json.Unmarshal(appendString(nil, []byte(in)), &back); err != nil {
			t.Errorf("%q: invalid JSON: %v", in, err)
		}
	}
}

func TestSettingsValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mut  func(*Settings)
		want string
	}{
		{func(s *Settings) { s.MaxReqBodyBytes = 0 }, "max_req_body_bytes: must be >= 1"},
		{func(s *Settings) { s.MaxRespBodyBytes = 0 }, "max_resp_body_bytes: must be >= 1"},
		{func(s *Settings) { s.IncludeReqBodyExpr = json.RawMessage(`[]`) }, "include_req_body_expr: must have at least 1 item"},
		{func(s *Settings) { s.IncludeRespBodyExpr = json.RawMessage(`["x"]`) }, "include_resp_body_expr[0]: must be an array"},
		{func(s *Settings) { s.IncludeRespBodyExpr = json.RawMessage(`[["status", "=~", "x"]]`) }, "include_resp_body_expr[0]"},
	} {
		s := NewSettings()
		tc.mut(&s)
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate() = %v, want %q", err, tc.want)
		}
	}
}

func BenchmarkDefaultEntry(b *testing.B) {
	bl, _ := New(Options{Plugin: "bench", Settings: NewSettings()})
	c := served(listingRequest{testRequest()}, listingResponse{testResponse()})
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	for b.Loop() {
		buf = bl.Append(buf[:0], c)
	}
}

func BenchmarkDefaultEntryFreshBuffer(b *testing.B) {
	// What a logger pays per request: the entry must outlive the request,
	// so each one gets its own buffer.
	bl, _ := New(Options{Plugin: "bench", Settings: NewSettings()})
	c := served(listingRequest{testRequest()}, listingResponse{testResponse()})
	b.ReportAllocs()
	for b.Loop() {
		_ = bl.Append(make([]byte, 0, 1024), c)
	}
}

func BenchmarkCustomFormat(b *testing.B) {
	bl, _ := New(Options{Plugin: "bench", Settings: Settings{LogFormat: map[string]any{
		"host": "$host", "client_ip": "$remote_addr", "status": "$status", "@timestamp": "$time_iso8601"}}})
	c := served(testRequest(), testResponse())
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	for b.Loop() {
		buf = bl.Append(buf[:0], c)
	}
}
