package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestFeatureRouting proves that every matching field of a route is wired from
// the resources file to the data plane: each route points at its own upstream,
// which answers with its name.
func TestFeatureRouting(t *testing.T) {
	t.Parallel()
	names := []string{"exacthost", "wildhost", "nohost", "exacturi", "prefix", "param", "post", "get",
		"ra-in", "ra-out", "ra-any", "v2", "canary", "vdefault", "plow", "phigh", "s-off", "s-on",
		"svc", "override", "svcinline"}
	ups := map[string]*featUpstream{}
	var res strings.Builder
	res.WriteString("upstreams:\n")
	for _, n := range names {
		u := featNewUpstream(t, n, nil)
		ups[n] = u
		fmt.Fprintf(&res, "  - id: %q\n    nodes:\n      %q: 1\n", "u-"+n, u.Addr)
	}
	fmt.Fprintf(&res, `services:
  - id: "svc1"
    hosts: ["svc.example.com"]
    upstream_id: "u-svc"
  - id: "svc2"
    upstream:
      nodes:
        %q: 1
routes:
  - {id: "exacthost", host: "api.example.com", uri: "/h/*", upstream_id: "u-exacthost"}
  - {id: "wildhost", hosts: ["*.example.com"], uri: "/h/*", upstream_id: "u-wildhost"}
  - {id: "nohost", uri: "/h/*", upstream_id: "u-nohost"}
  - {id: "exacturi", uri: "/u/exact", upstream_id: "u-exacturi"}
  - {id: "prefix", uri: "/u/*", upstream_id: "u-prefix"}
  - {id: "param", uri: "/users/:id", upstream_id: "u-param"}
  - {id: "post", uri: "/m", methods: ["POST"], upstream_id: "u-post"}
  - {id: "get", uri: "/m", methods: ["GET", "HEAD"], upstream_id: "u-get"}
  - {id: "ra-in", uri: "/ra", remote_addrs: ["127.0.0.0/8"], upstream_id: "u-ra-in"}
  - {id: "ra-out", uri: "/ra3", priority: 10, remote_addrs: ["10.0.0.0/8", "::1"], upstream_id: "u-ra-out"}
  - {id: "ra-only-out", uri: "/ra2", remote_addr: "192.168.0.0/16", upstream_id: "u-ra-out"}
  - {id: "ra-any", uri: "/ra3", upstream_id: "u-ra-any"}
  - {id: "v2", uri: "/v", priority: 2, vars: [["arg_version", "==", "2"]], upstream_id: "u-v2"}
  - {id: "canary", uri: "/v", priority: 1, vars: [["http_x_canary", "~~", "^on$"]], upstream_id: "u-canary"}
  - {id: "vdefault", uri: "/v", upstream_id: "u-vdefault"}
  - {id: "plow", uri: "/p/*", upstream_id: "u-plow"}
  - {id: "phigh", uri: "/p/*", priority: 5, upstream_id: "u-phigh"}
  - {id: "s-off", uri: "/s/*", priority: 9, status: 0, upstream_id: "u-s-off"}
  - {id: "s-on", uri: "/s/*", status: 1, upstream_id: "u-s-on"}
  - {id: "s-alone-off", uri: "/disabled", status: 0, upstream_id: "u-s-off"}
  - {id: "svc-route", uri: "/svc/*", service_id: "svc1"}
  - {id: "svc-override", uri: "/svc2/*", service_id: "svc1", upstream_id: "u-override"}
  - {id: "svc-own-host", uri: "/svc3/*", service_id: "svc1", hosts: ["own.example.com"]}
  - {id: "svc-inline", uri: "/svc4/*", service_id: "svc2"}
`, ups["svcinline"].Addr)

	cases := []struct {
		method, path, host string
		hdr                []string
		want               string // upstream name, or "" for 404
		wantRoute          string
	}{
		// hosts: exact beats wildcard beats none; case-insensitive; port ignored.
		{"GET", "/h/x", "api.example.com", nil, "exacthost", ""},
		{"GET", "/h/x", "API.Example.COM:8080", nil, "exacthost", ""},
		{"GET", "/h/x", "foo.example.com", nil, "wildhost", ""},
		{"GET", "/h/x", "a.b.example.com", nil, "wildhost", ""},
		{"GET", "/h/x", "example.com", nil, "nohost", ""},
		{"GET", "/h/x", "other.test", nil, "nohost", ""},
		// uri: exact, prefix, :param.
		{"GET", "/u/exact", "", nil, "exacturi", ""},
		{"GET", "/u/exact/more", "", nil, "prefix", ""},
		{"GET", "/u/other?q=1", "", nil, "prefix", ""},
		{"GET", "/u", "", nil, "", ""},
		{"GET", "/users/42", "", nil, "param", ""},
		{"GET", "/users/42/x", "", nil, "", ""},
		{"GET", "/users/", "", nil, "", ""},
		// methods.
		{"POST", "/m", "", nil, "post", ""},
		{"GET", "/m", "", nil, "get", ""},
		{"HEAD", "/m", "", nil, "get", ""},
		{"DELETE", "/m", "", nil, "", ""},
		// remote_addrs (the client is 127.0.0.1).
		{"GET", "/ra", "", nil, "ra-in", ""},
		{"GET", "/ra2", "", nil, "", ""},
		{"GET", "/ra3", "", nil, "ra-any", ""},
		// vars.
		{"GET", "/v?version=2", "", nil, "v2", ""},
		{"GET", "/v?version=3", "", nil, "vdefault", ""},
		{"GET", "/v", "", []string{"X-Canary", "on"}, "canary", ""},
		{"GET", "/v", "", []string{"X-Canary", "onx"}, "vdefault", ""},
		{"GET", "/v?version=2", "", []string{"X-Canary", "on"}, "v2", ""},
		{"GET", "/v", "", nil, "vdefault", ""},
		// priority between overlapping routes.
		{"GET", "/p/a", "", nil, "phigh", ""},
		// status 0 disables a route.
		{"GET", "/s/a", "", nil, "s-on", ""},
		{"GET", "/disabled", "", nil, "", ""},
		// route -> service -> upstream; service hosts inherited.
		{"GET", "/svc/a", "svc.example.com", nil, "svc", "svc-route"},
		{"GET", "/svc/a", "other.example.com", nil, "", ""},
		{"GET", "/svc2/a", "svc.example.com", nil, "override", "svc-override"},
		{"GET", "/svc2/a", "other.example.com", nil, "", ""},
		{"GET", "/svc3/a", "own.example.com", nil, "svc", "svc-own-host"},
		{"GET", "/svc3/a", "svc.example.com", nil, "", ""},
		{"GET", "/svc4/a", "", nil, "svcinline", "svc-inline"},
	}

	for _, engine := range featEngines {
		t.Run(engine, func(t *testing.T) {
			g := featGateway(t, GatewayOptions{Resources: res.String(), Engine: engine})
			c := featClient(5 * time.Second)
			for _, tc := range cases {
				before := map[string]int64{}
				for n, u := range ups {
					before[n] = u.Hits.Load()
				}
				r := featDo(t, c, tc.method, g.URL+tc.path, tc.host, tc.hdr...)
				what := fmt.Sprintf("%s %s Host=%q %v", tc.method, tc.path, tc.host, tc.hdr)
				if tc.want == "" {
					if r.Status != 404 || strings.TrimSpace(r.Body) != `{"error_msg":"404 Route Not Found"}` {
						t.Errorf("%s: got %d %q, want 404", what, r.Status, r.Body)
					}
				} else {
					wantBody := tc.want
					if tc.method == "HEAD" {
						wantBody = ""
					}
					if r.Status != 200 || r.Body != wantBody || r.Header.Get("X-Upstream") != tc.want {
						t.Errorf("%s: got %d %q (X-Upstream %q), want upstream %s", what, r.Status, r.Body,
							r.Header.Get("X-Upstream"), tc.want)
					}
				}
				// Exactly the expected upstream (and only it) saw the request.
				for n, u := range ups {
					want := before[n]
					if n == tc.want {
						want++
					}
					if got := u.Hits.Load(); got != want {
						t.Errorf("%s: upstream %s hits %d, want %d", what, n, got, want)
					}
				}
				if tc.want != "" {
					last := ups[tc.want].Last(t)
					if last.Method != tc.method || last.URI != tc.path {
						t.Errorf("%s: upstream saw %s %s", what, last.Method, last.URI)
					}
				}
			}
			// The access log names the routes that served.
			lines := g.AccessLog(t, len(cases))
			for _, tc := range cases {
				if tc.wantRoute == "" {
					continue
				}
				host := tc.host
				if host == "" {
					host = g.Addr
				}
				key := fmt.Sprintf(`"method":%q,"host":%q,"uri":%q`, tc.method, host, tc.path)
				found := false
				for _, l := range lines {
					if strings.Contains(l, key) {
						found = true
						if !strings.Contains(l, `"route_id":"`+tc.wantRoute+`"`) {
							t.Errorf("access log for %s %s: %s, want route %s", tc.method, tc.path, l, tc.wantRoute)
						}
					}
				}
				if !found {
					t.Errorf("no access log line with %s", key)
				}
			}
		})
	}
}

