package redirect

import (
	"testing"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

func TestPriorityIsAPISIXs(t *testing.T) {
	t.Parallel()
	d, ok := plugin.Lookup("redirect")
	if !ok || d.Priority != 900 {
		t.Fatalf("redirect registered=%v priority=%d, want 900 (apisix/plugins/redirect.lua)", ok, d.Priority)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := NewConfig()
	if c.RetCode != 302 || c.EncodeURI || c.AppendQueryString || c.URI != nil || c.HTTPToHTTPS != nil {
		t.Fatalf("defaults %+v", c)
	}
}

func TestValidation(t *testing.T) {
	t.Parallel()
	const pre = "plugins.redirect: "
	tests := []struct{ desc, cfg, err string }{
		{"none", `{}`, "exactly one of uri, regex_uri and http_to_https must be set"},
		{"two", `{"uri":"/a","http_to_https":true}`, "exactly one of uri, regex_uri and http_to_https must be set"},
		{"short uri", `{"uri":"/"}`, `uri: must be at least 2 characters, got "/"`},
		{"regex items", `{"regex_uri":["^/a","/b","^/c","/d"]}`, "regex_uri: must have exactly 2 items (regex, replacement), got 4"},
		{"bad regex", `{"regex_uri":["(","/b"]}`, "regex_uri: invalid regex_uri ((, /b), err:error parsing regexp: missing closing ): `(`"},
		{"bad replacement", `{"regex_uri":["^/a","/$uri"]}`, `regex_uri: invalid regex_uri (^/a, /$uri), err:invalid capturing variable name in "/$uri"`},
		{"ret_code", `{"uri":"/a","ret_code":199}`, "ret_code: must be between 200 and 599, got 199"},
		{"https and query", `{"http_to_https":true,"append_query_string":true}`, "append_query_string: only one of `http_to_https` and `append_query_string` can be configured"},
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

func TestRedirect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, cfg, method, target string
		vars                      map[string]string
		hdr                       []string
		code                      int // 0: no redirect
		loc                       string
	}{
		{"static", `{"uri":"/test/default.html"}`, "GET", "/a?x=1", nil, nil, 302, "/test/default.html"},
		{"ret_code", `{"uri":"/b","ret_code":301}`, "GET", "/a", nil, nil, 301, "/b"},
		{"variables", `{"uri":"$uri/index.html?from=${arg_src}&n=$arg_none"}`, "GET", "/docs?src=x", nil, nil, 302, "/docs/index.html?from=x&n="},
		{"absolute with host", `{"uri":"https://$host/new"}`, "GET", "/a", nil, nil, 302, "https://example.com/new"},
		{"escaped dollar and lone dollar", `{"uri":"/\\$uri/$/x\\y"}`, "GET", "/a", nil, nil, 302, `/\$uri/$/xy`},
		{"append query", `{"uri":"/b","append_query_string":true}`, "GET", "/a?x=1", nil, nil, 302, "/b?x=1"},
		{"append query with &", `{"uri":"/b?y=2","append_query_string":true}`, "GET", "/a?x=1", nil, nil, 302, "/b?y=2&x=1"},
		{"append without query", `{"uri":"/b","append_query_string":true}`, "GET", "/a", nil, nil, 302, "/b"},
		{"encode", `{"uri":"/a b/$arg_p?q=a b","encode_uri":true}`, "GET", "/x?p=%", nil, nil, 302, "/a%20b/%25?q=a b"},
		{"regex", `{"regex_uri":["^/iresty/(.*)/(.*)/(.*)","/$1-$2-$3"]}`, "GET", "/iresty/a/b/c", nil, nil, 302, "/a-b-c"},
		{"regex no match", `{"regex_uri":["^/iresty/(.*)","/$1"]}`, "GET", "/other", nil, nil, 0, ""},
		{"http to https GET", `{"http_to_https":true}`, "GET", "/a?x=1", map[string]string{"scheme": "http", "request_uri": "/a?x=1"}, nil, 301, "https://example.com/a?x=1"},
		{"http to https POST", `{"http_to_https":true,"ret_code":302}`, "POST", "/a", map[string]string{"scheme": "http", "request_uri": "/a"}, nil, 308, "https://example.com/a"},
		{"already https", `{"http_to_https":true}`, "GET", "/a", map[string]string{"scheme": "https"}, nil, 0, ""},
		{"forwarded https", `{"http_to_https":true}`, "GET", "/a", map[string]string{"scheme": "http"}, []string{"X-Forwarded-Proto", "https"}, 0, ""},
		{"disabled https", `{"http_to_https":false}`, "GET", "/a", map[string]string{"scheme": "http"}, nil, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			inst := plugintest.New(t, Name, tt.cfg)
			req := plugintest.NewRequest(tt.method, tt.target)
			req.Vars = tt.vars
			if tt.hdr != nil {
				req.WithHeader(tt.hdr[0], tt.hdr[1])
			}
			res := plugintest.Run(inst, req, nil)
			if tt.code == 0 {
				if res.Exit != nil {
					t.Fatalf("unexpected exit %+v", res.Exit)
				}
				return
			}
			if res.Exit == nil || res.Exit.Status != tt.code || len(res.Exit.Headers) != 1 ||
				res.Exit.Headers[0] != (plugin.Header{Name: "Location", Value: tt.loc}) {
				t.Fatalf("exit %+v, want %d Location %q", res.Exit, tt.code, tt.loc)
			}
		})
	}
}
