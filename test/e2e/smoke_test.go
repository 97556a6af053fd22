package e2e

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// upstreamYAML returns resources with one upstream of the given nodes and one
// catch-all route to it.
func upstreamYAML(nodes ...string) string {
	var b strings.Builder
	b.WriteString("upstreams:\n  - id: \"u1\"\n    nodes:\n")
	for _, n := range nodes {
		fmt.Fprintf(&b, "      %q: 1\n", n)
	}
	b.WriteString("routes:\n  - id: \"r1\"\n    uri: /*\n    upstream_id: \"u1\"\n")
	return b.String()
}

func TestSmokeProxyAndNotFound(t *testing.T) {
	for _, engine := range []string{"fast", "std"} {
		t.Run(engine, func(t *testing.T) {
			var got *http.Request
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = r.Clone(r.Context())
				w.Header().Set("X-Upstream", "yes")
				io.WriteString(w, "hello from upstream")
			}))
			defer up.Close()
			res := upstreamYAML(strings.TrimPrefix(up.URL, "http://")) +
				"  - id: \"r2\"\n    uri: /only/here\n    methods: [\"POST\"]\n    upstream_id: \"u1\"\n"
			res = strings.Replace(res, "uri: /*", "uri: /api/*", 1)
			g := StartGateway(t, GatewayOptions{Resources: res, Engine: engine})

			resp, err := http.Get(g.URL + "/api/hello?x=1")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "hello from upstream" || resp.Header.Get("X-Upstream") != "yes" {
				t.Fatalf("got %d %q %v", resp.StatusCode, body, resp.Header)
			}
			if got.URL.RequestURI() != "/api/hello?x=1" || got.Header.Get("X-Forwarded-For") != "127.0.0.1" ||
				got.Header.Get("X-Real-Ip") != "127.0.0.1" || got.Header.Get("X-Forwarded-Proto") != "http" {
				t.Fatalf("upstream saw %s %v", got.URL, got.Header)
			}

			resp, err = http.Get(g.URL + "/elsewhere")
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 404 || strings.TrimSpace(string(body)) != `{"error_msg":"404 Route Not Found"}` {
				t.Fatalf("got %d %q", resp.StatusCode, body)
			}
		})
	}
}
