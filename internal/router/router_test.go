package router

import (
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/internal/expr"
)

// fakeReq is a Request for tests.
type fakeReq struct {
	method, host, path string
	ip                 netip.Addr
	vars               map[string]string
}

func (r *fakeReq) Method() string       { return r.method }
func (r *fakeReq) Host() string         { return r.host }
func (r *fakeReq) Path() string         { return r.path }
func (r *fakeReq) RemoteIP() netip.Addr { return r.ip }
func (r *fakeReq) Var(name string) (string, bool) {
	v, ok := r.vars[name]
	return v, ok
}

// get builds a GET request from "host/path" (host may be empty: "/path").
func get(hostPath string) *fakeReq {
	i := strings.IndexByte(hostPath, '/')
	return &fakeReq{method: "GET", host: hostPath[:i], path: hostPath[i:], ip: netip.MustParseAddr("10.0.0.1")}
}

func route(id string, uris ...string) Route[string] {
	return Route[string]{ID: id, URIs: uris, Value: id}
}

func (rt Route[T]) withHosts(h ...string) Route[T]   { rt.Hosts = h; return rt }
func (rt Route[T]) withMethods(m ...string) Route[T] { rt.Methods = m; return rt }
func (rt Route[T]) withAddrs(a ...string) Route[T]   { rt.RemoteAddrs = a; return rt }
func (rt Route[T]) withPriority(p int) Route[T]      { rt.Priority = p; return rt }

func (rt Route[T]) withVars(tb testing.TB, src string) Route[T] {
	tb.Helper()
	e, err := expr.Compile(json.RawMessage(src))
	if err != nil {
		tb.Fatal(err)
	}
	rt.Vars = e
	return rt
}

