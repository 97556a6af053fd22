package proxyrewrite

import (
	"testing"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

func TestPriorityIsAPISIXs(t *testing.T) {
	t.Parallel()
	d, ok := plugin.Lookup("proxy-rewrite")
	if !ok || d.Priority != 1008 {
		t.Fatalf("proxy-rewrite registered=%v priority=%d, want 1008 (apisix/plugins/proxy-rewrite.lua)", ok, d.Priority)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := NewConfig()
	if c.URI != nil || c.RegexURI != nil || c.Method != "" || c.Host != "" || c.Headers != nil || c.UseRealRequestURIUnsafe {
		t.Fatalf("defaults: %+v", c)
	}
	// An empty config is accepted and changes nothing.
	inst := plugintest.New(t, Name, `{}`)
	res := plugintest.Run(inst, plugintest.NewRequest("GET", "/a?b=1"), nil)
	if r := res.Ctx.Request.(*plugintest.Request); r.P != "/a" || r.Q != "b=1" || r.M != "GET" || len(r.Headers) != 0 {
		t.Fatalf("request changed: %+v", r)
	}
}

func TestValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, cfg, err string
	}{
		{"empty uri", `{"uri":""}`, "plugins.proxy-rewrite: uri: must not be empty"},
		{"relative uri", `{"uri":"a/b"}`, `plugins.proxy-rewrite: uri: must start with "/", got "a/b"`},
		{"uri type", `{"uri":1}`, "plugins.proxy-rewrite: uri: must be a string, got number"},
		{"regex one item", `{"regex_uri":["^/a"]}`, "plugins.proxy-rewrite: regex_uri: must have at least 2 items, got 1"},
		{"regex odd", `{"regex_uri":["^/a","/b","^/c"]}`, "plugins.proxy-rewrite: regex_uri: the number of items must be even (regex, replacement pairs), got 3"},
		{"bad regex", `{"regex_uri":["^/(a","/b"]}`, "plugins.proxy-rewrite: regex_uri[0]: invalid regex_uri(^/(a, /b): error parsing regexp: missing closing ): `^/(a`"},
		{"bad replacement", `{"regex_uri":["^/a","/b","^/c","/$uri"]}`, `plugins.proxy-rewrite: regex_uri[2]: invalid regex_uri(^/c, /$uri): invalid capturing variable name in "/$uri"`},
		{"method", `{"method":"get"}`, `plugins.proxy-rewrite: method: must be one of COPY, DELETE, GET, HEAD, LOCK, MKCOL, MOVE, OPTIONS, PATCH, POST, PROPFIND, PUT, TRACE, UNLOCK, got "get"`},
		{"host", `{"host":"a b"}`, `plugins.proxy-rewrite: host: must be a host name or address with an optional port, got "a b"`},
		{"host port", `{"host":"a:123456"}`, `plugins.proxy-rewrite: host: must be a host name or address with an optional port, got "a:123456"`},
		{"headers not object", `{"headers":[]}`, "plugins.proxy-rewrite: headers: must be an object"},
		{"headers empty", `{"headers":{}}`, "plugins.proxy-rewrite: headers: must have at least 1 header"},
		{"legacy bad value", `{"headers":{"X-A":true}}`, "plugins.proxy-rewrite: headers.X-A: must be a string or a number"},
		{"legacy bad name", `{"headers":{"X A":"1"}}`, "plugins.proxy-rewrite: headers.X A: invalid field character in header"},
		{"legacy bad value char", `{"headers":{"X-A":"a\nb"}}`, "plugins.proxy-rewrite: headers.X-A: invalid value character in header"},
		{"add empty", `{"headers":{"add":{}}}`, "plugins.proxy-rewrite: headers.add: must have at least 1 header"},
		{"add bool", `{"headers":{"add":{"X-A":true}}}`, "plugins.proxy-rewrite: headers.add.X-A: must be a string, a number or a non-empty array of them"},
		{"set empty array", `{"headers":{"set":{"X-A":[]}}}`, "plugins.proxy-rewrite: headers.set.X-A: must be a string, a number or a non-empty array of them"},
		{"remove not array", `{"headers":{"add":{"X-A":"1"},"remove":"X-B"}}`, "plugins.proxy-rewrite: headers.remove: must be an array of strings"},
		{"remove colon", `{"headers":{"remove":["X:B"]}}`, `plugins.proxy-rewrite: headers.remove[0]: header name must be non-empty and without ':', got "X:B"`},
		{"mixed forms", `{"headers":{"set":{"X-A":"1"},"X-B":"2"}}`, "plugins.proxy-rewrite: headers.X-B: unknown field (with add, set or remove, headers takes only those)"},
		{"CRLF value", `{"headers":{"set":{"X-A":"a\r\nb"}}}`, "plugins.proxy-rewrite: headers.set.X-A: value must not contain CR or LF"},
		{"unknown field", `{"scheme":"https"}`, "plugins.proxy-rewrite: scheme: unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			_, err := plugintest.Build(Name, tt.cfg)
			if err == nil || err.Error() != tt.err {
				t.Fatalf("err = %v\nwant  %s", err, tt.err)
			}
		})
	}
}

