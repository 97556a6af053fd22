package mocking

import (
	"bytes"
	"encoding/json"
	"regexp"
	"testing"
	"time"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

func TestPriorityIsAPISIXs(t *testing.T) {
	t.Parallel()
	d, ok := plugin.Lookup("mocking")
	if !ok || d.Priority != 10900 {
		t.Fatalf("mocking registered=%v priority=%d, want 10900 (apisix/plugins/mocking.lua)", ok, d.Priority)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	want := Config{ResponseStatus: 200, ContentType: "application/json;charset=utf8", WithMockHeader: true}
	if c := NewConfig(); c.Delay != 0 || c.ResponseStatus != want.ResponseStatus || c.ContentType != want.ContentType || !c.WithMockHeader {
		t.Fatalf("defaults %+v", c)
	}
	res := plugintest.Run(plugintest.New(t, Name, `{"response_example":"{\"a\":1}"}`), plugintest.NewRequest("GET", "/"), nil)
	want2 := []plugin.Header{{Name: "Content-Type", Value: "application/json;charset=utf8"}, {Name: "x-mock-by", Value: mockBy()}}
	if res.Exit == nil || res.Exit.Status != 200 || string(res.Exit.Body) != `{"a":1}` || len(res.Exit.Headers) != 2 ||
		res.Exit.Headers[0] != want2[0] || res.Exit.Headers[1] != want2[1] {
		t.Fatalf("exit %+v", res.Exit)
	}
}

func TestValidation(t *testing.T) {
	t.Parallel()
	const pre = "plugins.mocking: "
	tests := []struct{ desc, cfg, err string }{
		{"no body", `{}`, "at least one of response_example and response_schema must be set"},
		{"status", `{"response_example":"x","response_status":99}`, "response_status: must be between 100 and 599, got 99"},
		{"content type", `{"response_example":"x","content_type":"image/png"}`, `content_type: unsupported content type "image/png" (use application/json, application/xml, text/plain, text/html or text/xml)`},
		{"header type", `{"response_example":"x","response_headers":{"X-A":[1]}}`, "response_headers.X-A: must be a string or a number"},
		{"delay type", `{"response_example":"x","delay":0.5}`, "delay: must be a number, got number 0.5"},
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

func TestExample(t *testing.T) {
	t.Parallel()
	cfg := `{"response_example":"ip=$remote_addr name=$arg_name","response_status":201,"content_type":"text/plain","with_mock_header":false,"response_headers":{"X-Name":"$arg_name","X-N":3}}`
	res := plugintest.Run(plugintest.New(t, Name, cfg), plugintest.NewRequest("GET", "/?name=jack"), nil)
	want := []plugin.Header{{Name: "Content-Type", Value: "text/plain"}, {Name: "X-N", Value: "3"}, {Name: "X-Name", Value: "jack"}}
	if res.Exit == nil || res.Exit.Status != 201 || string(res.Exit.Body) != "ip=127.0.0.1 name=jack" || len(res.Exit.Headers) != 3 {
		t.Fatalf("exit %+v", res.Exit)
	}
	for i := range want {
		if res.Exit.Headers[i] != want[i] {
			t.Fatalf("headers %v, want %v", res.Exit.Headers, want)
		}
	}
}

const schema = `{"type":"object","properties":{
	"name":{"type":"string","example":"jack"},
	"code":{"type":"string"},
	"age":{"type":"integer","example":18.7},
	"score":{"type":"number"},
	"ok":{"type":"boolean","example":true},
	"tags":{"type":"array","items":{"type":"string","example":"t"}},
	"addr":{"type":"object","properties":{"city":{"type":"string","example":"sz"}}},
	"odd":{"type":"null"}}}`

func TestSchemaJSON(t *testing.T) {
	t.Parallel()
	res := plugintest.Run(plugintest.New(t, Name, `{"response_schema":`+schema+`}`), plugintest.NewRequest("GET", "/"), nil)
	var got struct {
		Name  string            `json:"name"`
		Code  string            `json:"code"`
		Age   int               `json:"age"`
		Score float64           `json:"score"`
		OK    bool              `json:"ok"`
		Tags  []string          `json:"tags"`
		Addr  map[string]string `json:"addr"`
	}
	dec := json.NewDecoder(bytes.NewReader(res.Exit.Body))
	dec.DisallowUnknownFields() // "odd" must be left out
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("body %s: %v", res.Exit.Body, err)
	}
	if got.Name != "jack" || !regexp.MustCompile(`^[a-z]{1,10}$`).MatchString(got.Code) || got.Age != 18 || got.Score < 0 || got.Score >= 10000 ||
		!got.OK || len(got.Tags) < 1 || len(got.Tags) > 3 || got.Tags[0] != "t" || got.Addr["city"] != "sz" {
		t.Fatalf("generated %s", res.Exit.Body)
	}
}

func TestSchemaXML(t *testing.T) {
	t.Parallel()
	cfg := `{"content_type":"application/xml","response_schema":{"properties":{"name":{"type":"string","example":"a<b"},"n":{"type":"integer","example":2}}}}`
	res := plugintest.Run(plugintest.New(t, Name, cfg), plugintest.NewRequest("GET", "/"), nil)
	if got := string(res.Exit.Body); got != "<data><n>2</n><name>a&lt;b</name></data>" {
		t.Fatalf("xml %s", got)
	}
}

func TestDelay(t *testing.T) {
	t.Parallel()
	start := time.Now()
	res := plugintest.Run(plugintest.New(t, Name, `{"response_example":"x","delay":1}`), plugintest.NewRequest("GET", "/"), nil)
	if d := time.Since(start); d < time.Second || res.Exit == nil {
		t.Fatalf("took %v", d)
	}
}
