package httplogger

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/pipeline"
	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

func TestPriorityIsAPISIXs(t *testing.T) {
	t.Parallel()
	d, ok := plugin.Lookup(Name)
	if !ok || d.Priority != 410 {
		t.Fatalf("registered=%v priority=%d, want 410", ok, d.Priority)
	}
	props := d.Schema["properties"].(map[string]any)
	for _, f := range []string{"uri", "auth_header", "timeout", "concat_method", "ssl_verify", "log_format",
		"include_req_body", "include_resp_body_expr", "max_resp_body_bytes", "batch_max_size", "name", "retry_delay"} {
		if _, ok := props[f]; !ok {
			t.Errorf("schema lacks %s", f)
		}
	}
}

func TestValidation(t *testing.T) {
	t.Parallel()
	for cfg, want := range map[string]string{
		`{}`:                                            "uri: is required",
		`{"uri":"ftp://x"}`:                             "uri: must be an http:// or https:// URL",
		`{"uri":"http://x","timeout":0}`:                "timeout: must be >= 1",
		`{"uri":"http://x","concat_method":"x"}`:        "concat_method: must be one of json, new_line",
		`{"uri":"http://x","batch_max_size":0}`:         "batch_max_size: must be >= 1",
		`{"uri":"http://x","batch_max_size":"a"}`:       "batch_max_size: must be a number",
		`{"uri":"http://x","include_req_body_expr":[]}`: "include_req_body_expr: must have at least 1 item",
		`{"uri":"http://x","nope":1}`:                   "nope: unknown field",
	} {
		if _, err := plugintest.Build(Name, cfg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", cfg, err, want)
		}
	}
}

// TestPostsBatches: entries reach a real HTTP server as a JSON array with the
// configured Authorization, then (new_line) as lines.
func TestPostsBatches(t *testing.T) {
	t.Parallel()
	type post struct {
		ctype, auth, body string
	}
	got := make(chan post, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- post{r.Header.Get("Content-Type"), r.Header.Get("Authorization"), string(b)}
	}))
	defer srv.Close()
	l := plugin.NewLasting(slog.New(slog.DiscardHandler))
	defer l.Close()
	for _, tc := range []struct{ cfg, ctype, want string }{
		{`{"uri":"` + srv.URL + `/logs","auth_header":"Bearer t","batch_max_size":2,"log_format":{"m":"$request_method"}}`,
			"application/json", `[{"m":"GET","route_id":"r1"},{"m":"GET","route_id":"r1"}]`},
		{`{"uri":"` + srv.URL + `","batch_max_size":2,"concat_method":"new_line","log_format":{"m":"$request_method"}}`,
			"text/plain", "{\"m\":\"GET\",\"route_id\":\"r1\"}\n{\"m\":\"GET\",\"route_id\":\"r1\"}"},
	} {
		inst := build(t, l, tc.cfg)
		for range 2 {
			c := &plugin.Ctx{}
			c.Reset(plugintest.NewRequest("GET", "/x"))
			c.RouteID = "r1"
			inst.(plugin.Logger).Log(c)
		}
		select {
		case p := <-got:
			if p.body != tc.want || p.ctype != tc.ctype {
				t.Fatalf("POST %q (%s), want %q (%s)", p.body, p.ctype, tc.want, tc.ctype)
			}
			if strings.Contains(tc.cfg, "auth_header") && p.auth != "Bearer t" {
				t.Fatalf("Authorization %q", p.auth)
			}
			var v any
			if err := json.Unmarshal([]byte(strings.SplitN(p.body, "\n", 2)[0]), &v); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("nothing POSTed")
		}
	}
}

func build(t *testing.T, l *plugin.Lasting, cfg string) any {
	t.Helper()
	var raw any
	if err := json.Unmarshal([]byte(cfg), &raw); err != nil {
		t.Fatal(err)
	}
	ps, err := pipeline.Build(map[string]any{Name: raw}, nil, func(string) plugin.Deps { return plugin.Deps{Lasting: l} })
	if err != nil {
		t.Fatal(err)
	}
	return ps[0].Instance
}

// BenchmarkLogPhase is the whole per-request cost of http-logger: building
// the default entry into a fresh buffer and queueing it (the sink answers
// at once, off the request path).
func BenchmarkLogPhase(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	l := plugin.NewLasting(slog.New(slog.DiscardHandler))
	defer l.Close()
	var raw any
	json.Unmarshal([]byte(`{"uri":"`+srv.URL+`","batch_max_size":1000,"inactive_timeout":1}`), &raw)
	ps, err := pipeline.Build(map[string]any{Name: raw}, nil, func(string) plugin.Deps { return plugin.Deps{Lasting: l} })
	if err != nil {
		b.Fatal(err)
	}
	lg := ps[0].Instance.(plugin.Logger)
	req := plugintest.NewRequest("GET", "/orders?id=7").WithHeader("User-Agent", "bench").WithHeader("Accept", "*/*")
	c := &plugin.Ctx{}
	c.Reset(req)
	c.RouteID = "r1"
	c.Response = &plugintest.Response{Code: 200, Headers: []plugin.Header{{Name: "Content-Type", Value: "application/json"}}}
	c.Served = plugin.Served{Start: time.Now(), Status: 200, BytesSent: 200, RequestLength: 80,
		Latency: 2 * time.Millisecond, UpstreamAddr: "10.0.0.1:80", UpstreamLatency: time.Millisecond}
	b.ReportAllocs()
	for b.Loop() {
		lg.Log(c)
	}
}