func TestRewriteURI(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, cfg, target string
		vars              map[string]string
		path, query       string
	}{
		{"static uri keeps query", `{"uri":"/test/home.html"}`, "/a?b=1", nil, "/test/home.html", "b=1"},
		{"uri with variables", `{"uri":"/u/$arg_name/${http_x_id}/x"}`, "/a?name=jack", map[string]string{"http_x_id": "7"}, "/u/jack/7/x", "name=jack"},
		{"unset variable is empty", `{"uri":"/u/$arg_none/x"}`, "/a", nil, "/u//x", ""},
		{"default value", `{"uri":"/u/${arg_none ?? guest}"}`, "/a", nil, "/u/guest", ""},
		{"escaped dollar is literal", `{"uri":"/u/\\$uri"}`, "/a", nil, `/u/\$uri`, ""},
		{"uri query merges with args", `{"uri":"/b?x=1"}`, "/a?y=2", nil, "/b", "x=1&y=2"},
		{"uri query without args", `{"uri":"/b?x=1"}`, "/a", nil, "/b", "x=1"},
		{"path is escaped", `{"uri":"/a b#%"}`, "/", nil, "/a%20b%23%25", ""},
		{
			// APISIX's proxy-rewrite3.t TEST 24: a '?' from a variable stays
			// in the path (%3F, then escaped again as %253F).
			"separator in variable", `{"uri":"/$uri/remain"}`, "/",
			map[string]string{"uri": "/hello?0z=700&a=c HTTP/1.1\r\nHost:google.com\r\n\r\n"}, "//hello%253F0z=700&a=c%20HTTP/1.1%0D%0AHost:google.com%0D%0A%0D%0A/remain", "",
		},
		{"control characters in query", `{"uri":"/b?x=$arg_v"}`, "/a", map[string]string{"arg_v": "1\r\n2"}, "/b", "x=1%0D%0A2"},
		{"regex first match wins", `{"regex_uri":["^/api/(.*)","/v1/$1","^/(.*)","/other/$1"]}`, "/api/users?p=1", nil, "/v1/users", "p=1"},
		{"regex second pair", `{"regex_uri":["^/api/(.*)","/v1/$1","^/(.*)","/other/${1}x"]}`, "/web", nil, "/other/webx", ""},
		{"regex replaces first match only", `{"regex_uri":["o","0"]}`, "/foo", nil, "/f0o", ""},
		{"regex whole match and dollar", `{"regex_uri":["^/(a)(b)","/$0-$2$1-$$"]}`, "/abc", nil, "//ab-ba-$c", ""},
		{"regex no match keeps path", `{"regex_uri":["^/x/(.*)","/y/$1"]}`, "/a?q=1", nil, "/a", "q=1"},
		{"regex adds query", `{"regex_uri":["^/a/(.*)","/b?id=$1"]}`, "/a/7?q=1", nil, "/b", "id=7&q=1"},
		{"regex with decoded ? in path", `{"regex_uri":["^/a(.*)","/b$1"]}`, "/", map[string]string{"uri": "/a?x"}, "/b%3Fx", ""},
		{"unsafe keeps raw uri", `{"use_real_request_uri_unsafe":true}`, "/a/../b", map[string]string{"request_uri": "/a/%2e%2e/b?x=%41"}, "/a/%2e%2e/b", "x=%41"},
		{"unsafe with uri appends raw query", `{"use_real_request_uri_unsafe":true,"uri":"/c?d=1"}`, "/a", map[string]string{"request_uri": "/a?x=%41"}, "/c", "d=1&x=%41"},
		{"unsafe with regex", `{"use_real_request_uri_unsafe":true,"regex_uri":["^/a/(.*)","/b/$1"]}`, "/a", map[string]string{"real_request_uri": "/a/%20?x=1"}, "/b/%20", "x=1"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			inst := plugintest.New(t, Name, tt.cfg)
			req := plugintest.NewRequest("GET", tt.target)
			req.Vars = tt.vars
			if u, ok := tt.vars["uri"]; ok {
				req.P = u // a decoded path with '?' in it
			}
			res := plugintest.Run(inst, req, nil)
			if res.Exit != nil {
				t.Fatalf("exit %+v", res.Exit)
			}
			if req.P != tt.path || req.Q != tt.query {
				t.Fatalf("got path %q query %q\nwant    %q       %q", req.P, req.Q, tt.path, tt.query)
			}
		})
	}
}

