package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// pluginGateway starts a gateway on the embedded store with one recording
// upstream "u1", for plugin tests driven through the Admin API.
func pluginGateway(t *testing.T, engine string) (*Gateway, *protoUpstream) {
	t.Helper()
	up := protoNewUpstream(t, nil)
	g := StartGateway(t, GatewayOptions{Store: "embedded", Engine: engine})
	mustAdmin(t, g, "PUT", "/apisix/admin/upstreams/u1", fmt.Sprintf(`{"nodes":{%q:1}}`, up.Addr))
	return g, up
}

func do(t *testing.T, method, url string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestPluginKeyAuthConsumer: a consumer with a key-auth credential is
// identified, the upstream learns who it is, and the key stays hidden.
func TestPluginKeyAuthConsumer(t *testing.T) {
	for _, engine := range []string{"fast", "std"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			g, up := pluginGateway(t, engine)
			mustAdmin(t, g, "PUT", "/apisix/admin/consumers", `{"username":"jack","plugins":{"key-auth":{"key":"jack-key-1"}}}`)
			mustAdmin(t, g, "PUT", "/apisix/admin/routes/r1",
				`{"uri":"/k","upstream_id":"u1","plugins":{"key-auth":{"hide_credentials":true}}}`)
			waitServed(t, g.URL+"/k", 401, 2*time.Second)
			code, _, body := do(t, "GET", g.URL+"/k", "apikey", "wrong")
			if code != 401 || !strings.Contains(body, "Invalid API key") {
				t.Fatalf("wrong key: %d %s", code, body)
			}
			before := up.Requests()
			code, _, _ = do(t, "GET", g.URL+"/k", "apikey", "jack-key-1", "X-Consumer-Username", "spoofed")
			if code != 200 || up.Requests() != before+1 {
				t.Fatalf("right key: %d", code)
			}
			seen := up.Last(t)
			if got := seen.Header.Get("X-Consumer-Username"); got != "jack" {
				t.Errorf("upstream saw X-Consumer-Username %q", got)
			}
			if seen.Header.Get("Apikey") != "" {
				t.Errorf("hide_credentials: upstream still saw the key")
			}
		})
	}
}

// TestPluginRewriteBothWays: proxy-rewrite changes what the upstream gets;
// response-rewrite changes what the client gets; a global rule applies to
// every route.
func TestPluginRewriteBothWays(t *testing.T) {
	for _, engine := range []string{"fast", "std"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			g, up := pluginGateway(t, engine)
			mustAdmin(t, g, "PUT", "/apisix/admin/routes/r1", `{"uri":"/old/*","upstream_id":"u1","plugins":{
				"proxy-rewrite":{"regex_uri":["^/old/(.*)","/new/$1"],"headers":{"set":{"X-Added":"yes"},"remove":["X-Drop"]}},
				"response-rewrite":{"headers":{"set":{"X-Resp":"rewritten"}},"body":"replaced body"}}}`)
			mustAdmin(t, g, "PUT", "/apisix/admin/global_rules/1", `{"plugins":{"response-rewrite":{"headers":{"set":{"X-Global":"1"}}}}}`)
			mustAdmin(t, g, "PUT", "/apisix/admin/routes/r2", `{"uri":"/plain","upstream_id":"u1"}`)
			waitServed(t, g.URL+"/plain", 200, 2*time.Second)
			code, hdr, body := do(t, "GET", g.URL+"/old/thing?q=1", "X-Drop", "x")
			if code != 200 || body != "replaced body" || hdr.Get("X-Resp") != "rewritten" {
				t.Fatalf("client got %d %q %v", code, body, hdr)
			}
			seen := up.Last(t)
			if seen.URI != "/new/thing?q=1" || seen.Header.Get("X-Added") != "yes" || seen.Header.Get("X-Drop") != "" {
				t.Fatalf("upstream saw %s %v", seen.URI, seen.Header)
			}
			if _, hdr, _ := do(t, "GET", g.URL+"/plain"); hdr.Get("X-Global") != "1" {
				t.Fatalf("global rule did not run on another route: %v", hdr)
			}
		})
	}
}

// TestPluginIPRestrictionAndCORS: a rejection from the access phase still
// goes through header filters (cors headers on the 403).
func TestPluginIPRestrictionAndCORS(t *testing.T) {
	g, up := pluginGateway(t, "fast")
	mustAdmin(t, g, "PUT", "/apisix/admin/routes/r1", `{"uri":"/ip","upstream_id":"u1","plugins":{
		"ip-restriction":{"blacklist":["127.0.0.0/8"]},"cors":{}}}`)
	waitServed(t, g.URL+"/ip", 403, 2*time.Second)
	before := up.Requests()
	code, hdr, body := do(t, "GET", g.URL+"/ip", "Origin", "http://a.example")
	if code != 403 || !strings.Contains(body, "not allowed") || hdr.Get("Access-Control-Allow-Origin") == "" {
		t.Fatalf("got %d %q %v", code, body, hdr)
	}
	if up.Requests() != before {
		t.Fatal("a rejected request reached the upstream")
	}
}

// TestPluginValidationAtAdmin: a bad plugin config is refused with the
// plugin's name and field; an unknown plugin too.
func TestPluginValidationAtAdmin(t *testing.T) {
	g, _ := pluginGateway(t, "fast")
	code, body := adminDo(t, g, "PUT", "/apisix/admin/routes/r1", `{"uri":"/v","upstream_id":"u1","plugins":{"key-auth":{"header":5}}}`)
	if code != 400 || !strings.Contains(body, "plugins.key-auth: header") {
		t.Fatalf("bad config: %d %s", code, body)
	}
	code, body = adminDo(t, g, "PUT", "/apisix/admin/routes/r1", `{"uri":"/v","upstream_id":"u1","plugins":{"no-such-plugin":{}}}`)
	if code != 400 || !strings.Contains(body, "unknown plugin [no-such-plugin]") {
		t.Fatalf("unknown plugin: %d %s", code, body)
	}
}