func mustNew(tb testing.TB, routes []Route[string], opts Options) *Router[string] {
	tb.Helper()
	r, err := NewWithOptions(routes, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// matchCase is a request and the ID of the route it must match ("" = none).
type matchCase struct {
	req  *fakeReq
	want string
}

func runCases(t *testing.T, r *Router[string], cases []matchCase) {
	t.Helper()
	for _, c := range cases {
		got, ok := r.Match(c.req)
		if !ok {
			got = ""
		}
		if got != c.want {
			t.Errorf("%s %s%s (ip %v): matched %q, want %q", c.req.method, c.req.host, c.req.path, c.req.ip, got, c.want)
		}
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	withMethod := func(m string, r *fakeReq) *fakeReq { r.method = m; return r }
	withIP := func(ip string, r *fakeReq) *fakeReq { r.ip = netip.MustParseAddr(ip); return r }
	withVars := func(v map[string]string, r *fakeReq) *fakeReq { r.vars = v; return r }
	tests := []struct {
		desc   string
		routes func(t *testing.T) []Route[string]
		opts   Options
		cases  []matchCase
	}{
		{
			desc: "exact, prefix and precedence between them (APISIX router-radixtree doc example)",
			routes: func(*testing.T) []Route[string] {
				return []Route[string]{
					route("foo*", "/blog/foo/*"), route("a*", "/blog/foo/a/*"),
					route("c*", "/blog/foo/c/*"), route("bar", "/blog/foo/bar"),
				}
			},
			cases: []matchCase{
				{get("/blog/foo/bar"), "bar"},
				{get("/blog/foo/a/b/c"), "a*"},
				{get("/blog/foo/c/d"), "c*"},
				{get("/blog/foo/gloo"), "foo*"},
				{get("/blog/foo/"), "foo*"},
				{get("/blog/foo"), ""}, // "/blog/foo/*" needs the slash.
				{get("/blog/bar"), ""},
				{get("/blog/foo/bar/"), "foo*"}, // Exact means exact.
			},
		},
		{
			desc: "prefix without slash and root catch-alls",
			routes: func(*testing.T) []Route[string] {
				return []Route[string]{route("api*", "/api*"), route("root", "/*"), route("home", "/")}
			},
			cases: []matchCase{
				{get("/api"), "api*"}, {get("/apiary"), "api*"}, {get("/api/v1"), "api*"},
				{get("/"), "home"}, {get("/x"), "root"}, {get("/ap"), "root"},
			},
		},
		{
			desc: "exact beats higher-priority prefix; priority orders the same slot",
			routes: func(*testing.T) []Route[string] {
				return []Route[string]{
					route("prefix-hi", "/a/*").withPriority(100),
					route("exact", "/a/b"),
					route("same-lo", "/x"),
					route("same-hi", "/x").withPriority(5),
					route("same-neg", "/x").withPriority(-1),
					route("short-hi", "/p/*").withPriority(100),
					route("long-lo", "/p/q/*"),
				}
			},
			cases: []matchCase{
				{get("/a/b"), "exact"}, {get("/a/c"), "prefix-hi"},
				{get("/x"), "same-hi"},
				{get("/p/q/r"), "long-lo"}, {get("/p/z"), "short-hi"},
			},
		},
		{
			desc: "ties: input order for equal priority and URI",
			routes: func(*testing.T) []Route[string] {
				return []Route[string]{route("first", "/t", "/t/*"), route("second", "/t", "/t/*")}
			},
			cases: []matchCase{{get("/t"), "first"}, {get("/t/1"), "first"}},
		},
		{
			desc: "failed conditions fall through to shorter prefixes",
			routes: func(t *testing.T) []Route[string] {
				return []Route[string]{
					route("post-exact", "/a/b/c").withMethods("POST"),
					route("vars-long", "/a/b/*").withVars(t, `[["arg_x","==","1"]]`),
					route("addr-mid", "/a/*").withAddrs("192.168.0.0/16"),
					route("root", "/*"),
				}
			},
			cases: []matchCase{
				{withMethod("POST", get("/a/b/c")), "post-exact"},
				{get("/a/b/c"), "root"},
				{withVars(map[string]string{"arg_x": "1"}, get("/a/b/c")), "vars-long"},
				{withIP("192.168.7.7", get("/a/b/c")), "addr-mid"},
				{withIP("192.168.7.7", withVars(map[string]string{"arg_x": "1"}, get("/a/b/c"))), "vars-long"},
			},
		},
		{
			desc: "parameters and catch-alls",
			routes: func(*testing.T) []Route[string] {
				return []Route[string]{
					route("user", "/users/:id"),
					route("user-any", "/users/*"),
					route("user-action", "/users/:id/*action"),
					route("file", "/files/*path"),
					route("mid", "/repo/*path/blob/:sha"),
					route("trail", "/t/:id/"),
					route("colon-literal", "/v1/models:generate"),
				}
			},
			cases: []matchCase{
				{get("/users/42"), "user"},
				{get("/users/42/"), "user-action"}, // Catch-all may be empty.
				{get("/users/42/send/now"), "user-action"},
				{get("/users/"), "user-any"}, // A parameter needs one character.
				{get("/users"), ""},
				{get("/files/"), "file"}, {get("/files/a/b.txt"), "file"}, {get("/files"), ""},
				{get("/repo/a/b/blob/123"), "mid"}, {get("/repo/blob/1"), ""}, {get("/repo//blob/1"), "mid"},
				{get("/repo/a/blob/1/x"), ""},
				{get("/t/1/"), "trail"}, {get("/t/1"), ""},
				{get("/v1/models:generate"), "colon-literal"}, {get("/v1/models"), ""},
			},
		},
		{
			desc: "NoParamMatch treats ':' literally",
			opts: Options{NoParamMatch: true},
			routes: func(*testing.T) []Route[string] {
				return []Route[string]{route("lit", "/users/:id"), route("any", "/users/*")}
			},
			cases: []matchCase{{get("/users/:id"), "lit"}, {get("/users/42"), "any"}},
		},
		{
			desc: "hosts: exact beats wildcard beats none, longest wildcard first",
			routes: func(*testing.T) []Route[string] {
				return []Route[string]{
					route("none", "/x"),
					route("none-exact", "/only-none"),
					route("wild", "/*").withHosts("*.example.com"),
					route("wild-deep", "/*").withHosts("*.api.example.com"),
					route("exact-host", "/*").withHosts("API.example.com"),
					route("exact-host-path", "/admin").withHosts("admin.example.com"),
				}
			},
			cases: []matchCase{
				{get("api.example.com/x"), "exact-host"},
				{get("API.Example.COM/x"), "exact-host"}, // Folded even if the engine did not.
				{get("v1.api.example.com/x"), "wild-deep"},
				{get("a.b.example.com/x"), "wild"},
				{get("example.com/x"), "none"}, // "*.example.com" needs a subdomain.
				{get("other.org/x"), "none"},
				{get("other.org/y"), ""},
				{get("admin.example.com/admin"), "exact-host-path"},
				// A matching host with a prefix beats a host-less exact URI.
				{get("admin.example.com/x"), "wild"},
				// Host tables fall through to host-less routes.
				{get("admin.example.com/only-none"), "wild"},
				{get("nohost.org/only-none"), "none-exact"},
				{get("/x"), "none"},
			},
		},
		{
			desc: "wildcard without dot and host-less fallthrough after failed conditions",
			routes: func(*testing.T) []Route[string] {
				return []Route[string]{
					route("suffix", "/*").withHosts("*example.com").withMethods("PUT"),
					route("none", "/*"),
				}
			},
			cases: []matchCase{
				{withMethod("PUT", get("example.com/a")), "suffix"},
				{withMethod("PUT", get("myexample.com/a")), "suffix"},
				{get("example.com/a"), "none"},
			},
		},
		{
			desc: "methods",
			routes: func(*testing.T) []Route[string] {
				return []Route[string]{
					route("get-post", "/m").withMethods("GET", "POST"),
					route("purge", "/m").withMethods("PURGE"),
					route("any", "/m"),
				}
			},
			cases: []matchCase{
				{get("/m"), "get-post"}, {withMethod("POST", get("/m")), "get-post"},
				{withMethod("PURGE", get("/m")), "purge"}, {withMethod("DELETE", get("/m")), "any"},
				{withMethod("BREW", get("/m")), "any"}, {withMethod("get", get("/m")), "any"},
			},
		},
		{
			desc: "remote addresses v4, v6 and mapped",
			routes: func(*testing.T) []Route[string] {
				return []Route[string]{
					route("v4", "/ip").withAddrs("10.1.0.0/16", "127.0.0.1"),
					route("v6", "/ip").withAddrs("fe80::/32"),
					route("fallback", "/ip"),
				}
			},
			cases: []matchCase{
				{withIP("10.1.2.3", get("/ip")), "v4"}, {withIP("127.0.0.1", get("/ip")), "v4"},
				{withIP("::ffff:10.1.9.9", get("/ip")), "v4"},
				{withIP("fe80::1", get("/ip")), "v6"}, {withIP("10.2.0.1", get("/ip")), "fallback"},
				{&fakeReq{method: "GET", path: "/ip"}, "fallback"}, // No client address.
			},
		},
		{
			desc: "vars and filter",
			routes: func(t *testing.T) []Route[string] {
				f := route("filter", "/v")
				f.Filter = func(r Request) bool { v, _ := r.Var("http_x"); return v == "yes" }
				return []Route[string]{
					route("vars", "/v").withVars(t, `[["arg_env","~~","^dev"]]`).withPriority(1),
					f,
				}
			},
			cases: []matchCase{
				{withVars(map[string]string{"arg_env": "dev1"}, get("/v")), "vars"},
				{withVars(map[string]string{"http_x": "yes"}, get("/v")), "filter"},
				{get("/v"), ""},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			runCases(t, mustNew(t, tt.routes(t), tt.opts), tt.cases)
		})
	}
}

func TestMatchParams(t *testing.T) {
	t.Parallel()
	routes := []Route[string]{
		route("user", "/users/:id"),
		route("action", "/users/:id/*action"),
		route("mid", "/repo/:owner/*path/blob/:sha"),
		route("unnamed", "/u/:/*"),
		route("vars-fail", "/p/:a").withVars(t, `[["arg_x","==","1"]]`),
		route("vars-ok", "/p/*rest"),
	}
	r := mustNew(t, routes, Options{})
	tests := []struct {
		path string
		want string
		args []Param
	}{
		{"/users/42", "user", []Param{{"id", "42"}}},
		{"/users/42/send/now", "action", []Param{{"id", "42"}, {"action", "send/now"}}},
		{"/repo/me/a/b/blob/f00", "mid", []Param{{"owner", "me"}, {"path", "a/b"}, {"sha", "f00"}}},
		{"/u/x/y", "unnamed", nil},
		{"/p/1", "vars-ok", []Param{{"rest", "1"}}}, // Params of the failed candidate are dropped.
	}
	buf := make([]Param, 0, 8)
	for _, tt := range tests {
		buf = append(buf[:0], Param{"pre", "kept"})
		got, params, ok := r.MatchParams(get(tt.path), buf)
		if !ok || got != tt.want {
			t.Errorf("%s: matched %q, %v; want %q", tt.path, got, ok, tt.want)
			continue
		}
		want := append([]Param{{"pre", "kept"}}, tt.args...)
		if !slices.Equal(params, want) {
			t.Errorf("%s: params %v, want %v", tt.path, params, want)
		}
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc  string
		route Route[string]
		want  string
	}{
		{"no uris", route("r1"), `route "r1": uris: at least one URI is required`},
		{"empty uri", route("r1", ""), `route "r1": uris[0]: must not be empty`},
		{"relative uri", route("r1", "api"), `route "r1": uris[0]: "api" must start with "/"`},
		{"star mid segment", route("r1", "/a*b"), `route "r1": uris[0]: "/a*b": '*' must start a segment or end the URI`},
		{"star before slash", route("r1", "/a*/b"), `'*' must start a segment or end the URI`},
		{"two catch-alls", route("r1", "/a/*x/b/*y"), `route "r1": uris[0]: "/a/*x/b/*y": at most one '*' catch-all`},
		{"bad cidr", route("r2", "/").withAddrs("10.0.0.1", "10.0.0.0/33"), `route "r2": remote_addrs[1]: invalid CIDR "10.0.0.0/33"`},
		{"bad ip", route("r2", "/").withAddrs("10.0.0.300"), `route "r2": remote_addrs[0]: invalid IP address "10.0.0.300"`},
		{"bad method", route("r3", "/").withMethods("GET", "get"), `route "r3": methods[1]: unknown method "get"`},
		{"bad host", route("r4", "/").withHosts("a.com", "b.com/x"), `route "r4": hosts[1]: invalid host "b.com/x"`},
		{"star host", route("r4", "/").withHosts("*"), `route "r4": hosts[0]: invalid host "*"`},
		{"inner star host", route("r4", "/").withHosts("a.*.com"), `route "r4": hosts[0]: invalid host "a.*.com"`},
		{"no id", Route[string]{URIs: []string{"/"}, Methods: []string{"X"}}, `routes[0]: methods[0]: unknown method "X"`},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			_, err := New([]Route[string]{tt.route})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New error = %v, want it to contain %q", err, tt.want)
			}
			var re *RouteError
			if !errors.As(err, &re) || re.Index != 0 {
				t.Errorf("error %v is not a *RouteError for index 0", err)
			}
			cause := strings.TrimPrefix(strings.TrimPrefix(tt.want, `route "`+tt.route.ID+`": `), "routes[0]: ")
			if verr := tt.route.Validate(Options{}); verr == nil || !strings.Contains(verr.Error(), cause) {
				t.Errorf("Validate = %v, want the same cause as New", verr)
			}
		})
	}
}