func TestMethodAndHost(t *testing.T) {
	t.Parallel()
	inst := plugintest.New(t, Name, `{"method":"POST","host":"up.example.com:8080"}`)
	req := plugintest.NewRequest("GET", "/a")
	plugintest.Run(inst, req, nil)
	if req.M != "POST" || req.H != "up.example.com:8080" || req.P != "/a" {
		t.Fatalf("got %s %s %s", req.M, req.H, req.P)
	}
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, cfg string
		in, want  []plugin.Header
	}{
		{
			"legacy form sets", `{"headers":{"X-Api":"v2","X-Num":10,"X-Float":1.5}}`,
			hs("X-Api", "v1"),
			hs("X-Api", "v2", "X-Float", "1.5", "X-Num", "10"),
		},
		{
			"add set remove in order", `{"headers":{"add":{"X-A":"1","X-S":"added"},"set":{"X-S":"set","X-M":["m1","m2"]},"remove":["X-Drop","X-A"]}}`,
			hs("X-Drop", "x", "X-S", "old"),
			hs("X-M", "m1", "X-M", "m2", "X-S", "set"),
		},
		{
			"add array adds each", `{"headers":{"add":{"X-A":["1",2]}}}`,
			hs("X-A", "0"),
			hs("X-A", "0", "X-A", "1", "X-A", "2"),
		},
		{
			"variables", `{"headers":{"set":{"X-From":"$remote_addr $arg_q ${http_x_none ?? none}"}}}`,
			nil,
			hs("X-From", "127.0.0.1 1 none"),
		},
		{
			"legacy key named add with string", `{"headers":{"add":"x"}}`,
			nil,
			hs("add", "x"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			inst := plugintest.New(t, Name, tt.cfg)
			req := plugintest.NewRequest("GET", "/a?q=1")
			req.Headers = tt.in
			plugintest.Run(inst, req, nil)
			assertHeaders(t, req.Headers, tt.want)
		})
	}
}

func TestHeaderRegexGroups(t *testing.T) {
	t.Parallel()
	cfg := `{"regex_uri":["^/iresty/(.*)/(.*)","/$1-$2"],"headers":{"set":{"X-Api-Engine":"$1","X-Both":"$1-${2}-$uri","X-None":"$3"}}}`
	inst := plugintest.New(t, Name, cfg)
	req := plugintest.NewRequest("GET", "/iresty/hello/world")
	plugintest.Run(inst, req, nil)
	if req.P != "/hello-world" {
		t.Fatalf("path %q", req.P)
	}
	// Header values are resolved after the path is rewritten, so $uri is
	// the new path, as in APISIX.
	assertHeaders(t, req.Headers, hs("X-Api-Engine", "hello", "X-Both", "hello-world-/hello-world", "X-None", ""))

	// Without a regex match, group references are empty.
	req = plugintest.NewRequest("GET", "/other")
	plugintest.Run(inst, req, nil)
	assertHeaders(t, req.Headers, hs("X-Api-Engine", "", "X-Both", "--/other", "X-None", ""))
}

func assertHeaders(t *testing.T, got, want []plugin.Header) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("headers %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("headers %v, want %v", got, want)
		}
	}
}

func BenchmarkHeaderSet(b *testing.B) {
	inst := plugintest.New(b, Name, `{"headers":{"set":{"X-Api-Version":"v2","X-Client":"$remote_addr"}}}`)
	p := inst.(*proxyRewrite)
	req := plugintest.NewRequest("GET", "/a")
	c := &plugin.Ctx{}
	b.ReportAllocs()
	for b.Loop() {
		req.Headers = req.Headers[:0]
		c.Reset(req)
		p.Rewrite(c)
	}
}

func BenchmarkURITemplate(b *testing.B) {
	inst := plugintest.New(b, Name, `{"uri":"/v1/$arg_id/info"}`)
	p := inst.(*proxyRewrite)
	req := plugintest.NewRequest("GET", "/a?id=42")
	c := &plugin.Ctx{}
	b.ReportAllocs()
	for b.Loop() {
		req.P, req.Q = "/a", "id=42"
		c.Reset(req)
		p.Rewrite(c)
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