// TestPluginListAndReload: the gateway config's plugin list limits what
// routes may use, and a changed list applies on PUT /plugins/reload.
func TestPluginListAndReload(t *testing.T) {
	dir := t.TempDir()
	g := StartGateway(t, GatewayOptions{Store: "embedded", Dir: dir, Extra: "plugins: [key-auth]"})
	code, body := adminDo(t, g, "GET", "/apisix/admin/plugins/list", "")
	if code != 200 || strings.TrimSpace(body) != `["key-auth"]` {
		t.Fatalf("plugins/list: %d %s", code, body)
	}
	code, body = adminDo(t, g, "GET", "/apisix/admin/plugins/key-auth", "")
	if code != 200 || !strings.Contains(body, `"header"`) || !strings.Contains(body, `"apikey"`) {
		t.Fatalf("key-auth schema: %d %s", code, body)
	}
	code, _ = adminDo(t, g, "PUT", "/apisix/admin/routes/r1", `{"uri":"/r","upstream":{"nodes":{"127.0.0.1:1":1}},"plugins":{"request-id":{}}}`)
	if code != 400 {
		t.Fatalf("a plugin not in the list was accepted: %d", code)
	}
	conf, err := readFile(dir + "/sluice.yaml")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir+"/sluice.yaml", strings.Replace(conf, "plugins: [key-auth]", "plugins: [key-auth, request-id]", 1))
	code, body = adminDo(t, g, "PUT", "/apisix/admin/plugins/reload", "")
	if code != 200 {
		t.Fatalf("reload: %d %s", code, body)
	}
	mustAdmin(t, g, "PUT", "/apisix/admin/routes/r1", `{"uri":"/r","upstream":{"nodes":{"127.0.0.1:1":1}},"plugins":{"request-id":{}}}`)
}

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

// TestPluginConsumerPluginsMerge: once key-auth identifies a consumer, the
// consumer's plugins and its group's join the chain, with APISIX's
// precedence (consumer > consumer group > route).
func TestPluginConsumerPluginsMerge(t *testing.T) {
	for _, engine := range []string{"fast", "std"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			g, up := pluginGateway(t, engine)
			mustAdmin(t, g, "PUT", "/apisix/admin/consumer_groups/gold",
				`{"plugins":{"response-rewrite":{"headers":{"set":{"X-Group":"gold"}}}}}`)
			mustAdmin(t, g, "PUT", "/apisix/admin/consumers", `{"username":"jack","plugins":{
				"key-auth":{"key":"jack-key-1"},
				"proxy-rewrite":{"headers":{"set":{"X-Who":"consumer-jack"}}}}}`)
			mustAdmin(t, g, "PUT", "/apisix/admin/consumers", `{"username":"tom","group_id":"gold","plugins":{
				"key-auth":{"key":"tom-key-1"}}}`)
			mustAdmin(t, g, "PUT", "/apisix/admin/routes/r1", `{"uri":"/m","upstream_id":"u1","plugins":{
				"key-auth":{},"proxy-rewrite":{"headers":{"set":{"X-Who":"route"}}}}}`)
			waitServed(t, g.URL+"/m", 401, 2*time.Second)

			code, hdr, _ := do(t, "GET", g.URL+"/m", "apikey", "jack-key-1")
			if seen := up.Last(t); code != 200 || seen.Header.Get("X-Who") != "consumer-jack" || hdr.Get("X-Group") != "" {
				t.Fatalf("jack: %d X-Who=%q X-Group=%q", code, seen.Header.Get("X-Who"), hdr.Get("X-Group"))
			}
			code, hdr, _ = do(t, "GET", g.URL+"/m", "apikey", "tom-key-1")
			if seen := up.Last(t); code != 200 || seen.Header.Get("X-Who") != "route" || hdr.Get("X-Group") != "gold" {
				t.Fatalf("tom: %d X-Who=%q X-Group=%q", code, seen.Header.Get("X-Who"), hdr.Get("X-Group"))
			}
		})
	}
}

// TestPluginAnonymousConsumer: key-auth's anonymous_consumer names a consumer
// that holds no credential; requests without a key run as that consumer.
func TestPluginAnonymousConsumer(t *testing.T) {
	t.Parallel()
	g, up := pluginGateway(t, "fast")
	mustAdmin(t, g, "PUT", "/apisix/admin/consumers", `{"username":"guest"}`)
	mustAdmin(t, g, "PUT", "/apisix/admin/consumers", `{"username":"jack","plugins":{"key-auth":{"key":"jack-key-1"}}}`)
	mustAdmin(t, g, "PUT", "/apisix/admin/routes/r1",
		`{"uri":"/a","upstream_id":"u1","plugins":{"key-auth":{"anonymous_consumer":"guest"}}}`)
	waitServed(t, g.URL+"/a", 200, 2*time.Second)
	if who := up.Last(t).Header.Get("X-Consumer-Username"); who != "guest" {
		t.Fatalf("no key: upstream saw consumer %q, want guest", who)
	}
	if code, _, _ := do(t, "GET", g.URL+"/a", "apikey", "jack-key-1"); code != 200 || up.Last(t).Header.Get("X-Consumer-Username") != "jack" {
		t.Fatalf("with jack's key: %d %q", code, up.Last(t).Header.Get("X-Consumer-Username"))
	}
}
