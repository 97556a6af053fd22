package requestvalidation

import (
	"strings"
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
	if d.Priority != 2800 {
		t.Errorf("priority = %d, want APISIX's 2800", d.Priority)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := NewConfig()
	if c.MaxReqBodySize != 67108864 || c.RejectedCode != 400 || c.RejectedMsg != nil || c.HeaderSchema != nil || c.BodySchema != nil {
		t.Errorf("defaults = %+v", *c)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct{ desc, cfg, err string }{
		{"header schema", `{"header_schema":{"type":"object"}}`, ""},
		{"body schema", `{"body_schema":{"type":"object"}}`, ""},
		{"all fields", `{"header_schema":{},"body_schema":{},"max_req_body_size":10,"rejected_code":422,"rejected_msg":"no"}`, ""},
		{"neither", `{}`, `plugins.request-validation: object matches none of the required: ["header_schema"] or ["body_schema"]`},
		{"schema not object", `{"body_schema":"x"}`, "plugins.request-validation: body_schema: must be an object, got string"},
		{"bad schema type", `{"body_schema":{"type":"test"}}`, "plugins.request-validation: body_schema: invalid JSON Schema"},
		{"bad header schema", `{"header_schema":{"required":"a"}}`, "plugins.request-validation: header_schema: invalid JSON Schema"},
		{"remote ref", `{"body_schema":{"$ref":"http://127.0.0.1:1/s.json"}}`, "plugins.request-validation: body_schema: invalid JSON Schema"},
		{"code too big", `{"body_schema":{},"rejected_code":10000}`, "plugins.request-validation: rejected_code: expected 10000 to be at most 599"},
		{"code too small", `{"body_schema":{},"rejected_code":100}`, "plugins.request-validation: rejected_code: expected 100 to be at least 200"},
		{"empty msg", `{"body_schema":{},"rejected_msg":""}`, "plugins.request-validation: rejected_msg: length must be between 1 and 256"},
		{"long msg", `{"body_schema":{},"rejected_msg":"` + strings.Repeat("x", 257) + `"}`, "plugins.request-validation: rejected_msg: length must be between 1 and 256"},
		{"max 0", `{"body_schema":{},"max_req_body_size":0}`, "plugins.request-validation: max_req_body_size: must be >= 1"},
		{"unknown", `{"body_schema":{},"schema":{}}`, "plugins.request-validation: schema: unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			_, err := plugintest.Build(Name, tt.cfg)
			got := ""
			if err != nil {
				got = err.Error()
			}
			// Schema compile errors carry the library's detail after the prefix.
			if !strings.HasPrefix(got, tt.err) || (tt.err == "") != (got == "") {
				t.Errorf("error = %q, want %q", got, tt.err)
			}
		})
	}
}

const bodySchema = `{"body_schema":{"type":"object","required":["required_payload"],"properties":{
	"required_payload":{"type":"string"},
	"boolean_payload":{"type":"boolean"},
	"timeouts":{"type":"integer","minimum":1,"maximum":254},
	"req_headers":{"type":"array","minItems":1,"items":{"type":"string","maxLength":5}},
	"kind":{"enum":["a","b"]},
	"code":{"type":"string","pattern":"^[a-z]+$"},
	"obj":{"type":"object","additionalProperties":false,"properties":{"x":{"type":"number"}}}}}}`

func TestBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, cfg, ctype, body string
		status                 int    // 0: passes
		want                   string // rejection body, or the body sent upstream
	}{
		{desc: "valid", body: `{"required_payload":"a","timeouts":10}`, want: `{"required_payload":"a","timeouts":10}`},
		{desc: "re-encoded", body: `{ "required_payload" : "a<b", "required_payload":"c", "n": 1.50e3 }`, want: `{"n":1.50e3,"required_payload":"c"}`},
		{desc: "missing required", body: `{"boolean_payload":true}`, status: 400, want: `property "required_payload" is required`},
		{desc: "wrong type", body: `{"required_payload":"a","boolean_payload":"x"}`, status: 400, want: `property "boolean_payload" validation failed: wrong type: expected boolean, got string`},
		{desc: "object got table", body: `{"required_payload":{}}`, status: 400, want: `property "required_payload" validation failed: wrong type: expected string, got table`},
		{desc: "too big", body: `{"required_payload":"a","timeouts":255}`, status: 400, want: `property "timeouts" validation failed: expected 255 to be at most 254`},
		{desc: "too small", body: `{"required_payload":"a","timeouts":0}`, status: 400, want: `property "timeouts" validation failed: expected 0 to be at least 1`},
		{desc: "item too long", body: `{"required_payload":"a","req_headers":["ok","toolong"]}`, status: 400, want: `property "req_headers" validation failed: failed to validate item 2: string too long, expected at most 5, got 7`},
		{desc: "min items", body: `{"required_payload":"a","req_headers":[]}`, status: 400, want: `property "req_headers" validation failed: expect array to have at least 1 items`},
		{desc: "enum", body: `{"required_payload":"a","kind":"c"}`, status: 400, want: `property "kind" validation failed: matches none of the enum values`},
		{desc: "pattern", body: `{"required_payload":"a","code":"A1"}`, status: 400, want: `property "code" validation failed: failed to match pattern "^[a-z]+$" with "A1"`},
		{desc: "additional", body: `{"required_payload":"a","obj":{"y":1}}`, status: 400, want: `property "obj" validation failed: additional properties forbidden, found y`},
		{desc: "not an object", body: `[1]`, status: 400, want: `wrong type: expected object, got table`},
		{desc: "null", body: `null`, status: 400, want: `wrong type: expected object, got userdata`},
		{desc: "not json", body: `{"required_payload":`, status: 400, want: `Expected the end but found invalid token`},
		{desc: "bad token", body: `hello`, status: 400, want: `Expected value but found invalid token at character 1`},
		{desc: "empty body", body: ``, status: 400, want: ``},
		{desc: "too large", cfg: `{"max_req_body_size":5,"body_schema":{}}`, body: `{"a":1}`, status: 400, want: ``},
		{desc: "rejected_msg", cfg: `{"rejected_msg":"customize reject message","rejected_code":422,"body_schema":{"required":["test"]}}`, body: `{}`, status: 422, want: `customize reject message`},
		{desc: "rejected_msg on empty body", cfg: `{"rejected_msg":"customize reject message","body_schema":{"required":["test"]}}`, body: ``, status: 400, want: `customize reject message`},
		{desc: "anyOf", cfg: `{"body_schema":{"anyOf":[{"required":["a"]},{"required":["b"]}]}}`, body: `{"c":1}`, status: 400, want: `object matches none of the required: "[\"a\"] or [\"b\"]"`},
		{desc: "oneOf", cfg: `{"body_schema":{"oneOf":[{"required":["a"]},{"required":["b"]}]}}`, body: `{"a":1,"b":2}`, status: 400, want: `value should match only one schema, but matches both schemas 1 and 2`},
		{desc: "form valid", ctype: "application/x-www-form-urlencoded; charset=utf-8", body: `required_payload=a%20b&x=1`, want: `required_payload=a%20b&x=1`},
		{desc: "form missing", ctype: "Application/X-WWW-Form-Urlencoded", body: `x=1`, status: 400, want: `property "required_payload" is required`},
		{desc: "form repeated is an array", ctype: "application/x-www-form-urlencoded", body: `required_payload=a&required_payload=b`, status: 400, want: `property "required_payload" validation failed: wrong type: expected string, got table`},
		{desc: "form flag is a boolean", ctype: "application/x-www-form-urlencoded", body: `required_payload`, status: 400, want: `property "required_payload" validation failed: wrong type: expected string, got boolean`},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			cfg := tt.cfg
			if cfg == "" {
				cfg = bodySchema
			}
			inst := plugintest.New(t, Name, cfg)
			req := plugintest.NewRequest("POST", "/").WithBody(tt.body)
			if tt.ctype != "" {
				req.WithHeader("Content-Type", tt.ctype)
			}
			res := plugintest.Run(inst, req, nil)
			if tt.status == 0 {
				if res.Exit != nil {
					t.Fatalf("exit %d %s", res.Exit.Status, res.Exit.Body)
				}
				if string(req.Body) != tt.want {
					t.Errorf("upstream body = %s, want %s", req.Body, tt.want)
				}
				return
			}
			if res.Exit == nil {
				t.Fatal("request passed")
			}
			if res.Exit.Status != tt.status || string(res.Exit.Body) != tt.want {
				t.Errorf("exit = %d %q, want %d %q", res.Exit.Status, res.Exit.Body, tt.status, tt.want)
			}
		})
	}
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	cfg := `{"header_schema":{"type":"object","required":["User-Agent","Host"],"properties":{
		"user-agent":{"type":"string","pattern":"^curl/"},"X-Count":{"type":"string","maxLength":2}}}}`
	tests := []struct {
		desc    string
		headers [][2]string
		want    string
	}{
		{"ok", [][2]string{{"User-Agent", "curl/8"}, {"Host", "x"}}, ""},
		{"missing", [][2]string{{"Host", "x"}}, `property "User-Agent" is required`},
		{"pattern", [][2]string{{"user-agent", "wget"}, {"Host", "x"}}, `property "user-agent" validation failed: failed to match pattern "^curl/" with "wget"`},
		{"length", [][2]string{{"user-agent", "curl/8"}, {"Host", "x"}, {"x-count", "123"}}, `property "X-Count" validation failed: string too long, expected at most 2, got 3`},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			inst := plugintest.New(t, Name, cfg)
			req := plugintest.NewRequest("GET", "/")
			for _, h := range tt.headers {
				req.WithHeader(h[0], h[1])
			}
			res := plugintest.Run(inst, req, nil)
			got := ""
			if res.Exit != nil {
				got = string(res.Exit.Body)
				if res.Exit.Status != 400 {
					t.Errorf("status %d", res.Exit.Status)
				}
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	// A header rejection with rejected_msg.
	inst := plugintest.New(t, Name, `{"header_schema":{"required":["test"]},"rejected_msg":"customize reject message for header_schema.required"}`)
	res := plugintest.Run(inst, plugintest.NewRequest("GET", "/"), nil)
	if res.Exit == nil || string(res.Exit.Body) != "customize reject message for header_schema.required" {
		t.Errorf("exit = %v", res.Exit)
	}
}

func BenchmarkBody(b *testing.B) {
	inst := plugintest.New(b, Name, bodySchema).(*validation)
	body := []byte(`{"required_payload":"a","timeouts":10,"req_headers":["a","b"]}`)
	req := plugintest.NewRequest("POST", "/").WithHeader("Content-Type", "application/json")
	c := &plugin.Ctx{}
	b.ReportAllocs()
	for b.Loop() {
		req.Body = body
		c.Reset(req)
		if e := inst.Rewrite(c); e != nil {
			b.Fatal(string(e.Body))
		}
	}
}
