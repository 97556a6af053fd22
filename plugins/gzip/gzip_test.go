package gzip

import (
	"bytes"
	stdgzip "compress/gzip"
	"io"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

var page = strings.Repeat("<p>hello, compressed world</p>\n", 40)

func gunzip(t *testing.T, b []byte) string {
	t.Helper()
	zr, err := stdgzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return string(out)
}

func TestRegistered(t *testing.T) {
	t.Parallel()
	d, ok := plugin.Lookup(Name)
	if !ok {
		t.Fatal("not registered")
	}
	if d.Priority != 995 {
		t.Errorf("priority = %d, want APISIX's 995", d.Priority)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := NewConfig()
	all, list, err := types(c.Types)
	if err != nil || all || len(list) != 1 || list[0] != "text/html" {
		t.Errorf("types = %v %v %v", all, list, err)
	}
	if c.MinLength != 20 || c.CompLevel != 1 || c.HTTPVersion != 1.1 || c.Buffers != (Buffers{32, 4096}) || c.Vary {
		t.Errorf("defaults = %+v", *c)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct{ desc, cfg, err string }{
		{"empty", `{}`, ""},
		{"all fields", `{"types":["text/html","application/json"],"min_length":1,"comp_level":9,"http_version":1.0,"buffers":{"number":4,"size":8192},"vary":true}`, ""},
		{"star", `{"types":"*"}`, ""},
		{"partial buffers", `{"buffers":{"number":4}}`, ""},
		{"other string", `{"types":"text/html"}`, `plugins.gzip: types: must be "*" or a non-empty array of non-empty strings`},
		{"empty types", `{"types":[]}`, `plugins.gzip: types: must be "*" or a non-empty array of non-empty strings`},
		{"empty type", `{"types":[""]}`, `plugins.gzip: types: must be "*" or a non-empty array of non-empty strings`},
		{"number type", `{"types":[1]}`, `plugins.gzip: types: must be "*" or a non-empty array of non-empty strings`},
		{"min_length 0", `{"min_length":0}`, "plugins.gzip: min_length: must be >= 1"},
		{"level 0", `{"comp_level":0}`, "plugins.gzip: comp_level: must be between 1 and 9"},
		{"level 10", `{"comp_level":10}`, "plugins.gzip: comp_level: must be between 1 and 9"},
		{"http 2", `{"http_version":2}`, "plugins.gzip: http_version: must be 1.1 or 1.0"},
		{"buffers number", `{"buffers":{"number":0}}`, "plugins.gzip: buffers.number: must be >= 1"},
		{"buffers size", `{"buffers":{"size":0}}`, "plugins.gzip: buffers.size: must be >= 1"},
		{"vary type", `{"vary":"yes"}`, "plugins.gzip: vary: must be a boolean, got string"},
		{"unknown", `{"level":1}`, "plugins.gzip: level: unknown field"},
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

func TestDecision(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, cfg, method, accept string
		status                    int
		headers                   []plugin.Header
		proto                     string
		want                      bool
	}{
		{desc: "html", want: true},
		{desc: "html with charset", headers: hdrs("Content-Type", "text/html; charset=utf-8"), want: true},
		{desc: "no accept-encoding", accept: "-", want: false},
		{desc: "br only", accept: "br, deflate", want: false},
		{desc: "gzip q=0", accept: "gzip;q=0, br", want: false},
		{desc: "gzip q=0.000", accept: "gzip; q=0.000", want: false},
		{desc: "gzip q=0.5", accept: "br;q=1, GZIP;q=0.5", want: true},
		{desc: "other type", headers: hdrs("Content-Type", "application/json"), want: false},
		{desc: "listed type", cfg: `{"types":["application/json"]}`, headers: hdrs("Content-Type", "application/json"), want: true},
		{desc: "star", cfg: `{"types":"*"}`, headers: hdrs("Content-Type", "image/x-anything"), want: true},
		{desc: "no content type", cfg: `{"types":"*"}`, headers: []plugin.Header{}, want: false},
		{desc: "already encoded", headers: hdrs("Content-Type", "text/html", "Content-Encoding", "br"), want: false},
		{desc: "short", headers: hdrs("Content-Type", "text/html", "Content-Length", "19"), want: false},
		{desc: "min length", headers: hdrs("Content-Type", "text/html", "Content-Length", "20"), want: true},
		{desc: "custom min length", cfg: `{"min_length":100}`, headers: hdrs("Content-Type", "text/html", "Content-Length", "99"), want: false},
		{desc: "unknown length", cfg: `{"min_length":100}`, want: true},
		{desc: "HEAD", method: "HEAD", want: false},
		{desc: "201", status: 201, want: false},
		{desc: "404", status: 404, want: true},
		{desc: "403", status: 403, want: true},
		{desc: "HTTP/1.0 refused by default", proto: "HTTP/1.0", want: false},
		{desc: "HTTP/1.0 allowed", cfg: `{"http_version":1.0}`, proto: "HTTP/1.0", want: true},
		{desc: "HTTP/2", proto: "HTTP/2.0", want: true},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			cfg := tt.cfg
			if cfg == "" {
				cfg = `{}`
			}
			inst := plugintest.New(t, Name, cfg)
			method := tt.method
			if method == "" {
				method = "GET"
			}
			req := plugintest.NewRequest(method, "/")
			switch tt.accept {
			case "":
				req.WithHeader("Accept-Encoding", "gzip, deflate")
			case "-":
			default:
				req.WithHeader("Accept-Encoding", tt.accept)
			}
			if tt.proto != "" {
				req.Vars = map[string]string{"server_protocol": tt.proto}
			}
			status := tt.status
			if status == 0 {
				status = 200
			}
			headers := tt.headers
			if headers == nil {
				headers = hdrs("Content-Type", "text/html")
			}
			resp := &plugintest.Response{Code: status, Headers: append([]plugin.Header(nil), headers...), Body: []byte(page)}
			plugintest.Run(inst, req, resp)
			got := resp.Header("Content-Encoding") == "gzip"
			if got != tt.want {
				t.Fatalf("compressed = %v, want %v (headers %v)", got, tt.want, resp.Headers)
			}
			if got {
				if s := gunzip(t, resp.Body); s != page {
					t.Errorf("round trip: %d bytes", len(s))
				}
				if resp.Header("Content-Length") != "" {
					t.Error("Content-Length kept")
				}
			} else if string(resp.Body) != page {
				t.Error("body changed though not compressed")
			}
		})
	}
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	inst := plugintest.New(t, Name, `{"vary":true}`)
	resp := &plugintest.Response{Code: 200, Headers: hdrs("Content-Type", "text/html", "Content-Length", "1240",
		"ETag", `"abc"`, "Accept-Ranges", "bytes", "Vary", "Origin"), Body: []byte(page)}
	plugintest.Run(inst, plugintest.NewRequest("GET", "/").WithHeader("Accept-Encoding", "gzip"), resp)
	if resp.Header("ETag") != `W/"abc"` || resp.Header("Accept-Ranges") != "" {
		t.Errorf("ETag %q, Accept-Ranges %q", resp.Header("ETag"), resp.Header("Accept-Ranges"))
	}
	var vary []string
	for _, h := range resp.Headers {
		if h.Name == "Vary" {
			vary = append(vary, h.Value)
		}
	}
	if strings.Join(vary, ",") != "Origin,Accept-Encoding" {
		t.Errorf("Vary = %v", vary)
	}
	noVary := plugintest.New(t, Name, `{}`)
	resp = &plugintest.Response{Code: 200, Headers: hdrs("Content-Type", "text/html"), Body: []byte(page)}
	plugintest.Run(noVary, plugintest.NewRequest("GET", "/").WithHeader("Accept-Encoding", "gzip"), resp)
	if resp.Header("Vary") != "" {
		t.Errorf("Vary = %q without vary", resp.Header("Vary"))
	}
}

func TestStreaming(t *testing.T) {
	t.Parallel()
	for _, level := range []string{"1", "9"} {
		p := plugintest.New(t, Name, `{"comp_level":`+level+`}`).(*gz)
		for round := range 3 { // reuses pooled streams
			c := &plugin.Ctx{}
			c.Reset(plugintest.NewRequest("GET", "/").WithHeader("Accept-Encoding", "gzip"))
			c.Response = &plugintest.Response{Code: 200, Headers: hdrs("Content-Type", "text/html")}
			p.HeaderFilter(c)
			var all []byte
			first := p.BodyFilter(c, []byte("event: one\n"), false)
			if len(first) == 0 {
				t.Fatal("first chunk held back")
			}
			all = append(all, first...)
			// The first chunk alone is readable: the stream was flushed.
			zr, err := stdgzip.NewReader(bytes.NewReader(all))
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, len("event: one\n"))
			if _, err := io.ReadFull(zr, buf); err != nil || string(buf) != "event: one\n" {
				t.Fatalf("round %d: partial read %q %v", round, buf, err)
			}
			if out := p.BodyFilter(c, nil, false); out != nil {
				t.Errorf("empty chunk produced %d bytes", len(out))
			}
			all = append(all, p.BodyFilter(c, []byte("event: two\n"), false)...)
			all = append(all, p.BodyFilter(c, nil, true)...)
			if got := gunzip(t, all); got != "event: one\nevent: two\n" {
				t.Errorf("round %d: got %q", round, got)
			}
			if out := p.BodyFilter(c, []byte("late"), true); string(out) != "late" {
				t.Errorf("after close: %q", out)
			}
		}
	}
}

func TestQZero(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{"gzip": true, "gzip;q=0": false, "gzip;q=0.": false, "gzip;q=0.001": true,
		"gzip ; Q=0": false, "x-gzip": false, "deflate, gzip;level=1": true, "gzip;q=1.0": true, "*": false} {
		if got := acceptsGzip(in); got != want {
			t.Errorf("acceptsGzip(%q) = %v", in, got)
		}
	}
}

func BenchmarkCompress(b *testing.B) {
	p := plugintest.New(b, Name, `{}`).(*gz)
	req := plugintest.NewRequest("GET", "/").WithHeader("Accept-Encoding", "gzip")
	body := []byte(page)
	c := &plugin.Ctx{}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		c.Reset(req)
		c.Response = &plugintest.Response{Code: 200, Headers: hdrs("Content-Type", "text/html")}
		p.HeaderFilter(c)
		p.BodyFilter(c, body, false)
		p.BodyFilter(c, nil, true)
	}
}

func hdrs(kv ...string) []plugin.Header {
	var out []plugin.Header
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, plugin.Header{Name: kv[i], Value: kv[i+1]})
	}
	return out
}