func TestNewReportsEveryBadRoute(t *testing.T) {
	t.Parallel()
	_, err := New([]Route[string]{route("ok", "/"), route("b1", "/").withMethods("X"), route("b2", "")})
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 2 {
		t.Fatalf("want two joined route errors, got %v", err)
	}
	for i, id := range []string{"b1", "b2"} {
		var re *RouteError
		if !errors.As(joined.Unwrap()[i], &re) || re.ID != id || re.Index != i+1 {
			t.Errorf("error %d = %v, want route %s", i, joined.Unwrap()[i], id)
		}
	}
}

func TestEmptyRouter(t *testing.T) {
	t.Parallel()
	r := mustNew(t, nil, Options{})
	if _, ok := r.Match(get("a.com/")); ok {
		t.Error("empty router matched")
	}
}

// TestDocExamples keeps the tables in docs/routing.md true.
func TestDocExamples(t *testing.T) {
	t.Parallel()
	del := get("/users/7")
	del.method = "DELETE"
	runCases(t, mustNew(t, []Route[string]{
		route("A", "/blog/foo/*"), route("B", "/blog/foo/a/*"), route("C", "/blog/foo/bar"),
		route("D", "/*").withPriority(100),
		route("E", "/*").withHosts("*.example.com"), route("F", "/v1/*").withHosts("api.example.com"),
		route("G", "/health"),
		route("H", "/users/:id").withMethods("GET"), route("I", "/users/*"),
	}, Options{}), []matchCase{
		{get("/blog/foo/bar"), "C"}, {get("/blog/foo/a/x"), "B"}, {get("/blog/foo/zzz"), "A"}, {get("/blog/foo"), "D"},
		{get("api.example.com/v1/users"), "F"}, {get("api.example.com/health"), "E"}, {get("example.com/health"), "G"},
		{get("/users/7"), "H"}, {del, "I"}, {get("/users/7/x"), "I"},
	})
}