// TestFeaturePassHost checks the Host header the upstream receives for each
// pass_host mode, over http and https upstreams.
func TestFeaturePassHost(t *testing.T) {
	t.Parallel()
	up := featNewUpstream(t, "plain", nil)
	tlsUp := featNewTLSUpstream(t, "tls", nil)
	res := fmt.Sprintf(`upstreams:
  - id: "pass"
    nodes: {%[1]q: 1}
  - id: "node"
    pass_host: node
    nodes: {%[1]q: 1}
  - id: "rewrite"
    pass_host: rewrite
    upstream_host: "rewritten.example"
    nodes: {%[1]q: 1}
  - id: "tls"
    scheme: https
    nodes: {%[2]q: 1}
  - id: "tls-node"
    scheme: https
    pass_host: node
    nodes: {%[2]q: 1}
  - id: "tls-rewrite"
    scheme: https
    pass_host: rewrite
    upstream_host: "secure.example"
    nodes: {%[2]q: 1}
routes:
  - {id: "pass", uri: "/pass", upstream_id: "pass"}
  - {id: "node", uri: "/node", upstream_id: "node"}
  - {id: "rewrite", uri: "/rewrite", upstream_id: "rewrite"}
  - {id: "tls", uri: "/tls", upstream_id: "tls"}
  - {id: "tls-node", uri: "/tls-node", upstream_id: "tls-node"}
  - {id: "tls-rewrite", uri: "/tls-rewrite", upstream_id: "tls-rewrite"}
`, up.Addr, tlsUp.Addr)
	cases := []struct {
		path     string
		up       *featUpstream
		wantHost string
	}{
		{"/pass", up, "client.example:1234"},
		{"/node", up, up.Addr},
		{"/rewrite", up, "rewritten.example"},
		{"/tls", tlsUp, "client.example:1234"},
		{"/tls-node", tlsUp, tlsUp.Addr},
		{"/tls-rewrite", tlsUp, "secure.example"},
	}
	for _, engine := range featEngines {
		t.Run(engine, func(t *testing.T) {
			g := featGateway(t, GatewayOptions{Resources: res, Engine: engine})
			c := featClient(5 * time.Second)
			for _, tc := range cases {
				for i := 0; i < 2; i++ { // the second request may reuse a pooled connection
					r := featDo(t, c, "GET", g.URL+tc.path+"?a=b", "client.example:1234")
					if r.Status != 200 || r.Body != tc.up.Name {
						t.Fatalf("%s: got %d %q", tc.path, r.Status, r.Body)
					}
					last := tc.up.Last(t)
					if last.Host != tc.wantHost || last.URI != tc.path+"?a=b" || last.TLS != (tc.up == tlsUp) {
						t.Errorf("%s: upstream saw Host %q URI %q TLS %v, want Host %q", tc.path, last.Host, last.URI,
							last.TLS, tc.wantHost)
					}
					if xfh := last.Header.Get("X-Forwarded-Host"); xfh != "client.example" {
						t.Errorf("%s: X-Forwarded-Host %q", tc.path, xfh)
					}
				}
			}
		})
	}
}
