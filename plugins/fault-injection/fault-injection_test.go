package faultinjection

import (
	"testing"
	"time"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

func TestPriorityIsAPISIXs(t *testing.T) {
	t.Parallel()
	d, ok := plugin.Lookup("fault-injection")
	if !ok || d.Priority != 11000 {
		t.Fatalf("fault-injection registered=%v priority=%d, want 11000 (apisix/plugins/fault-injection.lua)", ok, d.Priority)
	}
}

func TestValidation(t *testing.T) {
	t.Parallel()
	const pre = "plugins.fault-injection: "
	tests := []struct{ desc, cfg, err string }{
		{"empty", `{}`, "at least one of abort and delay must be set"},
		{"no status", `{"abort":{"body":"x"}}`, "abort.http_status: is required and must be between 200 and 599, got 0"},
		{"low status", `{"abort":{"http_status":100}}`, "abort.http_status: is required and must be between 200 and 599, got 100"},
		{"percentage", `{"abort":{"http_status":500,"percentage":101}}`, "abort.percentage: must be between 0 and 100, got 101"},
		{"header type", `{"abort":{"http_status":500,"headers":{"X-A":true}}}`, "abort.headers.X-A: must be a string or a number"},
		{"headers empty", `{"abort":{"http_status":500,"headers":{}}}`, "abort.headers: must have at least 1 header"},
		{"vars item", `{"abort":{"http_status":500,"vars":["a"]}}`, "abort.vars[0]: must be an array"},
		{"vars expr", `{"abort":{"http_status":500,"vars":[[["arg_a","=~","x"]]]}}`, `abort.vars[0]: vars[0][1]: unknown operator "=~"`},
		{"no duration", `{"delay":{"percentage":50}}`, "delay.duration: is required"},
		{"negative duration", `{"delay":{"duration":-1}}`, "delay.duration: must be >= 0, got -1"},
		{"delay percentage", `{"delay":{"duration":1,"percentage":-1}}`, "delay.percentage: must be between 0 and 100, got -1"},
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

func TestAbort(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, cfg, target string
		status            int // 0: not aborted
		body              string
		headers           []plugin.Header
	}{
		{"always", `{"abort":{"http_status":403,"body":"Fault Injection!\n"}}`, "/", 403, "Fault Injection!\n", nil},
		{"no body", `{"abort":{"http_status":500}}`, "/", 500, "", nil},
		{"variables", `{"abort":{"http_status":200,"body":"client addr: $remote_addr, name: ${arg_name}","headers":{"X-Name":"$arg_name","X-N":7}}}`, "/?name=jack", 200,
			"client addr: 127.0.0.1, name: jack", []plugin.Header{{Name: "X-N", Value: "7"}, {Name: "X-Name", Value: "jack"}}},
		{"percentage 0", `{"abort":{"http_status":500,"percentage":0}}`, "/", 0, "", nil},
		{"percentage 100", `{"abort":{"http_status":500,"percentage":100}}`, "/", 500, "", nil},
		{"vars match (any of the list)", `{"abort":{"http_status":403,"vars":[[["arg_name","==","jack"]],[["arg_age","!","<",18]]]}}`, "/?name=rose&age=20", 403, "", nil},
		{"vars do not match", `{"abort":{"http_status":403,"vars":[[["arg_name","==","jack"]]]}}`, "/?name=rose", 0, "", nil},
		{"empty vars list never matches", `{"abort":{"http_status":403,"vars":[]}}`, "/", 0, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			inst := plugintest.New(t, Name, tt.cfg)
			res := plugintest.Run(inst, plugintest.NewRequest("GET", tt.target), nil)
			if tt.status == 0 {
				if res.Exit != nil {
					t.Fatalf("unexpected exit %+v", res.Exit)
				}
				return
			}
			if res.Exit == nil || res.Exit.Status != tt.status || string(res.Exit.Body) != tt.body || len(res.Exit.Headers) != len(tt.headers) {
				t.Fatalf("exit %+v, want %d %q %v", res.Exit, tt.status, tt.body, tt.headers)
			}
			for i := range tt.headers {
				if res.Exit.Headers[i] != tt.headers[i] {
					t.Fatalf("headers %v, want %v", res.Exit.Headers, tt.headers)
				}
			}
		})
	}
}

func TestDelay(t *testing.T) {
	t.Parallel()
	inst := plugintest.New(t, Name, `{"delay":{"duration":0.05,"vars":[[["arg_slow","==","1"]]]},"abort":{"http_status":418,"percentage":100}}`)
	start := time.Now()
	res := plugintest.Run(inst, plugintest.NewRequest("GET", "/?slow=1"), nil)
	if d := time.Since(start); d < 50*time.Millisecond || res.Exit == nil || res.Exit.Status != 418 {
		t.Fatalf("slept %v, exit %+v", d, res.Exit)
	}
	start = time.Now()
	plugintest.Run(inst, plugintest.NewRequest("GET", "/?slow=0"), nil)
	if d := time.Since(start); d >= 50*time.Millisecond {
		t.Fatalf("slept %v without a vars match", d)
	}
}

func TestPercentageIsApproximate(t *testing.T) {
	t.Parallel()
	inst := plugintest.New(t, Name, `{"abort":{"http_status":500,"percentage":30}}`)
	n := 0
	for range 2000 {
		if plugintest.Run(inst, plugintest.NewRequest("GET", "/"), nil).Exit != nil {
			n++
		}
	}
	if n < 450 || n > 750 { // 600 expected; this is > 6 standard deviations
		t.Fatalf("%d of 2000 aborted at 30%%", n)
	}
}
